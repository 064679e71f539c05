//! Secrets end to end, on both backends: a job gets its secret, and nothing we emit, no argv on
//! the host and nothing the engine shows holds the value, in any of the forms a job would leak
//! it in.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Backend, Run, Workspace, SANDBOX};

/// Long and distinctive, so that a stray match is a leak and not a coincidence.
const TOKEN: &str = "ghp_s3cr3tT0ken4b9f2c7e1d0a";
const TOKEN_VAR: &str = "SANDBOX_TEST_TOKEN";

fn base64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// `sandbox exec` with TOKEN in our environment (never on our command line).
fn sandbox_with_token(backend: Backend, workspace: &Workspace, extra: &[&str]) -> Command {
    let mut command = Command::new(SANDBOX);
    command
        .env(TOKEN_VAR, TOKEN)
        .arg("exec")
        .args(["--backend", backend.name()])
        .arg("--workspace")
        .arg(workspace.path())
        .args(["--secret", &format!("TOKEN=env:{TOKEN_VAR}")])
        .args(extra)
        .stdin(Stdio::null());
    command
}

fn run_json(mut command: Command, script: &str) -> Run {
    let output = command
        .args(["--output", "json", "--", "sh", "-c", script])
        .output()
        .expect("run sandbox");
    Run::from(output)
}

/// The value and the encoded forms a leak could take.
fn assert_no_leak(text: &str, what: &str) {
    for form in [
        TOKEN.to_owned(),
        base64(TOKEN),
        base64(TOKEN).trim_end_matches('=').to_owned(),
    ] {
        assert!(
            !text.contains(&form),
            "{what} holds the secret as {form:?}:\n{text}"
        );
    }
}

/// The job prints its secret plainly, base64-encoded, split across two writes with a pause
/// between them, inside a JSON document, and base64-encoded inside a longer text (HTTP basic
/// auth). Every one comes out as `[REDACTED:TOKEN]`, counted.
fn every_printed_form_is_redacted(backend: Backend) {
    let workspace = Workspace::new();
    let script = r#"
        printf 'plain %s\n' "$TOKEN"
        printf '%s' "$TOKEN" | base64
        rest=${TOKEN#??????????}; head=${TOKEN%"$rest"}
        printf 'split %s' "$head"; sleep 0.3; printf '%s end\n' "$rest"
        printf '{"auth": "%s", "n": 1}\n' "$TOKEN"
        printf 'user:%s' "$TOKEN" | base64
        printf 'to stderr %s\n' "$TOKEN" >&2
    "#;
    let run = run_json(sandbox_with_token(backend, &workspace, &[]), script);
    assert_eq!(run.code, 0, "{run:?}");
    let stdout = run.stdout();
    assert_no_leak(stdout, "stdout");
    assert_no_leak(run.job_stderr(), "stderr");
    assert!(stdout.contains("plain [REDACTED:TOKEN]"), "{run:?}");
    assert!(stdout.contains("split [REDACTED:TOKEN] end"), "{run:?}");
    assert!(
        stdout.contains(r#"{"auth": "[REDACTED:TOKEN]", "n": 1}"#),
        "{run:?}"
    );
    let basic = base64(&format!("user:{TOKEN}"));
    assert!(!stdout.contains(&basic[8..basic.len() - 4]), "{run:?}");
    assert!(
        run.outcome["redactions"].as_u64().unwrap_or(0) >= 6,
        "{run:?}"
    );
    assert_eq!(
        run.outcome["secrets"],
        serde_json::json!(["TOKEN"]),
        "{run:?}"
    );
    assert_no_leak(&run.outcome.to_string(), "the Outcome");
}

/// The job pipes its secret through `xxd -p`, `base32` and `rev`, in upper and lower case,
/// padded and not (issue 15: these came out whole). Each line comes out as `[REDACTED:TOKEN]`,
/// counted, and no form is left in the Outcome.
fn hex_base32_and_reversed_forms_are_redacted(backend: Backend) {
    use data_encoding::{BASE32, HEXLOWER};
    let workspace = Workspace::new();
    let script = r#"
        t() { printf '%s' "$TOKEN"; }
        printf 'hex '; t | xxd -p
        printf 'HEX '; t | xxd -p | tr a-f A-F
        printf 'base32 '; t | base32
        printf 'lower '; t | base32 | tr A-Z a-z
        printf 'unpadded '; t | base32 | tr -d =
        printf 'both '; t | base32 | tr -d = | tr A-Z a-z
        printf 'rev '; t | rev; echo
    "#;
    let run = run_json(sandbox_with_token(backend, &workspace, &[]), script);
    assert_eq!(run.code, 0, "{run:?}");
    let hex = HEXLOWER.encode(TOKEN.as_bytes());
    let base32 = BASE32.encode(TOKEN.as_bytes());
    let forms = [
        hex.clone(),
        hex.to_uppercase(),
        base32.clone(),
        base32.to_lowercase(),
        base32.trim_end_matches('=').to_owned(),
        base32.trim_end_matches('=').to_lowercase(),
        TOKEN.chars().rev().collect(),
    ];
    // One line each: `xxd -p` wraps at 60 characters, `base32` at 76.
    assert!(hex.len() <= 60 && base32.ends_with('='), "{base32} {hex}");
    let outcome = run.outcome.to_string();
    for form in &forms {
        assert!(!outcome.contains(form.as_str()), "{form} leaked: {run:?}");
    }
    assert_no_leak(&outcome, "the Outcome");
    let lines: Vec<&str> = run.stdout().lines().collect();
    let expected: Vec<String> = ["hex", "HEX", "base32", "lower", "unpadded", "both", "rev"]
        .iter()
        .map(|label| format!("{label} [REDACTED:TOKEN]"))
        .collect();
    assert_eq!(lines, expected, "{run:?}");
    assert_eq!(run.outcome["redactions"], 7, "{run:?}");
}

/// Streamed live (no `--output json`), a value split across two writes is still caught.
fn streamed_output_is_redacted(backend: Backend) {
    let workspace = Workspace::new();
    let output = sandbox_with_token(backend, &workspace, &[])
        .args(["--", "sh", "-c"])
        .arg(r#"rest=${TOKEN#?????}; printf '%s' "${TOKEN%"$rest"}"; sleep 0.3; echo "$rest""#)
        .output()
        .expect("run sandbox");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout, "[REDACTED:TOKEN]\n", "{output:?}");
}

/// While the job runs, no process on the host has the value in its argv, and the engine's view
/// of the container (`docker inspect`) does not hold it either.
fn the_value_is_in_no_argv_and_not_in_the_engine(backend: Backend) {
    let workspace = Workspace::new();
    let ready = workspace.file("ready");
    let mut child: Child = sandbox_with_token(backend, &workspace, &[])
        .args([
            "--",
            "sh",
            "-c",
            r#"test -n "$TOKEN" && touch ready && sleep 30"#,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sandbox");
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut seen = 0;
    for entry in std::fs::read_dir("/proc").expect("list /proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            seen += 1;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert_no_leak(&cmdline, &format!("{}/cmdline", entry.path().display()));
        }
    }
    assert!(seen > 10, "read only {seen} command lines");
    if backend == Backend::Docker {
        let inspect = Command::new("docker")
            .args(["ps", "-q", "--filter"])
            .arg(format!("label=sandbox.pid={}", child.id()))
            .output()
            .expect("docker ps");
        let id = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
        assert!(!id.is_empty(), "no container found: {inspect:?}");
        let inspect = Command::new("docker")
            .args(["inspect", &id])
            .output()
            .expect("docker inspect");
        let shown = String::from_utf8_lossy(&inspect.stdout);
        assert!(shown.contains("sandbox.pid"), "{shown}");
        assert_no_leak(&shown, "docker inspect");
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// A profile delivers a secret as a file: 0400, owned by the job's uid, in a tmpfs; the job
/// reads it, and printing it is redacted like any other.
fn a_file_secret_is_readable_by_the_job_only(backend: Backend) {
    let workspace = Workspace::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("npmrc");
    std::fs::write(&source, format!("//registry/:_authToken={TOKEN}\n")).expect("write");
    let profile = write_profile(
        dir.path(),
        &format!(
            "extends = \"standard\"\n[secrets]\nNPMRC = {{ from = \"file:{}\", as = \"file:/run/secrets/npmrc\" }}\n",
            source.display()
        ),
    );
    let mut command = Command::new(SANDBOX);
    command
        .args(["exec", "--backend", backend.name(), "--profile"])
        .arg(&profile)
        .arg("--workspace")
        .arg(workspace.path())
        .stdin(Stdio::null());
    let run = run_json(
        command,
        "stat -c '%a %u %g' /run/secrets/npmrc; cat /run/secrets/npmrc; \
         echo x > /run/secrets/other 2>/dev/null || echo read-only",
    );
    assert_eq!(run.code, 0, "{run:?}");
    // The whole file is the secret, its final newline included.
    let lines: Vec<&str> = run.stdout().lines().collect();
    // The job's ids: 65534, or unprivileged on docker the caller's own (no user namespace of
    // ours maps the container's ids).
    let (uid, gid) = match backend {
        Backend::Docker if !common::is_root() => (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ),
        _ => (65534, 65534),
    };
    assert_eq!(
        lines,
        [
            format!("400 {uid} {gid}").as_str(),
            "[REDACTED:NPMRC]read-only"
        ],
        "{run:?}"
    );
    assert_eq!(run.outcome["secrets"], serde_json::json!(["NPMRC"]));
}

/// A job that writes its secret into a scratch workspace: the Outcome names the file and the
/// secret, and nothing is written back.
fn a_secret_written_to_the_workspace_is_flagged_and_not_committed(backend: Backend) {
    let workspace = Workspace::new();
    workspace.write("README", "hello\n");
    let run = run_json(
        sandbox_with_token(backend, &workspace, &["--workspace-mode", "scratch"]),
        r#"printf 'token: %s\n' "$TOKEN" > leak.txt && echo ok > fine.txt"#,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let flagged = &run.outcome["workspace"]["secret_files"];
    assert_eq!(
        flagged,
        &serde_json::json!([{"path": "leak.txt", "secrets": ["TOKEN"]}]),
        "{run:?}"
    );
    assert_eq!(run.outcome["workspace"]["committed"], false, "{run:?}");
    assert!(!workspace.file("leak.txt").exists());
    assert!(!workspace.file("fine.txt").exists());
}

/// A gate that quotes every line holding `token` as a finding (the `regex` parser), as a
/// linter quotes the line it complains about.
const QUOTING_GATE: &str = r#"
[[gate]]
name = "quote"
command = ["grep", "-rn", "token", "--include=*.cfg", "."]
parser = "regex"
pattern = '^\./(?P<path>[^:]+):(?P<line>\d+):(?P<message>.*)$'
"#;

/// Each report format and the file name it is written to.
const REPORTS: [(&str, &str); 7] = [
    ("json", "verdict.json"),
    ("sarif", "verdict.sarif"),
    ("junit", "verdict.xml"),
    ("html", "verdict.html"),
    ("markdown", "verdict.md"),
    ("github", "verdict.github"),
    ("text", "verdict.txt"),
];

/// `--report FORMAT=PATH` for every format into `dir`, and `--format github` with the step
/// summary in `dir`.
fn every_report(command: &mut Command, dir: &Path) {
    for (format, name) in REPORTS {
        command
            .arg("--report")
            .arg(format!("{format}={}", dir.join(name).display()));
    }
    command
        .args(["--format", "github"])
        .env("GITHUB_STEP_SUMMARY", dir.join("step-summary.md"));
}

/// No file in `dir` and not what the command printed holds the value or a part of it, and the
/// ones named `quoting` (and stdout) show the finding with the value redacted.
fn assert_redacted(dir: &Path, printed: &str, quoting: &[&str]) {
    let mut texts = vec![("stdout".to_owned(), printed.to_owned())];
    for entry in std::fs::read_dir(dir).expect("list").flatten() {
        if entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path()).expect("read a report");
            texts.push((entry.file_name().to_string_lossy().into_owned(), text));
        }
    }
    for (name, text) in &texts {
        assert_no_leak(text, name);
        assert!(
            !text.contains("ghp_s3cr3t"),
            "{name} holds a part of the value:\n{text}"
        );
    }
    for name in quoting.iter().chain(&["stdout"]) {
        let (_, text) = texts
            .iter()
            .find(|(file, _)| file == name)
            .unwrap_or_else(|| panic!("no {name} in {}", dir.display()));
        // Markdown escapes the brackets.
        assert!(
            text.contains("REDACTED:TOKEN"),
            "{name} lost the finding:\n{text}"
        );
    }
}

/// What `every_report` writes.
fn reports() -> Vec<&'static str> {
    let mut names: Vec<&str> = REPORTS.iter().map(|(_, name)| *name).collect();
    names.push("step-summary.md");
    names
}

/// The job writes its secret into a file a gate quotes in its findings (issue 15). `check`
/// fails (the gate found it, and a secret is never written back), and the Verdict it prints, every
/// report file, the step summary and the bundle quote the finding with `[REDACTED:TOKEN]`.
fn a_finding_quoting_a_secret_is_redacted_in_every_report(backend: Backend) {
    let workspace = Workspace::new();
    workspace.write("sandbox.toml", QUOTING_GATE);
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle");
    let mut command = Command::new(SANDBOX);
    command
        .env(TOKEN_VAR, TOKEN)
        .args(["check", "--backend", backend.name(), "--workspace"])
        .arg(workspace.path())
        .args(["--secret", &format!("TOKEN=env:{TOKEN_VAR}"), "--bundle"])
        .arg(&bundle)
        .stdin(Stdio::null());
    every_report(&mut command, dir.path());
    let script = r#"printf 'token = %s\nbasic token = %s\n' "$TOKEN" "$(printf 'u:%s' "$TOKEN" | base64)" > app.cfg"#;
    let output = command
        .args(["--", "sh", "-c", script])
        .output()
        .expect("run sandbox");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let verdict: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("verdict.json")).expect("json"),
    )
    .expect("the JSON report is JSON");
    let findings = &verdict["gates"][0]["findings"];
    assert_eq!(findings.as_array().map(Vec::len), Some(2), "{verdict:#}");
    assert_eq!(
        findings[0]["message"], "token = [REDACTED:TOKEN]",
        "{verdict:#}"
    );
    assert_eq!(findings[0]["path"], "app.cfg", "{verdict:#}");
    assert_eq!(
        verdict["job"]["workspace"]["secret_files"],
        serde_json::json!([{"path": "app.cfg", "secrets": ["TOKEN"]}]),
        "{verdict:#}"
    );
    assert!(!workspace.file("app.cfg").exists());
    // Nor does the project's gate cache, which the next job can read, hold it.
    assert!(
        verdict["gates"][0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.ends_with("(not cached: it quoted a secret)")),
        "{verdict:#}"
    );
    for path in files_under(workspace.path()) {
        let text = std::fs::read(&path).expect("read");
        assert_no_leak(&String::from_utf8_lossy(&text), &path.display().to_string());
    }
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_redacted(dir.path(), &printed, &reports());
    assert_redacted(&bundle, &printed, &["verdict.json", "summary.md"]);
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `sandbox gate --secret NAME=env:VAR`: the operator names a value the project's files hold;
/// the findings quoting it and the HTML page's source lines show `[REDACTED:TOKEN]`, also when
/// the result comes from the cache a run without `--secret` filled.
#[test]
fn gate_redacts_the_secrets_it_is_given_from_every_report() {
    let workspace = Workspace::new();
    workspace.write("sandbox.toml", QUOTING_GATE);
    let basic = base64(&format!("u:{TOKEN}"));
    workspace.write(
        "app.cfg",
        &format!("token = {TOKEN}\nbasic token = {basic}\n"),
    );
    common::open_to_jobs(workspace.path());
    let gate = || {
        let mut command = Command::new(SANDBOX);
        command
            .env(TOKEN_VAR, TOKEN)
            .args(["gate", "--backend", "native", "--workspace"])
            .arg(workspace.path())
            .stdin(Stdio::null());
        command
    };
    // Without `--secret` the finding quotes the value (the project's own file holds it).
    let plain = gate()
        .args(["--format", "json"])
        .output()
        .expect("run sandbox");
    let plain: serde_json::Value = serde_json::from_slice(&plain.stdout).expect("a Verdict");
    assert_eq!(
        plain["gates"][0]["findings"][0]["message"],
        format!("token = {TOKEN}"),
        "{plain:#}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = gate();
    command.args(["--secret", &format!("TOKEN=env:{TOKEN_VAR}")]);
    every_report(&mut command, dir.path());
    let output = command.output().expect("run sandbox");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let verdict: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("verdict.json")).expect("json"),
    )
    .expect("the JSON report is JSON");
    assert_eq!(verdict["gates"][0]["cached"], true, "{verdict:#}");
    let html = std::fs::read_to_string(dir.path().join("verdict.html")).expect("html");
    // The source line under the finding, not only its message.
    assert!(
        html.matches("token = [REDACTED:TOKEN]").count() >= 2,
        "{html}"
    );
    assert_redacted(
        dir.path(),
        &String::from_utf8_lossy(&output.stdout),
        &reports(),
    );
}

/// The hex, base32 and reversed forms written into a scratch workspace are found like the value
/// itself: each file is named with the secret, and nothing is written back.
fn an_encoded_secret_written_to_the_workspace_is_flagged(backend: Backend) {
    let workspace = Workspace::new();
    let run = run_json(
        sandbox_with_token(backend, &workspace, &["--workspace-mode", "scratch"]),
        r#"t() { printf '%s' "$TOKEN"; }
           t | xxd -p > hex.txt; t | base32 | tr A-Z a-z > b32.txt; t | rev > rev.txt"#,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let flagged = |path: &str| serde_json::json!({"path": path, "secrets": ["TOKEN"]});
    let mut files = run.outcome["workspace"]["secret_files"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    files.sort_by_key(|file| file["path"].as_str().map(str::to_owned));
    assert_eq!(
        files,
        [flagged("b32.txt"), flagged("hex.txt"), flagged("rev.txt")],
        "{run:?}"
    );
    assert_eq!(run.outcome["workspace"]["committed"], false, "{run:?}");
    assert!(!workspace.file("hex.txt").exists());
}

conformance!(
    a_finding_quoting_a_secret_is_redacted_in_every_report,
    an_encoded_secret_written_to_the_workspace_is_flagged,
    every_printed_form_is_redacted,
    hex_base32_and_reversed_forms_are_redacted,
    streamed_output_is_redacted,
    the_value_is_in_no_argv_and_not_in_the_engine,
    a_file_secret_is_readable_by_the_job_only,
    a_secret_written_to_the_workspace_is_flagged_and_not_committed,
);

fn write_profile(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("with-secret.toml");
    std::fs::write(&path, text).expect("write profile");
    path
}

#[test]
fn a_missing_secret_source_refuses_the_job_naming_it() {
    let workspace = Workspace::new();
    let output = Command::new(SANDBOX)
        .env_remove("SANDBOX_TEST_UNSET")
        .args(["exec", "--backend", "native", "--workspace"])
        .arg(workspace.path())
        .args([
            "--secret",
            "API_KEY=env:SANDBOX_TEST_UNSET",
            "--",
            "touch",
            "ran",
        ])
        .output()
        .expect("run sandbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("API_KEY") && stderr.contains("SANDBOX_TEST_UNSET"),
        "{stderr}"
    );
    assert!(!workspace.file("ran").exists());

    let dir = tempfile::tempdir().expect("tempdir");
    let profile = write_profile(
        dir.path(),
        "extends = \"standard\"\n\n[secrets]\nDEPLOY = { from = \"file:/nonexistent/key\", as = \"env\" }\n",
    );
    let output = Command::new(SANDBOX)
        .args(["exec", "--backend", "native", "--profile"])
        .arg(&profile)
        .arg("--workspace")
        .arg(workspace.path())
        .args(["--", "touch", "ran"])
        .output()
        .expect("run sandbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:4", profile.display()))
            && stderr.contains("DEPLOY")
            && stderr.contains("/nonexistent/key"),
        "{stderr}"
    );
    assert!(!workspace.file("ran").exists());
}

/// `gate --secret` with a source that is not there is a usage error naming the secret and the
/// source, before any gate runs (no report is written).
#[test]
fn gate_refuses_a_secret_it_cannot_read_before_any_gate_runs() {
    let workspace = Workspace::new();
    workspace.write("sandbox.toml", QUOTING_GATE);
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("verdict.json");
    let output = Command::new(SANDBOX)
        .env_remove("SANDBOX_TEST_UNSET")
        .args(["gate", "--backend", "native", "--workspace"])
        .arg(workspace.path())
        .args(["--secret", "API_KEY=env:SANDBOX_TEST_UNSET", "--report"])
        .arg(format!("json={}", report.display()))
        .output()
        .expect("run sandbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("API_KEY") && stderr.contains("SANDBOX_TEST_UNSET"),
        "{stderr}"
    );
    assert!(!report.exists());
}
