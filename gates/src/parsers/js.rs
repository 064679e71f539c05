//! JavaScript and TypeScript tools: eslint's JSON report and tsc's plain diagnostics.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::generic::{strip_ansi, with_output};
use super::{relative_path, ParseError, Parsed, ToolRun};
use crate::finding::{Finding, Severity};

#[derive(Deserialize)]
struct EslintFile {
    #[serde(rename = "filePath")]
    file_path: String,
    messages: Vec<EslintMessage>,
}

#[derive(Deserialize)]
struct EslintMessage {
    #[serde(rename = "ruleId")]
    rule_id: Option<String>,
    severity: u8,
    message: String,
    #[serde(default)]
    fatal: bool,
    line: Option<u32>,
    column: Option<u32>,
    #[serde(rename = "endLine")]
    end_line: Option<u32>,
    #[serde(rename = "endColumn")]
    end_column: Option<u32>,
    fix: Option<serde_json::Value>,
}

/// `eslint -f json`: one finding per message. A message without a rule is a file eslint could
/// not parse (`parse-error`, fatal) or a report about the comments themselves (an unused
/// `eslint-disable` directive: `unused-disable-directive`). Exit 0 and 1 carry a report; exit 2
/// is eslint failing (a broken config, no files matched, a crash).
pub fn eslint(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    match run.exit_code {
        Some(0 | 1) => {}
        Some(code) => {
            return Err(ParseError::ToolFailed(with_output(
                &format!("eslint exited with {code}"),
                run,
            )))
        }
        None => {
            return Err(ParseError::ToolFailed(with_output(
                "eslint was killed by a signal",
                run,
            )))
        }
    }
    let files: Vec<EslintFile> = serde_json::from_str(run.stdout.trim()).map_err(|error| {
        ParseError::unreadable("eslint", format!("not eslint's JSON report: {error}"))
    })?;
    let mut parsed = Parsed::default();
    for file in files {
        let path = relative_path(run, &file.file_path);
        for message in file.messages {
            let rule = match message.rule_id {
                Some(rule) => rule,
                None if message.fatal => "parse-error".to_owned(),
                None if message.message.starts_with("Unused eslint-disable")
                    || message.message.starts_with("Unused eslint-enable") =>
                {
                    "unused-disable-directive".to_owned()
                }
                None => "eslint".to_owned(),
            };
            let severity = match message.severity {
                2 => Severity::Error,
                1 => Severity::Warning,
                _ => Severity::Note,
            };
            parsed.findings.push(
                Finding::new(rule, severity, message.message)
                    .at(path.clone(), message.line, message.column)
                    .ending(message.end_line, message.end_column)
                    .fixable(message.fix.is_some()),
            );
        }
    }
    if run.exit_code == Some(1) && parsed.findings.is_empty() {
        return Err(ParseError::ToolFailed(with_output(
            "eslint exited with 1 but reported no problem",
            run,
        )));
    }
    Ok(parsed)
}

static TSC_DIAGNOSTIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?P<path>.+?)\((?P<line>\d+),(?P<column>\d+)\): )?(?P<severity>error|warning|message) (?P<code>TS\d+): (?P<message>.*)$",
    )
    .unwrap_or_else(|error| unreachable!("a fixed regex: {error}"))
});

/// `tsc --noEmit --pretty false`: `path(line,col): error TS2322: message`, with the indented
/// lines after it (the chain of "because ..." explanations) appended to the message. Exit 0 is
/// clean, 1 and 2 carry diagnostics. A diagnostic about the configuration (TS5xxx and TS6xxx:
/// unknown compiler options, a tsconfig that does not parse; TS18003: no input files) means
/// nothing was checked: the tool failed.
pub fn tsc(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    let code = run
        .exit_code
        .ok_or_else(|| ParseError::ToolFailed(with_output("tsc was killed by a signal", run)))?;
    let stdout = strip_ansi(run.stdout);
    let mut parsed = Parsed::default();
    for line in stdout.lines() {
        if let Some(diagnostic) = TSC_DIAGNOSTIC.captures(line) {
            let rule = &diagnostic["code"];
            if is_config_error(rule) {
                return Err(ParseError::ToolFailed(format!(
                    "tsc could not start on this configuration: {line}"
                )));
            }
            let severity = match &diagnostic["severity"] {
                "error" => Severity::Error,
                "warning" => Severity::Warning,
                _ => Severity::Note,
            };
            let mut finding = Finding::new(rule, severity, &diagnostic["message"]);
            if let Some(path) = diagnostic.name("path") {
                let number = |name: &str| diagnostic[name].parse::<u32>().ok();
                finding = finding.at(
                    relative_path(run, path.as_str()),
                    number("line"),
                    number("column"),
                );
            }
            parsed.findings.push(finding);
        } else if line.starts_with(' ') && !line.trim().is_empty() {
            let Some(last) = parsed.findings.last_mut() else {
                return Err(ParseError::unreadable(
                    "tsc",
                    format!("a continuation line before any diagnostic: {line:?}"),
                ));
            };
            last.message.push('\n');
            last.message.push_str(line.trim_end());
        } else if !line.trim().is_empty() {
            return Err(ParseError::unreadable(
                "tsc",
                format!("expected `path(line,col): error TSnnnn: message`, found {line:?}"),
            ));
        }
    }
    match code {
        0 => {}
        1 | 2 if !parsed.findings.is_empty() => {}
        _ => {
            return Err(ParseError::ToolFailed(with_output(
                &format!("tsc exited with {code}"),
                run,
            )))
        }
    }
    Ok(parsed)
}

fn is_config_error(code: &str) -> bool {
    let number: u32 = code.trim_start_matches("TS").parse().unwrap_or(0);
    (5000..7000).contains(&number) || number == 18003
}

#[cfg(test)]
mod tests {

    use super::*;

    fn run<'a>(exit_code: Option<i32>, stdout: &'a str, stderr: &'a str) -> ToolRun<'a> {
        ToolRun {
            exit_code,
            stdout,
            stderr,
            ..crate::parsers::test_run("/home/dev/web")
        }
    }

    const ESLINT: &str = r#"[
      {"filePath": "/workspace/src/app.js", "messages": [
        {"ruleId": "no-var", "severity": 2, "message": "Unexpected var.", "line": 3,
         "column": 1, "endLine": 3, "endColumn": 15, "fix": {"range": [1, 4], "text": "let"}},
        {"ruleId": "prefer-const", "severity": 1, "message": "Use const.", "line": 7,
         "column": 7},
        {"ruleId": null, "severity": 2, "message": "Unused eslint-disable directive.",
         "line": 18, "column": 3, "nodeType": null, "fix": {"range": [1, 2], "text": " "}}
      ], "errorCount": 2, "warningCount": 1},
      {"filePath": "/home/dev/web/src/broken.js", "messages": [
        {"ruleId": null, "fatal": true, "severity": 2, "message": "Parsing error: Unexpected token",
         "line": 2, "column": 18}
      ]},
      {"filePath": "/workspace/clean.js", "messages": []}
    ]"#;

    #[test]
    fn eslint_reads_rules_severities_places_and_fixes() {
        let parsed = eslint(&run(Some(1), ESLINT, "")).unwrap();
        let rules: Vec<&str> = parsed.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "no-var",
                "prefer-const",
                "unused-disable-directive",
                "parse-error"
            ]
        );
        let first = &parsed.findings[0];
        assert_eq!(first.path.as_deref(), Some("src/app.js"));
        assert_eq!((first.line, first.column), (Some(3), Some(1)));
        assert_eq!((first.end_line, first.end_column), (Some(3), Some(15)));
        assert!(first.fixable);
        assert_eq!(parsed.findings[1].severity, Severity::Warning);
        assert!(!parsed.findings[1].fixable);
        assert_eq!(parsed.findings[3].path.as_deref(), Some("src/broken.js"));
    }

    #[test]
    fn eslint_exit_codes() {
        assert!(eslint(&run(Some(0), "[]", "")).unwrap().findings.is_empty());
        for (code, stdout) in [(Some(2), ""), (Some(1), "[]"), (None, ESLINT)] {
            let error = eslint(&run(code, stdout, "Oops! Something went wrong!")).unwrap_err();
            assert!(
                matches!(error, ParseError::ToolFailed(_)),
                "{code:?}: {error}"
            );
        }
    }

    #[test]
    fn eslint_garbage_is_unreadable() {
        for stdout in ["garbage", "", "{}"] {
            let error = eslint(&run(Some(1), stdout, "")).unwrap_err();
            assert!(
                matches!(error, ParseError::Unreadable { .. }),
                "{stdout:?}: {error}"
            );
        }
    }

    const TSC: &str =
        "src/a.ts(7,7): error TS2322: Type 'string' is not assignable to type 'number'.
/workspace/src/b.ts(15,6): error TS2345: Argument of type '{ side: number; }' is not assignable.
  Property 'label' is missing in type '{ side: number; }'.
    Deeper reason.
error TS2688: Cannot find type definition file for 'node'.
";

    #[test]
    fn tsc_reads_diagnostics_and_their_continuations() {
        let parsed = tsc(&run(Some(2), TSC, "")).unwrap();
        assert_eq!(parsed.findings.len(), 3);
        let first = &parsed.findings[0];
        assert_eq!(first.rule, "TS2322");
        assert_eq!(first.path.as_deref(), Some("src/a.ts"));
        assert_eq!((first.line, first.column), (Some(7), Some(7)));
        let second = &parsed.findings[1];
        assert_eq!(second.path.as_deref(), Some("src/b.ts"));
        assert_eq!(
            second.message,
            "Argument of type '{ side: number; }' is not assignable.\n  Property 'label' is missing in type '{ side: number; }'.\n    Deeper reason."
        );
        assert_eq!(parsed.findings[2].path, None);
    }

    #[test]
    fn tsc_exit_codes_and_config_errors() {
        assert!(tsc(&run(Some(0), "", "")).unwrap().findings.is_empty());
        let config = "tsconfig.json(3,5): error TS5023: Unknown compiler option 'strictt'.\n";
        let no_inputs = "error TS18003: No inputs were found in config file 'tsconfig.json'.\n";
        for (code, stdout) in [
            (Some(1), config),
            (Some(2), no_inputs),
            (Some(2), ""),
            (Some(3), TSC),
            (None, TSC),
        ] {
            let error = tsc(&run(code, stdout, "")).unwrap_err();
            assert!(
                matches!(error, ParseError::ToolFailed(_)),
                "{stdout:?}: {error}"
            );
        }
    }

    #[test]
    fn tsc_garbage_is_unreadable() {
        for stdout in ["garbage\n", "  indented first\n"] {
            let error = tsc(&run(Some(2), stdout, "")).unwrap_err();
            assert!(
                matches!(error, ParseError::Unreadable { .. }),
                "{stdout:?}: {error}"
            );
        }
    }
}
