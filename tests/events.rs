//! `--events` end to end: `exec`, `gate` and `check` write one JSON object per line on stderr,
//! each valid against `schemas/events.schema.json`, in an order a caller can rely on. Without
//! `--events` a terminal gets a progress display, and a stderr that is no terminal stays as it
//! was.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::process::{Command, Stdio};

use common::{run, sandbox_command, sandbox_in, Ran, Workspace, SANDBOX};
use serde_json::Value;

/// Every line of stderr, each parsed and checked against the events schema.
fn events(ran: &Ran) -> Vec<Value> {
    ran.stderr
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{ran:?}"));
            common::assert_valid("events", &event);
            event
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["event"].as_str().unwrap_or(""))
        .collect()
}

fn position(events: &[Value], kind: &str, name: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == kind && e["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} for {name}: {events:#?}"))
}

/// A job whose output is cut at 1K, that is let through to one address and refused another:
/// every kind of job event, between `job_started` and `job_finished`.
#[test]
fn exec_reports_a_job_from_start_to_finish() {
    let workspace = Workspace::new();
    let profile = workspace.write(
        "events.toml",
        "extends = \"standard\"\n[limits]\noutput = \"1K\"\n",
    );
    let connect = |host: &str| {
        format!(
            "python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', 3128)); \
             s.sendall(b'CONNECT {host} HTTP/1.1\\r\\n\\r\\n'); s.recv(100)\""
        )
    };
    let script = format!(
        "head -c 4000 /dev/zero | tr '\\0' x; {}; {}; exit 3",
        connect("127.0.0.1:9"),
        connect("refused.invalid:443")
    );
    let ran = sandbox_in(
        workspace.path(),
        &[
            "exec",
            "--backend",
            "native",
            "--profile",
            profile.to_str().expect("utf-8"),
            "--network",
            "allowlist",
            "--allow",
            "127.0.0.1:9",
            "--output",
            "json",
            "--events",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert_eq!(ran.code, 3, "{ran:?}");
    let events = events(&ran);
    let mut sorted = kinds(&events);
    // The output is read by a thread of its own: its event may come after the proxy's.
    sorted[1..4].sort_unstable();
    assert_eq!(
        sorted,
        [
            "job_started",
            "network_decision",
            "network_decision",
            "output_truncated",
            "job_finished"
        ],
        "{events:#?}"
    );
    let (started, finished) = (&events[0], &events[4]);
    assert_eq!(started["backend"], "native");
    assert_eq!(started["command"][0], "sh");
    let of = |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == kind).collect() };
    let truncated = of("output_truncated");
    assert_eq!(truncated[0]["stream"], "stdout");
    assert_eq!(truncated[0]["limit"], 1024);
    let decisions = of("network_decision");
    assert_eq!(decisions[0]["host"], "127.0.0.1");
    assert_eq!(decisions[0]["port"], 9);
    assert_eq!(decisions[0]["allowed"], true);
    assert_eq!(decisions[0]["rule"], "127.0.0.1:9");
    assert_eq!(decisions[1]["host"], "refused.invalid");
    assert_eq!(decisions[1]["allowed"], false);
    assert_eq!(finished["status"], "exited");
    assert_eq!(finished["exit_code"], 3);
    let outcome = common::outcome_from(ran.stdout.as_bytes());
    assert_eq!(
        outcome["network"]["events"].as_array().map(Vec::len),
        Some(2)
    );
}

/// A job the sandbox fails to run (here: no Docker engine behind `DOCKER_HOST`) still ends its
/// stream with `job_finished`, as a sandbox error with the exit code `sandbox exec` gives.
#[test]
fn exec_reports_a_job_the_sandbox_could_not_run() {
    let workspace = Workspace::new();
    let missing = tempfile::tempdir().expect("tempdir");
    let socket = format!("unix://{}", missing.path().join("docker.sock").display());
    let ran = run(sandbox_command(&[
        "exec",
        "--backend",
        "docker",
        "--events",
        "--output",
        "json",
    ])
    .arg("--workspace")
    .arg(workspace.path())
    .args(["--", "true"])
    .env("DOCKER_HOST", &socket));
    assert_eq!(ran.code, 125, "{ran:?}");
    let stderr = &ran.stderr;
    // The stream, then sandbox's own message saying what failed.
    let (lines, message): (Vec<&str>, Vec<&str>) =
        stderr.lines().partition(|line| line.starts_with('{'));
    assert!(
        message.iter().any(|line| line.starts_with("sandbox: ")),
        "{stderr}"
    );
    let events: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .inspect(|event| common::assert_valid("events", event))
        .collect();
    assert_eq!(kinds(&events), ["job_started", "job_finished"], "{stderr}");
    assert_eq!(events[0]["backend"], "docker");
    assert_eq!(events[1]["status"], "sandbox_error");
    assert_eq!(events[1]["exit_code"], 125);
}

const GATES: &str = r#"
[[gate]]
name = "passes"
command = ["true"]

[[gate]]
name = "fails"
command = ["sh", "-c", "echo 'a.py:1: bad' >&2; exit 1"]

[[gate]]
name = "left-out"
command = ["true"]
"#;

#[test]
fn gate_reports_each_gate_then_the_verdict_last() {
    let workspace = Workspace::new();
    workspace.write("sandbox.toml", GATES);
    let ran = sandbox_in(
        workspace.path(),
        &[
            "gate",
            "--backend",
            "native",
            "--output",
            "json",
            "--no-cache",
            "--skip",
            "left-out",
            "--events",
        ],
    );
    assert_eq!(ran.code, 1, "{ran:?}");
    let events = events(&ran);
    assert_eq!(events.len(), 5, "{events:#?}");
    for name in ["passes", "fails"] {
        assert!(
            position(&events, "gate_started", name) < position(&events, "gate_finished", name),
            "{events:#?}"
        );
    }
    let fails = &events[position(&events, "gate_finished", "fails")];
    assert_eq!(fails["status"], "fail");
    assert_eq!(fails["findings"], 1);
    assert_eq!(fails["cached"], false);
    let verdict = common::verdict_from(ran.stdout.as_bytes());
    let last = events.last().expect("events");
    assert_eq!(last["event"], "verdict", "{events:#?}");
    assert_eq!(last["status"], "fail");
    assert_eq!(last["summary"], verdict["summary"]);
    assert!(
        !events.iter().any(|e| e["name"] == "left-out"),
        "a skipped gate never starts: {events:#?}"
    );
}

/// `check`: the job's events, then the gates' on what it left, then the verdict.
#[test]
fn check_reports_the_job_then_the_gates() {
    let workspace = Workspace::new();
    workspace.write(
        "sandbox.toml",
        "[[gate]]\nname = \"made\"\ncommand = [\"test\", \"-f\", \"made.txt\"]\n",
    );
    let ran = sandbox_in(
        workspace.path(),
        &[
            "check",
            "--backend",
            "native",
            "--output",
            "json",
            "--no-cache",
            "--events",
            "--",
            "sh",
            "-c",
            "echo hi > made.txt",
        ],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    let events = events(&ran);
    assert_eq!(
        kinds(&events),
        [
            "job_started",
            "job_finished",
            "gate_started",
            "gate_finished",
            "verdict"
        ],
        "{events:#?}"
    );
    assert_eq!(events[3]["status"], "pass");
    assert_eq!(events[4]["status"], "pass");
    assert!(workspace.file("made.txt").exists());
}

/// Without `--events`, a stderr that is no terminal gets nothing: no progress display, no
/// events, from `gate`, `check` and `exec` alike.
#[test]
fn without_events_a_piped_stderr_stays_silent() {
    let workspace = Workspace::new();
    workspace.write(
        "sandbox.toml",
        "[[gate]]\nname = \"ok\"\ncommand = [\"true\"]\n",
    );
    for args in [
        &[
            "gate",
            "--backend",
            "native",
            "--output",
            "json",
            "--no-cache",
        ][..],
        &[
            "check",
            "--backend",
            "native",
            "--output",
            "json",
            "--",
            "true",
        ][..],
        &[
            "exec",
            "--backend",
            "native",
            "--output",
            "json",
            "--",
            "true",
        ][..],
    ] {
        let ran = sandbox_in(workspace.path(), args);
        assert_eq!(ran.code, 0, "{args:?}: {ran:?}");
        assert!(ran.stderr.is_empty(), "{args:?}: {ran:?}");
    }
}

/// On a terminal (a pty from util-linux `script`), `gate` and `check` draw their progress on
/// stderr, and lines for what finished stay; with `--events` the terminal gets the events
/// instead.
#[test]
fn a_terminal_gets_a_progress_display_unless_events_are_asked_for() {
    if Command::new("script").arg("--version").output().is_err() {
        common::skip("util-linux `script` is missing: no pty to draw on");
        return;
    }
    let workspace = Workspace::new();
    workspace.write(
        "sandbox.toml",
        "[[gate]]\nname = \"ok\"\ncommand = [\"true\"]\n",
    );
    let on_a_terminal = |args: &str| {
        // The Verdict goes to a file: what `script` shows is our stderr on its pty.
        let inner = format!(
            "'{SANDBOX}' {args} > '{}/verdict.json'",
            workspace.path().display()
        );
        let output = Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let dir = workspace.path().display();
    let gate = format!("gate -w '{dir}' --backend native --output json --no-cache");
    let shown = on_a_terminal(&gate);
    assert!(shown.contains("gates 0/1"), "{shown:?}");
    assert!(shown.contains("pass ok"), "{shown:?}");
    let shown = on_a_terminal(&format!("{gate} --events"));
    assert!(!shown.contains("gates 0/1"), "{shown:?}");
    assert!(shown.contains(r#""event":"verdict""#), "{shown:?}");
    let check = format!("check -w '{dir}' --backend native --output json --no-cache -- true");
    let shown = on_a_terminal(&check);
    assert!(shown.contains("job exited (exit 0)"), "{shown:?}");
    assert!(shown.contains("pass ok"), "{shown:?}");
}
