//! The repository under judgment is untrusted (DESIGN §12), attacked as a hostile pull request
//! or a hostile agent step would: its own profiles and `sandbox.toml` cannot widen its sandbox,
//! project files are never read through a symlink, write-back never carries `.git` or a
//! protected path, and `check` judges a change with the base tree's configuration.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::path::Path;

use common::{exec_json, run, sandbox_command, Backend, Ran, Workspace};
use serde_json::Value;

/// A file in the workspace, with its directories, writable by the job's uid like the
/// workspace itself.
fn put(workspace: &Workspace, rel: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = workspace.file(rel);
    let mut dir = path.parent().expect("parent");
    std::fs::create_dir_all(dir).expect("mkdir");
    while dir != workspace.path() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        dir = dir.parent().expect("parent");
    }
    std::fs::write(&path, text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
}

/// The profile a hostile repository ships for its own gates: root, no seccomp, the host's
/// network, root's home writable, a "secret" read from the shadow file, the engine's socket.
const WIDE_GATE_PROFILE: &str = r#"extends = "gate"

[process]
user = "0:0"
seccomp = "off"

[network]
mode = "host"

[filesystem]
read_write = ["/root", "/var/run/docker.sock"]

[secrets]
SHADOW = { from = "file:/etc/shadow", as = "env" }
"#;

fn gate(workspace: &Workspace, extra: &[&str]) -> Ran {
    run(
        sandbox_command(&["gate", "--output", "json", "--workspace"])
            .arg(workspace.path())
            .args(extra),
    )
}

fn verdict(ran: &Ran) -> Value {
    common::verdict_from(ran.stdout.as_bytes())
}

/// The first attack of issue 15: `sandbox gate` in a checkout whose `.sandbox/profiles/gate.toml`
/// asks for root, no seccomp, the host network, `/root` writable and a secret from
/// `/etc/shadow`. Refused before any gate job runs, with the file, line and field named.
fn a_project_gate_profile_cannot_widen_the_gate_profile(backend: Backend) {
    let ws = Workspace::new();
    put(&ws, ".sandbox/profiles/gate.toml", WIDE_GATE_PROFILE);
    put(
        &ws,
        "sandbox.toml",
        "[[gate]]\nname = \"probe\"\ncommand = [\"sh\", \"-c\", \"id -u > /root/pwned\"]\n",
    );
    let ran = gate(&ws, &["--backend", backend.name()]);
    assert_eq!(ran.code, 2, "a configuration error: {ran:?}");
    assert!(
        ran.stderr
            .contains("gate.toml:4:8: `process.user` widens the operator's `gate` profile"),
        "{ran:?}"
    );
    assert!(
        ran.stderr.contains("--trust-project"),
        "says how to widen: {ran:?}"
    );
    assert!(!Path::new("/root/pwned").exists(), "the gate ran as root");
}

/// `--trust-project` is the operator's word that the project may widen; without it the same
/// profile is refused, with it the job runs (here a harmless widening: more pids).
fn the_operator_can_trust_a_project(backend: Backend) {
    let ws = Workspace::new();
    put(
        &ws,
        ".sandbox/profiles/standard.toml",
        "extends = \"standard\"\n[limits]\npids = 2048\n",
    );
    let refused = exec_json(backend, &ws, &[], &["true"]);
    assert_eq!(refused.code, 125, "{refused:?}");
    assert!(refused.stderr.contains("`limits.pids`"), "{refused:?}");
    let trusted = exec_json(backend, &ws, &["--trust-project"], &["true"]);
    assert_eq!(trusted.code, 0, "{trusted:?}");
    assert_eq!(
        trusted.outcome["trust"]["project"], "trusted",
        "{trusted:?}"
    );
    assert_eq!(trusted.outcome["trust"]["reason"], "--trust-project");
}

/// A project may narrow: its `strict.toml` that tightens pids applies, and the Outcome says
/// which file shaped the job and what it was held to.
fn a_project_profile_may_narrow(backend: Backend) {
    let ws = Workspace::new();
    put(
        &ws,
        ".sandbox/profiles/strict.toml",
        "extends = \"strict\"\n[limits]\nwall_time = \"17s\"\n",
    );
    let run = exec_json(backend, &ws, &["--profile", "strict"], &["true"]);
    assert_eq!(run.code, 0, "{run:?}");
    let trust = &run.outcome["trust"];
    assert_eq!(trust["project"], "untrusted", "{run:?}");
    assert_eq!(trust["ceiling"], "strict", "{run:?}");
    assert_eq!(
        trust["project_files"],
        serde_json::json!([".sandbox/profiles/strict.toml"])
    );
}

/// The second attack: a `check --profile strict` job writes `.sandbox/profiles/strict.toml`
/// (to run the next strict job as root). It is a protected path: the Verdict fails with a
/// finding naming it, and nothing of the job's is written back.
fn a_job_cannot_rewrite_the_projects_profiles(backend: Backend) {
    let ws = Workspace::new();
    put(
        &ws,
        "sandbox.toml",
        "[[gate]]\nname = \"ok\"\ncommand = [\"true\"]\n",
    );
    put(&ws, "src.txt", "before\n");
    let script = "mkdir -p .sandbox/profiles && printf 'extends = \"permissive\"\\n[process]\\nuser = \"0:0\"\\n' > .sandbox/profiles/strict.toml && echo after > src.txt";
    let ran = run(
        sandbox_command(&["check", "--output", "json", "--profile", "strict"])
            .args(["--backend", backend.name(), "--workspace"])
            .arg(ws.path())
            .args(["--", "sh", "-c", script]),
    );
    let verdict = verdict(&ran);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(verdict["status"], "fail", "{ran:?}");
    let trust_gate = verdict["gates"]
        .as_array()
        .and_then(|gates| gates.iter().find(|gate| gate["name"] == "trust"))
        .expect("a trust gate");
    assert_eq!(trust_gate["status"], "fail");
    assert!(
        trust_gate["findings"]
            .as_array()
            .is_some_and(|findings| findings
                .iter()
                .any(|f| f["path"] == ".sandbox/profiles/strict.toml")),
        "{trust_gate:#}"
    );
    assert_eq!(
        verdict["job"]["workspace"]["protected"],
        serde_json::json!([
            ".sandbox",
            ".sandbox/profiles",
            ".sandbox/profiles/strict.toml"
        ])
    );
    assert!(
        !ws.file(".sandbox/profiles").exists(),
        "the profile was written back"
    );
    assert_eq!(
        std::fs::read_to_string(ws.file("src.txt")).expect("read"),
        "before\n",
        "all or nothing: nothing else was written back either"
    );
}

/// Scratch write-back drops every change inside `.git` (a hook, `core.fsmonitor`) and writes
/// the rest: the next host `git status` or `git commit` runs nothing of the job's.
fn write_back_never_carries_git(backend: Backend) {
    let ws = Workspace::new();
    put(&ws, ".git/config", "[core]\n\tbare = false\n");
    put(&ws, "src.txt", "before\n");
    let script = "mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/pre-commit && printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config && echo after > src.txt";
    let run = exec_json(
        backend,
        &ws,
        &["--profile", "strict"],
        &["sh", "-c", script],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.outcome["workspace"]["committed"], true, "{run:?}");
    let dropped = &run.outcome["workspace"]["dropped"];
    for path in [".git/hooks/pre-commit", ".git/config"] {
        assert!(
            dropped
                .as_array()
                .is_some_and(|d| d.iter().any(|p| p == path)),
            "{path} not listed as dropped: {run:?}"
        );
    }
    assert!(!ws.file(".git/hooks").exists(), "a hook was written back");
    assert_eq!(
        std::fs::read_to_string(ws.file(".git/config")).expect("read"),
        "[core]\n\tbare = false\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.file("src.txt")).expect("read"),
        "after\n"
    );
}

/// A CI definition written by a job runs with the repository's CI secrets on the next push:
/// refused unless the operator allows that path, and then written back.
fn protected_paths_need_the_operators_word(backend: Backend) {
    let script = "mkdir -p .github/workflows && echo 'on: push' > .github/workflows/ci.yml && echo after > src.txt";
    let ws = Workspace::new();
    put(&ws, "src.txt", "before\n");
    let refused = exec_json(
        backend,
        &ws,
        &["--profile", "strict"],
        &["sh", "-c", script],
    );
    assert_eq!(refused.code, 0, "the job itself succeeded: {refused:?}");
    assert_eq!(
        refused.outcome["workspace"]["committed"], false,
        "{refused:?}"
    );
    assert!(
        refused.outcome["workspace"]["protected"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == ".github/workflows/ci.yml")),
        "{refused:?}"
    );
    assert!(!ws.file(".github").exists());
    assert_eq!(
        std::fs::read_to_string(ws.file("src.txt")).expect("read"),
        "before\n"
    );

    let allowed = exec_json(
        backend,
        &ws,
        &["--profile", "strict", "--allow-protected", ".github/**"],
        &["sh", "-c", script],
    );
    assert_eq!(
        allowed.outcome["workspace"]["committed"], true,
        "{allowed:?}"
    );
    assert!(ws.file(".github/workflows/ci.yml").is_file());
}

/// A secret in a file name, a directory name split across the path, or a symlink target is
/// content: the change is not written back and the Outcome never spells the value.
fn a_secret_in_a_name_is_not_written_back_nor_printed(backend: Backend) {
    const VALUE: &str = "s3cr3tnamevalue42";
    for script in [
        "touch \"$TOKEN.txt\"",
        "mkdir -p s3cr3t && touch s3cr3t/namevalue42",
        "ln -s \"/x/$TOKEN\" link",
    ] {
        let ws = Workspace::new();
        let run = run_with_secret(backend, &ws, script, VALUE);
        assert_eq!(run.code, 0, "{script}: {run:?}");
        let text = run.outcome.to_string();
        assert!(!text.contains(VALUE), "{script}: the value leaked: {text}");
        assert_eq!(
            run.outcome["workspace"]["committed"], false,
            "{script}: {run:?}"
        );
        assert!(
            run.outcome["workspace"]["secret_files"]
                .as_array()
                .is_some_and(|files| !files.is_empty()),
            "{script}: {run:?}"
        );
        let left: Vec<_> = std::fs::read_dir(ws.path()).expect("list").collect();
        assert!(left.is_empty(), "{script}: something was written back");
    }
}

fn run_with_secret(backend: Backend, ws: &Workspace, script: &str, value: &str) -> common::Run {
    let output = std::process::Command::new(common::SANDBOX)
        .args(["exec", "--backend", backend.name(), "--profile", "strict"])
        .args(["--output", "json", "--secret", "TOKEN=env:TRUST_TEST_VALUE"])
        .arg("--workspace")
        .arg(ws.path())
        .args(["--", "sh", "-c", script])
        .env("TRUST_TEST_VALUE", value)
        .output()
        .expect("run sandbox");
    common::Run::from(output)
}

/// The fifth attack: the job adds the file holding an AWS key to `.gitignore` so that the
/// secret scan skips it. `check` puts `.gitignore` back to the base version before the gates
/// run, so the scan finds the key, and the `.gitignore` edit is a finding of its own.
fn check_judges_with_the_base_trees_ignore_files(backend: Backend) {
    let ws = Workspace::new();
    put(
        &ws,
        "sandbox.toml",
        "[[gate]]\nname = \"secrets\"\nuses = \"secret-scan\"\n",
    );
    put(&ws, ".gitignore", "target/\n");
    put(&ws, "app.py", "x = 1\n");
    let key = ["AKIA", "QWERTYUIOPASDFGH"].concat();
    let script = format!("echo 'key = \"{key}\"' >> app.py && echo app.py >> .gitignore");
    let ran = run(
        sandbox_command(&["check", "--output", "json", "--profile", "strict"])
            .args(["--backend", backend.name(), "--workspace"])
            .arg(ws.path())
            .args(["--", "sh", "-c", &script]),
    );
    let verdict = verdict(&ran);
    assert_eq!(ran.code, 1, "{ran:?}");
    let gate = |name: &str| {
        verdict["gates"]
            .as_array()
            .and_then(|gates| gates.iter().find(|gate| gate["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        gate("secrets")["status"],
        "fail",
        "the scan saw app.py: {ran:?}"
    );
    assert!(
        gate("trust")["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["path"] == ".gitignore")),
        "{ran:?}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.file("app.py")).expect("read"),
        "x = 1\n",
        "the key was written back"
    );
}

conformance!(
    a_project_gate_profile_cannot_widen_the_gate_profile,
    the_operator_can_trust_a_project,
    a_project_profile_may_narrow,
    a_job_cannot_rewrite_the_projects_profiles,
    write_back_never_carries_git,
    protected_paths_need_the_operators_word,
    a_secret_in_a_name_is_not_written_back_nor_printed,
    check_judges_with_the_base_trees_ignore_files,
);

/// `sandbox.toml` alone choosing `permissive` for a gate (host network, the host's loopback
/// services) is refused, pointing at the `profile` key.
#[test]
fn sandbox_toml_cannot_pick_a_wider_gate_profile() {
    let ws = Workspace::new();
    put(
        &ws,
        "sandbox.toml",
        "[defaults]\nprofile = \"permissive\"\n\n[[gate]]\nname = \"x\"\ncommand = [\"true\"]\n",
    );
    let ran = gate(&ws, &["--backend", "native"]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(
        ran.stderr
            .contains("sandbox.toml:2:11: [defaults] profile: profile `permissive` is wider"),
        "{ran:?}"
    );
    put(
        &ws,
        "sandbox.toml",
        "[[gate]]\nname = \"x\"\ncommand = [\"true\"]\nprofile = \"standard\"\n",
    );
    let ran = gate(&ws, &["--backend", "native"]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(
        ran.stderr
            .contains("[[gate]] #1 (x): profile `standard` is wider"),
        "{ran:?}"
    );
    assert!(ran.stderr.contains("filesystem.workspace.mode"), "{ran:?}");
    // A narrower choice is fine, and the Verdict says which trust applied.
    put(
        &ws,
        "sandbox.toml",
        "[[gate]]\nname = \"x\"\ncommand = [\"true\"]\nprofile = \"mine\"\n",
    );
    put(
        &ws,
        ".sandbox/profiles/mine.toml",
        "extends = \"gate\"\n[limits]\npids = 64\n",
    );
    let ran = gate(&ws, &["--backend", "native"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let verdict = verdict(&ran);
    assert_eq!(verdict["trust"]["project"], "untrusted");
    assert_eq!(
        verdict["trust"]["project_files"],
        serde_json::json!(["sandbox.toml"])
    );
}

/// A `sandbox.toml` or profile that is a symlink to `/proc/self/environ` or `/etc/shadow` is
/// refused unread: the parse error would otherwise print the environment's or shadow's lines.
#[test]
fn project_files_are_not_read_through_symlinks() {
    for target in ["/proc/self/environ", "/etc/shadow"] {
        let ws = Workspace::new();
        std::os::unix::fs::symlink(target, ws.file("sandbox.toml")).expect("symlink");
        let ran = run(
            sandbox_command(&["gate", "--output", "json", "--workspace"])
                .arg(ws.path())
                .env("TRUST_CANARY", "canary-value-9f2"),
        );
        assert_eq!(ran.code, 2, "{ran:?}");
        assert!(ran.stderr.contains("symlink"), "{ran:?}");
        assert!(!ran.stderr.contains("canary-value-9f2"), "{ran:?}");
        assert!(!ran.stderr.contains("root:"), "{ran:?}");

        let ws = Workspace::new();
        std::fs::create_dir_all(ws.file(".sandbox/profiles")).expect("mkdir");
        std::os::unix::fs::symlink(target, ws.file(".sandbox/profiles/strict.toml"))
            .expect("symlink");
        let ran = run(
            sandbox_command(&["exec", "--profile", "strict", "--workspace"])
                .arg(ws.path())
                .env("TRUST_CANARY", "canary-value-9f2")
                .args(["--", "true"]),
        );
        assert_eq!(ran.code, 125, "{ran:?}");
        assert!(ran.stderr.contains("symlink"), "{ran:?}");
        assert!(!ran.stderr.contains("canary-value-9f2"), "{ran:?}");
    }
    // A symlinked parent directory is refused the same way.
    let ws = Workspace::new();
    let elsewhere = Workspace::new();
    std::fs::write(
        elsewhere.file("sandbox.toml"),
        "[[gate]]\nname = \"x\"\ncommand = [\"true\"]\n",
    )
    .expect("write");
    std::fs::create_dir(ws.file("conf")).expect("mkdir");
    std::os::unix::fs::symlink(elsewhere.path(), ws.file("conf/linked")).expect("symlink");
    let ran = run(
        sandbox_command(&["gate", "--output", "json", "--workspace"])
            .arg(ws.path())
            .arg("--config")
            .arg(ws.file("conf/linked/sandbox.toml")),
    );
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("symlink"), "{ran:?}");
}

/// A pull request that lists the tracked file holding its key in `.gitignore` does not hide
/// it from the secret scan: the scan reads every tracked file whatever the ignore files say.
#[test]
fn the_secret_scan_reads_tracked_files_that_an_ignore_file_hides() {
    let ws = Workspace::new();
    put(
        &ws,
        "sandbox.toml",
        "[[gate]]\nname = \"secrets\"\nuses = \"secret-scan\"\n",
    );
    let key = ["AKIA", "ZXCVBNMLKJHGFDSA"].concat();
    put(&ws, "app.py", &format!("key = \"{key}\"\n"));
    let git = |args: &[&str]| {
        let ran = run(std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "safe.directory=*",
            ])
            .args(args)
            .current_dir(ws.path()));
        assert_eq!(ran.code, 0, "git {args:?}: {ran:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "app.py", "sandbox.toml"]);
    git(&["commit", "-qm", "base"]);
    put(&ws, ".gitignore", "app.py\n");
    let ran = gate(&ws, &["--backend", "native"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let verdict = verdict(&ran);
    let secrets = verdict["gates"]
        .as_array()
        .and_then(|gates| gates.iter().find(|gate| gate["name"] == "secrets"))
        .expect("the secrets gate");
    assert!(
        secrets["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["path"] == "app.py")),
        "{ran:?}"
    );
}

/// A profile whose parse error quotes a line holding a secret's value: the refusal, on stderr
/// and in the Outcome, says `[REDACTED:NAME]` instead (every message passes the redactor).
#[test]
fn a_refusal_quoting_a_secret_is_redacted() {
    const VALUE: &str = "quoted-secret-4d1e";
    let ws = Workspace::new();
    put(
        &ws,
        "bad.toml",
        &format!("[limits]\nmemroy = \"{VALUE}\"\n"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("bad.toml");
    std::fs::write(&profile, format!("[limits]\nmemroy = \"{VALUE}\"\n")).expect("write");
    let ran = run(sandbox_command(&["exec", "--output", "json", "--profile"])
        .arg(&profile)
        .args(["--secret", "TOKEN=env:TRUST_TEST_VALUE", "--workspace"])
        .arg(ws.path())
        .args(["--", "true"])
        .env("TRUST_TEST_VALUE", VALUE));
    assert_eq!(ran.code, 125, "{ran:?}");
    assert!(
        ran.stderr.contains("memroy"),
        "the error is the parse error: {ran:?}"
    );
    assert!(!ran.stderr.contains(VALUE), "{ran:?}");
    assert!(!ran.stdout.contains(VALUE), "{ran:?}");
    assert!(ran.stderr.contains("[REDACTED:TOKEN]"), "{ran:?}");
}

/// `gate --fix` writes back through the same door: a fix that also rewrites `sandbox.toml` (to
/// drop the gate that judges it) is not kept, though the gate then passes.
#[test]
fn a_fix_that_touches_a_protected_path_is_not_kept() {
    let ws = Workspace::new();
    put(
        &ws,
        "sandbox.toml",
        "[[gate]]\nname = \"clean\"\ncommand = [\"sh\", \"-c\", \"! grep -q bad x.txt\"]\nfix = [\"sh\", \"-c\", \"echo good > x.txt && echo '# mine now' >> sandbox.toml\"]\n",
    );
    put(&ws, "x.txt", "bad\n");
    let before = std::fs::read_to_string(ws.file("sandbox.toml")).expect("read");
    let ran = gate(&ws, &["--backend", "native", "--fix"]);
    let verdict = verdict(&ran);
    assert_eq!(verdict["fixes"][0]["committed"], false, "{ran:?}");
    assert_eq!(
        ran.code, 1,
        "the gate still fails on the unfixed file: {ran:?}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.file("x.txt")).expect("read"),
        "bad\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.file("sandbox.toml")).expect("read"),
        before
    );
}
