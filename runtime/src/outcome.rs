//! The Outcome of one job (`sandbox/outcome@1`): what ran, how it ended, and what isolation was
//! actually in force. Both backends fill the same type.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::profile::{NetworkMode, WorkspaceMode};

pub const OUTCOME_SCHEMA: &str = "sandbox/outcome@1";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    pub schema: String,
    pub id: String,
    pub profile: String,
    pub backend: String,
    /// Why this backend ran (`--backend native`, or what `auto` found).
    pub backend_reason: String,
    pub command: Vec<String>,
    pub status: Status,
    /// What `sandbox exec` exits with: the job's code, 128+signal, 124 on timeout, ...
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub duration_ms: f64,
    pub cpu_ms: f64,
    pub peak_memory_bytes: Option<u64>,
    pub limits_hit: Vec<LimitKind>,
    pub isolation: Isolation,
    pub network: NetworkReport,
    pub secrets: Vec<String>,
    pub redactions: u64,
    pub workspace: WorkspaceReport,
    /// Captured output (`--output json`); null when it was streamed.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// What the sandbox itself said about the run (why a status is what it is).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Exited,
    Signaled,
    TimedOut,
    OomKilled,
    LimitExceeded,
    SandboxError,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Memory,
    Pids,
    WallTime,
    CpuTime,
    Disk,
    Files,
    FileSize,
    Output,
}

/// Every isolation layer as it was applied, not as it was asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Isolation {
    pub user_ns: bool,
    /// Namespaces the job was put in: `mount`, `pid`, `net`, `ipc`, `uts`, `cgroup`, `user`.
    pub namespaces: Vec<String>,
    /// The landlock ABI enforced, or null when landlock was not applied.
    pub landlock_abi: Option<i32>,
    pub seccomp: bool,
    /// `v1`, `v2` or null when no cgroup limited the job.
    pub cgroup: Option<String>,
    pub net: NetworkMode,
    pub readonly_root: bool,
    pub no_new_privs: bool,
    pub capabilities_dropped: bool,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NetworkReport {
    pub mode: NetworkMode,
    pub events: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceReport {
    pub mode: WorkspaceMode,
    pub path: String,
    pub committed: bool,
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
}

/// The JSON Schema of the Outcome, as committed in `schemas/outcome.schema.json`.
pub fn outcome_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Outcome)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_schema_matches_the_type() {
        let committed: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/outcome.schema.json")).unwrap();
        assert_eq!(
            committed,
            super::outcome_json_schema(),
            "schemas/outcome.schema.json is stale: run `cargo run -- schema > schemas/outcome.schema.json`"
        );
    }
}
