//! `sandbox audit verify|show`: check and read the hash-chained log `sandbox exec` appends to.

use std::path::PathBuf;

use sandbox_runtime::audit::{self, Entry, VerifyReport};
use serde_json::Value;

use super::{print_json, print_text};
use crate::cli::{AuditCommand, OutputFormat};

/// Exit code of `verify` when the log is readable but is not the chain its writers made.
const TAMPERED: u8 = 1;

pub fn run(command: AuditCommand) -> anyhow::Result<u8> {
    match command {
        AuditCommand::Verify {
            path,
            anchor,
            output,
        } => {
            let path = log_path(path)?;
            let report = audit::verify(&path, anchor.as_deref())?;
            match output {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Text => print_text(&verdict(&path, &report))?,
            }
            Ok(if report.intact { 0 } else { TAMPERED })
        }
        AuditCommand::Show { path, output } => {
            let entries = audit::read(&log_path(path)?)?;
            match output {
                OutputFormat::Json => {
                    let records: Vec<Value> = entries.into_iter().map(entry_json).collect();
                    print_json(&records)?;
                }
                OutputFormat::Text => {
                    print_text(&entries.iter().map(describe).collect::<String>())?;
                }
            }
            Ok(0)
        }
    }
}

fn log_path(path: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match path {
        Some(path) => Ok(path),
        None => Ok(audit::default_path()?),
    }
}

fn verdict(path: &std::path::Path, report: &VerifyReport) -> String {
    let Some(problem) = &report.problem else {
        return format!("ok: {} records, head {}\n", report.records, report.head);
    };
    let mut at = path.display().to_string();
    if let Some(line) = problem.line {
        at.push_str(&format!(" line {line}"));
    }
    if let Some(seq) = problem.seq {
        at.push_str(&format!(" (seq {seq})"));
    }
    format!(
        "tampered: {at}: {}: {}\n{} records before it chain correctly, head {}\n",
        problem.kind, problem.detail, report.records, report.head
    )
}

/// A record as JSON; a line that is not one says so with its line number.
fn entry_json(entry: Entry) -> Value {
    match entry.record {
        Ok(record) => record,
        Err(why) => serde_json::json!({"line": entry.line, "unparseable": why}),
    }
}

/// Three lines per job: who ran what where and how it ended, the command, the workspace.
fn describe(entry: &Entry) -> String {
    let record = match &entry.record {
        Ok(record) => record,
        Err(why) => return format!("line {}: unparseable: {why}\n\n", entry.line),
    };
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let workspace = &record["workspace"];
    let mut limits = String::new();
    if let Some(hit) = record["limits_hit"]
        .as_array()
        .filter(|hit| !hit.is_empty())
    {
        let names: Vec<String> = hit.iter().map(text).collect();
        limits = format!(", limits hit: {}", names.join(", "));
    }
    let command: Vec<String> = record["command"]
        .as_array()
        .map(|args| args.iter().map(|arg| shell_quote(&text(arg))).collect())
        .unwrap_or_default();
    format!(
        "#{} {} job {} {}/{} {} exit {}{limits}\n  $ {}\n  workspace {} ({}, {})\n\n",
        text(&record["seq"]),
        text(&record["time"]),
        text(&record["id"]),
        text(&record["profile"]),
        text(&record["backend"]),
        text(&record["status"]),
        text(&record["exit_code"]),
        command.join(" "),
        text(&workspace["path"]),
        text(&workspace["mode"]),
        if workspace["committed"] == true {
            "committed"
        } else {
            "not committed"
        },
    )
}

/// Quotes an argument the way a POSIX shell would need it, so a shown command can be read
/// (and pasted) unambiguously.
fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
