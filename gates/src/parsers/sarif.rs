//! SARIF 2.1.0 logs: any tool's (`sarif`) and semgrep's (`semgrep`, which adds its exit codes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::generic::{severity_word, with_output};
use super::{relative_path, ParseError, Parsed, ToolRun};
use crate::finding::{Finding, Severity};

/// How many `uriBaseId` indirections are followed: SARIF lets a base refer to another base, and
/// a log that loops must not hang the parser.
const MAX_BASE_DEPTH: usize = 8;

#[derive(Deserialize)]
struct Log {
    version: String,
    runs: Vec<Run>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    /// Absent when the tool did not run its rules (SARIF §3.14.23): no results is not "clean".
    results: Option<Vec<SarifResult>>,
    #[serde(default)]
    original_uri_base_ids: BTreeMap<String, ArtifactLocation>,
    #[serde(default)]
    artifacts: Vec<Artifact>,
    #[serde(default)]
    invocations: Vec<Invocation>,
}

#[derive(Deserialize)]
struct Tool {
    driver: Component,
}

#[derive(Deserialize)]
struct Component {
    name: Option<String>,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: String,
    default_configuration: Option<RuleConfiguration>,
    short_description: Option<Message>,
    #[serde(default)]
    message_strings: BTreeMap<String, Message>,
}

#[derive(Deserialize)]
struct RuleConfiguration {
    level: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: Option<String>,
    rule_index: Option<usize>,
    rule: Option<RuleReference>,
    level: Option<String>,
    kind: Option<String>,
    message: Message,
    #[serde(default)]
    locations: Vec<Location>,
    #[serde(default)]
    fixes: Vec<Value>,
    #[serde(default)]
    suppressions: Vec<Suppression>,
    baseline_state: Option<String>,
}

#[derive(Deserialize)]
struct RuleReference {
    id: Option<String>,
    index: Option<usize>,
}

#[derive(Deserialize, Default)]
struct Message {
    text: Option<String>,
    markdown: Option<String>,
    id: Option<String>,
    #[serde(default)]
    arguments: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: Option<PhysicalLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: Option<ArtifactLocation>,
    region: Option<Region>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: Option<String>,
    uri_base_id: Option<String>,
    index: Option<usize>,
}

#[derive(Deserialize)]
struct Artifact {
    location: Option<ArtifactLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: Option<u32>,
    start_column: Option<u32>,
    end_line: Option<u32>,
    end_column: Option<u32>,
}

#[derive(Deserialize)]
struct Suppression {
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: Option<bool>,
    #[serde(default)]
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Deserialize)]
struct Notification {
    level: Option<String>,
    message: Option<Message>,
}

/// Any SARIF 2.1.0 log, from stdout or, when stdout is empty, from the first `*.sarif` (then
/// `*.json`) file the tool wrote to `/out`. The exit code is not read (tools disagree on what
/// it means) beyond a signal ending the tool; a run whose invocation says it did not succeed is
/// the tool failing. Suppressed results, passes and results absent from the baseline are not
/// findings.
pub fn sarif(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    if run.exit_code.is_none() {
        return Err(ParseError::ToolFailed(with_output(
            "the tool was killed by a signal",
            run,
        )));
    }
    let text = match run.stdout.trim() {
        "" => read_report(run)?,
        stdout => stdout.to_owned(),
    };
    parse_log(run, "sarif", &text)
}

/// semgrep's `--sarif` output. semgrep exits 0 (no findings, or findings without `--error`) or 1
/// (findings with `--error`); 2 and above are its failures (a bad rule, a missing config, an
/// invalid pattern), whatever it printed.
pub fn semgrep(run: &ToolRun<'_>) -> Result<Parsed, ParseError> {
    match run.exit_code {
        Some(0 | 1) => parse_log(run, "semgrep", run.stdout.trim()),
        Some(code) => Err(ParseError::ToolFailed(with_output(
            &format!("semgrep exited with {code}"),
            run,
        ))),
        None => Err(ParseError::ToolFailed(with_output(
            "semgrep was killed by a signal",
            run,
        ))),
    }
}

/// The report a tool wrote to `/out`: `*.sarif` files first, then `*.json`, by name.
fn read_report(run: &ToolRun<'_>) -> Result<String, ParseError> {
    let mut reports: Vec<PathBuf> = match fs_err::read_dir(run.out_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .filter(|path| report_rank(path).is_some())
            .collect(),
        Err(_) => Vec::new(),
    };
    reports.sort_by_key(|path| (report_rank(path), path.clone()));
    let Some(report) = reports.first() else {
        let why = format!(
            "nothing on stdout and no *.sarif or *.json report in {}",
            run.out_dir.display()
        );
        return Err(if run.exit_code == Some(0) {
            ParseError::unreadable("sarif", why)
        } else {
            ParseError::ToolFailed(with_output(&why, run))
        });
    };
    fs_err::read_to_string(report).map_err(|error| ParseError::unreadable("sarif", error))
}

fn report_rank(path: &Path) -> Option<u8> {
    match path.extension()?.to_str()? {
        "sarif" => Some(0),
        "json" => Some(1),
        _ => None,
    }
}

fn parse_log(run: &ToolRun<'_>, parser: &'static str, text: &str) -> Result<Parsed, ParseError> {
    let log: Log = serde_json::from_str(text)
        .map_err(|error| ParseError::unreadable(parser, format!("not a SARIF log: {error}")))?;
    if log.version != "2.1.0" {
        return Err(ParseError::unreadable(
            parser,
            format!("SARIF version {:?}, expected 2.1.0", log.version),
        ));
    }
    let mut parsed = Parsed::default();
    for sarif_run in &log.runs {
        check_invocations(sarif_run)?;
        let Some(results) = &sarif_run.results else {
            return Err(ParseError::ToolFailed(format!(
                "{} reported a run without results (it did not run its rules)",
                sarif_run.tool.driver.name.as_deref().unwrap_or("the tool")
            )));
        };
        for result in results {
            if let Some(finding) = finding(run, sarif_run, result) {
                parsed.findings.push(finding);
            }
        }
    }
    Ok(parsed)
}

fn check_invocations(sarif_run: &Run) -> Result<(), ParseError> {
    for invocation in &sarif_run.invocations {
        if invocation.execution_successful == Some(false) {
            let errors: Vec<String> = invocation
                .tool_execution_notifications
                .iter()
                .filter(|note| note.level.as_deref().is_none_or(|level| level == "error"))
                .filter_map(|note| note.message.as_ref().and_then(|m| m.text.clone()))
                .collect();
            return Err(ParseError::ToolFailed(format!(
                "{} says its run did not succeed{}{}",
                sarif_run.tool.driver.name.as_deref().unwrap_or("the tool"),
                if errors.is_empty() { "" } else { ": " },
                errors.join("; ")
            )));
        }
    }
    Ok(())
}

fn finding(run: &ToolRun<'_>, sarif_run: &Run, result: &SarifResult) -> Option<Finding> {
    if matches!(result.kind.as_deref(), Some("pass" | "notApplicable"))
        || result.baseline_state.as_deref() == Some("absent")
        || result
            .suppressions
            .iter()
            .any(|suppression| matches!(suppression.status.as_deref(), None | Some("accepted")))
    {
        return None;
    }
    let rules = &sarif_run.tool.driver.rules;
    let index = result
        .rule_index
        .or_else(|| result.rule.as_ref().and_then(|rule| rule.index));
    let id = result
        .rule_id
        .clone()
        .or_else(|| result.rule.as_ref().and_then(|rule| rule.id.clone()));
    let rule = index.and_then(|index| rules.get(index)).or_else(|| {
        id.as_ref()
            .and_then(|id| rules.iter().find(|rule| &rule.id == id))
    });
    let id = id
        .or_else(|| rule.map(|rule| rule.id.clone()))
        .unwrap_or_else(|| "sarif".to_owned());
    // SARIF §3.27.10: a result's level defaults to its rule's, then to "warning" for a failure
    // and "none" for the other kinds (review, open, informational).
    let level = result
        .level
        .clone()
        .or_else(|| rule.and_then(|rule| rule.default_configuration.as_ref()?.level.clone()))
        .unwrap_or_else(|| match result.kind.as_deref() {
            None | Some("fail") => "warning".to_owned(),
            Some(_) => "none".to_owned(),
        });
    let severity = match level.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "note" | "none" => Severity::Note,
        other => severity_word(other),
    };
    let message = message_text(&result.message, rule).unwrap_or_else(|| id.clone());
    let mut finding = Finding::new(id, severity, message).fixable(!result.fixes.is_empty());
    let physical = result
        .locations
        .first()
        .and_then(|location| location.physical_location.as_ref());
    if let Some(physical) = physical {
        let path = physical
            .artifact_location
            .as_ref()
            .and_then(|location| artifact_path(run, sarif_run, location));
        if let Some(path) = path {
            let region = physical.region.as_ref();
            let start_line = region.and_then(|region| region.start_line);
            finding = finding
                .at(
                    path,
                    start_line,
                    region.and_then(|region| region.start_column),
                )
                .ending(
                    region.and_then(|region| region.end_line).or(start_line),
                    region.and_then(|region| region.end_column),
                );
        }
    }
    Some(finding)
}

/// A result's message: its text, else its markdown, else the rule's message string it names,
/// with `{0}`-style placeholders filled from its arguments; else the rule's short description.
fn message_text(message: &Message, rule: Option<&Rule>) -> Option<String> {
    let template = message
        .text
        .clone()
        .or_else(|| message.markdown.clone())
        .or_else(|| {
            let id = message.id.as_ref()?;
            let string = rule?.message_strings.get(id)?;
            string.text.clone().or_else(|| string.markdown.clone())
        });
    match template {
        Some(template) => {
            let mut text = template;
            for (index, argument) in message.arguments.iter().enumerate() {
                text = text.replace(&format!("{{{index}}}"), argument);
            }
            Some(text)
        }
        None => rule?.short_description.as_ref()?.text.clone(),
    }
}

/// The workspace-relative path of an artifact: its URI resolved against `originalUriBaseIds`
/// (`%SRCROOT%` and the like, which may be left undefined: then relative to the workspace),
/// or found through `artifacts[index]`, percent-decoded.
fn artifact_path(
    run: &ToolRun<'_>,
    sarif_run: &Run,
    location: &ArtifactLocation,
) -> Option<String> {
    let mut location = location.clone();
    if location.uri.is_none() {
        let artifact = sarif_run.artifacts.get(location.index?)?;
        location = artifact.location.clone()?;
    }
    let mut uri = location.uri.clone()?;
    let mut base_id = location.uri_base_id.clone();
    for _ in 0..MAX_BASE_DEPTH {
        if uri.contains("://") {
            break;
        }
        let Some(base) = base_id
            .as_ref()
            .and_then(|id| sarif_run.original_uri_base_ids.get(id))
        else {
            break;
        };
        if let Some(base_uri) = &base.uri {
            let separator = if base_uri.ends_with('/') || base_uri.is_empty() {
                ""
            } else {
                "/"
            };
            uri = format!("{base_uri}{separator}{uri}");
        }
        base_id = base.uri_base_id.clone();
    }
    // `file:///path` has an empty host; `file://localhost/path` names this one.
    let uri = uri
        .strip_prefix("file://localhost")
        .or_else(|| uri.strip_prefix("file://"))
        .unwrap_or(&uri);
    Some(relative_path(run, &percent_decode(uri)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let hex = |offset: usize| {
            bytes
                .get(index + offset)
                .and_then(|digit| char::from(*digit).to_digit(16))
        };
        match (byte, hex(1), hex(2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                index += 3;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'a>(exit_code: Option<i32>, stdout: &'a str, out_dir: &'a Path) -> ToolRun<'a> {
        ToolRun {
            exit_code,
            stdout,
            out_dir,
            ..crate::parsers::test_run("/home/dev/project")
        }
    }

    const NO_OUT: &str = "/nonexistent/out";

    const LOG: &str = r#"{
      "version": "2.1.0",
      "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
      "runs": [{
        "tool": {"driver": {"name": "Checker", "rules": [
          {"id": "R1", "defaultConfiguration": {"level": "error"},
           "messageStrings": {"default": {"text": "{0} is tainted by {1}"}}},
          {"id": "R2", "shortDescription": {"text": "short R2"}}
        ]}},
        "originalUriBaseIds": {
          "SRC": {"uri": "src/", "uriBaseId": "ROOT"},
          "ROOT": {"uri": "file:///workspace/"}
        },
        "artifacts": [{"location": {"uri": "file:///home/dev/project/lib/a%20b.py"}}],
        "results": [
          {"ruleId": "R1", "message": {"id": "default", "arguments": ["x", "input()"]},
           "locations": [{"physicalLocation": {
             "artifactLocation": {"uri": "main.py", "uriBaseId": "SRC"},
             "region": {"startLine": 3, "startColumn": 5, "endLine": 4, "endColumn": 2}}}],
           "fixes": [{"artifactChanges": []}]},
          {"ruleIndex": 1, "level": "note", "message": {},
           "locations": [{"physicalLocation": {
             "artifactLocation": {"index": 0}, "region": {"startLine": 9}}}]},
          {"message": {"text": "no rule, no place"}},
          {"ruleId": "R2", "kind": "pass", "message": {"text": "passed"}},
          {"ruleId": "R2", "message": {"text": "accepted"}, "suppressions": [{"kind": "inSource"}]},
          {"ruleId": "R2", "message": {"text": "rejected"},
           "suppressions": [{"kind": "external", "status": "rejected"}],
           "locations": [{"physicalLocation": {
             "artifactLocation": {"uri": "rel/x.js", "uriBaseId": "%SRCROOT%"}}}]}
        ]
      }]
    }"#;

    #[test]
    fn sarif_reads_rules_levels_messages_and_places() {
        let parsed = sarif(&run(Some(1), LOG, Path::new(NO_OUT))).unwrap();
        let rules: Vec<&str> = parsed.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["R1", "R2", "sarif", "R2"]);
        let first = &parsed.findings[0];
        assert_eq!(first.severity, Severity::Error);
        assert_eq!(first.message, "x is tainted by input()");
        assert_eq!(first.path.as_deref(), Some("src/main.py"));
        assert_eq!((first.line, first.column), (Some(3), Some(5)));
        assert_eq!((first.end_line, first.end_column), (Some(4), Some(2)));
        assert!(first.fixable);
        let second = &parsed.findings[1];
        assert_eq!(second.severity, Severity::Note);
        assert_eq!(second.message, "short R2");
        assert_eq!(second.path.as_deref(), Some("lib/a b.py"));
        assert_eq!(
            (second.line, second.column, second.end_line),
            (Some(9), None, Some(9))
        );
        let third = &parsed.findings[2];
        assert_eq!(
            (third.severity, third.path.as_deref()),
            (Severity::Warning, None)
        );
        assert_eq!(parsed.findings[3].path.as_deref(), Some("rel/x.js"));
    }

    #[test]
    fn sarif_reads_the_report_from_out_dir_when_stdout_is_empty() {
        let out = tempfile::tempdir().unwrap();
        fs_err::write(out.path().join("a.json"), "not the report").unwrap();
        fs_err::write(out.path().join("z.sarif"), LOG).unwrap();
        let parsed = sarif(&run(Some(0), "  \n", out.path())).unwrap();
        assert_eq!(parsed.findings.len(), 4);
    }

    #[test]
    fn sarif_without_a_report_or_with_garbage_is_an_error() {
        let empty = tempfile::tempdir().unwrap();
        let error = sarif(&run(Some(0), "", empty.path())).unwrap_err();
        assert!(matches!(error, ParseError::Unreadable { .. }), "{error}");
        let error = sarif(&run(Some(2), "", empty.path())).unwrap_err();
        assert!(matches!(error, ParseError::ToolFailed(_)), "{error}");
        for stdout in ["garbage", "{}", r#"{"version": "2.0.0", "runs": []}"#] {
            let error = sarif(&run(Some(0), stdout, Path::new(NO_OUT))).unwrap_err();
            assert!(
                matches!(error, ParseError::Unreadable { .. }),
                "{stdout}: {error}"
            );
        }
    }

    #[test]
    fn sarif_failed_invocations_and_missing_results_are_tool_failures() {
        let failed = r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "T"}},
          "invocations": [{"executionSuccessful": false, "toolExecutionNotifications": [
            {"level": "error", "message": {"text": "rule file broken"}}]}], "results": []}]}"#;
        let error = sarif(&run(Some(0), failed, Path::new(NO_OUT))).unwrap_err();
        assert!(matches!(&error, ParseError::ToolFailed(why) if why.contains("rule file broken")));
        let no_results = r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "T"}}}]}"#;
        let error = sarif(&run(Some(0), no_results, Path::new(NO_OUT))).unwrap_err();
        assert!(matches!(error, ParseError::ToolFailed(_)), "{error}");
        let error = sarif(&run(None, LOG, Path::new(NO_OUT))).unwrap_err();
        assert!(matches!(error, ParseError::ToolFailed(_)), "{error}");
    }

    #[test]
    fn semgrep_exit_codes() {
        let clean = r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Semgrep OSS"}}, "results": []}]}"#;
        assert!(semgrep(&run(Some(0), clean, Path::new(NO_OUT)))
            .unwrap()
            .findings
            .is_empty());
        assert_eq!(
            semgrep(&run(Some(1), LOG, Path::new(NO_OUT)))
                .unwrap()
                .findings
                .len(),
            4
        );
        for code in [Some(2), Some(7), None] {
            let error = semgrep(&run(code, clean, Path::new(NO_OUT))).unwrap_err();
            assert!(
                matches!(error, ParseError::ToolFailed(_)),
                "{code:?}: {error}"
            );
        }
        let error = semgrep(&run(Some(0), "garbage", Path::new(NO_OUT))).unwrap_err();
        assert!(
            matches!(
                error,
                ParseError::Unreadable {
                    parser: "semgrep",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Fc%zz%4"), "a b/c%zz%4");
    }
}
