//! Python linters and checkers: ruff's and bandit's JSON reports, flake8's and mypy's text.
//!
//! Each parser also checks the tool's exit code against what it read, so that a tool that broke
//! (a bad config, a crash with a traceback, a usage error) is never mistaken for a clean run:
//! an exit code meaning "findings" with no finding in the output is a failure, not a pass.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::generic::{strip_ansi, with_output};
use super::{relative_path, ParseError, Parsed, ToolRun};
use crate::finding::{Finding, Severity};

/// A regex written in this file: compiling it cannot fail at run time if it compiled once.
fn fixed(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|error| unreachable!("a fixed regex: {error}"))
}

/// The exit code, or a `ToolFailed` when a signal ended the tool (a timeout, the OOM killer).
fn exit_code(tool: &str, run: &ToolRun<'_>) -> Result<i32, ParseError> {
    run.exit_code.ok_or_else(|| {
        ParseError::ToolFailed(with_output(&format!("{tool} was killed by a signal"), run))
    })
}

fn failed(tool: &str, code: i32, why: &str, run: &ToolRun<'_>) -> ParseError {
    ParseError::ToolFailed(with_output(
        &format!("{tool} exited with {code} ({why})"),
        run,
    ))
}

/// A count or position from a tool's JSON, which a few tools print as `-1` or `0` for "none".
fn positive(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0)
}

// --- ruff --------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RuffDiagnostic {
    /// A rule code (`F401`); ruff 0.12+ names syntax errors `invalid-syntax`, older ones `null`.
    code: Option<String>,
    name: Option<String>,
    message: String,
    filename: String,
    location: Option<RuffLocation>,
    end_location: Option<RuffLocation>,
    fix: Option<RuffFix>,
    severity: Option<String>,
}

#[derive(Deserialize)]
struct RuffLocation {
    row: i64,
    column: i64,
}

#[derive(Deserialize)]
struct RuffFix {
    applicability: Option<String>,
}

/// `ruff check --output-format json`: one finding per diagnostic, columns as ruff prints them
/// (1-based, the end exclusive). Exit 0 is clean (or `--exit-zero`), 1 means diagnostics, and
/// anything else is ruff failing: 2 is its "abnormal termination" (a bad config or option).
/// A fix counts as fixable only when `ruff check --fix` applies it, i.e. it is `safe`: unsafe
/// and display-only fixes need `--unsafe-fixes` or a person.
pub fn ruff(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = exit_code("ruff", run)?;
    if !matches!(code, 0 | 1) {
        return Err(failed("ruff", code, "abnormal termination", run));
    }
    let diagnostics: Vec<RuffDiagnostic> =
        serde_json::from_str(run.stdout.trim()).map_err(|error| {
            ParseError::unreadable("ruff", format!("not ruff's JSON output: {error}"))
        })?;
    if code == 1 && diagnostics.is_empty() {
        return Err(failed("ruff", code, "but it reported no diagnostic", run));
    }
    // ruff skips a file or directory it cannot read with only a warning on stderr and exit 0:
    // a pass on a tree it never read.
    if let Some(line) = run
        .stderr
        .lines()
        .find(|line| line.contains("Encountered error") || line.starts_with("error:"))
    {
        return Err(ParseError::ToolFailed(format!(
            "ruff could not read the whole tree: {}",
            line.trim()
        )));
    }
    let mut parsed = Parsed::default();
    for diagnostic in diagnostics {
        let rule = diagnostic
            .code
            .or(diagnostic.name)
            .unwrap_or_else(|| "invalid-syntax".to_owned());
        let severity = match diagnostic.severity.as_deref() {
            Some("warning") => Severity::Warning,
            Some("info" | "note") => Severity::Note,
            _ => Severity::Error,
        };
        let fixable = diagnostic
            .fix
            .is_some_and(|fix| fix.applicability.as_deref().is_none_or(|a| a == "safe"));
        let (line, column) = diagnostic.location.map_or((None, None), |l| {
            (positive(Some(l.row)), positive(Some(l.column)))
        });
        let (end_line, end_column) = diagnostic.end_location.map_or((None, None), |l| {
            (positive(Some(l.row)), positive(Some(l.column)))
        });
        parsed.findings.push(
            Finding::new(rule, severity, diagnostic.message)
                .at(relative_path(run, &diagnostic.filename), line, column)
                .ending(end_line, end_column)
                .fixable(fixable),
        );
    }
    Ok(parsed)
}

// --- flake8 ------------------------------------------------------------------------------------

static FLAKE8_LINE: LazyLock<Regex> = LazyLock::new(|| {
    fixed(r"^(?P<path>.+?):(?P<line>\d+):(?P<column>\d+): (?P<code>[A-Z]+[0-9]+) (?P<message>.*)$")
});
/// What `--count` and `--statistics` add to the report: a total, and `N  CODE message` lines.
static FLAKE8_TOTALS: LazyLock<Regex> = LazyLock::new(|| fixed(r"^(?:\d+|\d+\s+[A-Z]+[0-9]+ .*)$"));

/// flake8's default format, `path:line:col: CODE message`. Exit 0 is clean, 1 means
/// violations; any other exit, exit 1 without a violation (a plugin's traceback), or a line that
/// is not a violation is flake8 failing. `W` (pycodestyle warnings) and `C` (complexity) codes
/// are warnings, the rest errors; both fail the gate, as they fail flake8. A file flake8 could
/// not read (E902) is reported at line 0, which has no place: no line.
pub fn flake8(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = exit_code("flake8", run)?;
    if !matches!(code, 0 | 1) {
        return Err(failed("flake8", code, "a usage error or a crash", run));
    }
    let stdout = strip_ansi(run.stdout);
    let mut parsed = Parsed::default();
    for line in stdout.lines().map(str::trim_end) {
        if line.is_empty() || FLAKE8_TOTALS.is_match(line) {
            continue;
        }
        let caps = FLAKE8_LINE.captures(line).ok_or_else(|| {
            ParseError::unreadable("flake8", format!("not a flake8 violation: {line:?}"))
        })?;
        let rule = &caps["code"];
        let severity = if rule.starts_with('W') || rule.starts_with('C') {
            Severity::Warning
        } else {
            Severity::Error
        };
        let row = caps["line"].parse::<u32>().ok().filter(|n| *n > 0);
        let column = row.and(caps["column"].parse::<u32>().ok().filter(|n| *n > 0));
        parsed
            .findings
            .push(Finding::new(rule, severity, &caps["message"]).at(
                relative_path(run, &caps["path"]),
                row,
                column,
            ));
    }
    if code == 1 && parsed.findings.is_empty() {
        return Err(failed("flake8", code, "but it reported no violation", run));
    }
    Ok(parsed)
}

// --- mypy --------------------------------------------------------------------------------------

/// `path:line:col:end_line:end_col: severity: message  [code]`, every position optional.
static MYPY_LINE: LazyLock<Regex> = LazyLock::new(|| {
    fixed(concat!(
        r"^(?P<path>[^:\s][^:]*?):",
        r"(?:(?P<line>-?\d+):(?:(?P<column>-?\d+):",
        r"(?:(?P<end_line>-?\d+):(?P<end_column>-?\d+):)?)?)?",
        r" (?P<severity>error|warning|note): (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$",
    ))
});
static MYPY_SUMMARY: LazyLock<Regex> =
    LazyLock::new(|| fixed(r"^Found (?P<errors>\d+) errors? in \d+ files? \((?P<why>[^)]*)\)$"));
static MYPY_SUCCESS: LazyLock<Regex> =
    LazyLock::new(|| fixed(r"^Success: no issues found in \d+ source files?$"));

/// One line of `mypy --output json`.
#[derive(Deserialize)]
struct MypyJson {
    file: String,
    line: Option<i64>,
    /// 0-based, unlike the text output's.
    column: Option<i64>,
    end_line: Option<i64>,
    /// 0-based and exclusive, i.e. the text output's 1-based inclusive end.
    end_column: Option<i64>,
    message: String,
    hint: Option<String>,
    code: Option<String>,
    severity: String,
}

/// mypy's text output (`--show-column-numbers --show-error-end` add positions) or its
/// `--output json` lines; both may be mixed with the summary line.
///
/// Errors are findings; a note right after an error explains it and is appended to its message;
/// any other note (`reveal_type`, `annotation-unchecked`) is a `note` finding, which does not
/// fail the gate, as it does not fail mypy. The end column is made exclusive like ruff's.
///
/// Exit 0 is clean; exit 1 must come with errors, as many as `Found N errors` says when mypy
/// printed it. Exit 2 is mypy failing (a usage error, a file it cannot read, a crash), except
/// when what stopped it is the code itself: if every error it printed is a `[syntax]` error, those
/// are the findings (a gate fails on code that does not parse; it does not "error").
pub fn mypy(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = exit_code("mypy", run)?;
    if !matches!(code, 0..=2) {
        return Err(failed("mypy", code, "a crash", run));
    }
    let crashed = || {
        failed(
            "mypy",
            code,
            "a usage error, an unreadable file or a crash",
            run,
        )
    };
    let (mut parsed, summary_errors) = match read_mypy(run) {
        Ok(read) => read,
        Err(_) if code == 2 => return Err(crashed()),
        Err(error) => return Err(error),
    };
    let errors = parsed
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let only_syntax = parsed
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .all(|f| f.rule == "syntax");
    match code {
        1 if errors == 0 => return Err(failed("mypy", code, "but it reported no error", run)),
        2 if errors == 0 || !only_syntax => return Err(crashed()),
        _ => {}
    }
    if let Some(expected) = summary_errors {
        if expected != errors {
            return Err(ParseError::unreadable(
                "mypy",
                format!("mypy counted {expected} error(s) but {errors} were read from its output"),
            ));
        }
    }
    parsed.metrics.insert("errors".to_owned(), errors as f64);
    Ok(parsed)
}

/// The findings in mypy's stdout, and the error count of its summary line when it printed one.
fn read_mypy(run: &ToolRun<'_>) -> Result<(Parsed, Option<usize>), ParseError> {
    let stdout = strip_ansi(run.stdout);
    let mut parsed = Parsed::default();
    // The finding the next note explains, if the previous line was an error or its note.
    let mut explained: Option<usize> = None;
    let mut summary_errors: Option<usize> = None;
    for line in stdout.lines().map(str::trim_end) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('{') {
            let entry: MypyJson = serde_json::from_str(line).map_err(|error| {
                ParseError::unreadable("mypy", format!("not a mypy JSON line ({error}): {line:?}"))
            })?;
            parsed.findings.push(mypy_json_finding(run, entry));
            explained = None;
            continue;
        }
        if let Some(caps) = MYPY_SUMMARY.captures(line) {
            summary_errors = caps["errors"].parse().ok();
            continue;
        }
        if MYPY_SUCCESS.is_match(line) {
            summary_errors = Some(0);
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            // `--pretty` echoes the source line and a caret under the error.
            continue;
        }
        let caps = MYPY_LINE.captures(line).ok_or_else(|| {
            ParseError::unreadable("mypy", format!("not a mypy message: {line:?}"))
        })?;
        let message = caps["message"].to_owned();
        let severity = match &caps["severity"] {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            _ => Severity::Note,
        };
        if severity == Severity::Note {
            if let Some(index) = explained {
                let finding = &mut parsed.findings[index];
                finding.message = format!("{}\n{message}", finding.message);
                continue;
            }
            if caps.name("line").is_none() {
                // `path: note: In function "f":` (--show-error-context) only introduces the
                // errors that follow it.
                continue;
            }
        }
        let position = |name: &str| caps.name(name).and_then(|m| m.as_str().parse::<i64>().ok());
        let line_number = positive(position("line"));
        // mypy's text end column is inclusive; findings end exclusive, like ruff's and SARIF's.
        let end_column = positive(position("end_column")).map(|c| c + 1);
        let rule = caps.name("code").map_or("mypy", |m| m.as_str());
        parsed.findings.push(
            Finding::new(rule, severity, message)
                .at(
                    relative_path(run, &caps["path"]),
                    line_number,
                    line_number.and(positive(position("column"))),
                )
                .ending(positive(position("end_line")), end_column),
        );
        explained = (severity != Severity::Note).then(|| parsed.findings.len() - 1);
    }
    Ok((parsed, summary_errors))
}

fn mypy_json_finding(run: &ToolRun<'_>, entry: MypyJson) -> Finding {
    let severity = match entry.severity.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        _ => Severity::Note,
    };
    let line = positive(entry.line);
    let column = line.and(
        entry
            .column
            .filter(|c| *c >= 0)
            .and_then(|c| positive(Some(c + 1))),
    );
    let end_column = entry
        .end_column
        .filter(|c| *c >= 0)
        .and_then(|c| positive(Some(c + 1)));
    let message = match entry.hint.as_deref().map(str::trim_end) {
        Some(hint) if !hint.is_empty() => format!("{}\n{hint}", entry.message),
        _ => entry.message,
    };
    Finding::new(
        entry.code.unwrap_or_else(|| "mypy".to_owned()),
        severity,
        message,
    )
    .at(relative_path(run, &entry.file), line, column)
    .ending(positive(entry.end_line), end_column)
}

// --- bandit ------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct BanditReport {
    results: Vec<BanditResult>,
    #[serde(default)]
    errors: Vec<BanditError>,
    #[serde(default)]
    metrics: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct BanditResult {
    test_id: String,
    issue_severity: String,
    issue_text: String,
    filename: String,
    line_number: Option<i64>,
    #[serde(default)]
    line_range: Vec<i64>,
    /// 0-based, as Python's `ast` counts.
    col_offset: Option<i64>,
    /// 0-based and exclusive.
    end_col_offset: Option<i64>,
}

#[derive(Deserialize)]
struct BanditError {
    filename: String,
    reason: String,
}

/// `bandit -f json`: one finding per result, rule = the test id (`B602`). Severity HIGH is an
/// error, MEDIUM and LOW warnings: bandit fails on every severity unless told `-l`/`-ll`, and so
/// does the gate. A file bandit could not scan (a syntax error, a missing target; bandit still
/// exits 0) is an error finding `skipped-file`, and a run that scanned no file at all is bandit
/// failing: a security gate does not pass on code nobody read.
///
/// Metrics: `high`, `medium`, `low` (results per severity), `loc` and `nosec` (bandit's totals),
/// `skipped_files`. Exit 0 and 1 carry a report; 2 is a usage error.
pub fn bandit(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = exit_code("bandit", run)?;
    if !matches!(code, 0 | 1) {
        return Err(failed("bandit", code, "a usage error or a crash", run));
    }
    let report: BanditReport = serde_json::from_str(run.stdout.trim()).map_err(|error| {
        ParseError::unreadable("bandit", format!("not bandit's JSON report: {error}"))
    })?;
    if code == 1 && report.results.is_empty() && report.errors.is_empty() {
        return Err(failed("bandit", code, "but it reported no issue", run));
    }
    let scanned = report.metrics.keys().filter(|k| *k != "_totals").count();
    if !report.metrics.is_empty() && scanned == 0 {
        let why = report
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.filename, e.reason))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ParseError::ToolFailed(if why.is_empty() {
            "bandit found no Python file to scan".to_owned()
        } else {
            format!("bandit scanned no file: {why}")
        }));
    }

    let mut parsed = Parsed::default();
    let mut counts = [0usize; 3];
    for result in report.results {
        let severity = match result.issue_severity.to_ascii_uppercase().as_str() {
            "HIGH" => {
                counts[0] += 1;
                Severity::Error
            }
            "MEDIUM" => {
                counts[1] += 1;
                Severity::Warning
            }
            _ => {
                counts[2] += 1;
                Severity::Warning
            }
        };
        let line = positive(result.line_number);
        let column = line.and(
            result
                .col_offset
                .filter(|c| *c >= 0)
                .and_then(|c| positive(Some(c + 1))),
        );
        let end_line = result
            .line_range
            .iter()
            .copied()
            .max()
            .and_then(|l| positive(Some(l)));
        let end_column = result
            .end_col_offset
            .filter(|c| *c >= 0)
            .and_then(|c| positive(Some(c + 1)));
        parsed.findings.push(
            Finding::new(result.test_id, severity, result.issue_text)
                .at(relative_path(run, &result.filename), line, column)
                .ending(end_line, end_column),
        );
    }
    let skipped = report.errors.len();
    for error in report.errors {
        parsed.findings.push(
            Finding::new(
                "skipped-file",
                Severity::Error,
                format!("bandit could not scan this file: {}", error.reason),
            )
            .at(relative_path(run, &error.filename), None, None),
        );
    }
    for (name, count) in ["high", "medium", "low"].into_iter().zip(counts) {
        parsed.metrics.insert(name.to_owned(), count as f64);
    }
    parsed
        .metrics
        .insert("skipped_files".to_owned(), skipped as f64);
    if let Some(totals) = report.metrics.get("_totals") {
        for name in ["loc", "nosec"] {
            if let Some(value) = totals.get(name).and_then(serde_json::Value::as_f64) {
                parsed.metrics.insert(name.to_owned(), value);
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn run<'a>(exit_code: Option<i32>, stdout: &'a str) -> ToolRun<'a> {
        ToolRun {
            exit_code,
            stdout,
            stderr: "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n",
            ..crate::parsers::test_run("/home/dev/proj")
        }
    }

    const RUFF: &str = r#"[
      {"cell": null, "code": "F401", "end_location": {"column": 10, "row": 1},
       "filename": "/workspace/pkg/core.py",
       "fix": {"applicability": "safe", "edits": [], "message": "Remove unused import: `os`"},
       "location": {"column": 8, "row": 1}, "message": "`os` imported but unused",
       "name": "unused-import", "noqa_row": 1, "severity": "error", "url": null},
      {"cell": null, "code": "PLW1510", "end_location": {"column": 26, "row": 15},
       "filename": "/home/dev/proj/pkg/core.py",
       "fix": {"applicability": "displayonly", "edits": [], "message": "Add `check=False`"},
       "location": {"column": 12, "row": 15}, "message": "`subprocess.run` without `check`",
       "noqa_row": 15, "url": null},
      {"cell": null, "code": null, "end_location": {"column": 8, "row": 1},
       "filename": "bad.py", "fix": null, "location": {"column": 7, "row": 1},
       "message": "SyntaxError: Expected a parameter", "noqa_row": null, "url": null}
    ]"#;

    #[test]
    fn ruff_reads_positions_fixes_and_syntax_errors() {
        let parsed = ruff(&run(Some(1), RUFF)).unwrap();
        let [unused, check, syntax] = &parsed.findings[..] else {
            panic!("{:?}", parsed.findings)
        };
        assert_eq!(unused.rule, "F401");
        assert_eq!(unused.path.as_deref(), Some("pkg/core.py"));
        assert_eq!((unused.line, unused.column), (Some(1), Some(8)));
        assert_eq!((unused.end_line, unused.end_column), (Some(1), Some(10)));
        assert!(unused.fixable);
        assert_eq!(check.path.as_deref(), Some("pkg/core.py"));
        assert!(!check.fixable, "a display-only fix is not applied by --fix");
        assert_eq!(
            (syntax.rule.as_str(), syntax.fixable),
            ("invalid-syntax", false)
        );
    }

    #[test]
    fn ruff_exit_codes() {
        assert!(ruff(&run(Some(0), "[]")).unwrap().findings.is_empty());
        assert!(matches!(
            ruff(&run(Some(1), "[]")),
            Err(ParseError::ToolFailed(_))
        ));
        let failed = ruff(&run(Some(2), "")).unwrap_err();
        assert!(
            matches!(&failed, ParseError::ToolFailed(why) if why.contains("KeyError")),
            "{failed}"
        );
        assert!(matches!(
            ruff(&run(None, "[]")),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            ruff(&run(Some(1), "Traceback (most recent call last):")),
            Err(ParseError::Unreadable { .. })
        ));
        assert!(matches!(
            ruff(&run(Some(0), "")),
            Err(ParseError::Unreadable { .. })
        ));
    }

    #[test]
    fn flake8_reads_violations_and_tolerates_count_and_statistics() {
        let out = "./pkg/core.py:1:1: F401 'os' imported but unused\n\
                   /workspace/pkg/core.py:16:58: F821 undefined name 'x'\n\
                   pkg/style.py:3:80: W291 trailing whitespace\n\
                   nonexist.py:0:1: E902 FileNotFoundError: [Errno 2] No such file\n\
                   1     F401 'os' imported but unused\n\
                   4\n";
        let parsed = flake8(&run(Some(1), out)).unwrap();
        let rules: Vec<_> = parsed.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["F401", "F821", "W291", "E902"]);
        assert_eq!(parsed.findings[0].path.as_deref(), Some("pkg/core.py"));
        assert_eq!(parsed.findings[1].path.as_deref(), Some("pkg/core.py"));
        assert_eq!(
            (parsed.findings[1].line, parsed.findings[1].column),
            (Some(16), Some(58))
        );
        assert_eq!(parsed.findings[2].severity, Severity::Warning);
        assert_eq!(
            (parsed.findings[3].line, parsed.findings[3].column),
            (None, None)
        );
    }

    #[test]
    fn flake8_exit_codes_and_garbage() {
        assert!(flake8(&run(Some(0), "")).unwrap().findings.is_empty());
        assert!(matches!(
            flake8(&run(Some(1), "")),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            flake8(&run(Some(2), "")),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            flake8(&run(
                Some(1),
                "Traceback (most recent call last):\n  File \"x\"\n"
            )),
            Err(ParseError::Unreadable { .. })
        ));
    }

    const MYPY_TEXT: &str = "\
pkg/a.py:2:5:2:16: note: By default the bodies of untyped functions are not checked  [annotation-unchecked]
pkg/a.py: note: In function \"g\":
pkg/a.py:6:3:6:5: error: Argument 1 to \"g\" has incompatible type \"str\"; expected \"int\"  [arg-type]
pkg/b.py:3: note: \"g\" defined here
/workspace/pkg/b.py:10: error: Name \"y\" is not defined  [name-defined]
    return y
           ^
Found 2 errors in 2 files (checked 3 source files)
";

    #[test]
    fn mypy_text_errors_notes_and_summary() {
        let parsed = mypy(&run(Some(1), MYPY_TEXT)).unwrap();
        let [unchecked, arg, name] = &parsed.findings[..] else {
            panic!("{:?}", parsed.findings)
        };
        assert_eq!(
            (unchecked.rule.as_str(), unchecked.severity),
            ("annotation-unchecked", Severity::Note)
        );
        assert_eq!(
            (arg.rule.as_str(), arg.severity),
            ("arg-type", Severity::Error)
        );
        assert_eq!(
            (arg.line, arg.column, arg.end_line, arg.end_column),
            (Some(6), Some(3), Some(6), Some(6))
        );
        assert!(
            arg.message
                .ends_with("expected \"int\"\n\"g\" defined here"),
            "{}",
            arg.message
        );
        assert_eq!(name.path.as_deref(), Some("pkg/b.py"));
        assert_eq!((name.line, name.column), (Some(10), None));
        assert_eq!(parsed.metrics["errors"], 2.0);
    }

    #[test]
    fn mypy_json_lines() {
        let out = r#"{"file": "pkg/a.py", "line": 10, "column": 11, "end_line": 10, "end_column": 26, "message": "Incompatible return value type", "hint": "See the docs", "code": "return-value", "severity": "error"}
{"file": "pkg/a.py", "line": 7, "column": 12, "end_line": 7, "end_column": 13, "message": "Revealed type is \"int\"", "hint": null, "code": "misc", "severity": "note"}
"#;
        let parsed = mypy(&run(Some(1), out)).unwrap();
        let first = &parsed.findings[0];
        assert_eq!(
            (first.line, first.column, first.end_column),
            (Some(10), Some(12), Some(27))
        );
        assert_eq!(
            first.message,
            "Incompatible return value type\nSee the docs"
        );
        assert_eq!(parsed.findings[1].severity, Severity::Note);
    }

    #[test]
    fn mypy_exit_codes() {
        let clean = "Success: no issues found in 3 source files\n";
        assert!(mypy(&run(Some(0), clean)).unwrap().findings.is_empty());
        // A file it cannot read: the error goes to stderr, stdout has only the summary.
        let unreadable = "Found 1 error in 1 file (errors prevented further checking)\n";
        assert!(matches!(
            mypy(&run(Some(2), unreadable)),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            mypy(&run(Some(1), clean)),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            mypy(&run(Some(3), "")),
            Err(ParseError::ToolFailed(_))
        ));
        let syntax = "bad.py:1:8: error: Expected a parameter  [syntax]\n\
                      Found 1 error in 1 file (errors prevented further checking)\n";
        let parsed = mypy(&run(Some(2), syntax)).unwrap();
        assert_eq!(parsed.findings[0].rule, "syntax");
        let miscounted =
            "a.py:1: error: x  [misc]\nFound 2 errors in 1 file (checked 1 source file)\n";
        assert!(matches!(
            mypy(&run(Some(1), miscounted)),
            Err(ParseError::Unreadable { .. })
        ));
        assert!(matches!(
            mypy(&run(Some(2), "Traceback (most recent call last):\n")),
            Err(ParseError::Unreadable { .. } | ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            mypy(&run(Some(1), "Traceback (most recent call last):\n")),
            Err(ParseError::Unreadable { .. })
        ));
    }

    const BANDIT: &str = r#"{
      "errors": [{"filename": "./bad.py", "reason": "syntax error while parsing AST from file"}],
      "metrics": {"./pkg/core.py": {"loc": 14}, "_totals": {"loc": 21, "nosec": 1}},
      "results": [
        {"col_offset": 11, "end_col_offset": 78, "filename": "./pkg/core.py",
         "issue_severity": "HIGH", "issue_confidence": "HIGH",
         "issue_text": "subprocess call with shell=True identified, security issue.",
         "line_number": 15, "line_range": [15, 16], "test_id": "B602", "test_name": "x"},
        {"col_offset": 15, "end_col_offset": 24, "filename": "/workspace/pkg/core.py",
         "issue_severity": "LOW", "issue_text": "Possible hardcoded password: 'hunter2'",
         "line_number": 14, "line_range": [14], "test_id": "B105"}
      ]
    }"#;

    #[test]
    fn bandit_results_skipped_files_and_metrics() {
        let parsed = bandit(&run(Some(1), BANDIT)).unwrap();
        let [shell, password, skipped] = &parsed.findings[..] else {
            panic!("{:?}", parsed.findings)
        };
        assert_eq!(
            (shell.rule.as_str(), shell.severity),
            ("B602", Severity::Error)
        );
        assert_eq!(shell.path.as_deref(), Some("pkg/core.py"));
        assert_eq!(
            (shell.line, shell.column, shell.end_line, shell.end_column),
            (Some(15), Some(12), Some(16), Some(79))
        );
        assert_eq!(
            (password.severity, password.path.as_deref()),
            (Severity::Warning, Some("pkg/core.py"))
        );
        assert_eq!(
            (skipped.rule.as_str(), skipped.path.as_deref()),
            ("skipped-file", Some("bad.py"))
        );
        let metric = |name: &str| parsed.metrics[name];
        assert_eq!(
            (metric("high"), metric("medium"), metric("low")),
            (1.0, 0.0, 1.0)
        );
        assert_eq!(
            (metric("loc"), metric("nosec"), metric("skipped_files")),
            (21.0, 1.0, 1.0)
        );
    }

    #[test]
    fn bandit_failures() {
        let nothing_scanned = r#"{"errors": [{"filename": "./nope", "reason": "No such file or directory"}],
            "metrics": {"_totals": {"loc": 0}}, "results": []}"#;
        let failed = bandit(&run(Some(0), nothing_scanned)).unwrap_err();
        assert!(
            matches!(&failed, ParseError::ToolFailed(why) if why.contains("No such file")),
            "{failed}"
        );
        let empty = r#"{"errors": [], "metrics": {"./a.py": {}, "_totals": {}}, "results": []}"#;
        assert!(bandit(&run(Some(0), empty)).unwrap().findings.is_empty());
        assert!(matches!(
            bandit(&run(Some(1), empty)),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            bandit(&run(Some(2), "")),
            Err(ParseError::ToolFailed(_))
        ));
        assert!(matches!(
            bandit(&run(Some(1), "Traceback (most recent call last):")),
            Err(ParseError::Unreadable { .. })
        ));
    }
}
