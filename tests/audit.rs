//! The audit log end to end: every `sandbox exec` appends one hash-chained record, `sandbox
//! audit verify` finds the first edited, removed or reordered line and a cut-off tail (given an
//! anchor), concurrent jobs extend one chain, and a job whose record cannot be written never
//! runs. Logs are built by real jobs; tampering is done to the file the way an intruder would.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{run_within, sandbox_command, start, Backend, Ran, Running, Workspace, SANDBOX};
use serde_json::Value;

/// What `sandbox exec` exits with when the sandbox itself failed (DESIGN section 7).
const SANDBOX_FAILED: i32 = 125;
/// What `sandbox audit verify` exits with when the log was tampered with.
const TAMPERED: i32 = 1;

/// A job or a verify that takes longer than this is hung, not slow.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// `common::sandbox`, but a run past TIME_LIMIT fails the test.
fn sandbox(args: &[&str]) -> Ran {
    run_within(&mut sandbox_command(args), TIME_LIMIT)
}

/// `sandbox exec --backend B --workspace WS --audit LOG -- command...`
fn exec(backend: Backend, ws: &Workspace, log: &Path, command: &[&str]) -> Command {
    let mut exec = Command::new(SANDBOX);
    exec.arg("exec")
        .args(["--backend", backend.name()])
        .arg("--workspace")
        .arg(ws.path())
        .arg("--audit")
        .arg(log)
        .arg("--")
        .args(command);
    exec
}

/// A log in its own temporary directory.
struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Log {
    fn new() -> Log {
        let dir = tempfile::Builder::new()
            .prefix("sandbox-audit-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("logs").join("audit.jsonl");
        Log { _dir: dir, path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    /// The jobs every tampering test starts from: four records with different commands.
    fn with_four_jobs(backend: Backend) -> Log {
        let log = Log::new();
        let ws = Workspace::new();
        for (command, code) in JOBS {
            let ran = run_within(&mut exec(backend, &ws, &log.path, command), TIME_LIMIT);
            assert_eq!(ran.code, code, "{command:?}\n{ran:?}");
        }
        log
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .expect("read the log")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn records(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|line| serde_json::from_str(line).expect("a record is JSON"))
            .collect()
    }

    fn rewrite(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&self.path, text).expect("rewrite the log");
    }

    fn verify(&self, extra: &[&str]) -> Ran {
        let mut args = vec!["audit", "verify", self.arg()];
        args.extend(extra);
        sandbox(&args)
    }

    /// Asserts verify exits 1 naming `line` and `kind`.
    fn assert_tampered(&self, line: usize, kind: &str) {
        let ran = self.verify(&[]);
        assert_eq!(ran.code, TAMPERED, "{ran:?}");
        let at = format!("{} line {line}", self.path.display());
        assert!(
            [" (seq", ":"]
                .iter()
                .any(|next| ran.stdout.contains(&format!("{at}{next}"))),
            "expected `{at}`\n{ran:?}"
        );
        assert!(ran.stdout.contains(&format!(": {kind}: ")), "{ran:?}");
        let json = self.verify(&["--output", "json"]);
        assert_eq!(json.code, TAMPERED, "{json:?}");
        let report: Value = serde_json::from_str(&json.stdout).expect("verify JSON");
        assert_eq!(report["intact"], false, "{report:#}");
        assert_eq!(report["problem"]["kind"], kind, "{report:#}");
        assert_eq!(report["problem"]["line"], line, "{report:#}");
    }
}

const JOBS: [(&[&str], i32); 4] = [
    (&["true"], 0),
    (&["sh", "-c", "exit 3"], 3),
    (&["echo", "it's me"], 0),
    (&["sh", "-c", "echo x > /workspace/out"], 0),
];

/// `line` with `key` set to `value` and its hash left as it was: a naive edit.
fn edit(line: &str, key: &str, value: Value) -> String {
    let mut record: Value = serde_json::from_str(line).expect("a record is JSON");
    record[key] = value;
    serde_json::to_string(&record).expect("serialize")
}

// ---------------------------------------------------------------------------------------------
// Writing: one record per job, chained, before anything can go unrecorded

fn every_exec_appends_one_chained_record(backend: Backend) {
    let log = Log::with_four_jobs(backend);
    let records = log.records();
    assert_eq!(records.len(), JOBS.len(), "{records:#?}");
    let mut prev = "0".repeat(64);
    for (n, (record, (command, code))) in records.iter().zip(JOBS).enumerate() {
        assert_eq!(record["seq"], n + 1, "{record:#}");
        assert_eq!(record["prev"], prev.as_str(), "{record:#}");
        assert_eq!(record["command"], serde_json::json!(command), "{record:#}");
        assert_eq!(record["exit_code"], code, "{record:#}");
        assert_eq!(record["status"], "exited", "{record:#}");
        assert_eq!(record["backend"], backend.name(), "{record:#}");
        assert_eq!(record["profile"], "standard", "{record:#}");
        assert_eq!(
            record["workspace"]["change_hash"],
            Value::Null,
            "{record:#}"
        );
        assert!(record["workspace"]["committed"].is_boolean(), "{record:#}");
        assert!(record["isolation"]["seccomp"].is_boolean(), "{record:#}");
        assert_eq!(record["network"], serde_json::json!([]), "{record:#}");
        assert_eq!(record["secrets"], serde_json::json!([]), "{record:#}");
        assert_eq!(record["redactions"], 0, "{record:#}");
        let time = record["time"].as_str().expect("time");
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "not RFC 3339 UTC: {time}"
        );
        prev = record["hash"].as_str().expect("hash").to_owned();
    }

    let ran = log.verify(&[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        ran.stdout,
        format!("ok: 4 records, head {prev}\n"),
        "{ran:?}"
    );

    let shown = sandbox(&["audit", "show", log.arg()]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.stdout.contains("#2 "), "{shown:?}");
    assert!(shown.stdout.contains("exited exit 3"), "{shown:?}");
    assert!(shown.stdout.contains("$ echo 'it'\\''s me'"), "{shown:?}");
    let shown = sandbox(&["audit", "show", log.arg(), "--output", "json"]);
    let shown: Value = serde_json::from_str(&shown.stdout).expect("show JSON");
    assert_eq!(shown, Value::Array(records));
}

fn unwritable_audit_log_stops_the_job_before_it_runs(backend: Backend) {
    let ws = Workspace::new();
    let blocker = ws.write("not-a-directory", "");
    let path = blocker.join("audit.jsonl");
    let ran = run_within(
        &mut exec(backend, &ws, &path, &["sh", "-c", "touch /workspace/ran"]),
        TIME_LIMIT,
    );
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(
        ran.stderr.contains(&path.display().to_string()),
        "the error names the log\n{ran:?}"
    );
    assert!(!ws.file("ran").exists(), "the job ran anyway\n{ran:?}");
}

#[test]
fn a_torn_last_line_stops_the_next_job_before_it_runs() {
    let log = Log::with_four_jobs(Backend::Native);
    let mut text = std::fs::read_to_string(&log.path).expect("read the log");
    text.push_str("{\"seq\":5,\"id\":\"cut sh");
    std::fs::write(&log.path, &text).expect("tear the log");
    let ws = Workspace::new();
    let ran = run_within(
        &mut exec(
            Backend::Native,
            &ws,
            &log.path,
            &["sh", "-c", "touch /workspace/ran"],
        ),
        TIME_LIMIT,
    );
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    let at = format!("{}:5:", log.path.display());
    assert!(ran.stderr.contains(&at), "expected `{at}`\n{ran:?}");
    assert!(!ws.file("ran").exists(), "the job ran anyway\n{ran:?}");
    assert_eq!(
        std::fs::read_to_string(&log.path).expect("read the log"),
        text,
        "nothing was chained onto the torn line"
    );
    log.assert_tampered(5, "unparseable");
}

/// A denied connection is as much a part of what a job did as its exit code.
#[test]
fn network_decisions_are_recorded() {
    let log = Log::new();
    let ws = Workspace::new();
    let script = "curl -sS --noproxy '' -x http://127.0.0.1:3128 -o /dev/null \
                  http://unlisted.invalid/; true";
    let mut command = Command::new(SANDBOX);
    command
        .args(["exec", "--backend", "native", "--network", "allowlist"])
        .args(["--allow", "example.com:443", "--workspace"])
        .arg(ws.path())
        .arg("--audit")
        .arg(&log.path)
        .args(["--", "sh", "-c", script]);
    let ran = run_within(&mut command, TIME_LIMIT);
    assert_eq!(ran.code, 0, "{ran:?}");
    let records = log.records();
    assert_eq!(
        records[0]["network"],
        serde_json::json!([{"host": "unlisted.invalid", "port": 80, "decision": "deny"}]),
        "{records:#?}"
    );
}

/// A job the sandbox refuses or cannot set up is recorded too, with why, and a scratch job's
/// record carries its change set's hash.
#[test]
fn failed_setups_and_change_sets_are_recorded() {
    let log = Log::new();
    let ws = Workspace::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("bad-secret.toml");
    // /usr is a read-only host directory: the secret's directory cannot be made there.
    std::fs::write(
        &profile,
        "extends = \"standard\"\n[secrets]\nKEY = { from = \"env:SANDBOX_AUDIT_KEY\", as = \"file:/usr/sandbox-secret/key\" }\n",
    )
    .expect("write profile");
    let mut refused = Command::new(SANDBOX);
    refused
        .env("SANDBOX_AUDIT_KEY", "audit-test-secret-value")
        .args(["exec", "--backend", "native", "--profile"])
        .arg(&profile)
        .arg("--workspace")
        .arg(ws.path())
        .arg("--audit")
        .arg(&log.path)
        .args(["--", "touch", "ran"]);
    let ran = run_within(&mut refused, TIME_LIMIT);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("/usr/sandbox-secret"), "{ran:?}");
    assert!(!ws.file("ran").exists());

    let mut scratch = Command::new(SANDBOX);
    scratch
        .args([
            "exec",
            "--backend",
            "native",
            "--workspace-mode",
            "scratch",
            "--workspace",
        ])
        .arg(ws.path())
        .arg("--audit")
        .arg(&log.path)
        .args(["--", "sh", "-c", "echo hi > made"]);
    let ran = run_within(&mut scratch, TIME_LIMIT);
    assert_eq!(ran.code, 0, "{ran:?}");

    let records = log.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0]["status"], "sandbox_error", "{records:#?}");
    assert_eq!(records[0]["exit_code"], SANDBOX_FAILED, "{records:#?}");
    assert!(
        records[0]["reason"]
            .to_string()
            .contains("/usr/sandbox-secret"),
        "{records:#?}"
    );
    assert!(
        !std::fs::read_to_string(&log.path)
            .expect("read log")
            .contains("audit-test-secret-value"),
        "the secret reached the log"
    );
    let hash = records[1]["workspace"]["change_hash"]
        .as_str()
        .unwrap_or("");
    assert!(hash.starts_with("blake3:"), "{records:#?}");
    assert_eq!(records[1]["workspace"]["committed"], true, "{records:#?}");
    assert_eq!(log.verify(&[]).code, 0);
}

#[test]
fn default_log_is_private_under_xdg_state_home() {
    let state = tempfile::tempdir().expect("tempdir");
    let ws = Workspace::new();
    let ran = run_within(
        Command::new(SANDBOX)
            .env("XDG_STATE_HOME", state.path())
            .args(["exec", "--backend", "native", "--workspace"])
            .arg(ws.path())
            .args(["--", "true"]),
        TIME_LIMIT,
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    let path = state.path().join("sandbox/audit.jsonl");
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&path), 0o600, "the log");
    assert_eq!(mode(&state.path().join("sandbox")), 0o700, "its directory");
    let verified = run_within(
        Command::new(SANDBOX)
            .env("XDG_STATE_HOME", state.path())
            .args(["audit", "verify"]),
        TIME_LIMIT,
    );
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified.stdout.starts_with("ok: 1 records, head "),
        "{verified:?}"
    );
}

/// Jobs finishing at once must not interleave lines or fork the chain (two records with one
/// seq): the flock covers reading the last record and appending the next.
#[test]
fn concurrent_execs_extend_one_chain() {
    const WRITERS: usize = 8;
    let log = Log::new();
    let workspaces: Vec<Workspace> = (0..WRITERS).map(|_| Workspace::new()).collect();
    let children: Vec<Running> = workspaces
        .iter()
        .enumerate()
        .map(|(n, ws)| {
            start(&mut exec(
                Backend::Native,
                ws,
                &log.path,
                &["sh", "-c", &format!("echo job {n}")],
            ))
        })
        .collect();
    for child in children {
        let ran = child.finish(TIME_LIMIT);
        assert_eq!(ran.code, 0, "{ran:?}");
    }
    let ran = log.verify(&[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stdout
            .starts_with(&format!("ok: {WRITERS} records, head ")),
        "{ran:?}"
    );
    let records = log.records();
    let seqs: Vec<u64> = records.iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=WRITERS as u64).collect::<Vec<_>>());
    let mut ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), WRITERS, "one record per job: {records:#?}");
}

// ---------------------------------------------------------------------------------------------
// Verifying: the first line that is not what the writers wrote, and what happened to it

#[test]
fn verify_names_an_edited_exit_code() {
    let log = Log::with_four_jobs(Backend::Native);
    let mut lines = log.lines();
    lines[1] = edit(&lines[1], "exit_code", 0.into());
    log.rewrite(&lines);
    log.assert_tampered(2, "edited");
}

#[test]
fn verify_names_an_edited_command() {
    let log = Log::with_four_jobs(Backend::Native);
    let mut lines = log.lines();
    lines[2] = edit(
        &lines[2],
        "command",
        serde_json::json!(["echo", "harmless"]),
    );
    log.rewrite(&lines);
    log.assert_tampered(3, "edited");
}

#[test]
fn verify_names_a_removed_line() {
    let log = Log::with_four_jobs(Backend::Native);
    let mut lines = log.lines();
    lines.remove(1);
    log.rewrite(&lines);
    log.assert_tampered(2, "removed");
    let ran = log.verify(&[]);
    assert!(ran.stdout.contains("(seq 3)"), "{ran:?}");
    assert!(ran.stdout.contains("record 2 is missing"), "{ran:?}");
}

#[test]
fn verify_names_swapped_lines() {
    let log = Log::with_four_jobs(Backend::Native);
    let mut lines = log.lines();
    lines.swap(1, 2);
    log.rewrite(&lines);
    log.assert_tampered(2, "reordered");
}

#[test]
fn anchor_detects_a_truncated_tail() {
    let log = Log::with_four_jobs(Backend::Native);
    let head = log.records()[3]["hash"].as_str().expect("hash").to_owned();
    let ran = log.verify(&["--anchor", &head]);
    assert_eq!(ran.code, 0, "{ran:?}");

    let mut lines = log.lines();
    lines.truncate(2);
    log.rewrite(&lines);
    let ran = log.verify(&[]);
    assert_eq!(ran.code, 0, "a cut tail leaves a valid chain\n{ran:?}");
    let ran = log.verify(&["--anchor", &head]);
    assert_eq!(ran.code, TAMPERED, "{ran:?}");
    assert!(ran.stdout.contains("anchor_missing"), "{ran:?}");
    assert!(ran.stdout.contains(&head), "{ran:?}");
}

#[test]
fn verify_of_a_missing_log_exits_125_naming_it() {
    let log = Log::new();
    let ran = log.verify(&[]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains(log.arg()), "{ran:?}");
}

conformance!(
    every_exec_appends_one_chained_record,
    unwritable_audit_log_stops_the_job_before_it_runs,
);
