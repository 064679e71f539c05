//! Parsers for tools nobody wrote a parser for: lines matched by the gate's own `pattern`, or the
//! exit code alone. Also the small text helpers the other tool parsers share.

use std::borrow::Cow;

use regex::Regex;

use super::{relative_path, ParseError, Parsed, ToolRun};
use crate::finding::{Finding, Severity};

/// How many of a tool's last output lines a message quotes: enough to show the error a tool
/// ends on, few enough that a runaway log does not become the finding.
const TAIL_LINES: usize = 10;

/// `regex`: every line of stdout and then stderr that the gate's `pattern` matches is one
/// finding. The named groups `path`, `line`, `column`, `rule`, `message` and `severity` fill it
/// in; without `message` the whole line is the message, without `rule` the rule is `regex`.
pub fn regex(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let pattern = run.pattern.ok_or_else(|| {
        ParseError::unreadable("regex", "the gate has no `pattern` for the regex parser")
    })?;
    let regex = Regex::new(pattern).map_err(|error| {
        ParseError::unreadable(
            "regex",
            format!("the gate's `pattern` is not a regex: {error}"),
        )
    })?;
    if regex.is_match("") {
        // A pattern that matches every line (`.*`, `(?P<message>.*)`) would turn the whole log
        // into findings: a mistake in the gate, not a result.
        return Err(ParseError::unreadable(
            "regex",
            "the gate's `pattern` matches an empty line: every line would be a finding",
        ));
    }
    let mut parsed = Parsed::default();
    for line in run.stdout.lines().chain(run.stderr.lines()) {
        let line = strip_ansi(line);
        let Some(captures) = regex.captures(&line) else {
            continue;
        };
        let group = |name: &str| {
            captures
                .name(name)
                .map(|found| found.as_str().trim())
                .filter(|text| !text.is_empty())
        };
        let number = |name: &str| group(name).and_then(|text| text.parse::<u32>().ok());
        let severity = group("severity").map_or(Severity::Warning, severity_word);
        let message = group("message").unwrap_or_else(|| line.trim());
        let mut finding = Finding::new(group("rule").unwrap_or("regex"), severity, message);
        if let Some(path) = group("path") {
            finding = finding.at(relative_path(run, path), number("line"), number("column"));
        }
        parsed.findings.push(finding);
    }
    Ok(parsed)
}

/// `exit-code`: 0 passes; any other code is one finding quoting the end of stderr (or of stdout
/// when stderr is empty). A job ended by a signal did not finish its check: the tool failed.
pub fn exit_code(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = run
        .exit_code
        .ok_or_else(|| ParseError::ToolFailed(with_output("killed by a signal", run)))?;
    let mut parsed = Parsed::default();
    if code != 0 {
        let output = if run.stderr.trim().is_empty() {
            run.stdout
        } else {
            run.stderr
        };
        let last = tail(output);
        let message = if last.is_empty() {
            format!("exited with status {code}")
        } else {
            format!("exited with status {code}:\n{last}")
        };
        parsed
            .findings
            .push(Finding::new("exit-code", Severity::Error, message));
    }
    Ok(parsed)
}

/// A tool's severity word (any case, any of the usual spellings) as a `Severity`; words nobody
/// uses for errors or notes count as warnings.
pub(super) fn severity_word(word: &str) -> Severity {
    match word.trim().to_ascii_lowercase().as_str() {
        "error" | "err" | "e" | "fatal" | "critical" | "high" | "blocker" | "failure" => {
            Severity::Error
        }
        "note" | "info" | "information" | "informational" | "i" | "n" | "hint" | "help" | "low"
        | "style" | "convention" | "none" => Severity::Note,
        _ => Severity::Warning,
    }
}

/// The last non-empty lines of `text`, without colour codes.
pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    strip_ansi(&lines[start..].join("\n")).into_owned()
}

/// `what`, followed by the end of the tool's stderr (or stdout) when it printed anything: the
/// text of a `ToolFailed`.
pub(super) fn with_output(what: &str, run: &ToolRun<'_>) -> String {
    let output = if run.stderr.trim().is_empty() {
        run.stdout
    } else {
        run.stderr
    };
    let last = tail(output);
    if last.is_empty() {
        what.to_owned()
    } else {
        format!("{what}:\n{last}")
    }
}

/// `text` without ANSI escape sequences: tools that believe they write to a terminal colour
/// their output (rustfmt's diff does even into a pipe when asked to), and a colour code inside
/// a path or a message would make it a different one.
pub(super) fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.contains('\u{1b}') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates up to a final byte in '@'..='~'.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC (hyperlinks, titles): up to BEL or ESC '\'.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next_if_eq(&'\\');
                        break;
                    }
                }
            }
            // Character-set designations such as ESC ( B take one more character.
            Some('(' | ')' | '*' | '+') => {
                chars.next();
            }
            _ => {}
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {

    use super::*;

    fn run<'a>(
        exit_code: Option<i32>,
        stdout: &'a str,
        stderr: &'a str,
        pattern: Option<&'a str>,
    ) -> ToolRun<'a> {
        ToolRun {
            exit_code,
            stdout,
            stderr,
            pattern,
            ..crate::parsers::test_run("/home/dev/project")
        }
    }

    const PATTERN: &str = r"^(?P<path>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<severity>\w+) \[(?P<rule>[\w-]+)\] (?P<message>.+)$";

    #[test]
    fn regex_reads_every_named_group() {
        let stdout = "/workspace/src/a.c:3:7: error [null-deref] p may be null\nchecked 2 files\n";
        let stderr = "/home/dev/project/src/b.c:10:1: note [style] long line\n";
        let parsed = regex(&run(Some(1), stdout, stderr, Some(PATTERN))).unwrap();
        assert_eq!(parsed.findings.len(), 2);
        let first = &parsed.findings[0];
        assert_eq!(first.rule, "null-deref");
        assert_eq!(first.severity, Severity::Error);
        assert_eq!(first.message, "p may be null");
        assert_eq!(first.path.as_deref(), Some("src/a.c"));
        assert_eq!((first.line, first.column), (Some(3), Some(7)));
        let second = &parsed.findings[1];
        assert_eq!(
            (second.rule.as_str(), second.severity),
            ("style", Severity::Note)
        );
        assert_eq!(second.path.as_deref(), Some("src/b.c"));
    }

    #[test]
    fn regex_defaults_rule_message_and_severity() {
        let parsed = regex(&run(Some(0), "TODO: fix me\nfine\n", "", Some("TODO"))).unwrap();
        assert_eq!(parsed.findings.len(), 1);
        let finding = &parsed.findings[0];
        assert_eq!(finding.rule, "regex");
        assert_eq!(finding.message, "TODO: fix me");
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.path, None);
    }

    #[test]
    fn regex_ignores_colour_codes_and_unparseable_numbers() {
        let stdout = "\u{1b}[1msrc/x.py\u{1b}[0m:99999999999:2: warning [W1] m\n";
        let parsed = regex(&run(Some(1), stdout, "", Some(PATTERN))).unwrap();
        let finding = &parsed.findings[0];
        assert_eq!(finding.path.as_deref(), Some("src/x.py"));
        assert_eq!((finding.line, finding.column), (None, Some(2)));
    }

    #[test]
    fn regex_with_no_matching_line_is_clean() {
        let parsed = regex(&run(Some(0), "all good\n", "", Some(PATTERN))).unwrap();
        assert!(parsed.findings.is_empty());
    }

    #[test]
    fn regex_without_a_usable_pattern_is_a_parse_error() {
        for pattern in [
            None,
            Some("(unclosed"),
            Some(".*"),
            Some(""),
            Some("(?P<message>x*)"),
        ] {
            let error = regex(&run(Some(0), "x\n", "", pattern)).unwrap_err();
            assert!(
                matches!(
                    error,
                    ParseError::Unreadable {
                        parser: "regex",
                        ..
                    }
                ),
                "{pattern:?}: {error}"
            );
        }
    }

    #[test]
    fn exit_code_zero_is_clean() {
        let parsed = exit_code(&run(Some(0), "ok\n", "warning: noise\n", None)).unwrap();
        assert!(parsed.findings.is_empty());
    }

    #[test]
    fn exit_code_non_zero_quotes_the_end_of_stderr() {
        let stderr: String = (1..=30).map(|n| format!("line {n}\n")).collect();
        let parsed = exit_code(&run(Some(3), "stdout\n", &stderr, None)).unwrap();
        assert_eq!(parsed.findings.len(), 1);
        let finding = &parsed.findings[0];
        assert_eq!(
            (finding.rule.as_str(), finding.severity),
            ("exit-code", Severity::Error)
        );
        assert!(finding
            .message
            .starts_with("exited with status 3:\nline 21\n"));
        assert!(finding.message.ends_with("line 30"));
        assert!(!finding.message.contains("line 20\n"));
    }

    #[test]
    fn exit_code_non_zero_without_stderr_quotes_stdout_or_just_the_code() {
        let parsed = exit_code(&run(Some(1), "FAILED: 2 checks\n", "", None)).unwrap();
        assert_eq!(
            parsed.findings[0].message,
            "exited with status 1:\nFAILED: 2 checks"
        );
        let parsed = exit_code(&run(Some(1), "", "  \n", None)).unwrap();
        assert_eq!(parsed.findings[0].message, "exited with status 1");
    }

    #[test]
    fn exit_code_killed_by_a_signal_is_a_tool_failure() {
        let error = exit_code(&run(None, "", "Killed\n", None)).unwrap_err();
        assert!(matches!(&error, ParseError::ToolFailed(why) if why.contains("Killed")));
    }

    #[test]
    fn strip_ansi_removes_csi_osc_and_charset_sequences() {
        let text =
            "\u{1b}[31m-old\u{1b}(B\u{1b}[m \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\ end";
        assert_eq!(strip_ansi(text), "-old link end");
        assert!(matches!(strip_ansi("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn severity_words() {
        assert_eq!(severity_word("ERROR"), Severity::Error);
        assert_eq!(severity_word(" warn "), Severity::Warning);
        assert_eq!(severity_word("info"), Severity::Note);
        assert_eq!(severity_word("whatever"), Severity::Warning);
    }
}
