//! The pre-commit hook end to end, through real `git commit`s: `sandbox hook install` writes a
//! hook that blocks a commit whose staged files break a gate and lets a clean one through,
//! honours `core.hooksPath`, never replaces or removes a hook it did not write; and the
//! published `.pre-commit-hooks.yaml` does the same under the pre-commit framework.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Workspace, SANDBOX};

/// The built-in policy gate: no external tool, so the hook's verdict is ours alone.
const POLICY: &str =
    "[[gate]]\nname = \"policy\"\nuses = \"policy\"\nbanned_imports = [\"subprocess\"]\n";

/// A git repository with one commit of a `sandbox.toml` and a clean file.
struct Repo {
    dir: Workspace,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: Workspace::new(),
        };
        repo.run(Command::new("git").args(["init", "-q"]));
        for (key, value) in [("user.email", "t@example.com"), ("user.name", "t")] {
            repo.run(Command::new("git").args(["config", key, value]));
        }
        repo.write("sandbox.toml", POLICY);
        repo.write("clean.py", "import json\n");
        repo.run(Command::new("git").args(["add", "sandbox.toml", "clean.py"]));
        repo.run(Command::new("git").args(["commit", "-q", "--no-verify", "-m", "first"]));
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file, readable by the gate jobs' uid (65534) like the whole repository.
    fn write(&self, name: &str, text: &str) {
        self.dir.write(name, text);
        common::open_to_jobs(self.path());
    }

    /// `command` in the repository, with no git configuration but the repository's own.
    fn output(&self, command: &mut Command) -> Output {
        command
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"))
    }

    fn run(&self, command: &mut Command) -> Output {
        let output = self.output(command);
        assert!(output.status.success(), "{command:?}: {output:?}");
        output
    }

    fn sandbox(&self, args: &[&str]) -> Output {
        self.output(Command::new(SANDBOX).args(args))
    }

    /// `git add FILE && git commit`: the hook decides.
    fn commit(&self, file: &str) -> Output {
        self.run(Command::new("git").args(["add", file]));
        self.output(Command::new("git").args(["commit", "-m", file]))
    }

    fn commits(&self) -> usize {
        let output = self.run(Command::new("git").args(["rev-list", "--count", "HEAD"]));
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a count")
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_ours(hook: &Path) {
    let script = std::fs::read_to_string(hook).expect("the hook was written");
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(script.contains("gate --staged"), "{script}");
    assert!(script.contains(SANDBOX), "{script}");
    let mode = std::fs::metadata(hook).expect("stat").permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "not executable: {mode:o}");
}

/// What is staged is judged, not the working tree: a banned import stops its commit, and a
/// clean commit goes through while the same import sits unstaged beside it.
#[test]
fn the_hook_blocks_a_banned_import_and_lets_a_clean_commit_through() {
    let repo = Repo::new();
    let installed = repo.sandbox(&["hook", "install"]);
    assert_eq!(installed.status.code(), Some(0), "{installed:?}");
    let hook = repo.path().join(".git/hooks/pre-commit");
    assert!(
        text(&installed).contains(&hook.display().to_string()),
        "{installed:?}"
    );
    assert_ours(&hook);

    repo.write("bad.py", "import subprocess\n");
    let blocked = repo.commit("bad.py");
    assert!(!blocked.status.success(), "{blocked:?}");
    assert!(
        text(&blocked).contains("banned-import"),
        "{}",
        text(&blocked)
    );
    assert_eq!(repo.commits(), 1, "the blocked commit was made");

    repo.run(Command::new("git").args(["rm", "-q", "--cached", "bad.py"]));
    repo.write("good.py", "import os\n");
    let passed = repo.commit("good.py");
    assert!(passed.status.success(), "{}", text(&passed));
    assert_eq!(repo.commits(), 2);
}

/// `core.hooksPath` (relative: to the top of the work tree) is where git looks, so that is
/// where the hook goes, also when installed from a subdirectory.
#[test]
fn the_hook_goes_where_core_hooks_path_says() {
    let repo = Repo::new();
    repo.run(Command::new("git").args(["config", "core.hooksPath", ".githooks"]));
    std::fs::create_dir(repo.path().join("sub")).expect("mkdir");
    let sub = repo.path().join("sub");
    let installed = repo.sandbox(&["hook", "install", "--workspace", path_str(&sub)]);
    assert_eq!(installed.status.code(), Some(0), "{installed:?}");
    assert_ours(&repo.path().join(".githooks/pre-commit"));
    assert!(!repo.path().join(".git/hooks/pre-commit").exists());

    repo.write("bad.py", "import subprocess\n");
    let blocked = repo.commit("bad.py");
    assert!(!blocked.status.success(), "git did not run it: {blocked:?}");
    assert_eq!(repo.commits(), 1);
}

/// Someone else's hook (pre-commit's own, say) is neither replaced nor removed, unless
/// `--force` says to replace it; ours is removed, and removing nothing is no error.
#[test]
fn a_hook_sandbox_did_not_write_is_left_alone_without_force() {
    let repo = Repo::new();
    let hook = repo.path().join(".git/hooks/pre-commit");
    let theirs = "#!/bin/sh\n# someone else's hook\nexit 0\n";
    std::fs::write(&hook, theirs).expect("write their hook");

    let refused = repo.sandbox(&["hook", "install"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(text(&refused).contains("--force"), "{refused:?}");
    let kept = repo.sandbox(&["hook", "uninstall"]);
    assert_eq!(kept.status.code(), Some(2), "{kept:?}");
    assert_eq!(std::fs::read_to_string(&hook).expect("read"), theirs);

    let forced = repo.sandbox(&["hook", "install", "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{forced:?}");
    assert_ours(&hook);
    let again = repo.sandbox(&["hook", "install"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "our own hook is replaced: {again:?}"
    );

    let removed = repo.sandbox(&["hook", "uninstall"]);
    assert_eq!(removed.status.code(), Some(0), "{removed:?}");
    assert!(!hook.exists());
    let nothing = repo.sandbox(&["hook", "uninstall"]);
    assert_eq!(nothing.status.code(), Some(0), "{nothing:?}");
    repo.write("bad.py", "import subprocess\n");
    assert!(
        repo.commit("bad.py").status.success(),
        "no hook left to block it"
    );
}

#[test]
fn outside_a_repository_is_a_usage_error() {
    let dir = Workspace::new();
    let output = Command::new(SANDBOX)
        .args(["hook", "install", "--workspace", path_str(dir.path())])
        .env(
            "GIT_CEILING_DIRECTORIES",
            dir.path().parent().expect("parent"),
        )
        .output()
        .expect("run sandbox");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        text(&output).contains("not in a git work tree"),
        "{output:?}"
    );
    assert!(!dir.file(".git").exists());
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A repository holding only this project's `.pre-commit-hooks.yaml`, committed: what
/// `pre-commit try-repo` clones.
fn hooks_repository() -> Repo {
    let published = Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml");
    let repo = Repo {
        dir: Workspace::new(),
    };
    repo.run(Command::new("git").args(["init", "-q"]));
    std::fs::copy(&published, repo.path().join(".pre-commit-hooks.yaml")).expect("copy");
    repo.run(Command::new("git").args(["add", ".pre-commit-hooks.yaml"]));
    repo.run(Command::new("git").args([
        "-c",
        "user.email=t@example.com",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "-m",
        "hooks",
    ]));
    repo
}

/// `pre-commit try-repo` with our `.pre-commit-hooks.yaml`: `language: system` runs the
/// `sandbox` on PATH (the one just built), nothing is installed or downloaded.
#[test]
fn pre_commit_runs_the_published_hook() {
    let pre_commit = PathBuf::from("/opt/sandbox-tools/bin/pre-commit");
    if !pre_commit.exists() {
        common::skip(&format!(
            "{} is missing: run scripts/setup",
            pre_commit.display()
        ));
        return;
    }
    let hooks = hooks_repository();
    let repo = Repo::new();
    let home = tempfile::tempdir().expect("tempdir");
    let binaries = Path::new(SANDBOX).parent().expect("the binary's directory");
    let path =
        std::env::join_paths([binaries, Path::new("/usr/bin"), Path::new("/bin")]).expect("PATH");
    let try_repo = || {
        repo.output(
            Command::new(&pre_commit)
                .args([OsStr::new("try-repo"), hooks.path().as_os_str()])
                .arg("sandbox-gate")
                .env("PATH", &path)
                .env("PRE_COMMIT_HOME", home.path()),
        )
    };

    repo.write("bad.py", "import subprocess\n");
    repo.run(Command::new("git").args(["add", "bad.py"]));
    let blocked = try_repo();
    assert_eq!(blocked.status.code(), Some(1), "{}", text(&blocked));
    assert!(
        text(&blocked).contains("banned-import"),
        "{}",
        text(&blocked)
    );

    repo.run(Command::new("git").args(["rm", "-q", "--cached", "bad.py"]));
    std::fs::remove_file(repo.path().join("bad.py")).expect("rm");
    repo.write("good.py", "import os\n");
    repo.run(Command::new("git").args(["add", "good.py"]));
    let passed = try_repo();
    assert_eq!(passed.status.code(), Some(0), "{}", text(&passed));
    assert!(text(&passed).contains("Passed"), "{}", text(&passed));
}
