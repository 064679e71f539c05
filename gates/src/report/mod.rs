//! Report writers: one Verdict, rendered for whoever reads it — JSON for an orchestrator, SARIF
//! for code scanning, JUnit XML for CI test views, GitHub workflow commands, Markdown for a step
//! summary, one self-contained HTML page, and the terminal's text. Rendering is pure: it returns
//! a string; `write_file` puts one in place atomically.

mod github;
mod html;
mod junit;
mod markdown;
mod sarif;
mod text;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sandbox_runtime::secrets::Redactor;

use crate::cache::Cache;
use crate::config::ProjectConfig;
use crate::finding::Finding;
use crate::redact::{self, RedactError};
use crate::runner::NOT_SELECTED;
use crate::verdict::{GateResult, GateStatus, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Sarif,
    Junit,
    Github,
    Markdown,
    Html,
    Text,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Json,
        Format::Sarif,
        Format::Junit,
        Format::Github,
        Format::Markdown,
        Format::Html,
        Format::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Github => "github",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Text => "text",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = ReportError;

    fn from_str(name: &str) -> Result<Format, ReportError> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| ReportError::UnknownFormat(name.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "unknown report format `{0}`; the formats are json, sarif, junit, github, markdown, \
         html and text"
    )]
    UnknownFormat(String),
    #[error("serialising the {format} report")]
    Json {
        format: Format,
        #[source]
        source: serde_json::Error,
    },
    #[error("redacting the secrets from the Verdict")]
    Redacting(#[from] RedactError),
    #[error("writing the JUnit XML")]
    Xml(#[source] std::io::Error),
    #[error("writing the report {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a renderer needs beyond the Verdict.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The tree the findings' paths are relative to, for the HTML page's source lines; `None`
    /// when that tree is gone (a `check` whose changes were not written back).
    pub workspace: Option<PathBuf>,
    /// The tool behind each gate, by gate name.
    pub tools: BTreeMap<String, Tool>,
    /// ANSI colour in the text view.
    pub colour: bool,
    /// The secrets the caller knows of (`check`'s job, `gate --secret`): none of their values
    /// may reach a report.
    pub redactor: Redactor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// The preset or built-in (`ruff`, `policy`), else the gate's own name.
    pub name: String,
    pub version: Option<String>,
}

/// The tool behind each gate of `config`, with the version a gate's cache key asked for during
/// this run (asking again would cost a process per tool).
pub fn tools(config: &ProjectConfig, cache: Option<&Cache>) -> BTreeMap<String, Tool> {
    config
        .gates
        .iter()
        .map(|gate| {
            let version = cache
                .filter(|_| !gate.version.is_empty())
                .and_then(|cache| cache.known_version(&gate.version))
                .and_then(|printed| version_number(&printed));
            let tool = Tool {
                name: gate.uses.clone().unwrap_or_else(|| gate.name.clone()),
                version,
            };
            (gate.name.clone(), tool)
        })
        .collect()
}

/// `ruff 0.6.9` -> `0.6.9`, `mypy 1.11.2 (compiled: yes)` -> `1.11.2`: the first word of the
/// first line that starts with a digit, else that whole line.
fn version_number(printed: &str) -> Option<String> {
    let line = printed.lines().find(|line| !line.trim().is_empty())?.trim();
    let number = line
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(line);
    Some(number.to_owned())
}

/// `verdict` as `format`, with every secret of `context` redacted: a finding quotes the line it
/// found, and a job under judgment can write its secret into one (issue 15). The Verdict is
/// redacted before rendering, where each value is still plain text and not yet escaped for the
/// format; the rendered text once more, for what a renderer reads besides the Verdict (the HTML
/// page's source lines, the tools' versions).
pub fn render(format: Format, verdict: &Verdict, context: &Context) -> Result<String, ReportError> {
    let redacted = redact::redacted(verdict, &context.redactor)?;
    let text = render_as(format, redacted.as_ref().unwrap_or(verdict), context)?;
    Ok(context.redactor.redact_str(&text).0)
}

fn render_as(format: Format, verdict: &Verdict, context: &Context) -> Result<String, ReportError> {
    match format {
        Format::Json => pretty(verdict, format),
        Format::Sarif => pretty(&sarif::render(verdict, context), format),
        Format::Junit => junit::render(verdict).map_err(ReportError::Xml),
        Format::Github => Ok(github::render(verdict)),
        Format::Markdown => Ok(markdown::render(verdict)),
        Format::Html => Ok(html::render(verdict, context)),
        Format::Text => Ok(text::render(verdict, context)),
    }
}

fn pretty(value: &impl serde::Serialize, format: Format) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|source| ReportError::Json { format, source })?;
    text.push('\n');
    Ok(text)
}

/// Writes `text` to `path` through a temporary file in the same directory, renamed over it: a
/// reader (a CI upload step, a browser) never sees half a report.
pub fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".sandbox-report-")
        // Readable like any file the user writes, not tempfile's 0600.
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.persist(path).map_err(|error| failed(error.error))?;
    Ok(())
}

/// Whether a human view lists the gate: one left out by `--only`/`--skip` is noise there.
pub(crate) fn shown(gate: &GateResult) -> bool {
    !(gate.status == GateStatus::Skipped && gate.reason.as_deref() == Some(NOT_SELECTED))
}

/// Every finding, the most severe first, in gate order within a severity.
pub(crate) fn worst_first(verdict: &Verdict) -> Vec<&Finding> {
    let mut findings: Vec<&Finding> = verdict.gates.iter().flat_map(|g| &g.findings).collect();
    findings.sort_by_key(|finding| finding.severity);
    findings
}

/// `path:line`, `path` or nothing.
pub(crate) fn place(finding: &Finding) -> String {
    match (&finding.path, finding.line) {
        (Some(path), Some(line)) => format!("{path}:{line}"),
        (Some(path), None) => path.clone(),
        _ => String::new(),
    }
}

/// What a `--fix` did, in words: `written back, 2 file(s) changed`. Each format adds the gate
/// and the reason in its own escaping.
pub(crate) fn fix_outcome(fix: &crate::fix::FixResult) -> String {
    format!(
        "{}, {} file(s) changed",
        if fix.committed {
            "written back"
        } else {
            "not written back"
        },
        fix.changed.len()
    )
}

/// Tool text on one line: messages spanning lines (mypy's notes) are joined, control
/// characters (a terminal escape in a message) become spaces, and bidi controls are shown.
pub(crate) fn one_line(text: &str) -> String {
    let joined = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    show_bidi(&joined)
}

/// Whether `c` is one of Unicode's bidirectional controls: the embeddings, overrides and
/// isolates and the implicit marks. They make a line display in another order than the one it
/// is read in (Trojan Source, CVE-2021-42574): a finding's message or a quoted source line
/// could show a reviewer something else than what the code does.
pub(crate) fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `text` with each bidi control written out as `<U+202E>`, for the views people read (text,
/// Markdown, GitHub annotations; HTML does the same in its own escaping).
pub(crate) fn show_bidi(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if is_bidi(c) {
            shown.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            shown.push(c);
        }
    }
    shown
}

/// `84.2`, `90`, `0.35`: two decimals at most, no trailing zeros.
pub(crate) fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// A gate's time, or `cached` (a cached gate's time is reading the cache, which says nothing).
pub(crate) fn time(gate: &GateResult) -> String {
    if gate.cached {
        "cached".to_owned()
    } else if gate.duration_ms < 1000.0 {
        format!("{:.0}ms", gate.duration_ms)
    } else {
        format!("{:.1}s", gate.duration_ms / 1000.0)
    }
}

/// One metric of a gate and the bounds its threshold sets.
pub(crate) struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Metric<'_> {
    pub fn missed(&self) -> bool {
        self.min.is_some_and(|min| self.value < min) || self.max.is_some_and(|max| self.value > max)
    }
}

impl std::fmt::Display for Metric<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, number(self.value))?;
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, " (min {}, max {})", number(min), number(max)),
            (Some(min), None) => write!(f, " (min {})", number(min)),
            (None, Some(max)) => write!(f, " (max {})", number(max)),
            (None, None) => Ok(()),
        }
    }
}

pub(crate) fn metrics(gate: &GateResult) -> Vec<Metric<'_>> {
    gate.metrics
        .iter()
        .map(|(name, value)| Metric {
            name,
            value: *value,
            min: gate.threshold.min.get(name).copied(),
            max: gate.threshold.max.get(name).copied(),
        })
        .collect()
}

/// The job's Outcome (`sandbox check`) in one sentence.
pub(crate) fn job_line(job: &serde_json::Value) -> String {
    let limits: Vec<&str> = job["limits_hit"]
        .as_array()
        .map(|limits| limits.iter().filter_map(|l| l.as_str()).collect())
        .unwrap_or_default();
    let changed = |key: &str| job["workspace"][key].as_array().map_or(0, Vec::len);
    format!(
        "{} (exit {}), limits hit: {}, changes ({} added, {} modified, {} deleted) written back: {}",
        job["status"].as_str().unwrap_or("unknown"),
        job["exit_code"],
        if limits.is_empty() {
            "none".to_owned()
        } else {
            limits.join(", ")
        },
        changed("added"),
        changed("modified"),
        changed("deleted"),
        if job["workspace"]["committed"] == true {
            "yes"
        } else {
            "no"
        }
    )
}

/// What `sandbox` ran: `sandbox check` when the Verdict has a job.
pub(crate) fn title(verdict: &Verdict) -> &'static str {
    if verdict.job.is_some() {
        "sandbox check"
    } else {
        "sandbox gate"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::BTreeMap;

    use super::*;
    use crate::coverage::FileCoverage;
    use crate::finding::Severity;
    use crate::presets::GateKind;
    use crate::verdict::{GateResult, Threshold, VerdictStatus};

    pub fn gate(name: &str, kind: GateKind, status: GateStatus) -> GateResult {
        GateResult {
            name: name.into(),
            kind,
            status,
            cached: false,
            duration_ms: 1234.0,
            metrics: BTreeMap::new(),
            threshold: Threshold {
                min: BTreeMap::new(),
                max: BTreeMap::new(),
            },
            findings: Vec::new(),
            coverage: Vec::new(),
            reason: None,
            outcome: None,
        }
    }

    pub fn finding(gate: &str, rule: &str, severity: Severity, message: &str) -> Finding {
        let mut finding = Finding::new(rule, severity, message);
        finding.seal(gate);
        finding
    }

    /// A Verdict with one gate of each status: findings with hostile text, a missed coverage
    /// threshold, a crashed tool, a gate the job's failure skipped and one `--skip` left out.
    pub fn verdict() -> Verdict {
        let mut lint = gate("lint", GateKind::Lint, GateStatus::Fail);
        lint.findings = vec![
            finding("lint", "F401", Severity::Error, "`os` imported but unused")
                .at("src/a&b.py", Some(1), Some(8))
                .ending(Some(1), Some(10)),
            finding(
                "lint",
                "XSS",
                Severity::Warning,
                "<script>alert(1)</script>",
            )
            .at("src/a&b.py", Some(3), None),
            finding("lint", "E,1", Severity::Note, "50% done: a, b\nnote: c\r").at(
                "dir,x/c:d.py",
                Some(2),
                Some(1),
            ),
            finding("lint", "global", Severity::Warning, "no place at all"),
        ];
        lint.reason = Some("3 finding(s)".into());
        let mut coverage = gate("coverage", GateKind::Coverage, GateStatus::Fail);
        coverage.cached = true;
        coverage.duration_ms = 0.2;
        coverage.metrics.insert("line_percent".into(), 84.25);
        coverage.threshold.min.insert("line_percent".into(), 90.0);
        coverage.reason = Some("line_percent 84.25 is below the minimum 90".into());
        coverage.coverage = vec![FileCoverage {
            path: "src/a&b.py".into(),
            covered_lines: vec![1, 2],
            missing_lines: vec![3, 4, 5, 9],
        }];
        let mut crashed = gate("types", GateKind::Types, GateStatus::Error);
        crashed.reason = Some("`mypy` crashed: Traceback, line 3".into());
        let mut skipped = gate("tests", GateKind::Test, GateStatus::Skipped);
        skipped.reason = Some("the job did not succeed".into());
        let mut unselected = gate("slow", GateKind::Custom, GateStatus::Skipped);
        unselected.reason = Some(NOT_SELECTED.into());
        let passes = gate("fmt", GateKind::Format, GateStatus::Pass);
        Verdict::new(
            vec![lint, coverage, crashed, skipped, unselected, passes],
            2140.0,
            None,
        )
    }

    pub fn context() -> Context {
        Context {
            workspace: None,
            tools: BTreeMap::from([(
                "lint".to_owned(),
                Tool {
                    name: "ruff".into(),
                    version: Some("0.6.9".into()),
                },
            )]),
            colour: false,
            redactor: Redactor::default(),
        }
    }

    #[test]
    fn formats_parse_by_name_and_an_unknown_one_lists_them() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>().unwrap(), format);
        }
        let error = "sariff".parse::<Format>().unwrap_err().to_string();
        assert!(error.contains("`sariff`"), "{error}");
        assert!(error.contains("sarif, junit"), "{error}");
    }

    #[test]
    fn the_words_are_the_ones_the_json_uses() {
        let json = |value: serde_json::Value| value.as_str().unwrap_or("").to_owned();
        for status in [
            GateStatus::Pass,
            GateStatus::Fail,
            GateStatus::Error,
            GateStatus::Skipped,
        ] {
            assert_eq!(status.as_str(), json(serde_json::json!(status)));
        }
        for status in [
            VerdictStatus::Pass,
            VerdictStatus::Fail,
            VerdictStatus::Error,
        ] {
            assert_eq!(status.as_str(), json(serde_json::json!(status)));
        }
        for severity in [Severity::Error, Severity::Warning, Severity::Note] {
            assert_eq!(severity.as_str(), json(serde_json::json!(severity)));
        }
        for kind in [
            GateKind::Lint,
            GateKind::Types,
            GateKind::Security,
            GateKind::Test,
            GateKind::Coverage,
            GateKind::Format,
            GateKind::Policy,
            GateKind::Secrets,
            GateKind::Custom,
        ] {
            assert_eq!(kind.as_str(), json(serde_json::json!(kind)));
        }
    }

    #[test]
    fn json_is_the_verdict_itself() {
        let verdict = verdict();
        let text = render(Format::Json, &verdict, &context()).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, serde_json::to_value(&verdict).unwrap());
        // The JSON keeps the gates the human views leave out.
        assert!(text.contains(NOT_SELECTED));
    }

    /// A value with what each format escapes (`&<>"'` for HTML and XML, `%,:` for GitHub, `|`
    /// and `*` for Markdown, `"` and `\` for JSON): were a format's escaped text redacted, its
    /// escaped value would slip through. The letters between them are what no escaping changes.
    #[test]
    fn no_format_shows_a_secret_a_finding_quotes() {
        const VALUE: &str = r#"Zq7xK&<Wq9vB"'Jm4tR|%,Hy6pL:*\Nc2sD"#;
        let workspace = tempfile::tempdir().unwrap();
        std::fs::create_dir(workspace.path().join("src")).unwrap();
        let source = format!("import os\nkey = '{VALUE}'\nprint(1)\n");
        std::fs::write(workspace.path().join("src/a&b.py"), source).unwrap();
        let mut verdict = verdict();
        verdict.gates[0].findings[1].message = format!("hard-coded key {VALUE} here");
        verdict.gates[0].findings[1].line = Some(2);
        let context = Context {
            workspace: Some(workspace.path().to_owned()),
            redactor: crate::redact::tests::redactor(VALUE),
            ..context()
        };
        for format in Format::ALL {
            let text = render(format, &verdict, &context).unwrap();
            for part in ["Zq7xK", "Wq9vB", "Jm4tR", "Hy6pL", "Nc2sD"] {
                assert!(!text.contains(part), "{format} shows {part}: {text}");
            }
            assert!(text.contains("REDACTED:PW"), "{format}: {text}");
        }
        let html = render(Format::Html, &verdict, &context).unwrap();
        assert!(html.contains("key = &#39;[REDACTED:PW]&#39;"), "{html}");
    }

    #[test]
    fn version_numbers_are_read_from_what_the_tool_printed() {
        assert_eq!(version_number("ruff 0.6.9\n").as_deref(), Some("0.6.9"));
        assert_eq!(
            version_number("mypy 1.11.2 (compiled: yes)\n").as_deref(),
            Some("1.11.2")
        );
        assert_eq!(version_number("\nnightly\n").as_deref(), Some("nightly"));
        assert_eq!(version_number(" \n"), None);
    }

    #[test]
    fn write_file_replaces_the_file_whole_and_names_the_path_it_could_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sarif");
        write_file(&path, "old").unwrap();
        write_file(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "the temporary file was left behind");
        let missing = dir.path().join("no/such/dir/r.html");
        let error = write_file(&missing, "x").unwrap_err().to_string();
        assert!(error.contains("no/such/dir/r.html"), "{error}");
    }

    #[test]
    fn one_line_joins_lines_and_drops_terminal_escapes() {
        assert_eq!(one_line("a\n  note: b\r\n"), "a note: b");
        assert_eq!(one_line("red \x1b[31mtext"), "red [31mtext");
    }

    /// Every bidi control. Trojan Source hid code with them: `"user\u{202E} \u{2066}// Check if
    /// admin\u{2069} \u{2066}"` displays as a comment but is a string.
    const BIDI: [char; 12] = [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
    ];

    #[test]
    fn bidi_controls_are_shown_and_nothing_else_is_touched() {
        let text: String = BIDI.iter().collect();
        assert_eq!(
            show_bidi(&text),
            "<U+202A><U+202B><U+202C><U+202D><U+202E><U+2066><U+2067><U+2068><U+2069>\
             <U+200E><U+200F><U+061C>"
        );
        assert_eq!(one_line("if x\u{202E} {\n}"), "if x<U+202E> { }");
        let plain = "Grüße, שלום, مرحبا \u{200B} \u{FEFF} <U+202E>";
        assert_eq!(show_bidi(plain), plain);
    }

    /// Text, Markdown and GitHub annotations show each bidi control of a message, a path and a
    /// gate name; HTML too, in its escaping; none is left in any of them.
    #[test]
    fn no_human_view_passes_a_bidi_control_through() {
        let mut verdict = verdict();
        let trojan = format!("is_admin{}{}// admin only", BIDI[4], BIDI[5]);
        verdict.gates[0].findings[0].message = trojan.clone();
        verdict.gates[0].findings[0].path = Some(format!("src/{}a.py", BIDI[9]));
        let mut context = context();
        for format in [Format::Text, Format::Markdown, Format::Github, Format::Html] {
            let text = render(format, &verdict, &context).unwrap();
            assert!(!text.contains(is_bidi), "{format}: {text:?}");
            assert!(
                text.contains("U+202E") && text.contains("U+200E"),
                "{format}: {text}"
            );
        }
        let html_source = tempfile::tempdir().unwrap();
        std::fs::create_dir(html_source.path().join("src")).unwrap();
        let source = format!("import os\nif {trojan}:\n");
        std::fs::write(html_source.path().join("src/a&b.py"), source).unwrap();
        context.workspace = Some(html_source.path().to_owned());
        let html = render(Format::Html, &verdict, &context).unwrap();
        assert!(
            html.contains("if is_admin&lt;U+202E&gt;&lt;U+2066&gt;// admin"),
            "{html}"
        );
        assert!(!html.contains(is_bidi), "{html}");
    }
}
