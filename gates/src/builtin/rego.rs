//! Policies as Rego, evaluated with regorus. Each file is evaluated on its own over
//! `input = {"changes": [...] | null, "findings": [...], "outcome": {...} | null}`:
//! every message in its `deny` set is an error finding, every one in `warn` a warning, and a
//! policy whose `allow` is `false` (as `default allow := false` makes it when nothing allows)
//! is an error finding too. Both Rego v1 (`deny contains msg if …`) and v0 (`deny[msg] {…}`)
//! are read.

use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use super::walk;
use crate::finding::{Finding, Severity};
use crate::parsers::ParseError;

/// No policy reasonably takes this long; one that does is stuck, and the gate says so.
const EVAL_LIMIT: Duration = Duration::from_secs(30);

/// Evaluates every policy file `patterns` names (globs relative to `root`).
pub(crate) fn evaluate(
    root: &Path,
    patterns: &[String],
    input: &serde_json::Value,
) -> Result<Vec<Finding>, ParseError> {
    let mut findings = Vec::new();
    for rel in policy_files(root, patterns)? {
        let text = fs_err::read_to_string(root.join(&rel))
            .map_err(|e| ParseError::ToolFailed(e.to_string()))?;
        // regorus has panicked on odd policies before (`Number::modulo`); a panic in a
        // policy is that policy's error, not the runner's crash.
        let result = catch_unwind(AssertUnwindSafe(|| evaluate_one(&rel, &text, input)));
        match result {
            Ok(Ok(mut found)) => findings.append(&mut found),
            Ok(Err(why)) => {
                return Err(ParseError::ToolFailed(format!("rego policy {rel}: {why}")))
            }
            Err(_) => {
                return Err(ParseError::ToolFailed(format!(
                    "rego policy {rel}: the Rego interpreter panicked"
                )))
            }
        }
    }
    Ok(findings)
}

/// The policy files, each pattern matching at least one: a `rego` entry that names nothing
/// would otherwise pass every change without a word.
fn policy_files(root: &Path, patterns: &[String]) -> Result<Vec<String>, ParseError> {
    let mut all = Vec::new();
    for pattern in patterns {
        let is_glob = pattern.contains(['*', '?', '[', '{']);
        let found: Vec<String> = if is_glob {
            let matcher = walk::glob(pattern, "rego")?.compile_matcher();
            walk::files(root, &[])?
                .into_iter()
                .map(|f| f.rel)
                .filter(|rel| matcher.is_match(rel))
                .collect()
        } else if root.join(pattern).is_file() {
            vec![pattern.clone()]
        } else {
            Vec::new()
        };
        if found.is_empty() {
            return Err(ParseError::ToolFailed(format!(
                "`rego`: `{pattern}` names no policy file under {}",
                root.display()
            )));
        }
        for rel in found {
            if !all.contains(&rel) {
                all.push(rel);
            }
        }
    }
    Ok(all)
}

fn evaluate_one(rel: &str, text: &str, input: &serde_json::Value) -> Result<Vec<Finding>, String> {
    let (mut engine, package) = load(rel, text)?;
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: EVAL_LIMIT,
        check_interval: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
    });
    engine.set_input(Value::from(input.clone()));
    let mut findings = Vec::new();
    for (rule, severity) in [("deny", Severity::Error), ("warn", Severity::Warning)] {
        let value = query(&mut engine, &format!("{package}.{rule}"))?;
        for message in messages(&value) {
            findings.push(finding(rel, severity, message));
        }
    }
    if query(&mut engine, &format!("{package}.allow"))? == serde_json::Value::Bool(false) {
        let message = "`allow` is false: the policy denies by default and no rule allowed this";
        findings.push(Finding::new("policy/rego", Severity::Error, message).at(rel, None, None));
    }
    Ok(findings)
}

/// Parses the policy as Rego v1, and as v0 when v1 cannot read it.
fn load(rel: &str, text: &str) -> Result<(Engine, String), String> {
    let mut engine = Engine::new();
    let v1 = match engine.add_policy(rel.to_owned(), text.to_owned()) {
        Ok(package) => return Ok((engine, package)),
        Err(e) => e,
    };
    let mut engine = Engine::new();
    engine.set_rego_v0(true);
    match engine.add_policy(rel.to_owned(), text.to_owned()) {
        Ok(package) => Ok((engine, package)),
        Err(_) => Err(v1.to_string()),
    }
}

/// The value of `rule` as JSON; `null` when the policy leaves it undefined.
fn query(engine: &mut Engine, rule: &str) -> Result<serde_json::Value, String> {
    let results = engine
        .eval_query(rule.to_owned(), false)
        .map_err(|e| e.to_string())?;
    let Some(value) = results
        .result
        .first()
        .and_then(|r| r.expressions.first())
        .map(|e| &e.value)
    else {
        return Ok(serde_json::Value::Null);
    };
    if *value == Value::Undefined {
        return Ok(serde_json::Value::Null);
    }
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// What a `deny` or `warn` entry says: a string, or an object with `msg` (and optionally
/// `path` and `line`, to point at a file).
struct Message {
    text: String,
    path: Option<String>,
    line: Option<u32>,
}

fn messages(value: &serde_json::Value) -> Vec<Message> {
    let items = match value {
        serde_json::Value::Array(items) => items.as_slice(),
        serde_json::Value::Null => &[],
        other => std::slice::from_ref(other),
    };
    items
        .iter()
        .map(|item| match item {
            serde_json::Value::String(text) => Message {
                text: text.clone(),
                path: None,
                line: None,
            },
            serde_json::Value::Object(fields) => Message {
                text: fields
                    .get("msg")
                    .or_else(|| fields.get("message"))
                    .and_then(|m| m.as_str())
                    .map_or_else(|| item.to_string(), str::to_owned),
                path: fields
                    .get("path")
                    .and_then(|p| p.as_str())
                    .map(str::to_owned),
                line: fields
                    .get("line")
                    .and_then(|l| l.as_u64())
                    .and_then(|l| u32::try_from(l).ok()),
            },
            other => Message {
                text: other.to_string(),
                path: None,
                line: None,
            },
        })
        .collect()
}

fn finding(rel: &str, severity: Severity, message: Message) -> Finding {
    let finding = Finding::new("policy/rego", severity, message.text);
    match message.path {
        Some(path) => finding.at(path, message.line, None),
        None => finding.at(rel, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &str, input: serde_json::Value) -> Vec<String> {
        evaluate_one("p.rego", policy, &input)
            .unwrap()
            .into_iter()
            .map(|f| f.message)
            .collect()
    }

    #[test]
    fn reads_v0_and_v1_deny_sets() {
        let v0 = "package p\ndeny[msg] { input.n > 1; msg := \"too many\" }\n";
        let v1 = "package p\ndeny contains msg if { input.n > 1; msg := \"too many\" }\n";
        for policy in [v0, v1] {
            assert_eq!(run(policy, serde_json::json!({"n": 2})), ["too many"]);
            assert!(run(policy, serde_json::json!({"n": 1})).is_empty());
        }
    }

    #[test]
    fn allow_false_is_a_finding_and_undefined_allow_is_not() {
        let policy = "package p\ndefault allow := false\nallow if input.ok\n";
        assert_eq!(run(policy, serde_json::json!({"ok": false})).len(), 1);
        assert!(run(policy, serde_json::json!({"ok": true})).is_empty());
        assert!(run("package p\nallow if input.ok\n", serde_json::json!({})).is_empty());
    }

    #[test]
    fn object_messages_point_at_files() {
        let policy =
            "package p\ndeny contains {\"msg\": \"no\", \"path\": \"a.py\", \"line\": 3} if true\n";
        let found = evaluate_one("p.rego", policy, &serde_json::json!({})).unwrap();
        assert_eq!(found[0].path.as_deref(), Some("a.py"));
        assert_eq!(found[0].line, Some(3));
        assert_eq!(found[0].message, "no");
    }

    #[test]
    fn a_policy_that_does_not_parse_is_an_error() {
        let err = evaluate_one(
            "p.rego",
            "package p\ndeny contains if {",
            &serde_json::json!({}),
        );
        assert!(err.is_err());
    }
}
