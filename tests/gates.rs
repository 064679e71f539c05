//! `sandbox gate`, `sandbox check` and `sandbox init` end to end, with gates whose commands
//! need no external tool: statuses and exit codes, a broken tool is an error and never a pass,
//! configuration errors name file:line, the cache reruns the gates when the tree changed,
//! and `check` writes a job's changes back only when the job and the gates passed.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{run, sandbox_command, sandbox_in, Ran, Workspace};
use serde_json::Value;

/// A run of `gate`, `check` or `init`, with the Verdict it printed: checked against its
/// schema, `Null` when stdout is no JSON. Everything else is the run's (`code`, `stdout`,
/// `stderr`).
struct Judged {
    ran: Ran,
    verdict: Value,
}

impl std::ops::Deref for Judged {
    type Target = Ran;

    fn deref(&self) -> &Ran {
        &self.ran
    }
}

/// In full, not abridged like a `Ran`: the Verdict on stdout is what a failed assertion is
/// about.
impl std::fmt::Debug for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstderr: {}\nstdout: {}",
            self.code, self.stderr, self.stdout
        )
    }
}

impl Judged {
    fn gate(&self, name: &str) -> &Value {
        common::verdict_gate(&self.verdict, name)
    }
}

/// `sandbox SUBCOMMAND --workspace WS ARGS...`
fn sandbox(workspace: &Path, args: &[&str]) -> Judged {
    let ran = sandbox_in(workspace, args);
    let verdict = common::verdict_from(ran.stdout.as_bytes());
    Judged { ran, verdict }
}

fn gate(workspace: &Path, extra: &[&str]) -> Judged {
    let mut args = vec!["gate", "--backend", "native", "--output", "json"];
    args.extend(extra);
    sandbox(workspace, &args)
}

fn project(config: &str) -> Workspace {
    let workspace = Workspace::new();
    workspace.write("sandbox.toml", config);
    workspace
}

const GATES: &str = r#"
[[gate]]
name = "passes"
command = ["true"]

[[gate]]
name = "fails"
command = ["sh", "-c", "echo 'src/x.py:3: bad thing' >&2; exit 1"]

[[gate]]
name = "missing-tool"
command = ["sandbox-no-such-linter", "."]

[[gate]]
name = "garbage"
command = ["sh", "-c", "echo 'Traceback (most recent call last): boom'; exit 2"]
parser = "ruff"

[[gate]]
name = "hangs"
command = ["sleep", "60"]
timeout = "1s"
"#;

#[test]
fn statuses_and_exit_codes() {
    let workspace = project(GATES);
    let ran = gate(workspace.path(), &[]);
    assert_eq!(ran.code, 1, "a failed gate is exit 1: {ran:?}");
    assert_eq!(ran.verdict["schema"], "sandbox/verdict@1");
    assert_eq!(ran.verdict["status"], "fail", "{ran:?}");
    assert_eq!(ran.gate("passes")["status"], "pass", "{ran:?}");
    assert_eq!(ran.gate("fails")["status"], "fail", "{ran:?}");
    assert_eq!(
        ran.gate("fails")["findings"][0]["rule"],
        "exit-code",
        "{ran:?}"
    );
    for broken in ["missing-tool", "garbage", "hangs"] {
        assert_eq!(
            ran.gate(broken)["status"],
            "error",
            "{broken} must never pass: {ran:?}"
        );
        assert!(ran.gate(broken)["reason"].is_string(), "{ran:?}");
    }
    assert!(
        ran.gate("missing-tool")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("sandbox-no-such-linter"),
        "{ran:?}"
    );
    assert_eq!(
        ran.verdict["summary"],
        serde_json::json!({"gates": 5, "passed": 1, "failed": 1, "errors": 3, "skipped": 0, "findings": 1})
    );

    // Without the failing gate, the broken ones make it an infrastructure error: exit 3.
    let ran = gate(workspace.path(), &["--skip", "fails"]);
    assert_eq!(ran.code, 3, "{ran:?}");
    assert_eq!(ran.verdict["status"], "error", "{ran:?}");
    assert_eq!(ran.gate("fails")["status"], "skipped", "{ran:?}");
    let ran = gate(workspace.path(), &["--only", "passes"]);
    assert_eq!(ran.code, 0, "{ran:?}");
}

#[test]
fn configuration_errors_are_exit_2_naming_file_and_line() {
    let workspace = project("[[gate]]\nname = \"lint\"\nuses = \"rufff\"\n");
    let ran = gate(workspace.path(), &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    let at = format!("{}:3:1:", workspace.file("sandbox.toml").display());
    assert!(ran.stderr.contains(&at), "{ran:?}");
    assert!(ran.stderr.contains("no preset `rufff`"), "{ran:?}");
    let workspace = project("[[gate]]\nname = \"x\"\ncommand = [\"true\"]\ncolour = 1\n");
    let ran = gate(workspace.path(), &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(
        ran.stderr.contains(":4:1:") && ran.stderr.contains("`colour`"),
        "{ran:?}"
    );
    let ran = gate(workspace.path(), &["--only", "nope"]);
    assert_eq!(ran.code, 2, "{ran:?}");
}

/// The second run is all cached and identical, also after a file is rewritten with the same
/// bytes (content, never mtimes); changing any file reruns every gate, whatever its `paths`
/// say (a tool decides what it reads, not the key); `--no-cache` reruns.
#[test]
fn the_cache_reruns_the_gates_when_anything_in_the_tree_changed() {
    let workspace = project(
        r#"
[[gate]]
name = "docs"
command = ["sh", "-c", "grep -c . docs/*.md"]
paths = ["docs/**"]

[[gate]]
name = "code"
command = ["sh", "-c", "cat src/*.txt >/dev/null; echo 'src/a.txt:1: note' >&2; exit 1"]
paths = ["src/**"]
"#,
    );
    for (name, text) in [("docs/a.md", "# A\n"), ("src/a.txt", "one\n")] {
        std::fs::create_dir_all(workspace.file(name).parent().expect("parent")).expect("mkdir");
        workspace.write(name, text);
    }
    let first = gate(workspace.path(), &[]);
    assert_eq!(first.code, 1, "{first:?}");
    assert_eq!(first.gate("docs")["cached"], false);
    // The cache is the operator's: nothing of it is in the judged tree.
    assert!(!workspace.file(".sandbox").exists(), "{first:?}");
    let second = gate(workspace.path(), &[]);
    for name in ["docs", "code"] {
        assert_eq!(second.gate(name)["cached"], true, "{name}: {second:?}");
        assert_eq!(second.gate(name)["status"], first.gate(name)["status"]);
        assert_eq!(second.gate(name)["findings"], first.gate(name)["findings"]);
    }
    workspace.write("docs/a.md", "# A\n");
    let third = gate(workspace.path(), &[]);
    assert_eq!(third.gate("docs")["cached"], true, "{third:?}");
    workspace.write("docs/a.md", "# A\nmore\n");
    let fourth = gate(workspace.path(), &[]);
    for name in ["docs", "code"] {
        assert_eq!(fourth.gate(name)["cached"], false, "{name}: {fourth:?}");
    }
    let uncached = gate(workspace.path(), &["--no-cache"]);
    assert_eq!(uncached.gate("code")["cached"], false, "{uncached:?}");
}

/// Cargo gates run `--locked --offline`: without a Cargo.lock no retry helps, so it is a
/// configuration error (2) saying what to run, not a tool error (3).
#[test]
fn a_crate_without_a_lock_file_is_told_what_to_run() {
    let workspace = project(
        "[[gate]]\nname = \"clippy\"\nuses = \"clippy\"\n[[gate]]\nname = \"ok\"\ncommand = [\"true\"]\n",
    );
    workspace.write(
        "Cargo.toml",
        "[package]\nname = \"c\"\nversion = \"0.1.0\"\n",
    );
    let ran = gate(workspace.path(), &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("cargo generate-lockfile"), "{ran:?}");
    assert!(ran.stderr.contains("Cargo.lock"), "{ran:?}");
    let skipped = gate(workspace.path(), &["--skip", "clippy"]);
    assert_eq!(skipped.code, 0, "{skipped:?}");
}

/// A tool that could not read part of the tree has not passed it: ruff warns and exits 0 on an
/// unreadable directory, and the gate is an error, not a pass (and is not cached).
#[test]
fn a_tree_the_tool_cannot_read_is_an_error() {
    if tool("ruff").is_none() {
        return;
    }
    let workspace = project("[[gate]]\nname = \"lint\"\nuses = \"ruff\"\n");
    std::fs::create_dir(workspace.file("private")).expect("mkdir");
    workspace.write("private/a.py", "import os\n");
    std::fs::set_permissions(
        workspace.file("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    // Not the workspace owner's: the job sees the owner's files as its own (an idmapped
    // mount), a colleague's 0700 directory stays closed to it.
    std::os::unix::fs::chown(workspace.file("private"), Some(4343), Some(4343)).expect("chown");
    let ran = gate(workspace.path(), &[]);
    assert_eq!(ran.gate("lint")["status"], "error", "{ran:?}");
    assert_eq!(ran.code, 3, "{ran:?}");
}

fn check(workspace: &Path, script: &str) -> Judged {
    let args = [
        "check",
        "--backend",
        "native",
        "--output",
        "json",
        "--",
        "sh",
        "-c",
        script,
    ];
    sandbox(workspace, &args)
}

/// The job passes and the gate passes: written back. The gate fails, or the job fails:
/// nothing is written back, and the Verdict says why with the job's Outcome inside.
#[test]
fn check_writes_back_only_when_the_job_and_the_gates_pass() {
    let workspace = project(
        r#"
[[gate]]
name = "no-todo"
command = ["sh", "-c", "! grep -rn TODO --include=*.txt ."]
"#,
    );
    let ran = check(workspace.path(), "echo done > good.txt");
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        ran.verdict["job"]["workspace"]["committed"], true,
        "{ran:?}"
    );
    assert!(workspace.file("good.txt").exists());

    let ran = check(workspace.path(), "echo TODO > bad.txt");
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(ran.gate("no-todo")["status"], "fail", "{ran:?}");
    assert_eq!(
        ran.verdict["job"]["workspace"]["committed"], false,
        "{ran:?}"
    );
    assert!(!workspace.file("bad.txt").exists());

    let ran = check(workspace.path(), "echo fine > later.txt; exit 4");
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(ran.verdict["job"]["exit_code"], 4, "{ran:?}");
    assert_eq!(ran.gate("no-todo")["status"], "skipped", "{ran:?}");
    assert!(!workspace.file("later.txt").exists());
}

/// `check --bundle` leaves the proof of the change in one directory: patch, Outcome, Verdict,
/// summary, the audit record (the one the log holds), the note, and a manifest of them all. A
/// directory that is not empty is refused before the job runs.
#[test]
fn check_bundle_holds_the_proof_of_the_change() {
    let workspace = project("[[gate]]\nname = \"ok\"\ncommand = [\"true\"]\n");
    let scratch = tempfile::tempdir().expect("tempdir");
    let bundle = scratch.path().join("bundle");
    let log = scratch.path().join("audit.jsonl");
    let note = scratch.path().join("why.md");
    std::fs::write(&note, "Adds a greeting, because tests need one.\n").expect("note");
    let args = |bundle: &Path| {
        vec![
            "check".to_owned(),
            "--backend".into(),
            "native".into(),
            "--output".into(),
            "json".into(),
            "--audit".into(),
            log.display().to_string(),
            "--bundle".into(),
            bundle.display().to_string(),
            "--note".into(),
            note.display().to_string(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            "echo hello > greeting.txt".into(),
        ]
    };
    let owned = args(&bundle);
    let ran = sandbox(
        workspace.path(),
        &owned.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    let read = |name: &str| std::fs::read_to_string(bundle.join(name)).unwrap_or_default();
    let manifest: Value = serde_json::from_str(&read("manifest.json")).expect("manifest");
    let names: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "audit-record.json",
            "change.patch",
            "note.md",
            "outcome.json",
            "summary.md",
            "verdict.json"
        ],
        "{manifest}"
    );
    for file in manifest["files"].as_array().expect("files") {
        let name = file["name"].as_str().unwrap_or("");
        assert_eq!(file["bytes"], read(name).len(), "{name}");
    }
    assert!(
        read("change.patch").contains("+hello"),
        "{}",
        read("change.patch")
    );
    assert!(read("change.patch").contains("greeting.txt"));
    assert_eq!(
        read("note.md"),
        "Adds a greeting, because tests need one.\n"
    );
    let verdict: Value = serde_json::from_str(&read("verdict.json")).expect("verdict");
    assert_eq!(verdict, ran.verdict);
    let outcome: Value = serde_json::from_str(&read("outcome.json")).expect("outcome");
    assert_eq!(outcome, ran.verdict["job"]);
    assert!(read("summary.md").contains("ok"));
    // The record is the log's: its hash is the head the chain check reports.
    let record: Value = serde_json::from_str(&read("audit-record.json")).expect("record");
    assert_eq!(manifest["audit"]["hash"], record["hash"]);
    let verify = run(sandbox_command(&["audit", "verify", "--output", "json"]).arg(&log));
    let report: Value = serde_json::from_str(&verify.stdout).unwrap_or(Value::Null);
    assert_eq!(report["head"], record["hash"], "{report}");

    // The bundle directory now holds files: refused (2) before the job could run.
    let owned = args(&bundle);
    let mut again: Vec<&str> = owned.iter().map(String::as_str).collect();
    let last = again.len() - 1;
    again[last] = "echo again > again.txt";
    let ran = sandbox(workspace.path(), &again);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("not empty"), "{ran:?}");
    assert!(!workspace.file("again.txt").exists());
}

#[test]
fn init_writes_the_detected_gates_and_keeps_an_existing_file() {
    let workspace = Workspace::new();
    std::fs::set_permissions(workspace.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let ran = sandbox(workspace.path(), &["init"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let text = std::fs::read_to_string(workspace.file("sandbox.toml")).expect("written");
    assert!(text.contains("uses = \"secret-scan\""), "{text}");
    let ran = sandbox(workspace.path(), &["init"]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("--force"), "{ran:?}");
}

/// The built-in gates run as sandboxed jobs of our own binary: a banned import from the syntax
/// tree and a committed token are found; a typo in their options is a configuration error.
#[test]
fn built_in_policy_and_secret_scan_run_as_gate_jobs() {
    let workspace = project(
        r#"
[[gate]]
name = "policy"
uses = "policy"
banned_imports = ["subprocess"]

[[gate]]
name = "secrets"
uses = "secret-scan"
"#,
    );
    workspace.write(
        "a.py",
        "# subprocess is not imported here\nimport subprocess as sp\n",
    );
    // Built at run time so that this file holds nothing that looks like a live token.
    let token = format!("ghp_{}", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
    workspace.write("conf.py", &format!("token = \"{token}\"\n"));
    let ran = gate(workspace.path(), &["--no-cache"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let policy = &ran.gate("policy")["findings"];
    assert_eq!(policy.as_array().map(Vec::len), Some(1), "{ran:?}");
    assert_eq!(policy[0]["rule"], "policy/banned-import", "{ran:?}");
    assert_eq!(policy[0]["path"], "a.py");
    assert_eq!(policy[0]["line"], 2);
    let secrets = &ran.gate("secrets")["findings"];
    assert_eq!(secrets[0]["rule"], "secret/github-token", "{ran:?}");
    assert!(
        !ran.stdout.contains(&token),
        "the Verdict printed the token"
    );

    let typo = project("[[gate]]\nname = \"p\"\nuses = \"policy\"\nbanned_imprts = [\"x\"]\n");
    let ran = gate(typo.path(), &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("banned_imprts"), "{ran:?}");
}

/// A copy of fixture `name` (tests/fixtures) that the gate jobs' uid can read.
fn fixture(name: &str) -> Workspace {
    let workspace = Workspace::new();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let status = Command::new("cp")
        .args(["-a", &format!("{}/.", source.display())])
        .arg(workspace.path())
        .status()
        .expect("cp");
    assert!(status.success());
    common::open_to_jobs(workspace.path());
    workspace
}

fn tool(name: &str) -> Option<std::path::PathBuf> {
    let path = Path::new("/opt/sandbox-tools/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    common::skip(&format!("{} is missing: run scripts/setup", path.display()));
    None
}

/// Real tools through `sandbox gate`, sandboxed: the defects fixtures fail with what the bare
/// tool reports (ruff's count, compared exactly), the clean twins pass.
#[test]
fn presets_run_the_real_tools_in_gate_jobs() {
    let Some(ruff) = tool("ruff") else {
        return;
    };
    let config = "[[gate]]\nname = \"lint\"\nuses = \"ruff\"\n\
                  [[gate]]\nname = \"types\"\nuses = \"mypy\"\n\
                  [[gate]]\nname = \"security\"\nuses = \"bandit\"\n\
                  [[gate]]\nname = \"tests\"\nuses = \"pytest\"\n";
    let dirty = fixture("python-defects");
    dirty.write("sandbox.toml", config);
    let ran = gate(dirty.path(), &["--no-cache"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    for name in ["lint", "types", "security", "tests"] {
        assert_eq!(ran.gate(name)["status"], "fail", "{name}: {ran:?}");
    }
    let bare = Command::new(&ruff)
        .args([
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--quiet",
            ".",
        ])
        .current_dir(dirty.path())
        .output()
        .expect("ruff");
    let bare_count = String::from_utf8_lossy(&bare.stdout)
        .lines()
        .filter(|line| line.contains(".py:"))
        .count();
    let findings = ran.gate("lint")["findings"].as_array().map(Vec::len);
    assert_eq!(findings, Some(bare_count), "{ran:?}");

    let clean = fixture("python-clean");
    clean.write("sandbox.toml", config);
    let ran = gate(clean.path(), &["--no-cache"]);
    assert_eq!(ran.code, 0, "{ran:?}");

    let rust = fixture("rust-dirty");
    rust.write(
        "sandbox.toml",
        "[[gate]]\nname = \"clippy\"\nuses = \"clippy\"\n[[gate]]\nname = \"fmt\"\nuses = \"rustfmt\"\n",
    );
    let ran = gate(rust.path(), &["--no-cache"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(ran.gate("clippy")["status"], "fail", "{ran:?}");
    assert_eq!(ran.gate("fmt")["status"], "fail", "{ran:?}");
}

/// `--backend docker`: tool gates run in containers of the host image (the tools bound
/// read-only) and find what they find natively; built-in gates run our own host binary, so
/// they stay native, and each gate's Outcome says where it ran.
#[test]
fn tool_gates_run_on_the_docker_backend_too() {
    if tool("ruff").is_none() {
        return;
    }
    if let Some(why) = common::Backend::Docker.unavailable() {
        common::skip(&why);
        return;
    }
    let dirty = fixture("python-defects");
    dirty.write(
        "sandbox.toml",
        "[[gate]]\nname = \"lint\"\nuses = \"ruff\"\n[[gate]]\nname = \"secrets\"\nuses = \"secret-scan\"\n",
    );
    let native = gate(dirty.path(), &["--no-cache"]);
    let docker = sandbox(
        dirty.path(),
        &[
            "gate",
            "--backend",
            "docker",
            "--output",
            "json",
            "--no-cache",
        ],
    );
    assert_eq!(docker.code, 1, "{docker:?}");
    assert_eq!(docker.gate("lint")["status"], "fail", "{docker:?}");
    assert_eq!(
        docker.gate("lint")["outcome"]["backend"],
        "docker",
        "{docker:?}"
    );
    assert_eq!(
        unused_imports(&docker),
        unused_imports(&native),
        "{docker:?}"
    );
    assert_eq!(
        docker.gate("secrets")["outcome"]["backend"],
        "native",
        "{docker:?}"
    );
}

/// `path:line` of each unused-import finding of the `lint` gate.
fn unused_imports(ran: &Judged) -> Vec<String> {
    ran.gate("lint")["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "F401")
        .map(|f| format!("{}:{}", f["path"].as_str().unwrap_or(""), f["line"]))
        .collect()
}

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(repo)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// `--staged` sees the index, not the working tree; `--changed-since` keeps only findings on
/// changed lines and hands the changes to the policy gate.
#[test]
fn staged_and_changed_since_narrow_what_is_judged() {
    if tool("ruff").is_none() {
        return;
    }
    let repo = project(
        "[[gate]]\nname = \"lint\"\nuses = \"ruff\"\n\
         [[gate]]\nname = \"policy\"\nuses = \"policy\"\nmax_changed_files = 1\n",
    );
    repo.write("a.py", "import os\n");
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "first"]);
    repo.write("a.py", "import os\nimport sys\n");
    git(repo.path(), &["add", "a.py"]);
    // Unstaged: a third import, and a new file.
    repo.write("a.py", "import os\nimport sys\nimport json\n");
    repo.write("b.py", "import re\n");
    common::open_to_jobs(repo.path());

    let staged = gate(repo.path(), &["--staged", "--no-cache", "--only", "lint"]);
    let messages = unused_imports(&staged);
    assert_eq!(messages, ["a.py:1", "a.py:2"], "{staged:?}");

    let changed = gate(repo.path(), &["--changed-since", "HEAD", "--no-cache"]);
    let lines = unused_imports(&changed);
    assert_eq!(lines, ["a.py:2", "a.py:3", "b.py:1"], "{changed:?}");
    assert_eq!(
        changed.gate("policy")["findings"][0]["rule"],
        "policy/max-changed-files",
        "{changed:?}"
    );
}

/// `--changed-since` adds diff coverage to a coverage gate: of the changed lines that are code,
/// the share the tests ran, with the ones they did not named. Without it a `diff_` threshold
/// has nothing to judge and is left alone.
#[test]
fn changed_since_measures_the_coverage_of_the_changed_lines() {
    if tool("coverage").is_none() {
        return;
    }
    let repo = project(
        "[[gate]]\nname = \"coverage\"\nuses = \"coverage\"\nmin = { diff_percent = 100 }\n",
    );
    repo.write("calc.py", "def used(x):\n    return x + 1\n");
    repo.write(
        "test_calc.py",
        "from calc import used\n\n\ndef test_used():\n    assert used(1) == 2\n",
    );
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "first"]);
    // Line 2 changed and tested, 3 is a `def` (runs at import), 4 is never called; the test's
    // changed line 5 ran too: 3 of 4 changed lines of code ran.
    repo.write(
        "calc.py",
        "def used(x):\n    return x + 2\ndef unused(y):\n    return y * 3\n",
    );
    repo.write(
        "test_calc.py",
        "from calc import used\n\n\ndef test_used():\n    assert used(1) == 3\n",
    );
    common::open_to_jobs(repo.path());

    let changed = gate(repo.path(), &["--changed-since", "HEAD", "--no-cache"]);
    let coverage = changed.gate("coverage");
    assert_eq!(coverage["status"], "fail", "{changed:?}");
    assert_eq!(coverage["metrics"]["diff_lines"], 4.0, "{changed:?}");
    assert_eq!(coverage["metrics"]["diff_percent"], 75.0, "{changed:?}");
    let reason = coverage["reason"].as_str().unwrap_or("");
    assert!(reason.contains("calc.py:4"), "{changed:?}");
    assert!(!reason.contains("calc.py:3"), "{changed:?}");
    let files = coverage["coverage"].as_array().expect("per-file coverage");
    assert!(files.iter().any(|f| f["path"] == "calc.py"), "{changed:?}");

    let whole = gate(repo.path(), &["--no-cache"]);
    assert_eq!(whole.gate("coverage")["status"], "pass", "{whole:?}");
    assert!(whole.gate("coverage")["metrics"]
        .get("diff_percent")
        .is_none());
}

/// `--fix` writes a fix back only when the gate passes on it: ruff removes an unused import
/// (written back); with an undefined name left that ruff cannot fix, nothing is written back.
#[test]
fn fix_keeps_only_fixes_that_make_the_gate_pass() {
    if tool("ruff").is_none() {
        return;
    }
    let config = "[[gate]]\nname = \"lint\"\nuses = \"ruff\"\n";
    let fixable = project(config);
    fixable.write("a.py", "import os\nimport sys\n\nprint(sys.argv)\n");
    let owned = |dir: &Path| {
        Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir)
            .status()
            .expect("chown")
    };
    assert!(owned(fixable.path()).success());
    let ran = gate(fixable.path(), &["--fix", "--no-cache"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.verdict["fixes"][0]["committed"], true, "{ran:?}");
    assert_eq!(
        std::fs::read_to_string(fixable.file("a.py")).expect("read"),
        "import sys\n\nprint(sys.argv)\n"
    );

    let unfixable = project(config);
    let before = "import os\n\nprint(undefined_name)\n";
    unfixable.write("a.py", before);
    assert!(owned(unfixable.path()).success());
    let ran = gate(unfixable.path(), &["--fix", "--no-cache"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(ran.verdict["fixes"][0]["committed"], false, "{ran:?}");
    assert_eq!(
        std::fs::read_to_string(unfixable.file("a.py")).expect("read"),
        before
    );
}

/// `sandbox doctor` says which presets' tools answer here, with their versions.
#[test]
fn doctor_lists_the_presets_tools() {
    let output = common::sandbox(&["doctor", "--output", "json"]);
    let report: Value = serde_json::from_str(&output.stdout).expect("doctor JSON");
    let tools = report["tools"].as_array().expect("tools");
    let ruff = tools
        .iter()
        .find(|t| t["preset"] == "ruff")
        .expect("ruff listed");
    if tool("ruff").is_some() {
        assert_eq!(ruff["present"], true, "{ruff}");
        assert!(
            ruff["detail"].as_str().unwrap_or("").starts_with("ruff "),
            "{ruff}"
        );
    }
    assert!(tools.iter().any(|t| t["preset"] == "clippy"), "{report:#}");
}
