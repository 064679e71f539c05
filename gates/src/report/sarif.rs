//! SARIF 2.1.0, for code scanning: one run per gate that ran, its rules, and a result per
//! finding with a fingerprint that survives moved lines, so an upload does not duplicate alerts.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::Context;
use crate::finding::Finding;
use crate::verdict::{GateResult, GateStatus, Verdict};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The base the result URIs are relative to, as code scanning expects.
const SRCROOT: &str = "%SRCROOT%";

pub(super) fn render(verdict: &Verdict, context: &Context) -> Value {
    let runs: Vec<Value> = verdict
        .gates
        .iter()
        // An empty run tells code scanning the gate's alerts were fixed; a gate that did not
        // run has fixed nothing.
        .filter(|gate| gate.status != GateStatus::Skipped)
        .map(|gate| run(gate, context))
        .collect();
    json!({"$schema": SCHEMA, "version": "2.1.0", "runs": runs})
}

fn run(gate: &GateResult, context: &Context) -> Value {
    let rules: Vec<&str> = gate
        .findings
        .iter()
        .map(|finding| finding.rule.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let tool = context.tools.get(&gate.name);
    let mut driver = json!({
        "name": tool.map_or(gate.name.as_str(), |tool| tool.name.as_str()),
        "rules": rules.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
    });
    if let Some(version) = tool.and_then(|tool| tool.version.as_deref()) {
        driver["version"] = version.into();
    }
    let mut invocation = json!({"executionSuccessful": gate.status != GateStatus::Error});
    if gate.status == GateStatus::Error {
        let reason = gate.reason.as_deref().unwrap_or("the tool could not run");
        invocation["toolExecutionNotifications"] =
            json!([{"level": "error", "message": {"text": reason}}]);
    }
    let results: Vec<Value> = gate
        .findings
        .iter()
        .map(|finding| result(finding, &rules))
        .collect();
    let mut run = json!({
        "tool": {"driver": driver},
        // Code scanning rejects an upload whose runs share a tool and a category; two gates
        // may use one tool (ruff on src/, ruff on tests/), so each gate is its own category.
        "automationDetails": {"id": format!("{}/", gate.name)},
        "invocations": [invocation],
        "results": results,
    });
    if let Some(root) = context.workspace.as_deref().and_then(file_uri) {
        run["originalUriBaseIds"] = json!({SRCROOT: {"uri": root}});
    }
    run
}

fn result(finding: &Finding, rules: &[&str]) -> Value {
    let text = if finding.message.trim().is_empty() {
        &finding.rule
    } else {
        &finding.message
    };
    let mut result = json!({
        "ruleId": finding.rule,
        "level": finding.severity.as_str(),
        "message": {"text": text},
    });
    if let Some(index) = rules.iter().position(|rule| *rule == finding.rule) {
        result["ruleIndex"] = index.into();
    }
    if let Some(path) = &finding.path {
        let mut physical = json!({"artifactLocation": {"uri": uri(path), "uriBaseId": SRCROOT}});
        if let Some(region) = region(finding) {
            physical["region"] = region;
        }
        result["locations"] = json!([{"physicalLocation": physical}]);
    }
    if !finding.fingerprint.is_empty() {
        result["partialFingerprints"] = json!({"sandboxFingerprint/v1": finding.fingerprint});
    }
    result
}

/// Only what the tool said, and only what SARIF allows: every number at least 1, an end no
/// earlier than its start.
fn region(finding: &Finding) -> Option<Value> {
    let positive = |n: Option<u32>| n.filter(|n| *n >= 1);
    let start = positive(finding.line)?;
    let mut region = json!({"startLine": start});
    let start_column = positive(finding.column);
    if let Some(column) = start_column {
        region["startColumn"] = column.into();
    }
    if let Some(end) = positive(finding.end_line).filter(|end| *end >= start) {
        region["endLine"] = end.into();
        let end_column = positive(finding.end_column)
            .filter(|column| end > start || start_column.is_none_or(|start| *column >= start));
        if let Some(column) = end_column {
            region["endColumn"] = column.into();
        }
    }
    Some(region)
}

/// A workspace-relative path as a relative URI: `/` kept, anything outside RFC 3986's
/// unreserved characters percent-encoded (a space, `&`, `#`, `%`, non-ASCII).
fn uri(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// `file:///abs/workspace/` (the trailing slash makes it a base), when the path is UTF-8.
fn file_uri(dir: &std::path::Path) -> Option<String> {
    let path = dir.to_str()?;
    let path = path.trim_end_matches('/');
    Some(format!("file://{}/", uri(path)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::super::tests::{context, verdict};
    use super::*;

    /// The official schema, with the one pattern of it that is not a valid regular expression
    /// (`language`'s stray `]`, fixed in later SARIF schemas) corrected: a validator refuses to
    /// compile the schema as shipped.
    fn schema() -> jsonschema::Validator {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/sarif-2.1.0-rtm.5.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let broken = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
        assert!(text.contains(broken), "the vendored schema changed");
        let text = text.replace(broken, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#);
        let schema: Value = serde_json::from_str(&text).unwrap();
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap()
    }

    fn valid(log: &Value) {
        let errors: Vec<String> = schema()
            .iter_errors(log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{log:#}");
    }

    #[test]
    fn one_run_per_gate_that_ran_valid_against_the_official_schema() {
        let mut context = context();
        context.workspace = Some("/work/my project".into());
        let log = render(&verdict(), &context);
        valid(&log);
        let runs = log["runs"].as_array().unwrap();
        let names: Vec<&str> = runs
            .iter()
            .map(|run| run["automationDetails"]["id"].as_str().unwrap())
            .collect();
        // `tests` (skipped because the job failed) and `slow` (--skip) have no run.
        assert_eq!(names, ["lint/", "coverage/", "types/", "fmt/"]);
        let lint = &runs[0];
        assert_eq!(lint["tool"]["driver"]["name"], "ruff");
        assert_eq!(lint["tool"]["driver"]["version"], "0.6.9");
        assert_eq!(runs[1]["tool"]["driver"]["name"], "coverage");
        assert_eq!(
            lint["originalUriBaseIds"]["%SRCROOT%"]["uri"],
            "file:///work/my%20project/"
        );
    }

    #[test]
    fn results_carry_rule_level_place_and_fingerprint() {
        let verdict = verdict();
        let log = render(&verdict, &context());
        let lint = &log["runs"][0];
        let rules: Vec<&str> = lint["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rule| rule["id"].as_str().unwrap())
            .collect();
        assert_eq!(rules, ["E,1", "F401", "XSS", "global"]);
        let first = &lint["results"][0];
        assert_eq!(first["ruleId"], "F401");
        assert_eq!(first["ruleIndex"], 1);
        assert_eq!(first["level"], "error");
        assert_eq!(first["message"]["text"], "`os` imported but unused");
        let location = &first["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "src/a%26b.py");
        assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(
            location["region"],
            json!({"startLine": 1, "startColumn": 8, "endLine": 1, "endColumn": 10})
        );
        assert_eq!(
            first["partialFingerprints"]["sandboxFingerprint/v1"],
            verdict.gates[0].findings[0].fingerprint
        );
        // Unknown columns are left out, not made up.
        let second = &lint["results"][1];
        assert_eq!(second["level"], "warning");
        assert_eq!(
            second["locations"][0]["physicalLocation"]["region"],
            json!({"startLine": 3})
        );
        assert_eq!(lint["results"][2]["level"], "note");
        assert!(lint["results"][3].get("locations").is_none());
    }

    #[test]
    fn a_gate_that_could_not_run_says_so_in_its_invocation() {
        let log = render(&verdict(), &context());
        let types = &log["runs"][2];
        let invocation = &types["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        assert_eq!(
            invocation["toolExecutionNotifications"][0]["message"]["text"],
            "`mypy` crashed: Traceback, line 3"
        );
        assert_eq!(
            log["runs"][0]["invocations"][0]["executionSuccessful"],
            true
        );
    }

    #[test]
    fn impossible_regions_are_dropped_not_sent() {
        let bad = Finding::new("R", crate::finding::Severity::Error, "m")
            .at("a.py", Some(5), Some(0))
            .ending(Some(4), Some(0));
        assert_eq!(region(&bad), Some(json!({"startLine": 5})));
        let backwards = Finding::new("R", crate::finding::Severity::Error, "m")
            .at("a.py", Some(5), Some(9))
            .ending(Some(5), Some(3));
        assert_eq!(
            region(&backwards),
            Some(json!({"startLine": 5, "startColumn": 9, "endLine": 5}))
        );
        let zero =
            Finding::new("R", crate::finding::Severity::Error, "m").at("a.py", Some(0), None);
        assert_eq!(region(&zero), None);
        let mut log = json!({"version": "2.1.0", "runs": []});
        log["runs"] = json!([{"tool": {"driver": {"name": "x"}}, "results": [
            {"message": {"text": "m"}, "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": "a.py"}, "region": region(&backwards)}}]}
        ]}]);
        valid(&log);
        // What the writer avoids, the schema refuses: the validation can fail.
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"] =
            json!({"startLine": 0});
        assert!(!schema().is_valid(&log));
    }

    /// The project's own SARIF parser (semgrep's and any tool's logs) reads back what was
    /// written: the same findings, places and messages.
    #[test]
    fn the_sarif_parser_reads_it_back() {
        let mut verdict = verdict();
        // The parser takes a failed invocation for a failed tool, rightly: the crash stays out.
        verdict
            .gates
            .retain(|gate| gate.status != crate::verdict::GateStatus::Error);
        let text = serde_json::to_string(&render(&verdict, &context())).unwrap();
        let run = crate::parsers::ToolRun {
            stdout: &text,
            ..crate::parsers::test_run("/w")
        };
        let parsed = crate::parsers::parse(crate::parsers::ParserKind::Sarif, &run).unwrap();
        let written: Vec<_> = verdict.gates[0]
            .findings
            .iter()
            .map(|f| (&f.rule, f.severity, &f.path, f.line, &f.message))
            .collect();
        let read: Vec<_> = parsed
            .findings
            .iter()
            .map(|f| (&f.rule, f.severity, &f.path, f.line, &f.message))
            .collect();
        assert_eq!(read, written);
    }
}
