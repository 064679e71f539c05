#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]
//! `sandbox` itself interrupted: the job dies with it and nothing is left behind.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Workspace, SANDBOX};

fn processes_with(token: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(token) && !cmdline.contains("sandbox"))
        .collect()
}

/// Job cgroups are named `<time>-<supervisor pid in hex>-<n>`.
fn leftover_cgroups(supervisor: u32) -> Vec<String> {
    let marker = format!("-{supervisor:x}-");
    let roots = [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup",
    ];
    let mut found = Vec::new();
    for root in roots {
        let mut stack = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
            {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if entry.file_name().to_string_lossy().contains(&marker) {
                        found.push(entry.path().display().to_string());
                    }
                    stack.push(entry.path());
                }
            }
        }
    }
    found
}

fn sigterm_kills_the_job_and_cleans_up(backend: Backend) {
    let ws = Workspace::new();
    // Unique per test process and backend (both run at once here), so that neither a leftover
    // of an earlier run nor the other backend's job can be mistaken for this job.
    let token = &format!("4747.{}{}", std::process::id(), backend as u8);
    let child = Command::new(SANDBOX)
        .args([
            "exec",
            "--backend",
            backend.name(),
            "--profile",
            "strict",
            "--workspace",
        ])
        .arg(ws.path())
        .args(["--", "sh", "-c", &format!("sleep {token} & sleep {token}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandbox");
    let supervisor = child.id();
    let started = Instant::now();
    while processes_with(token).len() < 2 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(processes_with(token).len() >= 2, "the job did not start");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal sandbox");
    let output = child.wait_with_output().expect("wait sandbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(143),
        "{:?} {stderr}",
        output.status
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        processes_with(token).is_empty(),
        "left behind: {:?}",
        processes_with(token)
    );
    let leftovers = leftover_cgroups(supervisor);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

conformance!(sigterm_kills_the_job_and_cleans_up);

/// A `sandbox` killed outright cannot clean up: its jail dies with it (the init's parent-death
/// signal), and `sandbox gc` removes the cgroup, the proxy directory and the scratch view (with
/// its mounts) it left.
#[test]
fn gc_removes_what_a_killed_native_supervisor_left() {
    let ws = Workspace::new();
    let token = &format!("4848.{}", std::process::id());
    let child = Command::new(SANDBOX)
        .args([
            "exec",
            "--backend",
            "native",
            "--profile",
            "networked",
            "--workspace-mode",
            "scratch",
            "--workspace",
        ])
        .arg(ws.path())
        .args(["--", "sleep", token])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sandbox");
    let supervisor = child.id();
    let started = Instant::now();
    while processes_with(token).is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!processes_with(token).is_empty(), "the job did not start");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill sandbox");
    let _ = child.wait_with_output();
    let gone = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        processes_with(token).is_empty()
    });
    assert!(
        gone,
        "the job outlived its supervisor: {:?}",
        processes_with(token)
    );
    assert!(
        !leftover_cgroups(supervisor).is_empty(),
        "nothing was left to collect"
    );
    let ours = format!("-{supervisor:x}-");
    let leftover_dirs = |prefix: &str| {
        std::fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(prefix) && name.contains(&ours))
            .collect::<Vec<_>>()
    };
    let scratch_mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("sandbox-scratch-") && line.contains(&ours))
            .count()
    };
    assert!(
        !leftover_dirs("sandbox-egress-").is_empty(),
        "no egress directory was left"
    );
    assert!(
        !leftover_dirs("sandbox-scratch-").is_empty(),
        "no scratch view was left"
    );
    assert!(
        scratch_mounts() > 0,
        "the scratch view's mounts are gone already"
    );

    let ran = common::sandbox(&["gc", "--output", "json"]);
    assert_eq!(ran.code, 0);
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).expect("gc JSON");
    let removed = report["removed"].to_string();
    assert!(removed.contains(&format!("-{supervisor:x}-")), "{report}");
    assert!(
        leftover_cgroups(supervisor).is_empty(),
        "{:?}",
        leftover_cgroups(supervisor)
    );
    for prefix in ["sandbox-egress-", "sandbox-scratch-"] {
        assert!(
            leftover_dirs(prefix).is_empty(),
            "{:?}",
            leftover_dirs(prefix)
        );
    }
    assert_eq!(scratch_mounts(), 0, "gc left the scratch view mounted");
}
