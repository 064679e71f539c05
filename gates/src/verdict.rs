//! The Verdict (`sandbox/verdict@1`): every gate's result and one status, read the same way by
//! an orchestrator, a CI step and a git hook.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};
use crate::presets::GateKind;
use sandbox_runtime::trust::TrustReport;

pub const VERDICT_SCHEMA: &str = "sandbox/verdict@1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateStatus {
    Pass,
    Fail,
    /// The tool itself broke (missing, crashed, timed out, unreadable output): never a pass.
    Error,
    Skipped,
}

impl GateStatus {
    /// The word the Verdict's JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Pass => "pass",
            GateStatus::Fail => "fail",
            GateStatus::Error => "error",
            GateStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerdictStatus {
    Pass,
    Fail,
    Error,
}

impl VerdictStatus {
    /// The word the Verdict's JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictStatus::Pass => "pass",
            VerdictStatus::Fail => "fail",
            VerdictStatus::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Threshold {
    pub min: BTreeMap<String, f64>,
    pub max: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GateResult {
    pub name: String,
    pub kind: GateKind,
    pub status: GateStatus,
    /// Taken from the gate cache: a run before had the same key (tree, gate, tool, profile,
    /// backend), so a fresh run would say the same.
    pub cached: bool,
    pub duration_ms: f64,
    pub metrics: BTreeMap<String, f64>,
    pub threshold: Threshold,
    pub findings: Vec<Finding>,
    /// A coverage gate's lines per file, as its report gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<crate::coverage::FileCoverage>,
    /// Why the status is what it is, in words (an error's cause, a threshold missed).
    pub reason: Option<String>,
    /// The gate job's Outcome (stdout and stderr trimmed).
    #[schemars(with = "Option<sandbox_runtime::Outcome>")]
    pub outcome: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub gates: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
    pub findings: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Verdict {
    pub schema: String,
    pub status: VerdictStatus,
    pub duration_ms: f64,
    /// The job's Outcome (`sandbox check`).
    #[schemars(with = "Option<sandbox_runtime::Outcome>")]
    pub job: Option<serde_json::Value>,
    pub gates: Vec<GateResult>,
    /// `--fix`: what each gate's fix did, before the gates ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<crate::fix::FixResult>,
    pub summary: Summary,
    /// Which trust the project's configuration had (DESIGN §12).
    #[serde(default)]
    pub trust: TrustReport,
}

impl Verdict {
    /// A failed gate fails the verdict; otherwise a broken gate makes it an error (retryable);
    /// otherwise it passes.
    pub fn new(gates: Vec<GateResult>, duration_ms: f64, job: Option<serde_json::Value>) -> Self {
        let count = |status| gates.iter().filter(|g| g.status == status).count();
        let summary = Summary {
            gates: gates.len(),
            passed: count(GateStatus::Pass),
            failed: count(GateStatus::Fail),
            errors: count(GateStatus::Error),
            skipped: count(GateStatus::Skipped),
            findings: gates.iter().map(|g| g.findings.len()).sum(),
        };
        let status = if summary.failed > 0 {
            VerdictStatus::Fail
        } else if summary.errors > 0 {
            VerdictStatus::Error
        } else {
            VerdictStatus::Pass
        };
        Verdict {
            schema: VERDICT_SCHEMA.into(),
            status,
            duration_ms,
            job,
            gates,
            fixes: Vec::new(),
            summary,
            trust: TrustReport::default(),
        }
    }

    /// 0 pass, 1 a gate failed, 3 a gate could not run (2, a bad configuration, is decided
    /// before there is a Verdict).
    pub fn exit_code(&self) -> u8 {
        match self.status {
            VerdictStatus::Pass => 0,
            VerdictStatus::Fail => 1,
            VerdictStatus::Error => 3,
        }
    }
}

/// The JSON Schema of the Verdict, as committed in `schemas/verdict.schema.json`.
pub fn verdict_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Verdict)).unwrap_or_default()
}

/// The status a gate's parsed findings and metrics earn against its thresholds: any finding of
/// severity warning or worse fails it, as does a metric outside `min`/`max`. A threshold on a
/// metric the output lacks is an error, except the `diff_` metrics, which exist only with
/// `--changed-since`.
pub fn judge(
    findings: &[Finding],
    metrics: &BTreeMap<String, f64>,
    threshold: &Threshold,
) -> (GateStatus, Option<String>) {
    let mut reasons = Vec::new();
    let serious = findings
        .iter()
        .filter(|f| f.severity <= Severity::Warning)
        .count();
    if serious > 0 {
        reasons.push(format!("{serious} finding(s)"));
    }
    for (name, bound, below) in threshold
        .min
        .iter()
        .map(|(n, b)| (n, b, true))
        .chain(threshold.max.iter().map(|(n, b)| (n, b, false)))
    {
        match metrics.get(name) {
            None if name.starts_with("diff_") => {}
            None => {
                return (
                    GateStatus::Error,
                    Some(format!(
                        "the threshold names `{name}`, which the tool's output does not have \
                         (it has: {})",
                        metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                )
            }
            Some(value) if below && value < bound => {
                reasons.push(format!("{name} {value:.2} is below the minimum {bound}"))
            }
            Some(value) if !below && value > bound => {
                reasons.push(format!("{name} {value:.2} is above the maximum {bound}"))
            }
            Some(_) => {}
        }
    }
    if reasons.is_empty() {
        (GateStatus::Pass, None)
    } else {
        (GateStatus::Fail, Some(reasons.join("; ")))
    }
}
