//! The composite GitHub Action (`action.yml`): its gate step, run by bash the way a runner runs
//! it (the `run:` block with the inputs in the environment and `GITHUB_OUTPUT` and
//! `GITHUB_STEP_SUMMARY` set), writes annotations, the reports and the step's outputs, and
//! exits with sandbox gate's code.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Workspace, SANDBOX};

/// The `run: |` block of the step named `name`, dedented.
fn step_script(action: &str, name: &str) -> String {
    let step = action
        .split(&format!("- name: {name}\n"))
        .nth(1)
        .expect("the step");
    let block = step.split("run: |\n").nth(1).expect("a run block");
    let mut script = String::new();
    for line in block.lines() {
        if !line.is_empty() && !line.starts_with("        ") {
            break; // the next step, or the end of this one
        }
        script.push_str(line.get(8..).unwrap_or(""));
        script.push('\n');
    }
    script
}

#[test]
fn the_gate_step_reports_like_a_runner_expects() {
    let action = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"))
        .expect("action.yml");
    let script = step_script(&action, "Run the gates");
    assert!(script.contains("sandbox gate --format github"), "{script}");

    let project = Workspace::new();
    project.write(
        "sandbox.toml",
        "[[gate]]\nname = \"todo\"\ncommand = [\"sh\", \"-c\", \"grep -n TODO *.txt | sed 's/^/notes.txt:/' >&2; ! grep -q TODO *.txt\"]\nparser = \"exit-code\"\n",
    );
    project.write("notes.txt", "TODO: one, two\n");
    let github = tempfile::tempdir().expect("tempdir");
    let outputs = github.path().join("output");
    let summary = github.path().join("summary.md");
    let sandbox_dir = Path::new(SANDBOX).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        sandbox_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = Command::new("bash")
        .args(["-c", &script])
        .current_dir(project.path())
        .env("PATH", path)
        .env("ARGS", "--backend native")
        .env("SARIF", "gates.sarif")
        .env("JUNIT", "gates.xml")
        .env("VERDICT", "verdict.json")
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let context = format!(
        "exit {:?}\nstdout {stdout}\nstderr {}",
        ran.status.code(),
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(ran.status.code(), Some(1), "{context}");
    assert!(stdout.contains("::error"), "{context}");
    let outputs = std::fs::read_to_string(&outputs).expect("GITHUB_OUTPUT");
    for line in [
        "exit-code=1",
        "status=fail",
        "sarif=gates.sarif",
        "junit=gates.xml",
    ] {
        assert!(outputs.lines().any(|l| l == line), "{line}: {outputs}");
    }
    for report in ["gates.sarif", "gates.xml", "verdict.json"] {
        assert!(project.file(report).is_file(), "{report}: {context}");
    }
    let summary = std::fs::read_to_string(&summary).expect("step summary");
    assert!(summary.contains("todo"), "{summary}");
}
