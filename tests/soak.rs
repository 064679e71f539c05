//! The soak: many jobs, mixing success, failure, OOM, timeout, fork bomb, output flood and
//! scratch rollback, on both backends, several at once; afterwards nothing of ours is left: no
//! job cgroup, no mount, no scratch or egress directory, no container, no process, and a
//! long-lived library user holds no more descriptors than before. Every Outcome says what
//! happened to its job.
//!
//! `scripts/test` runs the short form (`SANDBOX_SOAK_JOBS`, default 42: each kind six times);
//! `benches/soak` runs a thousand. The test runs alone in its binary, so the host's state before
//! and after belongs to it.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::{Backend, Workspace, SANDBOX};
use serde_json::Value;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Success,
    Failure,
    Oom,
    Timeout,
    ForkBomb,
    Flood,
    Rollback,
}

const KINDS: [Kind; 7] = [
    Kind::Success,
    Kind::Failure,
    Kind::Oom,
    Kind::Timeout,
    Kind::ForkBomb,
    Kind::Flood,
    Kind::Rollback,
];

const FORK_BOMB: &str = "import os, time\n\
    original = os.getpid()\n\
    while True:\n\
    \x20   try:\n\
    \x20       os.fork()\n\
    \x20   except OSError:\n\
    \x20       if os.getpid() == original:\n\
    \x20           raise SystemExit(0)\n\
    \x20       time.sleep(1000)\n";

impl Kind {
    fn args(self) -> Vec<&'static str> {
        match self {
            Kind::Success => vec!["--", "true"],
            Kind::Failure => vec!["--", "sh", "-c", "exit 3"],
            Kind::Oom => vec![
                "--memory",
                "64M",
                "--",
                "python3",
                "-c",
                "b = bytearray(512 * 1024 * 1024)",
            ],
            Kind::Timeout => vec!["--timeout", "1s", "--", "sleep", "30"],
            Kind::ForkBomb => vec![
                "--pids",
                "48",
                "--timeout",
                "30s",
                "--",
                "python3",
                "-c",
                FORK_BOMB,
            ],
            Kind::Flood => vec!["--", "sh", "-c", "yes soak | head -c 40000000"],
            Kind::Rollback => vec!["--", "sh", "-c", "echo partial > rolled-back.txt; exit 1"],
        }
    }

    /// Whether `outcome` (and exit code `code`) is what this kind of job must end in.
    fn ended_right(self, code: i32, outcome: &Value) -> Result<(), String> {
        let status = outcome["status"].as_str().unwrap_or("");
        let limits: Vec<&str> = outcome["limits_hit"]
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let right = match self {
            Kind::Success => code == 0 && status == "exited",
            Kind::Failure => code == 3 && status == "exited",
            Kind::Oom => code == 137 && status == "oom_killed" && limits.contains(&"memory"),
            Kind::Timeout => code == 124 && status == "timed_out",
            Kind::ForkBomb => code == 0 && limits.contains(&"pids"),
            Kind::Flood => code == 0 && outcome["stdout_truncated"] == true,
            Kind::Rollback => {
                code == 1
                    && status == "exited"
                    && outcome["workspace"]["committed"] == false
                    && outcome["workspace"]["added"]
                        .as_array()
                        .is_some_and(|added| added.iter().any(|p| p == "rolled-back.txt"))
            }
        };
        if right {
            Ok(())
        } else {
            Err(format!("{self:?}: exit {code}, outcome {outcome:#}"))
        }
    }
}

/// Everything of ours the host could be left holding.
#[derive(Debug, PartialEq, Eq)]
struct Traces {
    tmp_dirs: BTreeSet<String>,
    mounts: BTreeSet<String>,
    job_cgroups: BTreeSet<String>,
    containers: BTreeSet<String>,
    processes: BTreeSet<String>,
}

fn traces() -> Traces {
    let tmp_dirs = std::fs::read_dir("/tmp")
        .expect("/tmp")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("sandbox-scratch-") || name.starts_with("sandbox-egress-"))
        .collect();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|line| line.contains("sandbox-scratch") || line.contains("sandbox-egress"))
        .map(str::to_owned)
        .collect();
    Traces {
        tmp_dirs,
        mounts,
        job_cgroups: job_cgroups(),
        containers: containers(),
        processes: descendants(),
    }
}

/// Job cgroups: children of the `sandbox` directory under this process's own cgroup (v1: in
/// each controller's hierarchy; v2: the unified one), where the jobs of our children go.
fn job_cgroups() -> BTreeSet<String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    let mut found = BTreeSet::new();
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount = match controllers {
            "" => "/sys/fs/cgroup".to_owned(),
            c if ["memory", "pids"]
                .iter()
                .any(|want| c.split(',').any(|x| x == *want)) =>
            {
                format!("/sys/fs/cgroup/{}", c.split(',').next().unwrap_or(c))
            }
            _ => continue,
        };
        let parent = Path::new(&mount)
            .join(path.trim_start_matches('/'))
            .join("sandbox");
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for entry in entries.filter_map(Result::ok) {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    found.insert(entry.path().display().to_string());
                }
            }
        }
    }
    found
}

fn containers() -> BTreeSet<String> {
    let Ok(output) = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=sandbox.job"])
        .stderr(Stdio::null())
        .output()
    else {
        return BTreeSet::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Live processes descended from this one (the test harness itself starts none but `sandbox`).
fn descendants() -> BTreeSet<String> {
    let me = std::process::id();
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: fields follow the last ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split(' ').nth(1)?.parse().ok()
    };
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let mut at = pid;
        for _ in 0..64 {
            match parent_of(at) {
                Some(parent) if parent == me => {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    found.insert(format!("{pid} {}", comm.trim()));
                    break;
                }
                Some(parent) if parent > 1 => at = parent,
                _ => break,
            }
        }
    }
    found
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fd").count()
}

#[test]
fn a_thousand_jobs_leave_nothing_behind() {
    let jobs: usize = std::env::var("SANDBOX_SOAK_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(42);
    let docker = match Backend::Docker.unavailable() {
        None => true,
        Some(why) => {
            common::skip(&why);
            false
        }
    };
    let log = tempfile::tempdir().expect("tempdir");
    let audit = log.path().join("audit.jsonl");
    let before = traces();

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    // Four at a time on two cores: concurrent, without making each job's timing meaningless.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= jobs {
                    break;
                }
                let kind = KINDS[index % KINDS.len()];
                // Every third round of kinds runs on docker.
                let backend = if docker && (index / KINDS.len()) % 3 == 2 {
                    Backend::Docker
                } else {
                    Backend::Native
                };
                if let Err(why) = run_one(kind, backend, &audit) {
                    failures.lock().expect("lock").push(why);
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} job(s) ended wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    assert_eq!(traces(), before, "left behind after {jobs} jobs");
    let verify = Command::new(SANDBOX)
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .expect("audit verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    if docker {
        library_user_keeps_no_descriptors();
    }
}

fn run_one(kind: Kind, backend: Backend, audit: &Path) -> Result<(), String> {
    let workspace = Workspace::new();
    let output = Command::new(SANDBOX)
        .args(["exec", "--backend", backend.name(), "--profile", "strict"])
        .arg("--workspace")
        .arg(workspace.path())
        .arg("--audit")
        .arg(audit)
        .args(["--output", "json"])
        .args(kind.args())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running sandbox: {e}"))?;
    let outcome: Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{kind:?} on {}: no Outcome ({e}); stderr: {}",
            backend.name(),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let code = output.status.code().unwrap_or(-1);
    kind.ended_right(code, &outcome)
        .map_err(|why| format!("on {}: {why}", backend.name()))?;
    if workspace.file("rolled-back.txt").exists() {
        return Err(format!(
            "{kind:?}: a rolled-back file reached the workspace"
        ));
    }
    Ok(())
}

/// An orchestrator linking the runtime runs job after job in one process: the docker backend's
/// client, runtime and streams must all be closed after each (the native backend forks, which
/// a multi-threaded test process must not do, so it is covered by the jobs above instead).
fn library_user_keeps_no_descriptors() {
    use sandbox_runtime::profile::{self, BackendChoice};
    use sandbox_runtime::{JobSpec, OutputMode, Overrides};

    let workspace = Workspace::new();
    let resolved = profile::load("standard").expect("standard profile");
    let run = || {
        let overrides = Overrides {
            backend: Some(BackendChoice::Docker),
            workspace: Some(workspace.path().to_owned()),
            ..Overrides::default()
        };
        let spec = JobSpec::new(
            &resolved,
            overrides,
            vec!["true".to_owned()],
            OutputMode::Capture,
        )
        .expect("spec");
        let outcome = sandbox_runtime::run(&spec).expect("job");
        assert_eq!(outcome.exit_code, 0, "{outcome:?}");
    };
    // The first jobs open what stays open for the process's life (the engine's address).
    run();
    run();
    let before = open_descriptors();
    for _ in 0..20 {
        run();
    }
    let after = open_descriptors();
    assert!(
        after <= before,
        "descriptors grew from {before} to {after} over 20 jobs"
    );
}
