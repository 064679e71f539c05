//! The `secret-scan` gate: credentials committed to the workspace. A finding names the kind
//! and shows only the first four characters of the value, so the report does not leak what
//! it found; its baseline fingerprint lets a team accept a known, revoked or fake value.

use std::collections::BTreeSet;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::secret_rules::{Hit, Rules};
use super::walk::{self, WalkedFile};
use super::{Lines, Workspace};
use crate::finding::{Finding, Severity};
use crate::parsers::{ParseError, Parsed};

/// Larger files are data or build output, not where a person pastes a token.
const MAX_SCANNED_BYTES: u64 = 1 << 20;
/// A NUL byte in the first block marks a binary file, as git decides it.
const BINARY_SNIFF_BYTES: usize = 8000;
/// On the line of a finding, accepts it.
const ALLOW_MARKER: &str = "sandbox:allow-secret";
const FINGERPRINT_TAG: &str = "[baseline fingerprint ";

/// The `secret-scan` gate's table in `sandbox.toml` (less the keys every gate has).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretScanConfig {
    /// A baseline file (relative to the workspace) of accepted findings; it must exist.
    #[serde(default)]
    pub baseline: Option<String>,
    /// Bits per character above which an assigned `password`/`secret`/`token`/`api_key`
    /// string counts as a secret. Random base64 is near 6, hex near 4, English near 3.
    #[serde(default = "default_entropy_threshold")]
    pub entropy_threshold: f64,
    /// Shorter assigned strings are never generic secrets.
    #[serde(default = "default_min_length")]
    pub min_length: usize,
    /// Globs of files not to scan (fixtures of fake credentials, say).
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_entropy_threshold() -> f64 {
    3.5
}

fn default_min_length() -> usize {
    16
}

impl Default for SecretScanConfig {
    fn default() -> Self {
        SecretScanConfig {
            baseline: None,
            entropy_threshold: default_entropy_threshold(),
            min_length: default_min_length(),
            exclude: Vec::new(),
        }
    }
}

/// Accepted findings: `{ "version": 1, "fingerprints": ["…"] }`, each fingerprint the one a
/// finding's message shows (see `Baseline::fingerprint`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    pub fingerprints: BTreeSet<String>,
}

impl Baseline {
    pub const VERSION: u32 = 1;

    pub fn load(path: &Path) -> Result<Baseline, ParseError> {
        let text = fs_err::read_to_string(path).map_err(|e| {
            ParseError::ToolFailed(format!(
                "secret-scan baseline: {e} (create it with {{\"version\": 1, \"fingerprints\": []}})"
            ))
        })?;
        let baseline: Baseline = serde_json::from_str(&text).map_err(|e| {
            ParseError::ToolFailed(format!("secret-scan baseline {}: {e}", path.display()))
        })?;
        if baseline.version != Baseline::VERSION {
            return Err(ParseError::ToolFailed(format!(
                "secret-scan baseline {}: version {} is not {}",
                path.display(),
                baseline.version,
                Baseline::VERSION
            )));
        }
        Ok(baseline)
    }

    /// blake3 of the rule, the path and the secret itself: the same value in the same file
    /// keeps its fingerprint when lines move, and a new value there gets a new one.
    pub fn fingerprint(rule: &str, path: &str, value: &str) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [rule, path, value] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().to_hex()[..32].to_owned()
    }

    /// A baseline accepting every secret finding in `findings` (to write one for the secrets
    /// a project already lives with).
    pub fn accepting(findings: &[Finding]) -> Baseline {
        let fingerprints = findings
            .iter()
            .filter(|f| f.rule.starts_with("secret/"))
            .filter_map(|f| baseline_fingerprint(&f.message))
            .map(str::to_owned)
            .collect();
        Baseline {
            version: Baseline::VERSION,
            fingerprints,
        }
    }
}

/// The fingerprint a secret finding's message carries.
pub(crate) fn baseline_fingerprint(message: &str) -> Option<&str> {
    let start = message.rfind(FINGERPRINT_TAG)? + FINGERPRINT_TAG.len();
    message[start..].strip_suffix(']')
}

/// Runs the `secret-scan` gate over `ws`.
pub fn secret_scan(config: &SecretScanConfig, ws: &Workspace<'_>) -> Result<Parsed, ParseError> {
    let rules = Rules::new(config.entropy_threshold, config.min_length)
        .map_err(|e| ParseError::ToolFailed(format!("secret-scan rules: {e}")))?;
    let exclude = walk::glob_set(&config.exclude, "exclude")?;
    let baseline = match &config.baseline {
        Some(path) => Baseline::load(&ws.root.join(path))?,
        None => Baseline::default(),
    };
    let mut parsed = Parsed::default();
    let mut counts = Counts::default();
    for file in walk::files_and_tracked(ws.root, ws.paths)? {
        if exclude.is_match(&file.rel) {
            continue;
        }
        scan_file(&rules, &baseline, &file, &mut counts, &mut parsed.findings)?;
    }
    for (name, value) in [
        ("files_scanned", counts.scanned),
        ("files_skipped", counts.skipped),
        ("baselined", counts.baselined),
        ("allowed_inline", counts.allowed_inline),
    ] {
        parsed.metrics.insert(name.to_owned(), value as f64);
    }
    Ok(parsed)
}

#[derive(Default)]
struct Counts {
    scanned: u64,
    skipped: u64,
    baselined: u64,
    allowed_inline: u64,
}

fn scan_file(
    rules: &Rules,
    baseline: &Baseline,
    file: &WalkedFile,
    counts: &mut Counts,
    findings: &mut Vec<Finding>,
) -> Result<(), ParseError> {
    if file.size > MAX_SCANNED_BYTES {
        counts.skipped += 1;
        return Ok(());
    }
    let bytes = fs_err::read(&file.path).map_err(|e| ParseError::ToolFailed(e.to_string()))?;
    if bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0) {
        counts.skipped += 1;
        return Ok(());
    }
    counts.scanned += 1;
    let text = String::from_utf8_lossy(&bytes);
    let lines = Lines::new(&text);
    // The lines that carry the marker, found in one pass: asking each finding's line would
    // read a long line once per finding on it.
    let allowed: BTreeSet<u32> = text
        .match_indices(ALLOW_MARKER)
        .map(|(at, _)| lines.position(at).0)
        .collect();
    for hit in rules.scan(&text) {
        let rule = format!("secret/{}", hit.kind);
        let fingerprint = Baseline::fingerprint(&rule, &file.rel, &hit.value);
        if baseline.fingerprints.contains(&fingerprint) {
            counts.baselined += 1;
            continue;
        }
        let (line, column) = lines.position(hit.start);
        if allowed.contains(&line) {
            counts.allowed_inline += 1;
            continue;
        }
        let (end_line, end_column) = lines.position(hit.end);
        findings.push(
            Finding::new(rule, Severity::Error, message(&hit, &fingerprint))
                .at(&file.rel, Some(line), Some(column))
                .ending(Some(end_line), Some(end_column)),
        );
    }
    Ok(())
}

/// `GitHub token ghp_… [baseline fingerprint …]`: never the secret itself.
fn message(hit: &Hit, fingerprint: &str) -> String {
    let shown: String = hit.value.chars().take(4).collect();
    format!("{} `{shown}…` {FINGERPRINT_TAG}{fingerprint}]", hit.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_masks_the_value_and_carries_the_fingerprint() {
        let value = ["ghp_", &"a1B2".repeat(9)].concat();
        let hit = Hit {
            kind: "github-token",
            label: "GitHub token",
            start: 0,
            end: value.len(),
            value: value.clone(),
        };
        let fingerprint = Baseline::fingerprint("secret/github-token", "a.txt", &value);
        let text = message(&hit, &fingerprint);
        assert!(!text.contains(&value[4..8]), "{text}");
        assert!(text.starts_with("GitHub token `ghp_…`"), "{text}");
        assert_eq!(baseline_fingerprint(&text), Some(fingerprint.as_str()));
    }

    #[test]
    fn the_config_defaults_and_refuses_unknown_keys() {
        let config: SecretScanConfig = toml::from_str("baseline = \"b.json\"").unwrap();
        assert_eq!(config.min_length, 16);
        assert!(toml::from_str::<SecretScanConfig>("basline = \"b.json\"").is_err());
    }
}
