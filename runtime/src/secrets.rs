//! Secrets: resolving their sources, and redacting their values from everything we emit.
//!
//! A value must never reach the outcome, a log or a finding (DESIGN.md §5), and a job can print
//! it transformed: base64 inside a basic-auth header or a JSON document, hex (`xxd -p`), base32,
//! reversed (`rev`), percent-encoded in a URL, escaped in JSON, or split across two pipe reads.
//! The redactor looks for all of those (issue 15: a hostile job prints the encoding we miss).

use std::collections::HashSet;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use data_encoding::{BASE32, BASE32_NOPAD, HEXLOWER, HEXUPPER};

/// Credentials are far smaller; a bigger value is a mistake, and each stream holds back about
/// three times the longest value.
const MAX_VALUE_BYTES: usize = 64 * 1024;

/// How a secret reaches the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Env,
    /// An absolute path inside the job.
    File(PathBuf),
}

/// A resolved secret; its `Debug` shows the name and delivery, never the value.
#[derive(Clone)]
pub struct Secret {
    pub name: String,
    pub delivery: Delivery,
    value: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("delivery", &self.delivery)
            .field(
                "value",
                &format_args!("<redacted, {} bytes>", self.value.len()),
            )
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret {name:?}: invalid name; use letters, digits and `_`, not starting with a digit"
    )]
    BadName { name: String },
    #[error("secret {name}: invalid source {from:?}: {why}")]
    BadFrom {
        name: String,
        from: String,
        why: &'static str,
    },
    #[error(
        "secret {name}: invalid delivery {deliver_as:?}; use `env` or `file:/absolute/path` \
         (no `.` or `..` components, not `/`)"
    )]
    BadAs { name: String, deliver_as: String },
    #[error("secret {name}: source env:{var} is not set; export {var} or give another source")]
    EnvUnset { name: String, var: String },
    // The io error is in the message, not a `source`: callers format this with `{}`.
    #[error(
        "secret {name}: cannot read source file {}: {error}; check the path and its permissions",
        path.display()
    )]
    FileUnreadable {
        name: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "secret {name}: source {from} is empty; an empty secret cannot be redacted, give it \
         a value"
    )]
    Empty { name: String, from: String },
    #[error(
        "secret {name}: source {from} is {len} bytes, over the {MAX_VALUE_BYTES}-byte limit; \
         deliver big files with a read-only mount instead"
    )]
    TooLarge {
        name: String,
        from: String,
        len: usize,
    },
    #[error(
        "secret {name}: the value from {from} contains a NUL byte, which an environment \
         variable cannot hold; deliver it as `file:/path`"
    )]
    NulInEnv { name: String, from: String },
}

impl Secret {
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// `from`: `env:VAR` or `file:PATH` (`~/` is the caller's $HOME, relative paths are relative
    /// to the current directory). `deliver_as`: `env` or `file:/absolute/path`.
    pub fn resolve(name: &str, from: &str, deliver_as: &str) -> Result<Secret, SecretError> {
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(SecretError::BadName { name: name.into() });
        }
        let delivery = parse_delivery(deliver_as).ok_or_else(|| SecretError::BadAs {
            name: name.into(),
            deliver_as: deliver_as.into(),
        })?;
        let value = read_source(name, from)?;
        let (name, from) = (name.to_string(), from.to_string());
        if value.is_empty() {
            return Err(SecretError::Empty { name, from });
        }
        if value.len() > MAX_VALUE_BYTES {
            let len = value.len();
            return Err(SecretError::TooLarge { name, from, len });
        }
        if delivery == Delivery::Env && value.contains(&0) {
            return Err(SecretError::NulInEnv { name, from });
        }
        Ok(Secret {
            name,
            delivery,
            value,
        })
    }

    /// `--secret NAME[=SOURCE]`: SOURCE defaults to `env:NAME`; delivered as the env var NAME.
    pub fn from_flag(flag: &str) -> Result<Secret, SecretError> {
        match flag.split_once('=') {
            Some((name, from)) => Secret::resolve(name, from, "env"),
            None => Secret::resolve(flag, &format!("env:{flag}"), "env"),
        }
    }
}

fn parse_delivery(text: &str) -> Option<Delivery> {
    if text == "env" {
        return Some(Delivery::Env);
    }
    let path = text.strip_prefix("file:")?;
    // Checked on the text: `Path::components` silently drops inner `.` components.
    let clean = !path.contains('\0')
        && path
            .strip_prefix('/')?
            .split('/')
            .all(|part| !matches!(part, "" | "." | ".."));
    clean.then(|| Delivery::File(PathBuf::from(path)))
}

fn read_source(name: &str, from: &str) -> Result<Vec<u8>, SecretError> {
    let bad = |why| SecretError::BadFrom {
        name: name.into(),
        from: from.into(),
        why,
    };
    if let Some(var) = from.strip_prefix("env:") {
        if var.is_empty() || var.contains(['=', '\0']) {
            return Err(bad("not a variable name"));
        }
        // Not UTF-8 is fine: the value is bytes to the job and to the redactor.
        return std::env::var_os(var)
            .map(|value| value.into_vec())
            .ok_or_else(|| SecretError::EnvUnset {
                name: name.into(),
                var: var.into(),
            });
    }
    let path = match from.strip_prefix("file:") {
        Some(path) if !path.is_empty() && !path.contains('\0') => path,
        _ => return Err(bad("use `env:VAR` or `file:PATH`")),
    };
    let path = match path.strip_prefix("~/") {
        Some(rest) => {
            PathBuf::from(std::env::var_os("HOME").ok_or_else(|| bad("$HOME is not set"))?)
                .join(rest)
        }
        None => PathBuf::from(path),
    };
    std::fs::read(&path).map_err(|error| SecretError::FileUnreadable {
        name: name.into(),
        path,
        error,
    })
}

/// The byte strings that reveal `value`: itself and the encodings a job is likely to print.
/// Every whole form is kept however short (a false redaction beats a leak); only the partial
/// forms inside a longer encoded text need 8 characters, as shorter ones match by chance.
fn forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![value.to_vec(), value.iter().rev().copied().collect()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(value).into_bytes());
    }
    // `xxd -p` and `od`-style dumps; a hex text is byte-aligned, so the value's hex is also a
    // substring of a longer hex text.
    for hex in [&HEXLOWER, &HEXUPPER] {
        forms.push(hex.encode(value).into_bytes());
    }
    // coreutils `base32` prints upper case and pads; `| tr` or a TOTP URI drops either.
    for base32 in [&BASE32, &BASE32_NOPAD] {
        let upper = base32.encode(value).into_bytes();
        forms.push(upper.to_ascii_lowercase());
        forms.push(upper);
    }
    // Inside a longer base64 text (basic auth `user:token`, a base64'd JSON document) only the
    // characters made of the value's bits alone are stable, at each of the 3 alignments; base32
    // packs 5 bits a character and repeats every 5 bytes.
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.extend(cores(value, 6, |bytes| engine.encode(bytes).into_bytes()));
    }
    for core in cores(value, 5, |bytes| BASE32_NOPAD.encode(bytes).into_bytes()) {
        forms.push(core.to_ascii_lowercase());
        forms.push(core);
    }
    for hex in [b"0123456789ABCDEF", b"0123456789abcdef"] {
        forms.push(percent(value, hex, false));
        if value.contains(&b' ') {
            forms.push(percent(value, hex, true));
        }
    }
    if let Some(json) = std::str::from_utf8(value)
        .ok()
        .and_then(|text| serde_json::to_string(text).ok())
    {
        let unquoted = json
            .strip_prefix('"')
            .and_then(|json| json.strip_suffix('"'));
        forms.push(unquoted.unwrap_or_default().as_bytes().to_vec());
    }
    forms
}

/// The characters of `encode(filler + value + more)` that depend on `value`'s bits alone, for
/// each length of filler up to the encoding's period (`bits` per character), of at least 8
/// characters.
fn cores(value: &[u8], bits: usize, encode: impl Fn(&[u8]) -> Vec<u8>) -> Vec<Vec<u8>> {
    // The alignment repeats after the fewest bytes that make whole characters: 3 bytes for
    // base64, 5 for base32.
    let period = (1..=bits)
        .find(|bytes| 8 * bytes % bits == 0)
        .unwrap_or(bits);
    let mut cores = Vec::new();
    for filler in 0..period {
        let mut input = vec![0; filler];
        input.extend_from_slice(value);
        let encoded = encode(&input);
        let (start, end) = ((8 * filler).div_ceil(bits), 8 * input.len() / bits);
        if let Some(core) = encoded.get(start..end).filter(|core| core.len() >= 8) {
            cores.push(core.to_vec());
        }
    }
    cores
}

fn percent(value: &[u8], hex: &[u8; 16], plus_for_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 3);
    for &byte in value {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte);
        } else if plus_for_space && byte == b' ' {
            out.push(b'+');
        } else {
            out.extend([
                b'%',
                hex[usize::from(byte >> 4)],
                hex[usize::from(byte & 15)],
            ]);
        }
    }
    out
}

/// Replaces every secret value, and its encoded forms, by `[REDACTED:NAME]`.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

struct Inner {
    names: Vec<String>,
    matcher: Matcher,
    /// For each pattern, the index of its secret in `names`.
    owner: Vec<usize>,
    max_len: usize,
}

enum Matcher {
    Nothing,
    Ready(AhoCorasick),
    /// The automaton could not be built (size limits); we withhold all output rather than leak.
    Broken,
}

const WITHHELD: &[u8] = b"[REDACTED:output withheld, too many secret patterns]\n";

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.inner.names)
            .field("patterns", &self.inner.owner.len())
            .finish()
    }
}

/// No secrets: redacts nothing.
impl Default for Redactor {
    fn default() -> Redactor {
        Redactor::new(&[])
    }
}

impl Redactor {
    pub fn new(secrets: &[Secret]) -> Redactor {
        let (mut patterns, mut owner, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
        for (index, secret) in secrets.iter().enumerate() {
            let mut values = vec![&secret.value[..]];
            // `echo token > file` adds a newline that the tool reading the file often strips
            // before printing the token.
            let trimmed = secret.value.trim_ascii_end();
            if !trimmed.is_empty() && trimmed.len() < secret.value.len() {
                values.push(trimmed);
            }
            for form in values.into_iter().flat_map(forms) {
                if seen.insert(form.clone()) {
                    patterns.push(form);
                    owner.push(index);
                }
            }
        }
        let matcher = if patterns.is_empty() {
            Matcher::Nothing
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .map_or(Matcher::Broken, Matcher::Ready)
        };
        let names = secrets.iter().map(|secret| secret.name.clone()).collect();
        let max_len = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Redactor {
            inner: Arc::new(Inner {
                names,
                matcher,
                owner,
                max_len,
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self.inner.matcher, Matcher::Nothing)
    }

    /// Returns the redacted bytes and how many replacements were made.
    pub fn redact(&self, bytes: &[u8]) -> (Vec<u8>, u64) {
        let mut stream = self.stream();
        let mut out = stream.push(bytes);
        out.extend(stream.finish());
        (out, stream.redactions)
    }

    /// Lossless for valid UTF-8 (a value that is not UTF-8 may cut a character: lossy then).
    pub fn redact_str(&self, text: &str) -> (String, u64) {
        let (bytes, count) = self.redact(text.as_bytes());
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        (text, count)
    }

    /// Names of the secrets whose value (or an encoded form) occurs in `bytes`, deduplicated,
    /// in declaration order. Matches do not overlap, as in `redact`.
    pub fn find(&self, bytes: &[u8]) -> Vec<String> {
        let inner = &self.inner;
        let mut hit = vec![matches!(inner.matcher, Matcher::Broken); inner.names.len()];
        if let Matcher::Ready(automaton) = &inner.matcher {
            for found in automaton.find_iter(bytes) {
                hit[inner.owner[found.pattern().as_usize()]] = true;
            }
        }
        let mut names: Vec<String> = Vec::new();
        for (name, _) in inner.names.iter().zip(hit).filter(|(_, hit)| *hit) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            held: Vec::new(),
            redactions: 0,
        }
    }

    /// Replaces, into `out`, the matches in `buf` that start before `final_before`; returns
    /// where the unreplaced rest of `buf` begins.
    fn replace(
        &self,
        buf: &[u8],
        final_before: usize,
        out: &mut Vec<u8>,
        count: &mut u64,
    ) -> usize {
        let mut cursor = 0;
        if let Matcher::Ready(automaton) = &self.inner.matcher {
            for found in automaton.find_iter(buf) {
                if found.start() >= final_before {
                    break;
                }
                let name = &self.inner.names[self.inner.owner[found.pattern().as_usize()]];
                out.extend_from_slice(&buf[cursor..found.start()]);
                out.extend_from_slice(format!("[REDACTED:{name}]").as_bytes());
                cursor = found.end();
                *count += 1;
            }
        }
        cursor
    }
}

/// Redacts a stream that arrives in chunks: a value split across chunks is still caught. It
/// holds back at most (longest pattern - 1) bytes until more data comes or `finish`.
pub struct StreamRedactor {
    redactor: Redactor,
    held: Vec<u8>,
    redactions: u64,
}

// By hand: the held-back bytes may be the start of a value.
impl fmt::Debug for StreamRedactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamRedactor")
            .field("held", &self.held.len())
            .field("redactions", &self.redactions)
            .finish()
    }
}

impl StreamRedactor {
    /// Returns the bytes safe to emit now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if matches!(self.redactor.inner.matcher, Matcher::Broken) {
            self.redactions += 1;
            return WITHHELD.to_vec();
        }
        self.held.extend_from_slice(chunk);
        // A match starting before `safe` is final: every pattern that could start there ends
        // inside the buffer, so later bytes cannot make a longer or an earlier match.
        let hold = self.redactor.inner.max_len.saturating_sub(1);
        let safe = self.held.len().saturating_sub(hold);
        let mut out = Vec::with_capacity(self.held.len());
        let cursor = self
            .redactor
            .replace(&self.held, safe, &mut out, &mut self.redactions);
        let emit_to = safe.max(cursor);
        out.extend_from_slice(&self.held[cursor..emit_to]);
        self.held.drain(..emit_to);
        out
    }

    /// Returns the held-back rest, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        let mut out = Vec::with_capacity(held.len());
        let cursor = self
            .redactor
            .replace(&held, usize::MAX, &mut out, &mut self.redactions);
        out.extend_from_slice(&held[cursor..]);
        out
    }

    pub fn redactions(&self) -> u64 {
        self.redactions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, value: &str) -> Secret {
        let (delivery, value) = (Delivery::Env, value.as_bytes().to_vec());
        Secret {
            name: name.into(),
            delivery,
            value,
        }
    }

    const TOKEN: &str = "ghp_s3cr3t+/Value?!";

    fn redactor() -> Redactor {
        Redactor::new(&[secret("TOKEN", TOKEN)])
    }

    fn stream(redactor: &Redactor, chunks: &[&[u8]]) -> (String, u64) {
        let mut stream = redactor.stream();
        let mut out: Vec<u8> = chunks.iter().flat_map(|chunk| stream.push(chunk)).collect();
        out.extend(stream.finish());
        (String::from_utf8(out).unwrap(), stream.redactions())
    }

    #[test]
    fn value_split_across_two_and_three_pushes_is_redacted() {
        let text = format!("before {TOKEN} after").into_bytes();
        let expected = "before [REDACTED:TOKEN] after";
        for i in 0..=text.len() {
            assert_eq!(
                stream(&redactor(), &[&text[..i], &text[i..]]),
                (expected.into(), 1)
            );
            for j in i..=text.len() {
                let chunks: [&[u8]; 3] = [&text[..i], &text[i..j], &text[j..]];
                assert_eq!(
                    stream(&redactor(), &chunks),
                    (expected.into(), 1),
                    "{i} {j}"
                );
            }
        }
    }

    #[test]
    fn streaming_any_split_of_mixed_text_matches_one_shot() {
        let redactor = Redactor::new(&[secret("TOKEN", TOKEN), secret("PW", "hunter2 hunter2")]);
        let b64 = STANDARD.encode(format!("user:{TOKEN}"));
        let longest = STANDARD.encode(TOKEN);
        let text = format!("{TOKEN}{b64} hunter2+hunter2 hunter2 hunter2%20{longest}\n{TOKEN}");
        let (expected, count) = redactor.redact_str(&text);
        assert_eq!(count, 6, "{expected}");
        let text = text.as_bytes();
        for i in 0..=text.len() {
            assert_eq!(
                stream(&redactor, &[&text[..i], &text[i..]]),
                (expected.clone(), count)
            );
        }
    }

    #[test]
    fn base64_forms_of_the_value_are_redacted() {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            let text = format!("x={};", engine.encode(TOKEN));
            assert_eq!(
                redactor().redact_str(&text),
                ("x=[REDACTED:TOKEN];".into(), 1)
            );
        }
    }

    #[test]
    fn value_inside_a_longer_base64_text_is_redacted_at_each_alignment() {
        for prefix in ["", "a", "ab", "user:", r#"{"auth":""#] {
            for engine in [&STANDARD, &URL_SAFE] {
                let text = engine.encode(format!("{prefix}{TOKEN}\", \"more\": 1}}"));
                let (out, count) = redactor().redact_str(&text);
                assert_eq!(count, 1, "{prefix:?} {text}");
                assert!(
                    out.contains("[REDACTED:TOKEN]") && out.len() < text.len(),
                    "{out}"
                );
            }
        }
    }

    /// Each form as a job prints it, with what printed it.
    fn printed_forms(value: &str) -> Vec<(&'static str, String)> {
        let base32 = BASE32.encode(value.as_bytes());
        let base32_no_pad = BASE32_NOPAD.encode(value.as_bytes());
        vec![
            ("xxd -p", HEXLOWER.encode(value.as_bytes())),
            ("hex upper case", HEXUPPER.encode(value.as_bytes())),
            ("base32", base32.clone()),
            ("base32 lower case", base32.to_lowercase()),
            ("base32 unpadded", base32_no_pad.clone()),
            ("base32 unpadded lower case", base32_no_pad.to_lowercase()),
            ("rev", value.chars().rev().collect()),
        ]
    }

    #[test]
    fn hex_base32_and_reversed_forms_of_the_value_are_redacted() {
        let forms = printed_forms(TOKEN);
        assert!(forms.iter().all(|(_, form)| !form.contains(TOKEN)));
        for (how, form) in &forms {
            let (out, count) = redactor().redact_str(&format!("x={form};"));
            assert_eq!((out.as_str(), count), ("x=[REDACTED:TOKEN];", 1), "{how}");
        }
    }

    #[test]
    fn find_reports_the_secret_behind_each_form() {
        for (how, form) in printed_forms(TOKEN) {
            let file = format!("export KEY={form}\n");
            assert_eq!(redactor().find(file.as_bytes()), ["TOKEN"], "{how}");
        }
    }

    #[test]
    fn value_inside_a_longer_hex_or_base32_text_is_redacted_at_each_alignment() {
        for prefix in ["", "a", "ab", "abc", "abcd", "user:", r#"{"auth":""#] {
            let input = format!("{prefix}{TOKEN}\", \"more\": 1}}");
            let hex = HEXLOWER.encode(input.as_bytes());
            let base32 = BASE32.encode(input.as_bytes());
            for text in [
                hex.clone(),
                hex.to_uppercase(),
                base32.clone(),
                base32.to_lowercase(),
            ] {
                let (out, count) = redactor().redact_str(&text);
                assert_eq!(count, 1, "{prefix:?} {text}");
                assert!(
                    out.contains("[REDACTED:TOKEN]") && out.len() < text.len(),
                    "{out}"
                );
            }
        }
    }

    #[test]
    fn a_short_value_is_redacted_in_every_whole_form() {
        // Short values cost false redactions (README), never a leak: the value and each whole
        // encoding are kept at any length, as the base64 forms always were.
        let redactor = Redactor::new(&[secret("PIN", "4711")]);
        for (how, form) in printed_forms("4711") {
            assert_eq!(
                redactor.redact_str(&format!("pin {form}.")).0,
                "pin [REDACTED:PIN].",
                "{how}"
            );
        }
        assert_eq!(
            redactor.redact_str("pin NDcxMQ==.").0,
            "pin [REDACTED:PIN]."
        );
    }

    #[test]
    fn percent_encoded_and_json_escaped_values_are_redacted() {
        let value = r#"p@ss "quoted" \ word"#;
        let redactor = Redactor::new(&[secret("PW", value)]);
        let upper = "p%40ss%20%22quoted%22%20%5C%20word";
        let plus = "p%40ss+%22quoted%22+%5c+word";
        for text in [upper.to_string(), upper.to_lowercase(), plus.into()] {
            assert_eq!(
                redactor.redact_str(&format!("?pw={text}&")).0,
                "?pw=[REDACTED:PW]&"
            );
        }
        let json = serde_json::json!({ "password": value, "n": 1 }).to_string();
        let (out, count) = redactor.redact_str(&json);
        assert_eq!(
            (out.as_str(), count),
            (r#"{"n":1,"password":"[REDACTED:PW]"}"#, 1)
        );
    }

    #[test]
    fn two_adjacent_secrets_are_both_redacted() {
        let redactor = Redactor::new(&[secret("A", "alpha-123456"), secret("B", "bravo-654321")]);
        let text = b"[alpha-123456bravo-654321]";
        let expected = ("[[REDACTED:A][REDACTED:B]]".to_string(), 2);
        for i in 0..=text.len() {
            assert_eq!(stream(&redactor, &[&text[..i], &text[i..]]), expected);
        }
        assert_eq!(
            redactor.find(b"bravo-654321 alpha-123456 alpha-123456"),
            ["A", "B"]
        );
        assert!(redactor.find(b"nothing here").is_empty());
    }

    #[test]
    fn a_prefix_at_the_end_of_the_stream_is_emitted_as_is() {
        let text = format!("tail {}", &TOKEN[..TOKEN.len() - 1]);
        assert_eq!(stream(&redactor(), &[text.as_bytes()]), (text.clone(), 0));
        let mut stream = redactor().stream();
        assert!(
            stream.push(text.as_bytes()).len() < text.len(),
            "the prefix is held back"
        );
    }

    #[test]
    fn redactions_are_counted() {
        let text = format!("{TOKEN} {TOKEN}\n{}", STANDARD.encode(TOKEN));
        let (out, count) = redactor().redact(text.as_bytes());
        assert_eq!(
            (out, count),
            (
                b"[REDACTED:TOKEN] [REDACTED:TOKEN]\n[REDACTED:TOKEN]".to_vec(),
                3
            )
        );
        assert!(Redactor::new(&[]).is_empty() && !redactor().is_empty());
        assert_eq!(Redactor::new(&[]).redact(b"as is"), (b"as is".to_vec(), 0));
    }

    #[test]
    fn a_trailing_newline_in_the_value_does_not_hide_the_token() {
        let redactor = Redactor::new(&[secret("T", "tok-abcdef\n")]);
        assert_eq!(
            redactor.redact_str("tok-abcdef\ntok-abcdef.").0,
            "[REDACTED:T][REDACTED:T]."
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        #[derive(Debug)]
        #[expect(dead_code, reason = "only read by Debug")]
        struct Spec {
            secrets: Vec<Secret>,
            redactor: Redactor,
        }
        let secrets = vec![secret("TOKEN", TOKEN)];
        let spec = Spec {
            redactor: Redactor::new(&secrets),
            secrets,
        };
        let debug = format!("{:?} {:#?}", spec.secrets[0], spec);
        assert!(debug
            .contains(r#"Secret { name: "TOKEN", delivery: Env, value: <redacted, 19 bytes> }"#));
        assert!(
            !debug.contains(TOKEN) && !debug.contains(&STANDARD.encode(TOKEN)),
            "{debug}"
        );
    }

    #[test]
    fn resolve_reads_env_and_file_sources() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "a\0b").unwrap();
        let from = format!("file:{}", path.display());
        let secret = Secret::resolve("KEY", &from, "file:/run/secrets/key").unwrap();
        assert_eq!(
            (secret.value(), &secret.delivery),
            (&b"a\0b"[..], &Delivery::File("/run/secrets/key".into()))
        );
        let path_var = std::env::var_os("PATH").unwrap().into_vec();
        assert_eq!(Secret::from_flag("P=env:PATH").unwrap().value(), path_var);
        assert_eq!(Secret::from_flag("PATH").unwrap().delivery, Delivery::Env);
        assert!(Secret::resolve("KEY", &from, "env")
            .unwrap_err()
            .to_string()
            .contains("NUL"));
    }

    #[test]
    fn resolve_errors_name_the_secret_and_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let empty = format!("file:{}", empty.display());
        let missing = format!("file:{}", dir.path().join("missing").display());
        let cases = [
            ("env:SANDBOX_TEST_SURELY_UNSET_7F3A", "env", "is not set"),
            (&missing, "env", "No such file"),
            (&empty, "env", "is empty"),
            ("vault:x", "env", "use `env:VAR` or `file:PATH`"),
        ];
        for (from, deliver_as, why) in cases {
            let message = Secret::resolve("MY_TOKEN", from, deliver_as)
                .unwrap_err()
                .to_string();
            let source = from.trim_start_matches("file:").trim_start_matches("env:");
            assert!(
                message.contains("MY_TOKEN") && message.contains(source),
                "{message}"
            );
            assert!(message.contains(why), "{message}");
        }
        for deliver_as in [
            "file:run/x",
            "file:/",
            "file:/a/../b",
            "file:/a/./b",
            "file:/a/",
            "tmpfs",
        ] {
            let message = Secret::resolve("MY_TOKEN", "env:PATH", deliver_as)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("MY_TOKEN") && message.contains(deliver_as),
                "{message}"
            );
        }
        assert!(matches!(
            Secret::from_flag("9X"),
            Err(SecretError::BadName { .. })
        ));
    }
}
