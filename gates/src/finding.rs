//! One finding model for every tool: what a gate reports, where, and how to recognise it again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    /// The word the Verdict's JSON uses (also SARIF's `level`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A problem a gate found. Paths are relative to the workspace, '/'-separated; lines and
/// columns are 1-based (parsers normalise tools that count from 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The gate that found it (filled in by the runner).
    pub gate: String,
    /// The tool's rule id (`F401`, `clippy::needless_return`, `B602`, ...).
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub path: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub end_line: Option<u32>,
    pub end_column: Option<u32>,
    /// Whether the tool's fix command can fix it.
    pub fixable: bool,
    /// Stable across runs and unrelated edits: gate, rule, path and message, not line numbers
    /// (filled in by the runner).
    pub fingerprint: String,
}

impl Finding {
    pub fn new(rule: impl Into<String>, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            gate: String::new(),
            rule: rule.into(),
            severity,
            message: message.into(),
            path: None,
            line: None,
            column: None,
            end_line: None,
            end_column: None,
            fixable: false,
            fingerprint: String::new(),
        }
    }

    /// Where it is: a workspace-relative path, and a 1-based line and column when known.
    pub fn at(mut self, path: impl Into<String>, line: Option<u32>, column: Option<u32>) -> Self {
        self.path = Some(path.into());
        self.line = line;
        self.column = column;
        self
    }

    pub fn ending(mut self, end_line: Option<u32>, end_column: Option<u32>) -> Self {
        self.end_line = end_line;
        self.end_column = end_column;
        self
    }

    pub fn fixable(mut self, fixable: bool) -> Self {
        self.fixable = fixable;
        self
    }

    /// Sets `gate` and `fingerprint`: blake3 of gate, rule, path and message.
    pub fn seal(&mut self, gate: &str) {
        self.gate = gate.to_owned();
        let mut hasher = blake3::Hasher::new();
        for part in [
            gate,
            &self.rule,
            self.path.as_deref().unwrap_or(""),
            &self.message,
        ] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        self.fingerprint = hasher.finalize().to_hex()[..32].to_owned();
    }
}
