//! Rust's own tools: clippy's JSON diagnostics, rustfmt's `--check` diff and `cargo test`'s
//! text report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::generic::{strip_ansi, with_output};
use super::{relative_path, ParseError, Parsed, ToolRun};
use crate::finding::{Finding, Severity};

/// How many lines of a diff hunk or a panic message a finding quotes.
const QUOTED_LINES: usize = 12;

/// One line of `cargo ... --message-format=json`; only the fields a gate uses.
#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    message: Option<Diagnostic>,
    success: Option<bool>,
}

#[derive(Deserialize)]
struct Diagnostic {
    message: String,
    code: Option<DiagnosticCode>,
    level: String,
    #[serde(default)]
    spans: Vec<Span>,
    #[serde(default)]
    children: Vec<Diagnostic>,
    rendered: Option<String>,
}

#[derive(Deserialize)]
struct DiagnosticCode {
    code: String,
}

#[derive(Deserialize)]
struct Span {
    file_name: String,
    line_start: u32,
    line_end: u32,
    column_start: u32,
    column_end: u32,
    is_primary: bool,
    suggestion_applicability: Option<String>,
    expansion: Option<Box<Expansion>>,
}

#[derive(Deserialize)]
struct Expansion {
    span: Span,
}

/// `cargo clippy --message-format=json`: one finding per lint (clippy's and rustc's), at its
/// primary span. Cargo reports a lint once per target that compiles the file (the lib and its
/// test harness), so identical findings are merged. Code that does not compile (rustc errors
/// such as E0308, a broken manifest) could not be linted: that is the tool failing, not a
/// finding.
pub fn clippy(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = run.exit_code.ok_or_else(|| {
        ParseError::ToolFailed(with_output("cargo clippy was killed by a signal", run))
    })?;
    let mut parsed = Parsed::default();
    let mut seen = BTreeSet::new();
    let mut build_succeeded = None;
    let mut compile_error = None;
    for (number, line) in run.stdout.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let message: CargoMessage = serde_json::from_str(line).map_err(|error| {
            ParseError::unreadable(
                "clippy",
                format!(
                    "stdout line {} is not a cargo JSON message: {error}",
                    number + 1
                ),
            )
        })?;
        match message.reason.as_str() {
            "build-finished" => build_succeeded = message.success,
            "compiler-message" => {
                let Some(diagnostic) = message.message else {
                    continue;
                };
                if is_compile_error(&diagnostic) {
                    compile_error.get_or_insert_with(|| {
                        diagnostic
                            .rendered
                            .clone()
                            .unwrap_or_else(|| diagnostic.message.clone())
                    });
                    continue;
                }
                let Some(finding) = lint_finding(run, &diagnostic) else {
                    continue;
                };
                let key = (
                    finding.rule.clone(),
                    finding.path.clone(),
                    finding.line,
                    finding.column,
                    finding.message.clone(),
                );
                if seen.insert(key) {
                    parsed.findings.push(finding);
                }
            }
            _ => {}
        }
    }
    if let Some(error) = compile_error {
        return Err(ParseError::ToolFailed(format!(
            "the code does not compile, so clippy could not check it:\n{}",
            strip_ansi(error.trim_end())
        )));
    }
    let lints_failed_the_build = parsed
        .findings
        .iter()
        .any(|finding| finding.severity == Severity::Error);
    if code != 0 && !lints_failed_the_build {
        return Err(ParseError::ToolFailed(with_output(
            &format!("cargo clippy exited with {code} without reporting a lint error"),
            run,
        )));
    }
    if build_succeeded.is_none() {
        return Err(ParseError::unreadable(
            "clippy",
            "no `build-finished` message: is this `cargo clippy --message-format=json`?",
        ));
    }
    Ok(parsed)
}

/// rustc's errors that are not lints: the type errors (`E0308`), unresolved names, and the
/// code-less ones (`expected one of ...`), apart from the closing `aborting due to` line that
/// also follows lints denied with `-D`.
fn is_compile_error(diagnostic: &Diagnostic) -> bool {
    if diagnostic.level != "error" && diagnostic.level != "error: internal compiler error" {
        return false;
    }
    match &diagnostic.code {
        Some(code) => {
            let code = code.code.as_bytes();
            code.len() == 5 && code[0] == b'E' && code[1..].iter().all(u8::is_ascii_digit)
        }
        None => !diagnostic.message.starts_with("aborting due to"),
    }
}

fn lint_finding(run: &ToolRun<'_>, diagnostic: &Diagnostic) -> Option<Finding> {
    let rule = &diagnostic.code.as_ref()?.code;
    let severity = match diagnostic.level.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "note" | "help" => Severity::Note,
        // `failure-note` and anything newer: not a finding of its own.
        _ => return None,
    };
    let mut finding = Finding::new(rule.as_str(), severity, diagnostic.message.as_str())
        .fixable(machine_applicable(diagnostic));
    if let Some(span) = diagnostic.spans.iter().find(|span| span.is_primary) {
        let span = call_site(run, span);
        finding = finding
            .at(
                relative_path(run, &span.file_name),
                Some(span.line_start),
                Some(span.column_start),
            )
            .ending(Some(span.line_end), Some(span.column_end));
    }
    Some(finding)
}

/// Where in the workspace a span from a macro expansion was written: a lint inside a macro of
/// the standard library or of a dependency is reported at the macro's definition, a file the
/// user cannot change, so the outermost call site is the useful place.
fn call_site<'a>(run: &ToolRun<'_>, mut span: &'a Span) -> &'a Span {
    while let Some(expansion) = &span.expansion {
        let file = &span.file_name;
        let outside = file.starts_with('<') || relative_path(run, file).starts_with('/');
        if !outside {
            break;
        }
        span = &expansion.span;
    }
    span
}

/// Whether `cargo clippy --fix` would apply a suggestion of this diagnostic: it applies only
/// machine-applicable ones.
fn machine_applicable(diagnostic: &Diagnostic) -> bool {
    let own = diagnostic
        .spans
        .iter()
        .any(|span| span.suggestion_applicability.as_deref() == Some("MachineApplicable"));
    own || diagnostic.children.iter().any(machine_applicable)
}

static DIFF_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    // rustfmt 1.x says `Diff in PATH at line N:`, current ones `Diff in PATH:N:`.
    Regex::new(r"^Diff in (?P<path>.+?)(?: at line (?P<old>\d+)|:(?P<new>\d+)):$")
        .unwrap_or_else(|error| unreachable!("a fixed regex: {error}"))
});

/// `cargo fmt --check` / `rustfmt --check`: one fixable finding per diff hunk, on the lines the
/// hunk replaces. Exit 0 is clean, 1 with diffs is findings; rustfmt also exits 1 when it cannot
/// parse a file (an `error` on stderr), which is the tool failing, as is any other exit.
pub fn rustfmt(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = run.exit_code.ok_or_else(|| {
        ParseError::ToolFailed(with_output("rustfmt was killed by a signal", run))
    })?;
    let stderr = strip_ansi(run.stderr);
    if code != 0 && code != 1
        || stderr
            .lines()
            .any(|line| line.starts_with("error") || line.starts_with("Error"))
    {
        return Err(ParseError::ToolFailed(with_output(
            &format!("rustfmt exited with {code}"),
            run,
        )));
    }
    let stdout = strip_ansi(run.stdout);
    let mut parsed = Parsed::default();
    let mut hunk: Option<Hunk> = None;
    for line in stdout.lines() {
        if let Some(header) = DIFF_HEADER.captures(line) {
            if let Some(done) = hunk.take() {
                parsed.findings.push(done.finding());
            }
            let start = header
                .name("old")
                .or_else(|| header.name("new"))
                .and_then(|number| number.as_str().parse().ok())
                .unwrap_or(1);
            hunk = Some(Hunk {
                path: relative_path(run, &header["path"]),
                start,
                old_lines: 0,
                changes: Vec::new(),
            });
        } else if let Some(hunk) = hunk.as_mut() {
            if !line.starts_with('+') {
                hunk.old_lines += 1;
            }
            if (line.starts_with('+') || line.starts_with('-')) && hunk.changes.len() < QUOTED_LINES
            {
                hunk.changes.push(line.to_owned());
            }
        } else if !line.trim().is_empty() {
            return Err(ParseError::unreadable(
                "rustfmt",
                format!("expected `Diff in PATH:LINE:`, found {line:?}"),
            ));
        }
    }
    if let Some(done) = hunk {
        parsed.findings.push(done.finding());
    }
    if code == 1 && parsed.findings.is_empty() {
        return Err(ParseError::ToolFailed(with_output(
            "rustfmt exited with 1 but printed no diff",
            run,
        )));
    }
    Ok(parsed)
}

struct Hunk {
    path: String,
    start: u32,
    /// Context and removed lines: how much of the file the hunk covers.
    old_lines: u32,
    changes: Vec<String>,
}

impl Hunk {
    fn finding(self) -> Finding {
        // The changed lines, not the line numbers, tell two hunks of one file apart: the
        // message feeds the fingerprint, which must survive edits elsewhere in the file.
        let message = format!(
            "not formatted as rustfmt would:\n{}",
            self.changes.join("\n")
        );
        let end = self.start + self.old_lines.saturating_sub(1);
        Finding::new("rustfmt", Severity::Warning, message)
            .at(self.path, Some(self.start), None)
            .ending(Some(end), None)
            .fixable(true)
    }
}

static RUNNING: LazyLock<Regex> = LazyLock::new(|| fixed(r"^running \d+ tests?$"));
static TEST_LINE: LazyLock<Regex> =
    LazyLock::new(|| fixed(r"^test (?P<name>.+?) \.\.\. (?P<status>ok|FAILED|ignored\b.*)$"));
static SECTION: LazyLock<Regex> =
    LazyLock::new(|| fixed(r"^---- (?P<name>.+?) std(out|err) ----$"));
static RESULT: LazyLock<Regex> = LazyLock::new(|| {
    fixed(
        r"^test result: (?:ok|FAILED)\. (?P<passed>\d+) passed; (?P<failed>\d+) failed; (?P<ignored>\d+) ignored; (?P<measured>\d+) measured",
    )
});
/// `thread 'name' (id) panicked at src/lib.rs:33:9:` (Rust 1.73 and later: the message follows
/// on the next lines; the thread id since 1.90) or `thread 'name' panicked at 'message',
/// src/lib.rs:33:9` (before).
static PANIC: LazyLock<Regex> = LazyLock::new(|| {
    fixed(
        r"^thread '[^']*'(?: \(\d+\))? panicked at (?:'(?P<old_message>.*)', (?P<old_path>.+):(?P<old_line>\d+):(?P<old_column>\d+)|(?P<path>.+):(?P<line>\d+):(?P<column>\d+):)$",
    )
});

fn fixed(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|error| unreachable!("a fixed regex: {error}"))
}

/// `cargo test` (run with `--no-fail-fast`): the `test result:` lines of every test binary and
/// doc-test run summed into the metrics `tests`, `passed`, `failed` and `ignored` (also as
/// `failures` and `skipped`), and one finding per failed test, its name as the rule, at its
/// panic's location when it printed one. Code that does not
/// compile, or a test binary that dies before its summary (a segfault, an abort), is the tool
/// failing: its tests were not run.
pub fn cargo_test(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = run.exit_code.ok_or_else(|| {
        ParseError::ToolFailed(with_output("cargo test was killed by a signal", run))
    })?;
    let stderr = strip_ansi(run.stderr);
    if stderr
        .lines()
        .any(|line| line.starts_with("error: could not compile") || line.starts_with("error["))
    {
        return Err(ParseError::ToolFailed(with_output(
            "the tests do not compile",
            run,
        )));
    }
    let stdout = strip_ansi(run.stdout);
    let mut totals = [0u64; 3];
    let (mut runs, mut results) = (0, 0);
    let mut failed: Vec<String> = Vec::new();
    let mut sections: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut in_failure_list = false;
    for line in stdout.lines() {
        if let Some(result) = RESULT.captures(line) {
            results += 1;
            for (total, name) in totals.iter_mut().zip(["passed", "failed", "ignored"]) {
                *total += result[name].parse::<u64>().unwrap_or(0);
            }
            section = None;
            in_failure_list = false;
            continue;
        }
        if RUNNING.is_match(line) {
            runs += 1;
            section = None;
            continue;
        }
        if let Some(test) = TEST_LINE.captures(line) {
            if &test["status"] == "FAILED" && !failed.iter().any(|name| name == &test["name"]) {
                failed.push(test["name"].to_owned());
            }
            continue;
        }
        if let Some(header) = SECTION.captures(line) {
            section = Some(header["name"].to_owned());
            continue;
        }
        if line == "failures:" {
            // The first `failures:` opens the captured output, the second lists the names.
            in_failure_list = section.is_some();
            section = None;
            continue;
        }
        if in_failure_list {
            // `cargo test -q` prints no `test X ... FAILED` lines: the list still names them.
            let name = line.trim();
            if line.starts_with("    ") && !failed.iter().any(|known| known == name) {
                failed.push(name.to_owned());
            }
            continue;
        }
        if let Some(name) = &section {
            sections.entry(name.clone()).or_default().push(line);
        }
    }
    if results == 0 {
        if code != 0 {
            return Err(ParseError::ToolFailed(with_output(
                &format!("cargo test exited with {code} before any test result"),
                run,
            )));
        }
        return Err(ParseError::unreadable(
            "cargo_test",
            "no `test result:` line: is this `cargo test` output?",
        ));
    }
    if runs > results {
        return Err(ParseError::ToolFailed(with_output(
            "a test binary ended without its `test result:` line (crashed or was killed)",
            run,
        )));
    }
    if code != 0 && totals[1] == 0 {
        return Err(ParseError::ToolFailed(with_output(
            &format!("cargo test exited with {code} but no test failed"),
            run,
        )));
    }
    let mut parsed = Parsed::default();
    for name in failed {
        let output = sections.get(&name).map(Vec::as_slice).unwrap_or_default();
        parsed.findings.push(test_failure(run, &name, output));
    }
    let [passed, failures, ignored] = totals;
    // cargo's own words, and the names the JUnit parsers use (`failures`, `skipped`), so that
    // one threshold reads the same on a pytest gate and on a cargo test gate.
    for (metric, value) in [
        ("tests", passed + failures + ignored),
        ("passed", passed),
        ("failed", failures),
        ("ignored", ignored),
        ("failures", failures),
        ("skipped", ignored),
    ] {
        parsed.metrics.insert(metric.to_owned(), value as f64);
    }
    Ok(parsed)
}

/// A failed test as a finding: its panic message and location, or (a `should_panic` test that
/// did not, a test returning `Err`) the start of what it printed.
fn test_failure(run: &ToolRun<'_>, name: &str, output: &[&str]) -> Finding {
    let panic = output
        .iter()
        .enumerate()
        .find_map(|(index, line)| PANIC.captures(line).map(|captures| (index, captures)));
    let (detail, place) = match panic {
        Some((index, captures)) => {
            let detail = match captures.name("old_message") {
                Some(message) => message.as_str().to_owned(),
                None => output[index + 1..]
                    .iter()
                    .take_while(|line| {
                        !line.starts_with("note: ") && !line.starts_with("stack backtrace:")
                    })
                    .take(QUOTED_LINES)
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            let group = |new: &str, old: &str| captures.name(new).or_else(|| captures.name(old));
            let number = |new: &str, old: &str| {
                group(new, old).and_then(|found| found.as_str().parse::<u32>().ok())
            };
            let place = group("path", "old_path").map(|path| {
                (
                    relative_path(run, path.as_str()),
                    number("line", "old_line"),
                    number("column", "old_column"),
                )
            });
            (detail, place)
        }
        None => (
            output
                .iter()
                .filter(|line| !line.trim().is_empty() && !line.starts_with("note: run with"))
                .take(QUOTED_LINES)
                .copied()
                .collect::<Vec<_>>()
                .join("\n"),
            None,
        ),
    };
    let detail = detail.trim();
    let message = if detail.is_empty() { "failed" } else { detail };
    // The test's path is its rule, as the JUnit parsers make `classname::name` the rule.
    let finding = Finding::new(name, Severity::Error, message);
    match place {
        Some((path, line, column)) => finding.at(path, line, column),
        None => finding,
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn run<'a>(exit_code: Option<i32>, stdout: &'a str, stderr: &'a str) -> ToolRun<'a> {
        ToolRun {
            exit_code,
            stdout,
            stderr,
            ..crate::parsers::test_run("/home/dev/crate")
        }
    }

    fn lint(level: &str, code: Option<&str>, message: &str, file: &str, line: u32) -> String {
        serde_json::json!({
            "reason": "compiler-message",
            "package_id": "path+file:///workspace#x@0.1.0",
            "target": {"kind": ["lib"], "name": "x"},
            "message": {
                "message": message,
                "code": code.map(|code| serde_json::json!({"code": code, "explanation": null})),
                "level": level,
                "spans": [{
                    "file_name": file, "byte_start": 0, "byte_end": 1,
                    "line_start": line, "line_end": line, "column_start": 5, "column_end": 9,
                    "is_primary": true, "text": [], "label": null,
                    "suggested_replacement": null, "suggestion_applicability": null,
                    "expansion": null
                }],
                "children": [{
                    "message": "remove it", "code": null, "level": "help", "children": [],
                    "rendered": null,
                    "spans": [{
                        "file_name": file, "byte_start": 0, "byte_end": 1,
                        "line_start": line, "line_end": line, "column_start": 5,
                        "column_end": 9, "is_primary": true, "text": [], "label": null,
                        "suggested_replacement": "", "expansion": null,
                        "suggestion_applicability": "MachineApplicable"
                    }]
                }],
                "rendered": format!("{level}: {message}\n")
            }
        })
        .to_string()
    }

    const FINISHED_OK: &str = r#"{"reason":"build-finished","success":true}"#;
    const FINISHED_FAILED: &str = r#"{"reason":"build-finished","success":false}"#;

    #[test]
    fn clippy_dedupes_the_lib_and_test_targets() {
        let warning = lint(
            "warning",
            Some("clippy::needless_return"),
            "unneeded `return`",
            "src/lib.rs",
            7,
        );
        let stdout = format!("{warning}\n{warning}\n{FINISHED_OK}\n");
        let parsed = clippy(&run(Some(0), &stdout, "")).unwrap();
        assert_eq!(parsed.findings.len(), 1);
        let finding = &parsed.findings[0];
        assert_eq!(finding.rule, "clippy::needless_return");
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.path.as_deref(), Some("src/lib.rs"));
        assert_eq!((finding.line, finding.column), (Some(7), Some(5)));
        assert_eq!((finding.end_line, finding.end_column), (Some(7), Some(9)));
        assert!(finding.fixable);
    }

    #[test]
    fn clippy_denied_lints_are_findings_not_a_tool_failure() {
        let denied = lint(
            "error",
            Some("clippy::absurd_extreme_comparisons"),
            "absurd",
            "/workspace/src/a.rs",
            3,
        );
        let aborting = lint(
            "error",
            None,
            "aborting due to 1 previous error",
            "src/a.rs",
            1,
        );
        let stdout = format!("{denied}\n{aborting}\n{FINISHED_FAILED}\n");
        let parsed = clippy(&run(Some(101), &stdout, "error: could not compile `x`")).unwrap();
        assert_eq!(parsed.findings.len(), 1);
        assert_eq!(parsed.findings[0].severity, Severity::Error);
        assert_eq!(parsed.findings[0].path.as_deref(), Some("src/a.rs"));
    }

    #[test]
    fn clippy_compile_errors_are_a_tool_failure() {
        for (code, message) in [
            (Some("E0308"), "mismatched types"),
            (None, "expected one of `;`"),
        ] {
            let error = lint("error", code, message, "src/lib.rs", 2);
            let warning = lint(
                "warning",
                Some("unused_variables"),
                "unused",
                "src/lib.rs",
                1,
            );
            let stdout = format!("{warning}\n{error}\n{FINISHED_FAILED}\n");
            let failure = clippy(&run(Some(101), &stdout, "")).unwrap_err();
            assert!(
                matches!(&failure, ParseError::ToolFailed(why) if why.contains(message)),
                "{failure}"
            );
        }
    }

    #[test]
    fn clippy_exit_101_without_messages_is_a_tool_failure() {
        let stderr = "error: failed to parse manifest at `/workspace/Cargo.toml`\n";
        let failure = clippy(&run(Some(101), "", stderr)).unwrap_err();
        assert!(matches!(&failure, ParseError::ToolFailed(why) if why.contains("manifest")));
    }

    #[test]
    fn clippy_garbage_is_unreadable() {
        for stdout in ["warning: not json\n", "", "{\"no\": \"reason\"}\n"] {
            let error = clippy(&run(Some(0), stdout, "")).unwrap_err();
            assert!(
                matches!(error, ParseError::Unreadable { .. }),
                "{stdout:?}: {error}"
            );
        }
    }

    #[test]
    fn clippy_macro_lints_move_to_the_call_site() {
        let mut value: serde_json::Value = serde_json::from_str(&lint(
            "warning",
            Some("clippy::x"),
            "in a macro",
            "/rustc/abc/library/core/src/macros/mod.rs",
            40,
        ))
        .unwrap();
        value["message"]["spans"][0]["expansion"] = serde_json::json!({
            "span": {
                "file_name": "src/main.rs", "byte_start": 0, "byte_end": 1, "line_start": 12,
                "line_end": 12, "column_start": 5, "column_end": 20, "is_primary": false,
                "text": [], "label": null, "suggested_replacement": null,
                "suggestion_applicability": null, "expansion": null
            },
            "macro_decl_name": "assert!", "def_site_span": null
        });
        let stdout = format!("{value}\n{FINISHED_OK}\n");
        let parsed = clippy(&run(Some(0), &stdout, "")).unwrap();
        assert_eq!(parsed.findings[0].path.as_deref(), Some("src/main.rs"));
        assert_eq!(parsed.findings[0].line, Some(12));
    }

    const FMT_DIFF: &str = "Diff in /workspace/src/shapes.rs:1:\n\u{1b}[31m-pub struct Square { pub side: u32 }\n\u{1b}(B\u{1b}[m\u{1b}[32m+pub struct Square {\n+    pub side: u32,\n+}\n \n pub fn a() {}\nDiff in /home/dev/crate/src/lib.rs at line 7:\n }\n-fn  b() {}\n+fn b() {}\n";

    #[test]
    fn rustfmt_one_finding_per_hunk() {
        let parsed = rustfmt(&run(Some(1), FMT_DIFF, "")).unwrap();
        assert_eq!(parsed.findings.len(), 2);
        let first = &parsed.findings[0];
        assert_eq!(first.rule, "rustfmt");
        assert!(first.fixable);
        assert_eq!(first.path.as_deref(), Some("src/shapes.rs"));
        assert_eq!((first.line, first.end_line), (Some(1), Some(3)));
        assert!(first
            .message
            .contains("-pub struct Square { pub side: u32 }\n+pub struct Square {"));
        let second = &parsed.findings[1];
        assert_eq!(second.path.as_deref(), Some("src/lib.rs"));
        assert_eq!((second.line, second.end_line), (Some(7), Some(8)));
    }

    #[test]
    fn rustfmt_exit_codes() {
        assert!(rustfmt(&run(Some(0), "", "")).unwrap().findings.is_empty());
        let parse_error = "error: expected one of `!` or `::`, found `x`\n --> src/lib.rs:1:5\n";
        for (code, stdout, stderr) in [
            (Some(1), "", parse_error),
            (Some(1), FMT_DIFF, parse_error),
            (Some(1), "", ""),
            (Some(2), "", "unexpected argument"),
            (None, "", ""),
        ] {
            let error = rustfmt(&run(code, stdout, stderr)).unwrap_err();
            assert!(
                matches!(error, ParseError::ToolFailed(_)),
                "{code:?} {stderr:?}: {error}"
            );
        }
    }

    #[test]
    fn rustfmt_garbage_is_unreadable() {
        let error = rustfmt(&run(Some(1), "garbage\n", "")).unwrap_err();
        assert!(matches!(error, ParseError::Unreadable { .. }), "{error}");
    }

    const TEST_OUTPUT: &str = "
running 4 tests
test tests::increments ... ok
test tests::slow ... ignored, slow
test tests::old_style ... FAILED
test tests::doubles ... FAILED

failures:

---- tests::old_style stdout ----
thread 'tests::old_style' panicked at 'boom', /workspace/src/old.rs:4:5
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- tests::doubles stdout ----

thread 'tests::doubles' (6530) panicked at src/lib.rs:33:9:
assertion `left == right` failed: double is off
  left: 4
 right: 5
stack backtrace:
   0: __rustc::rust_begin_unwind

failures:
    tests::old_style
    tests::doubles

test result: FAILED. 1 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.46s


running 1 test
test src/lib.rs - double (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

";

    #[test]
    fn cargo_test_failures_and_totals() {
        let parsed = cargo_test(&run(Some(101), TEST_OUTPUT, "error: test failed")).unwrap();
        let metrics: Vec<(&str, f64)> = parsed
            .metrics
            .iter()
            .map(|(name, value)| (name.as_str(), *value))
            .collect();
        assert_eq!(
            metrics,
            [
                ("failed", 2.0),
                ("failures", 2.0),
                ("ignored", 1.0),
                ("passed", 2.0),
                ("skipped", 1.0),
                ("tests", 5.0)
            ]
        );
        assert_eq!(parsed.findings.len(), 2);
        let old = &parsed.findings[0];
        assert_eq!(
            (old.rule.as_str(), old.message.as_str()),
            ("tests::old_style", "boom")
        );
        assert_eq!(old.path.as_deref(), Some("src/old.rs"));
        assert_eq!((old.line, old.column), (Some(4), Some(5)));
        let new = &parsed.findings[1];
        assert_eq!(
            new.message,
            "assertion `left == right` failed: double is off\n  left: 4\n right: 5"
        );
        assert_eq!(new.path.as_deref(), Some("src/lib.rs"));
        assert_eq!((new.line, new.column), (Some(33), Some(9)));
        assert_eq!(new.rule, "tests::doubles");
    }

    #[test]
    fn cargo_test_quiet_output_still_names_the_failures() {
        let quiet = "\nrunning 2 tests\n.F\nfailures:\n\n---- t::a stdout ----\nthread 't::a' panicked at src/a.rs:1:1:\nno\n\nfailures:\n    t::a\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
        let parsed = cargo_test(&run(Some(101), quiet, "")).unwrap();
        assert_eq!(parsed.findings.len(), 1);
        assert_eq!(parsed.findings[0].rule, "t::a");
        assert_eq!(parsed.findings[0].message, "no");
    }

    #[test]
    fn cargo_test_broken_runs_are_tool_failures() {
        let compile = "error[E0308]: mismatched types\nerror: could not compile `x` (lib test)\n";
        let crashed = "\nrunning 3 tests\ntest a ... ok\n";
        let all_ok = "\nrunning 1 test\ntest a ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n";
        for (code, stdout, stderr) in [
            (Some(101), "", compile),
            (
                Some(101),
                crashed,
                "process didn't exit successfully (signal: 11, SIGSEGV)",
            ),
            (
                Some(101),
                &format!("{all_ok}{crashed}"),
                "signal: 6, SIGABRT",
            ),
            (Some(101), all_ok, "error: doctest failed to run"),
            (None, all_ok, ""),
        ] {
            let error = cargo_test(&run(code, stdout, stderr)).unwrap_err();
            assert!(
                matches!(error, ParseError::ToolFailed(_)),
                "{stdout:?}: {error}"
            );
        }
    }

    #[test]
    fn cargo_test_garbage_is_unreadable() {
        let error = cargo_test(&run(Some(0), "garbage\n", "")).unwrap_err();
        assert!(matches!(error, ParseError::Unreadable { .. }), "{error}");
    }
}
