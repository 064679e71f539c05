//! The Outcome of one job (`sandbox/outcome@1`): what ran, how it ended, and what isolation was
//! actually in force. Both backends fill the same type.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::network::NetworkEvent;
use crate::output::Captured;
use crate::profile::{CommitPolicy, NetworkMode, WorkspaceMode};
use crate::scratch::ViewKind;
use crate::spec::{JobSpec, OutputMode};
use crate::trust::TrustReport;
use crate::workspace::{CommitReport, DiffBudget, Patch};

pub const OUTCOME_SCHEMA: &str = "sandbox/outcome@1";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    pub schema: String,
    pub id: String,
    pub profile: String,
    pub backend: String,
    /// Why this backend ran (`--backend native`, or what `auto` found).
    pub backend_reason: String,
    /// Which trust the project's configuration had (DESIGN §12).
    #[serde(default)]
    pub trust: TrustReport,
    pub command: Vec<String>,
    pub status: Status,
    /// What `sandbox exec` exits with: the job's code, 128+signal, 124 on timeout, ...
    pub exit_code: i32,
    /// Why the sandbox could not run the job, or not deliver what it did (status
    /// `sandbox_error`), redacted; null otherwise.
    pub reason: Option<String>,
    /// Whether the same job, tried again unchanged, may run: true only for a `sandbox_error`
    /// from transient infrastructure (an engine that did not answer, a resource briefly
    /// exhausted); false for configuration (a bad profile or flag, a requirement this host
    /// cannot meet, an unwritable audit log) and for every other status.
    pub retryable: bool,
    pub signal: Option<i32>,
    pub duration_ms: f64,
    pub cpu_ms: f64,
    pub peak_memory_bytes: Option<u64>,
    pub limits_hit: Vec<LimitKind>,
    /// Limits of the profile this host did not enforce, each also explained in `notes`: no
    /// cgroup for this user, a kernel without swap accounting, an engine without the
    /// controller. No rlimit stands in for them (see `CgroupLimit`). A profile that lists
    /// `cgroup` in `process.require` refuses to run instead.
    #[serde(default)]
    pub limits_unenforced: Vec<CgroupLimit>,
    pub isolation: Isolation,
    pub network: NetworkReport,
    /// The names of the secrets the job was given (never their values).
    pub secrets: Vec<String>,
    /// How many times a secret's value (or an encoded form) was replaced by
    /// `[REDACTED:NAME]` in the output and in what we report.
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
    ChangedFiles,
    ChangedLines,
}

/// A limit only a cgroup enforces, named as in the profile's `[limits]`. No rlimit means the
/// same thing: RLIMIT_AS counts address space (a JVM or a Go program reserves gigabytes it never
/// touches), RLIMIT_NPROC counts every process of the user's uid on the host, not the job's,
/// and RLIMIT_CPU is time per process, not a share of the machine.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CgroupLimit {
    Memory,
    Pids,
    Cpus,
}

impl CgroupLimit {
    pub const ALL: [CgroupLimit; 3] = [CgroupLimit::Memory, CgroupLimit::Pids, CgroupLimit::Cpus];

    pub fn name(self) -> &'static str {
        match self {
            CgroupLimit::Memory => "memory",
            CgroupLimit::Pids => "pids",
            CgroupLimit::Cpus => "cpus",
        }
    }

    /// `limits.memory = 100M`, as the profile says it.
    fn describe(self, limits: &crate::profile::Limits) -> String {
        let value = match self {
            CgroupLimit::Memory => limits.memory.to_string(),
            CgroupLimit::Pids => limits.pids.to_string(),
            CgroupLimit::Cpus => limits.cpus.to_string(),
        };
        format!("limits.{} = {value}", self.name())
    }
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
    /// Every connection attempt through the egress proxy, allowed or denied (allowlist mode).
    pub events: Vec<NetworkEvent>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceReport {
    pub mode: WorkspaceMode,
    pub path: String,
    /// Scratch: how the copy-on-write view was made.
    pub view: Option<ViewKind>,
    /// Scratch: when the changes are written back.
    pub commit: Option<CommitPolicy>,
    /// Scratch: whether every change was written back to `path`.
    pub committed: bool,
    /// Paths relative to the workspace: files, directories and symlinks.
    pub added: Vec<String>,
    /// Content, type, mode or symlink target changed.
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
    /// Paths whose permission bits changed (also listed as modified).
    pub mode_changed: Vec<String>,
    /// Symlinks the job created or retargeted, with their targets: a link pointing out of the
    /// workspace is committed as a link, never followed.
    pub symlinks: Vec<SymlinkReport>,
    /// Fifos, sockets and devices the job made: never written back.
    pub skipped: Vec<String>,
    /// Bytes of new content (added and modified files).
    pub bytes_added: u64,
    /// Entries the job created.
    pub files_created: u64,
    /// Lines the patch adds and removes; counted when `--diff` or `limits.changed_lines`
    /// asked for the patch.
    pub lines_added: Option<u64>,
    pub lines_removed: Option<u64>,
    /// Changed files the patch does not show, and whose lines are not counted: the diff budget
    /// (`diff`) ran out before them. With `limits.changed_lines` set, the job then counts as
    /// over it.
    pub not_diffed: Vec<String>,
    /// What rendering the patch cost against its budget; null when no patch was asked for.
    pub diff: Option<DiffReport>,
    /// `blake3:` hash of the change set (paths, kinds, modes and new contents).
    pub change_hash: Option<String>,
    /// Changed files holding a secret's value: the changes are not written back.
    pub secret_files: Vec<SecretInFile>,
    /// Protected paths the job changed (`.sandbox/**`, `sandbox.toml`, CI and hook
    /// definitions): while any is listed, nothing is written back.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Changes inside `.git`, dropped from the change set: never written back.
    #[serde(default)]
    pub dropped: Vec<String>,
    /// What writing back did, file by file, when it was tried.
    pub write_back: Option<CommitReport>,
}

/// The patch is rendered by `sandbox` after the job, outside the job's limits, within one
/// budget per job of time and of bytes read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DiffReport {
    pub ms: f64,
    pub bytes: u64,
    pub budget_ms: u64,
    pub budget_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SymlinkReport {
    pub path: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SecretInFile {
    pub path: String,
    /// Names of the secrets found in it.
    pub secrets: Vec<String>,
}

/// What a backend saw of how a job ended; `Outcome::conclude` turns it into status, exit code
/// and `limits_hit` the same way for every backend.
#[derive(Debug, Default)]
pub struct Ending {
    pub timed_out: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Processes the kernel's OOM killer ended in the job.
    pub oom_kills: u64,
    /// Forks refused at the pids limit.
    pub pids_max_hits: u64,
    /// tmpfs mounts that ended full of bytes, or of inodes.
    pub full_tmpfs: Vec<PathBuf>,
    pub exhausted_inodes: Vec<PathBuf>,
}

impl Outcome {
    /// An Outcome with everything but how the job ended filled in from the spec.
    pub fn new(
        spec: &JobSpec,
        backend: &str,
        backend_reason: String,
        isolation: Isolation,
    ) -> Outcome {
        Outcome {
            backend: backend.into(),
            backend_reason,
            trust: spec.trust.clone(),
            isolation,
            network: NetworkReport {
                mode: spec.network,
                events: Vec::new(),
            },
            secrets: spec.secrets.iter().map(|s| s.name.clone()).collect(),
            workspace: WorkspaceReport {
                mode: spec.workspace_mode,
                path: spec.workspace.display().to_string(),
                ..WorkspaceReport::default()
            },
            // What of a hidden home the job was shown, so nobody wonders why `cargo` runs.
            notes: (!spec.toolchains.is_empty())
                .then(|| {
                    format!(
                        "toolchains under a hidden home, shown read-only (credentials stay \
                         hidden): {}",
                        spec.toolchains.join(", ")
                    )
                })
                .into_iter()
                .collect(),
            ..Outcome::blank(spec.id.clone(), &spec.profile, spec.command.clone())
        }
    }

    /// What is known of a job before it runs: nothing but its name, profile and command; the
    /// sandbox has not (yet) run it.
    fn blank(id: String, profile: &str, command: Vec<String>) -> Outcome {
        Outcome {
            schema: OUTCOME_SCHEMA.into(),
            id,
            profile: profile.to_owned(),
            backend: String::new(),
            backend_reason: String::new(),
            trust: TrustReport::default(),
            command,
            status: Status::SandboxError,
            exit_code: 125,
            reason: None,
            retryable: false,
            signal: None,
            duration_ms: 0.0,
            cpu_ms: 0.0,
            peak_memory_bytes: None,
            limits_hit: Vec::new(),
            limits_unenforced: Vec::new(),
            isolation: Isolation::default(),
            network: NetworkReport {
                mode: NetworkMode::default(),
                events: Vec::new(),
            },
            secrets: Vec::new(),
            redactions: 0,
            workspace: WorkspaceReport::default(),
            stdout: None,
            stderr: None,
            stdout_truncated: false,
            stderr_truncated: false,
            notes: Vec::new(),
        }
    }

    /// The Outcome of a job the sandbox could not run (refused, failed to set up, interrupted),
    /// with what the spec says of it; `refuse` says why.
    pub fn failed(spec: &JobSpec) -> Outcome {
        let backend = serde_json::to_value(spec.backend)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        Outcome::new(spec, &backend, String::new(), Isolation::default())
    }

    /// The Outcome of a job refused before there was a spec (a profile that does not load, a
    /// bad flag): only what the command line said. `refuse` says why.
    pub fn unresolved(profile: &str, command: Vec<String>, workspace: Option<&Path>) -> Outcome {
        Outcome {
            workspace: WorkspaceReport {
                path: workspace
                    .map(|path| path.display().to_string())
                    .unwrap_or_default(),
                ..WorkspaceReport::default()
            },
            ..Outcome::blank(crate::spec::new_job_id(), profile, command)
        }
    }

    /// Makes this the Outcome of a job the sandbox could not run or deliver: status
    /// `sandbox_error`, `reason` (already redacted) and whether a retry may help. A job that ran
    /// keeps what it measured, so the caller sees what happened before the sandbox failed.
    pub fn refuse(&mut self, reason: String, exit_code: i32, retryable: bool) {
        self.status = Status::SandboxError;
        self.exit_code = exit_code;
        self.reason = Some(reason);
        self.retryable = retryable;
    }

    /// Records what the patch counted and what it cost; files it left out are named in a note
    /// too, never only in `workspace.not_diffed`.
    pub fn record_patch(&mut self, patch: &Patch, budget: DiffBudget, took: Duration) {
        let report = &mut self.workspace;
        report.lines_added = Some(patch.lines_added);
        report.lines_removed = Some(patch.lines_removed);
        report.not_diffed = patch.not_diffed.clone();
        report.diff = Some(DiffReport {
            ms: took.as_secs_f64() * 1000.0,
            bytes: patch.bytes_read,
            budget_ms: u64::try_from(budget.time.as_millis()).unwrap_or(u64::MAX),
            budget_bytes: budget.bytes,
        });
        if !patch.not_diffed.is_empty() {
            self.notes.push(format!(
                "the diff budget ({} ms, {} bytes of content) ran out: {} not diffed, their \
                 lines not counted",
                budget.time.as_millis(),
                budget.bytes,
                patch.not_diffed.join(", ")
            ));
        }
    }

    /// Records limits the host did not enforce, in `limits_unenforced` and in a note saying
    /// which values went unenforced and `why` (never silently: issue 16).
    pub fn unenforced(&mut self, spec: &JobSpec, limits: &[CgroupLimit], why: &str) {
        if limits.is_empty() {
            return;
        }
        let named: Vec<String> = limits.iter().map(|l| l.describe(&spec.limits)).collect();
        self.notes.push(format!(
            "not enforced: {} ({why}); add `cgroup` to process.require to refuse such a run",
            named.join(", ")
        ));
        self.limits_unenforced.extend_from_slice(limits);
        self.limits_unenforced.sort();
        self.limits_unenforced.dedup();
    }

    /// Records the captured output (kept only in capture mode) and its redactions.
    pub fn set_output(&mut self, mode: OutputMode, stdout: Captured, stderr: Captured) {
        self.stdout_truncated = stdout.truncated;
        self.stderr_truncated = stderr.truncated;
        self.redactions += stdout.redactions + stderr.redactions;
        if mode == OutputMode::Capture {
            self.stdout = Some(String::from_utf8_lossy(&stdout.bytes).into_owned());
            self.stderr = Some(String::from_utf8_lossy(&stderr.bytes).into_owned());
        }
    }

    /// Sets status, exit code, signal, `limits_hit` and the notes explaining them. Fails when
    /// the backend could not tell how the job ended.
    pub fn conclude(&mut self, spec: &JobSpec, ending: Ending) -> Result<(), String> {
        const SIGKILL: i32 = libc::SIGKILL;
        let mut hit = Vec::new();
        if ending.oom_kills > 0 {
            hit.push(LimitKind::Memory);
            self.notes.push(format!(
                "the kernel's OOM killer ended {} process(es) at the {} memory limit",
                ending.oom_kills, spec.limits.memory
            ));
        }
        if ending.pids_max_hits > 0 {
            hit.push(LimitKind::Pids);
            self.notes.push(format!(
                "{} fork(s) failed at the limit of {} processes",
                ending.pids_max_hits, spec.limits.pids
            ));
        }
        if self.stdout_truncated || self.stderr_truncated {
            hit.push(LimitKind::Output);
            self.notes.push(format!(
                "output beyond {} was dropped; the job ran on",
                spec.limits.output
            ));
        }
        let paths = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !ending.full_tmpfs.is_empty() {
            hit.push(LimitKind::Disk);
            self.notes
                .push(format!("tmpfs full: {}", paths(&ending.full_tmpfs)));
        }
        if !ending.exhausted_inodes.is_empty() {
            hit.push(LimitKind::Files);
            self.notes.push(format!(
                "tmpfs out of inodes: {}",
                paths(&ending.exhausted_inodes)
            ));
        }
        let cpu_limit_ms = spec.limits.cpu_time.0.as_secs_f64() * 1000.0;
        let (status, code) = if ending.timed_out {
            hit.push(LimitKind::WallTime);
            self.notes.push(format!(
                "killed at the wall-time limit of {}",
                spec.limits.wall_time
            ));
            (Status::TimedOut, 124)
        } else if let Some(code) = ending.exit_code {
            (Status::Exited, code)
        } else if let Some(signal) = ending.signal {
            self.signal = Some(signal);
            let status = match signal {
                SIGKILL if ending.oom_kills > 0 => Status::OomKilled,
                libc::SIGXCPU => {
                    hit.push(LimitKind::CpuTime);
                    Status::LimitExceeded
                }
                SIGKILL if self.cpu_ms >= cpu_limit_ms => {
                    hit.push(LimitKind::CpuTime);
                    Status::LimitExceeded
                }
                libc::SIGXFSZ => {
                    hit.push(LimitKind::FileSize);
                    Status::LimitExceeded
                }
                _ => Status::Signaled,
            };
            (status, 128 + signal)
        } else if ending.oom_kills > 0 {
            // The OOM killer took the job's first process (the jail's init, or the container's),
            // which ends the whole job.
            self.signal = Some(SIGKILL);
            (Status::OomKilled, 128 + SIGKILL)
        } else {
            return Err("the backend could not tell how the job ended".into());
        };
        self.status = status;
        self.exit_code = code;
        self.limits_hit = hit;
        let caps: Vec<LimitKind> = self
            .limits_hit
            .iter()
            .copied()
            .filter(|kind| matches!(kind, LimitKind::Disk | LimitKind::Files))
            .collect();
        self.exceeded(&caps);
        Ok(())
    }

    /// Records caps the job went over (disk, files, changed files or lines): the status becomes
    /// `limit_exceeded`, and a job that exited 0 anyway exits 1, so that no caller reading
    /// only the exit code takes it for a success.
    pub fn exceeded(&mut self, caps: &[LimitKind]) {
        self.limits_hit.extend_from_slice(caps);
        self.limits_hit.sort();
        self.limits_hit.dedup();
        if caps.is_empty() || self.status != Status::Exited {
            return;
        }
        self.status = Status::LimitExceeded;
        if self.exit_code == 0 {
            self.exit_code = 1;
        }
    }
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
            "schemas/outcome.schema.json is stale: run `SANDBOX_BLESS=1 cargo test --test schemas committed`"
        );
    }
}
