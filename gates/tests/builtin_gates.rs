//! The built-in `policy` and `secret-scan` gates, run on small workspaces made in temporary
//! directories. Fake credentials are assembled at run time from pieces and a seeded
//! generator, so this file holds nothing a secret scanner should stop.

// clippy's allow-unwrap-in-tests covers `#[test]` functions only, not the helpers here.
#![expect(
    clippy::unwrap_used,
    reason = "a fixture that cannot be made fails the test"
)]

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use sandbox_gates::builtin::{
    policy, secret_scan, Baseline, Changes, PolicyConfig, SecretScanConfig, Workspace,
};
use sandbox_gates::{ParseError, Parsed};
use tempfile::TempDir;

fn workspace(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    dir
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn policy_config(toml: &str) -> PolicyConfig {
    toml::from_str(toml).unwrap()
}

fn run_policy(toml: &str, files: &[(&str, &str)]) -> Parsed {
    let dir = workspace(files);
    policy(&policy_config(toml), &Workspace::new(dir.path())).unwrap()
}

/// `(rule, path, line, column)` of every finding, in order.
fn places(parsed: &Parsed) -> Vec<(String, String, u32, u32)> {
    parsed
        .findings
        .iter()
        .map(|f| {
            (
                f.rule.clone(),
                f.path.clone().unwrap_or_default(),
                f.line.unwrap_or(0),
                f.column.unwrap_or(0),
            )
        })
        .collect()
}

fn at(rule: &str, path: &str, line: u32, column: u32) -> (String, String, u32, u32) {
    (rule.to_owned(), path.to_owned(), line, column)
}

fn rules(parsed: &Parsed) -> Vec<&str> {
    parsed.findings.iter().map(|f| f.rule.as_str()).collect()
}

// ---- policy: imports and calls, from the syntax tree ----

#[test]
fn python_import_hidden_in_a_parenthesised_statement_is_found() {
    let source = "import json\nfrom os import (\n    path,\n    system,\n)\n";
    let parsed = run_policy(
        r#"banned_imports = ["os.system"]"#,
        &[("tool/run.py", source)],
    );
    assert_eq!(
        places(&parsed),
        [at("policy/banned-import", "tool/run.py", 4, 5)]
    );
}

#[test]
fn python_aliased_import_is_found_and_its_calls_resolve_through_the_alias() {
    let source = "import subprocess as sp\n\n\ndef go():\n    return sp.run([\"ls\"])\n";
    let parsed = run_policy(
        r#"
        banned_imports = ["subprocess"]
        banned_calls = ["subprocess.run"]
        "#,
        &[("a.py", source)],
    );
    assert_eq!(
        places(&parsed),
        [
            at("policy/banned-import", "a.py", 1, 8),
            at("policy/banned-call", "a.py", 5, 12),
        ]
    );
    assert!(
        parsed.findings[1]
            .message
            .contains("`sp.run` → `subprocess.run`"),
        "{}",
        parsed.findings[1].message
    );
}

#[test]
fn python_dynamic_imports_and_banned_builtins() {
    let source = "\
import importlib as il
mod = __import__(\"subprocess\")
other = il.import_module('subprocess')
eval(\"1 + 1\")
model.eval()
";
    let parsed = run_policy(
        r#"
        banned_imports = ["subprocess"]
        banned_calls = ["eval"]
        "#,
        &[("m.py", source)],
    );
    assert_eq!(
        places(&parsed),
        [
            at("policy/banned-import", "m.py", 2, 18),
            at("policy/banned-import", "m.py", 3, 26),
            at("policy/banned-call", "m.py", 4, 1),
        ]
    );
}

#[test]
fn banned_words_in_strings_and_comments_are_not_imports_or_calls() {
    let config = r#"
        banned_imports = ["subprocess", "child_process", "std::process::Command", "os/exec"]
        banned_calls = ["eval", "exec", "exec.Command"]
    "#;
    let parsed = run_policy(
        config,
        &[
            (
                "a.py",
                "# import subprocess\nx = \"import subprocess; eval(1)\"\n'''subprocess.run()'''\n",
            ),
            (
                "b.js",
                "// require(\"child_process\")\nconst s = 'require(\"child_process\")';\n/* eval(x) */\n",
            ),
            (
                "c.rs",
                "// use std::process::Command;\nfn f() -> &'static str { \"std::process::Command::new\" }\n",
            ),
            (
                "d.go",
                "package d\n\n// import \"os/exec\"\nvar s = \"exec.Command(\\\"ls\\\")\"\n",
            ),
        ],
    );
    assert_eq!(places(&parsed), []);
    assert_eq!(parsed.metrics["files_scanned"], 4.0);
}

#[test]
fn javascript_imports_requires_and_dynamic_imports() {
    let source = "\
import { exec as run } from \"child_process\";
const cp = require('node:child_process');
const { spawn } = require(`child_process`);
async function later() { return import(\"child_process\"); }
run(\"ls\");
cp.execSync(\"ls\");
spawn(\"ls\");
";
    let parsed = run_policy(
        r#"
        banned_imports = ["child_process"]
        banned_calls = ["child_process.exec", "child_process.execSync"]
        "#,
        &[("app.mjs", source)],
    );
    assert_eq!(
        places(&parsed),
        [
            at("policy/banned-import", "app.mjs", 1, 29),
            at("policy/banned-import", "app.mjs", 2, 20),
            at("policy/banned-import", "app.mjs", 3, 27),
            at("policy/banned-import", "app.mjs", 4, 40),
            at("policy/banned-call", "app.mjs", 5, 1),
            at("policy/banned-call", "app.mjs", 6, 1),
        ]
    );
}

#[test]
fn typescript_and_tsx_imports() {
    let ts = "\
import type { ChildProcess } from \"child_process\";
import fs = require(\"fs\");
const keep: number = 1;
fs.rmSync(\"/\", { recursive: true });
";
    let tsx = "\
import React from \"react\";
import { exec } from \"child_process\";
export const A = () => <div onClick={() => exec(\"ls\")}>{\"child_process\"}</div>;
";
    let parsed = run_policy(
        r#"
        banned_imports = ["child_process"]
        banned_calls = ["fs.rmSync", "child_process.exec"]
        "#,
        &[("src/a.ts", ts), ("src/b.tsx", tsx)],
    );
    assert_eq!(
        places(&parsed),
        [
            at("policy/banned-import", "src/a.ts", 1, 35),
            at("policy/banned-call", "src/a.ts", 4, 1),
            at("policy/banned-import", "src/b.tsx", 2, 22),
            at("policy/banned-call", "src/b.tsx", 3, 44),
        ]
    );
}

#[test]
fn rust_use_trees_and_fully_qualified_paths() {
    let source = "\
use std::{fs, process::{Command as Cmd, Stdio}};

fn main() {
    let _ = std::process::Command::new(\"ls\");
    let _ = Cmd::new(\"ls\").stdout(Stdio::null());
    let _ = fs::read(\"x\");
    let _ = exec::run();
}
";
    let parsed = run_policy(
        r#"
        banned_imports = ["std::process::Command"]
        banned_calls = ["std::process::Command::new", "exec"]
        "#,
        &[("src/main.rs", source)],
    );
    assert_eq!(
        places(&parsed),
        [
            at("policy/banned-import", "src/main.rs", 1, 25),
            at("policy/banned-import", "src/main.rs", 4, 13),
            at("policy/banned-call", "src/main.rs", 4, 13),
            at("policy/banned-call", "src/main.rs", 5, 13),
        ]
    );
}

#[test]
fn go_single_grouped_and_named_imports() {
    let source = "\
package main

import \"fmt\"
import (
\te \"os/exec\"
\t\"net/http\"
)

func main() {
\te.Command(\"ls\").Run()
\tfmt.Println(http.StatusOK)
}
";
    let parsed = run_policy(
        r#"
        banned_imports = ["os/exec"]
        banned_calls = ["os/exec.Command"]
        "#,
        &[("cmd/main.go", source)],
    );
    assert_eq!(
        places(&parsed),
        [
            at("policy/banned-import", "cmd/main.go", 5, 4),
            at("policy/banned-call", "cmd/main.go", 10, 2),
        ]
    );
}

// ---- policy: patterns and paths ----

#[test]
fn banned_patterns_apply_only_to_files_their_glob_matches() {
    let parsed = run_policy(
        r#"banned_patterns = [{ glob = "**/*.py", regex = "TODO\\(security\\)" }]"#,
        &[
            ("pkg/a.py", "x = 1\n    # TODO(security): check\n"),
            ("top.py", "# TODO(security)\n"),
            ("web/b.js", "// TODO(security)\n"),
        ],
    );
    assert_eq!(
        places(&parsed),
        [
            at("policy/banned-pattern", "pkg/a.py", 2, 7),
            at("policy/banned-pattern", "top.py", 1, 3),
        ]
    );
}

#[test]
fn the_gate_paths_narrow_what_is_scanned() {
    let dir = workspace(&[
        ("src/a.py", "import subprocess\n"),
        ("tools/b.py", "import subprocess\n"),
    ]);
    let paths = ["src/**".to_owned()];
    let ws = Workspace::new(dir.path()).with_paths(&paths);
    let parsed = policy(&policy_config(r#"banned_imports = ["subprocess"]"#), &ws).unwrap();
    assert_eq!(
        places(&parsed),
        [at("policy/banned-import", "src/a.py", 1, 8)]
    );
}

#[test]
fn a_source_file_too_large_to_parse_is_reported_not_passed() {
    let large = format!("import subprocess\n{}", "x = 1\n".repeat(400_000));
    let parsed = run_policy(r#"banned_imports = ["subprocess"]"#, &[("gen.py", &large)]);
    assert_eq!(places(&parsed), [at("policy/unchecked", "gen.py", 0, 0)]);
    assert_eq!(
        parsed.findings[0].severity,
        sandbox_gates::Severity::Warning
    );
}

fn git(root: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

fn have_git() -> bool {
    let found = Command::new("git").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("SANDBOX_TEST_NO_SKIP").is_none(),
            "git is not installed and SANDBOX_TEST_NO_SKIP is set"
        );
        eprintln!("skipping: git is not installed");
    }
    found
}

#[test]
fn forbidden_paths_and_change_limits_from_a_real_git_repository() {
    if !have_git() {
        return;
    }
    let dir = workspace(&[
        ("src/lib.rs", "pub fn a() {}\n"),
        (".github/workflows/ci.yml", "on: push\n"),
        ("Cargo.lock", "# lock\n"),
        (".gitignore", "scratch/\n"),
    ]);
    let root = dir.path();
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    write(
        root,
        "src/lib.rs",
        "pub fn a() {}\npub fn b() {}\npub fn c() {}\n",
    );
    write(root, ".github/workflows/ci.yml", "on: pull_request\n");
    write(root, "notes/new.md", "one\ntwo\n");
    write(root, "scratch/ignored.txt", "not a change\n");
    std::fs::remove_file(root.join("Cargo.lock")).unwrap();

    let config = policy_config(
        r#"
        forbidden_paths = [".github/workflows/**", "**/*.lock"]
        max_changed_files = 3
        max_changed_lines = 4
        base = "HEAD"
        "#,
    );
    let parsed = policy(&config, &Workspace::new(root)).unwrap();
    assert_eq!(
        places(&parsed),
        [
            at("policy/forbidden-path", ".github/workflows/ci.yml", 1, 0),
            at("policy/forbidden-path", "Cargo.lock", 0, 0),
            at("policy/max-changed-files", "", 0, 0),
            at("policy/max-changed-lines", "", 0, 0),
        ]
    );
    // ci.yml 1+1, Cargo.lock 1 removed, lib.rs 2 added, notes/new.md 2 added.
    assert_eq!(parsed.metrics["changed_files"], 4.0);
    assert_eq!(parsed.metrics["changed_lines"], 7.0);

    let changes = Changes::from_git(root, "HEAD").unwrap();
    let lib = changes
        .files
        .iter()
        .find(|f| f.path == "src/lib.rs")
        .unwrap();
    assert_eq!(lib.added_lines, [2, 3]);
}

#[test]
fn a_workspace_below_the_repository_top_sees_its_own_paths() {
    if !have_git() {
        return;
    }
    let dir = workspace(&[("outside.txt", "a\n"), ("app/inside.txt", "a\n")]);
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    write(dir.path(), "outside.txt", "b\n");
    write(dir.path(), "app/inside.txt", "b\n");
    write(dir.path(), "app/new.txt", "c\n");
    let changes = Changes::from_git(&dir.path().join("app"), "HEAD").unwrap();
    let paths: Vec<&str> = changes.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["inside.txt", "new.txt"]);
}

#[test]
fn a_base_git_cannot_resolve_is_an_error_that_names_it() {
    if !have_git() {
        return;
    }
    let dir = workspace(&[("a.txt", "x\n")]);
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    let config = policy_config("max_changed_files = 1\nbase = \"origin/nope\"");
    let err = policy(&config, &Workspace::new(dir.path())).unwrap_err();
    assert!(err.to_string().contains("origin/nope"), "{err}");
}

#[test]
fn change_rules_without_changes_or_a_base_are_an_error_not_a_pass() {
    let dir = workspace(&[("a.txt", "x\n")]);
    for config in [
        r#"forbidden_paths = ["a.txt"]"#,
        "max_changed_files = 1",
        "max_changed_lines = 1",
    ] {
        let err = policy(&policy_config(config), &Workspace::new(dir.path())).unwrap_err();
        assert!(matches!(err, ParseError::ToolFailed(_)));
        assert!(err.to_string().contains("base = "), "{err}");
    }
}

#[test]
fn changes_handed_in_as_a_patch_are_judged() {
    let patch = "\
diff --git a/deploy/prod.lock b/deploy/prod.lock
--- a/deploy/prod.lock
+++ b/deploy/prod.lock
@@ -3 +3,2 @@
-a
+b
+c
";
    let changes = Changes::from_patch(patch).unwrap();
    let dir = workspace(&[]);
    let ws = Workspace::new(dir.path()).with_changes(&changes);
    let config = policy_config("forbidden_paths = [\"**/*.lock\"]\nmax_changed_lines = 2");
    let parsed = policy(&config, &ws).unwrap();
    assert_eq!(
        places(&parsed),
        [
            at("policy/forbidden-path", "deploy/prod.lock", 3, 0),
            at("policy/max-changed-lines", "", 0, 0),
        ]
    );
}

#[test]
fn unknown_keys_in_the_gate_table_are_refused() {
    let err = toml::from_str::<PolicyConfig>("banned_import = [\"x\"]").unwrap_err();
    assert!(err.to_string().contains("banned_import"), "{err}");
}

// ---- policy: Rego ----

fn example_policy() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/example.rego");
    std::fs::read_to_string(path).unwrap()
}

fn rego_run(policy_text: &str, patch: &str) -> Parsed {
    let dir = workspace(&[("policies/example.rego", policy_text)]);
    let changes = Changes::from_patch(patch).unwrap();
    let ws = Workspace::new(dir.path()).with_changes(&changes);
    policy(&policy_config(r#"rego = ["policies/*.rego"]"#), &ws).unwrap()
}

fn added(path: &str) -> String {
    format!("--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n")
}

#[test]
fn rego_deny_produces_findings() {
    let patch = [added(".github/workflows/ci.yml"), added("src/lib.rs")].concat();
    let parsed = rego_run(&example_policy(), &patch);
    let mut found: Vec<(Option<&str>, &str)> = parsed
        .findings
        .iter()
        .map(|f| (f.path.as_deref(), f.message.as_str()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                Some(".github/workflows/ci.yml"),
                "CI workflows are not changed from the sandbox"
            ),
            (
                Some("policies/example.rego"),
                "source changed without a test: add or update one under tests/"
            ),
        ]
    );
    assert!(rules(&parsed).iter().all(|r| *r == "policy/rego"));
}

#[test]
fn rego_counts_changed_files() {
    let patch: String = (0..41).map(|i| added(&format!("docs/{i}.md"))).collect();
    let parsed = rego_run(&example_policy(), &patch);
    assert_eq!(parsed.findings.len(), 1);
    assert!(parsed.findings[0].message.starts_with("41 files changed"));
}

#[test]
fn rego_passing_input_produces_no_findings() {
    let patch = [added("src/lib.rs"), added("tests/lib_test.rs")].concat();
    let parsed = rego_run(&example_policy(), &patch);
    assert_eq!(places(&parsed), []);
}

#[test]
fn rego_default_allow_false_with_allow_false_is_a_finding() {
    let policy_text = "\
package deny_by_default

default allow := false

allow if {
\tcount(input.changes) > 0
\tevery c in input.changes { startswith(c.path, \"docs/\") }
}
";
    let denied = rego_run(policy_text, &added("src/main.rs"));
    assert_eq!(rules(&denied), ["policy/rego"]);
    assert!(denied.findings[0].message.contains("`allow` is false"));
    let allowed = rego_run(policy_text, &added("docs/guide.md"));
    assert_eq!(places(&allowed), []);
}

#[test]
fn rego_sees_earlier_findings() {
    let policy_text = "\
package findings
deny contains sprintf(\"%d banned imports\", [n]) if {
\tn := count([f | some f in input.findings; f.rule == \"policy/banned-import\"])
\tn > 0
}
";
    let dir = workspace(&[("p.rego", policy_text), ("a.py", "import subprocess\n")]);
    let config = policy_config("banned_imports = [\"subprocess\"]\nrego = [\"p.rego\"]");
    let parsed = policy(&config, &Workspace::new(dir.path())).unwrap();
    assert_eq!(rules(&parsed), ["policy/banned-import", "policy/rego"]);
    assert_eq!(parsed.findings[1].message, "1 banned imports");
}

#[test]
fn a_rego_entry_that_names_no_file_is_an_error() {
    let dir = workspace(&[]);
    let config = policy_config(r#"rego = ["policies/*.rego"]"#);
    let err = policy(&config, &Workspace::new(dir.path())).unwrap_err();
    assert!(err.to_string().contains("names no policy file"), "{err}");
}

// ---- secret scan ----

/// A deterministic stand-in for random characters (xorshift), so no literal token lives in
/// this file.
fn random(alphabet: &str, len: usize, seed: u64) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chars[(state % chars.len() as u64) as usize]
        })
        .collect()
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn fake_jwt() -> String {
    let part = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let header = part(r#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = part(r#"{"sub":"1234567890","name":"test"}"#);
    format!("{header}.{payload}.{}", random(ALNUM, 43, 9))
}

fn fake_private_key() -> String {
    let dashes = "-".repeat(5);
    let body: Vec<String> = (0..4).map(|i| random(BASE64, 64, 20 + i)).collect();
    format!(
        "{dashes}BEGIN RSA PRIVATE KEY{dashes}\n{}\n{dashes}END RSA PRIVATE KEY{dashes}\n",
        body.join("\n")
    )
}

/// One line per kind, the value of each, and the rule it must be found by.
fn fake_secrets() -> Vec<(String, String, &'static str)> {
    let aws_id = [
        "AK",
        "IA",
        &random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 1),
    ]
    .concat();
    let aws_secret = random(BASE64, 40, 2);
    let github = ["gh", "p_", &random(ALNUM, 36, 3)].concat();
    let github_pat = [
        "github",
        "_pat_",
        &random(ALNUM, 22, 4),
        "_",
        &random(ALNUM, 59, 5),
    ]
    .concat();
    let gitlab = ["gl", "pat-", &random(ALNUM, 20, 6)].concat();
    let slack = [
        "xo",
        "xb-",
        &random("0123456789", 12, 7),
        "-",
        &random(ALNUM, 24, 8),
    ]
    .concat();
    let webhook = [
        "https://hooks.",
        "slack.com/services/T",
        &random("ABCDEFGHIJ0123456789", 8, 10),
        "/B",
        &random("ABCDEFGHIJ0123456789", 8, 11),
        "/",
        &random(ALNUM, 24, 12),
    ]
    .concat();
    let stripe = ["sk", "_live_", &random(ALNUM, 24, 13)].concat();
    let google = ["AI", "za", &random(ALNUM, 35, 14)].concat();
    let jwt = fake_jwt();
    let generic = random(ALNUM, 24, 15);
    vec![
        (
            format!("AWS_ACCESS_KEY_ID={aws_id}"),
            aws_id,
            "secret/aws-access-key-id",
        ),
        (
            format!("aws_secret_access_key = \"{aws_secret}\""),
            aws_secret,
            "secret/aws-secret-access-key",
        ),
        (format!("token: {github}"), github, "secret/github-token"),
        (
            format!("GH={github_pat}"),
            github_pat,
            "secret/github-token",
        ),
        (
            format!("url = \"https://x:{gitlab}@gitlab.example\""),
            gitlab,
            "secret/gitlab-token",
        ),
        (format!("SLACK={slack}"), slack, "secret/slack-token"),
        (format!("hook({webhook})"), webhook, "secret/slack-webhook"),
        (
            format!("stripe.key = {stripe}"),
            stripe,
            "secret/stripe-key",
        ),
        (
            format!("const k = '{google}';"),
            google,
            "secret/google-api-key",
        ),
        (format!("Authorization: Bearer {jwt}"), jwt, "secret/jwt"),
        (
            format!("db_password = \"{generic}\""),
            generic,
            "secret/generic-high-entropy",
        ),
    ]
}

#[test]
fn finds_every_kind_of_secret_and_never_prints_one() {
    let secrets = fake_secrets();
    let mut text: String = secrets
        .iter()
        .map(|(line, ..)| format!("{line}\n"))
        .collect();
    let key_line = secrets.len() as u32 + 1;
    text.push_str(&fake_private_key());
    let dir = workspace(&[("config/settings.env", &text)]);
    let parsed = secret_scan(&SecretScanConfig::default(), &Workspace::new(dir.path())).unwrap();

    let mut expected: Vec<(String, u32)> = secrets
        .iter()
        .enumerate()
        .map(|(i, (_, _, rule))| (rule.to_string(), i as u32 + 1))
        .collect();
    expected.push(("secret/private-key".to_owned(), key_line));
    let found: Vec<(String, u32)> = parsed
        .findings
        .iter()
        .map(|f| (f.rule.clone(), f.line.unwrap()))
        .collect();
    assert_eq!(found, expected);
    for finding in &parsed.findings {
        assert_eq!(finding.severity, sandbox_gates::Severity::Error);
        assert_eq!(finding.path.as_deref(), Some("config/settings.env"));
        assert!(
            finding.message.contains("…` [baseline fingerprint "),
            "{}",
            finding.message
        );
    }
    for (_, value, _) in &secrets {
        for finding in &parsed.findings {
            assert!(
                !finding.message.contains(&value[..8]),
                "{}",
                finding.message
            );
        }
    }
}

#[test]
fn a_baseline_removes_exactly_the_accepted_finding_even_after_lines_move() {
    let secrets = fake_secrets();
    let (first, second) = (&secrets[2], &secrets[7]);
    let text = format!("{}\n{}\n", first.0, second.0);
    let dir = workspace(&[("app.cfg", &text)]);
    let ws = Workspace::new(dir.path());
    let before = secret_scan(&SecretScanConfig::default(), &ws).unwrap();
    assert_eq!(rules(&before), [first.2, second.2]);

    let accepted = Baseline::fingerprint(first.2, "app.cfg", &first.1);
    let baseline = serde_json::json!({ "version": 1, "fingerprints": [accepted] });
    write(
        dir.path(),
        ".sandbox/secrets-baseline.json",
        &baseline.to_string(),
    );
    write(dir.path(), "app.cfg", &format!("\n\n# moved\n{text}"));
    let config: SecretScanConfig =
        toml::from_str(r#"baseline = ".sandbox/secrets-baseline.json""#).unwrap();
    let after = secret_scan(&config, &ws).unwrap();
    assert_eq!(places(&after), [at(second.2, "app.cfg", 5, 14)]);
    assert_eq!(after.metrics["baselined"], 1.0);
    assert_eq!(Baseline::accepting(&before.findings).fingerprints.len(), 2);
    assert!(Baseline::accepting(&before.findings)
        .fingerprints
        .contains(&accepted));
}

#[test]
fn a_missing_or_malformed_baseline_is_an_error() {
    let dir = workspace(&[("bad.json", r#"{"version": 2, "fingerprints": []}"#)]);
    for path in ["nope.json", "bad.json"] {
        let config = SecretScanConfig {
            baseline: Some(path.to_owned()),
            ..SecretScanConfig::default()
        };
        let err = secret_scan(&config, &Workspace::new(dir.path())).unwrap_err();
        assert!(matches!(err, ParseError::ToolFailed(_)), "{err}");
    }
}

#[test]
fn the_inline_allow_comment_drops_only_its_own_line() {
    let secrets = fake_secrets();
    let text = format!(
        "{}  # sandbox:allow-secret (revoked test key)\n{}\n",
        secrets[2].0, secrets[3].0
    );
    let dir = workspace(&[("a.sh", &text)]);
    let parsed = secret_scan(&SecretScanConfig::default(), &Workspace::new(dir.path())).unwrap();
    assert_eq!(places(&parsed), [at("secret/github-token", "a.sh", 2, 4)]);
    assert_eq!(parsed.metrics["allowed_inline"], 1.0);
}

#[test]
fn the_entropy_rule_ignores_weak_and_placeholder_values() {
    let text = "\
password = \"changeme\"
api_key = \"${API_KEY_FROM_THE_ENVIRONMENT}\"
secret: \"correct horse battery staple\"
token = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaa\"
";
    let dir = workspace(&[("settings.yaml", text)]);
    let parsed = secret_scan(&SecretScanConfig::default(), &Workspace::new(dir.path())).unwrap();
    assert_eq!(places(&parsed), []);
}

#[test]
fn binary_large_and_excluded_files_are_skipped() {
    let token = ["gh", "p_", &random(ALNUM, 36, 3)].concat();
    let dir = workspace(&[("fixtures/fake.txt", &token)]);
    let mut binary = token.clone().into_bytes();
    binary.insert(0, 0);
    std::fs::write(dir.path().join("blob.bin"), binary).unwrap();
    let large = format!("{token}\n{}", "x".repeat(1 << 20));
    write(dir.path(), "large.txt", &large);
    let config = SecretScanConfig {
        exclude: vec!["fixtures/**".to_owned()],
        ..SecretScanConfig::default()
    };
    let parsed = secret_scan(&config, &Workspace::new(dir.path())).unwrap();
    assert_eq!(places(&parsed), []);
    assert_eq!(parsed.metrics["files_skipped"], 2.0);
    assert_eq!(parsed.metrics["files_scanned"], 0.0);
}
