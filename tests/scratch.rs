//! Scratch workspaces end to end, on both backends: the job works on a copy-on-write view;
//! a failed job leaves the workspace byte for byte as it was, a successful one gets exactly its
//! change set written back, and a job over a cap gets nothing written back.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{exec_json, Backend, Workspace};
use serde_json::Value;

/// What a tree holds, entry by entry: type, permission bits, content or link target.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .expect("below root")
                .display()
                .to_string();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let mode = meta.permissions().mode() & 0o7777;
            let value = if meta.file_type().is_symlink() {
                format!(
                    "link -> {}",
                    std::fs::read_link(&path).expect("readlink").display()
                )
            } else if meta.is_dir() {
                pending.push(path.clone());
                format!("dir {mode:o}")
            } else {
                let bytes = std::fs::read(&path).expect("read");
                format!("file {mode:o} {}", String::from_utf8_lossy(&bytes))
            };
            entries.insert(name, value);
        }
    }
    entries
}

/// A small project: text files, an executable, a symlink, nested directories.
fn fixture(root: &Path) {
    let write = |name: &str, text: &str, mode: u32| {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    write("src/lib.rs", "fn a() {}\nfn b() {}\nfn c() {}\n", 0o666);
    write("src/old.rs", "// to be deleted\n", 0o666);
    write("run.sh", "#!/bin/sh\necho run\n", 0o777);
    write("docs/guide/intro.md", "# Intro\n", 0o666);
    write("untouched.txt", "same\n", 0o666);
    std::os::unix::fs::symlink("untouched.txt", root.join("link")).expect("symlink");
    // The job's uid owns the project, as a checkout would belong to the user running it (run
    // unprivileged, the caller owns it already and the job acts as the caller).
    if !common::is_root() {
        return;
    }
    let status = Command::new("chown")
        .args(["-hR", "65534:65534"])
        .arg(root)
        .status()
        .expect("chown");
    assert!(status.success());
}

/// Edits, creates, deletes (a file and a whole tree), chmods and symlinks: every kind of change.
const EDITS: &str = "set -e
    printf 'fn a() {}\\nfn b2() {}\\nfn c() {}\\n' > src/lib.rs
    echo 'pub fn new() {}' > src/new.rs
    rm src/old.rs
    rm -r docs
    chmod 700 run.sh
    ln -s src/new.rs newlink
    rm link && ln -s src/lib.rs link";

/// The same edits, done by the test on a host copy: what a commit must produce.
fn expected_after_edits(original: &Path) -> BTreeMap<String, String> {
    let copy = tempfile::tempdir().expect("tempdir");
    let status = Command::new("cp")
        .args(["-a", &format!("{}/.", original.display())])
        .arg(copy.path())
        .status()
        .expect("cp");
    assert!(status.success());
    let status = Command::new("sh")
        .args(["-c", EDITS])
        .current_dir(copy.path())
        .status()
        .expect("sh");
    assert!(status.success());
    snapshot(copy.path())
}

fn scratch_run(
    backend: Backend,
    workspace: &Workspace,
    extra: &[&str],
    script: &str,
) -> common::Run {
    let args: Vec<&str> = ["--workspace-mode", "scratch"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    exec_json(backend, workspace, &args, &["sh", "-c", script])
}

/// The job makes every kind of change, then fails: the workspace is exactly as before, and
/// the Outcome lists what the job had changed.
fn a_failed_job_leaves_the_workspace_untouched(backend: Backend) {
    let workspace = Workspace::new();
    fixture(workspace.path());
    let before = snapshot(workspace.path());
    let run = scratch_run(backend, &workspace, &[], &format!("{EDITS}\nexit 3"));
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(snapshot(workspace.path()), before, "{run:?}");
    let report = &run.outcome["workspace"];
    assert_eq!(report["committed"], false, "{run:?}");
    assert_eq!(report["mode"], "scratch");
    assert!(["overlay", "copy"].contains(&report["view"].as_str().unwrap_or("")));
    let list = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(list("added"), ["newlink", "src/new.rs"], "{run:?}");
    assert_eq!(
        list("modified"),
        ["link", "run.sh", "src/lib.rs"],
        "{run:?}"
    );
    assert_eq!(
        list("deleted"),
        ["docs", "docs/guide", "docs/guide/intro.md", "src/old.rs"],
        "{run:?}"
    );
    assert_eq!(list("mode_changed"), ["run.sh"], "{run:?}");
    assert!(
        report["change_hash"]
            .as_str()
            .unwrap_or("")
            .starts_with("blake3:"),
        "{run:?}"
    );
}

/// The same job succeeding under `on-success`: exactly its change set is written back (a file
/// it did not touch keeps its inode), and `--diff` is a patch `git apply` reproduces it with.
fn a_successful_job_commits_exactly_its_change_set(backend: Backend) {
    let workspace = Workspace::new();
    fixture(workspace.path());
    let pristine = tempfile::tempdir().expect("tempdir");
    fixture(pristine.path());
    let expected = expected_after_edits(workspace.path());
    let untouched_inode = std::fs::metadata(workspace.file("untouched.txt"))
        .expect("stat")
        .ino();
    let patch_dir = tempfile::tempdir().expect("tempdir");
    let patch = patch_dir.path().join("change.patch");
    let run = scratch_run(
        backend,
        &workspace,
        &[
            "--commit",
            "on-success",
            "--diff",
            &patch.display().to_string(),
        ],
        EDITS,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.outcome["workspace"]["committed"], true, "{run:?}");
    assert_eq!(snapshot(workspace.path()), expected, "{run:?}");
    let inode = std::fs::metadata(workspace.file("untouched.txt"))
        .expect("stat")
        .ino();
    assert_eq!(
        inode, untouched_inode,
        "a file outside the change set was rewritten"
    );
    // lib.rs -1+1, new.rs +1, old.rs -1, intro.md -1, newlink +1, link -1+1 (git counts a
    // symlink's target as its one line).
    assert_eq!(run.outcome["workspace"]["lines_added"], 4, "{run:?}");
    assert_eq!(run.outcome["workspace"]["lines_removed"], 4, "{run:?}");

    let applied = Command::new("git")
        .args(["apply", "--whitespace=nowarn"])
        .arg(&patch)
        .current_dir(pristine.path())
        .output()
        .expect("git apply");
    let patch_text = std::fs::read_to_string(&patch).unwrap_or_default();
    assert!(
        applied.status.success(),
        "git apply: {applied:?}\n{patch_text}"
    );
    // git keeps only a file's executable bit, not its other permission bits.
    let as_git_sees = |tree: BTreeMap<String, String>| -> BTreeMap<String, String> {
        tree.into_iter()
            .map(|(path, entry)| {
                let entry = match entry.strip_prefix("file ") {
                    Some(rest) => {
                        let (mode, content) = rest.split_once(' ').unwrap_or((rest, ""));
                        let executable = u32::from_str_radix(mode, 8).unwrap_or(0) & 0o100 != 0;
                        format!("file x={executable} {content}")
                    }
                    None if entry.starts_with("dir ") => "dir".to_owned(),
                    None => entry,
                };
                (path, entry)
            })
            .collect()
    };
    assert_eq!(
        as_git_sees(snapshot(pristine.path())),
        as_git_sees(expected),
        "{patch_text}"
    );
}

/// `commit = never` (and `--commit always` on a failure) decide as documented.
fn the_commit_policy_decides(backend: Backend) {
    let workspace = Workspace::new();
    let run = scratch_run(backend, &workspace, &["--commit", "never"], "echo x > made");
    assert_eq!(
        (run.code, &run.outcome["workspace"]["committed"]),
        (0, &false.into()),
        "{run:?}"
    );
    assert!(!workspace.file("made").exists());
    let run = scratch_run(
        backend,
        &workspace,
        &["--commit", "always"],
        "echo x > made; exit 1",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.outcome["workspace"]["committed"], true, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(workspace.file("made"))
            .ok()
            .as_deref(),
        Some("x\n")
    );
}

fn profile_with_limits(dir: &Path, limits: &str) -> PathBuf {
    let path = dir.join("capped.toml");
    std::fs::write(
        &path,
        format!(
            "extends = \"standard\"\n[filesystem]\nworkspace = {{ mount = \"/workspace\", mode = \"scratch\" }}\n[limits]\n{limits}\n"
        ),
    )
    .expect("write profile");
    path
}

/// A job over a cap, with `--commit always`: status `limit_exceeded` naming the cap, a failing
/// exit code although the job "succeeded", and nothing written back.
fn over_cap(backend: Backend, limits: &str, script: &str, cap: &str) {
    let workspace = Workspace::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = profile_with_limits(dir.path(), limits);
    let profile = profile.display().to_string();
    let args = ["--profile", &profile, "--commit", "always"];
    let run = exec_json(backend, &workspace, &args, &["sh", "-c", script]);
    assert_eq!(run.status(), "limit_exceeded", "{run:?}");
    assert!(run.limits_hit().contains(&cap.to_owned()), "{run:?}");
    assert_ne!(run.code, 0, "{run:?}");
    assert_eq!(run.outcome["workspace"]["committed"], false, "{run:?}");
    let left = std::fs::read_dir(workspace.path()).expect("list").count();
    assert_eq!(left, 0, "something was written back: {run:?}");
}

/// Over `limits.disk`: the job meets ENOSPC at the cap (the view is a tmpfs that size).
fn exceeding_disk_commits_nothing(backend: Backend) {
    over_cap(
        backend,
        "disk = \"2M\"\nfiles = 100",
        "echo small > marker; head -c 8000000 /dev/zero > big; true",
        "disk",
    );
}

/// Over `limits.files`: the same, naming `files`.
fn exceeding_files_commits_nothing(backend: Backend) {
    over_cap(
        backend,
        "disk = \"64M\"\nfiles = 50",
        "for i in $(seq 1 300); do : > f$i; done 2>/dev/null; true",
        "files",
    );
}

/// `changed_files` and `changed_lines` are measured on the change set.
fn exceeding_changed_lines_commits_nothing(backend: Backend) {
    let workspace = Workspace::new();
    let file = workspace.write("a.txt", "one\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = profile_with_limits(dir.path(), "changed_lines = 3\nchanged_files = 5");
    let run = exec_json(
        backend,
        &workspace,
        &["--profile", &profile.display().to_string()],
        &["sh", "-c", "seq 1 10 > a.txt"],
    );
    assert_eq!(run.status(), "limit_exceeded", "{run:?}");
    assert_eq!(run.limits_hit(), ["changed_lines"], "{run:?}");
    assert_eq!(
        std::fs::read_to_string(workspace.file("a.txt"))
            .ok()
            .as_deref(),
        Some("one\n")
    );
}

/// 40 MiB of zeros: three of them are more than the supervisor reads for one job's patch (the
/// diff budget is 64 MiB, README "Scratch workspaces").
const BIG: &str = "head -c 41943040 /dev/zero";

/// The patch is rendered after the job, outside its limits, within one budget per job: the
/// files past it are named in the Outcome and marked in the patch, never dropped silently.
fn files_past_the_diff_budget_are_named_not_diffed(backend: Backend) {
    let workspace = Workspace::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let patch = dir.path().join("changes.patch");
    let patch_flag = patch.display().to_string();
    let script = format!("{BIG} > a.bin && {BIG} > b.bin && {BIG} > c.bin && echo hi > d.txt");
    let run = scratch_run(
        backend,
        &workspace,
        &["--commit", "never", "--diff", &patch_flag],
        &script,
    );
    assert_eq!(run.status(), "exited", "{run:?}");
    assert_eq!(run.code, 0, "{run:?}");
    // The bytes decide here, not the clock: a.bin fits the budget, b.bin and c.bin do not.
    // A machine too slow to read 40 MiB within the 5 s may leave out more, which is allowed.
    let report = &run.outcome["workspace"];
    let not_diffed: Vec<&str> = report["not_diffed"]
        .as_array()
        .expect("workspace.not_diffed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for path in ["b.bin", "c.bin"] {
        assert!(not_diffed.contains(&path), "{path} was diffed: {run:?}");
    }
    assert_eq!(report["diff"]["budget_bytes"], 64 << 20, "{run:?}");
    let read = report["diff"]["bytes"]
        .as_u64()
        .expect("workspace.diff.bytes");
    assert!(read <= 64 << 20, "read past the budget: {run:?}");
    let notes = run.outcome["notes"].to_string();
    assert!(notes.contains(&not_diffed.join(", ")), "{run:?}");
    let text = std::fs::read_to_string(&patch).expect("read the patch");
    for path in ["b.bin", "c.bin"] {
        let marked = format!(
            "diff --git a/{path} b/{path}\nnew file mode 100644\n# not diffed: the diff budget ran out\n"
        );
        assert!(text.contains(&marked), "{path} is not marked:\n{text}");
    }
}

/// With `limits.changed_lines` set, a file left out of the patch has lines nobody counted: the
/// job counts as over the cap and nothing is written back.
fn a_file_not_diffed_fails_changed_lines_closed(backend: Backend) {
    let workspace = Workspace::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = profile_with_limits(dir.path(), "changed_lines = 1000\ndisk = \"256M\"");
    let profile = profile.display().to_string();
    let script = "head -c 70000000 /dev/zero > big.bin";
    let args = ["--profile", &profile, "--commit", "always"];
    let run = exec_json(backend, &workspace, &args, &["sh", "-c", script]);
    assert_eq!(run.status(), "limit_exceeded", "{run:?}");
    assert_eq!(run.limits_hit(), ["changed_lines"], "{run:?}");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.outcome["workspace"]["not_diffed"],
        serde_json::json!(["big.bin"]),
        "{run:?}"
    );
    assert_eq!(run.outcome["workspace"]["committed"], false, "{run:?}");
    assert!(
        run.outcome["notes"]
            .to_string()
            .contains("not diffed, so the changed lines cannot be held to limits.changed_lines"),
        "{run:?}"
    );
    let left = std::fs::read_dir(workspace.path()).expect("list").count();
    assert_eq!(left, 0, "something was written back: {run:?}");
}

conformance!(
    files_past_the_diff_budget_are_named_not_diffed,
    a_file_not_diffed_fails_changed_lines_closed,
    a_failed_job_leaves_the_workspace_untouched,
    a_successful_job_commits_exactly_its_change_set,
    the_commit_policy_decides,
    exceeding_disk_commits_nothing,
    exceeding_files_commits_nothing,
    exceeding_changed_lines_commits_nothing,
);

/// The copy view (what runs where overlayfs cannot) gives the same change set and the same
/// commit as the overlay.
#[test]
fn the_copy_view_commits_like_the_overlay() {
    let workspace = Workspace::new();
    fixture(workspace.path());
    let expected = expected_after_edits(workspace.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("copy.toml");
    std::fs::write(
        &path,
        "extends = \"standard\"\n[filesystem]\nscratch_view = \"copy\"\n",
    )
    .expect("write profile");
    let run = scratch_run(
        Backend::Native,
        &workspace,
        &["--profile", &path.display().to_string()],
        EDITS,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.outcome["workspace"]["view"], "copy", "{run:?}");
    assert_eq!(run.outcome["workspace"]["committed"], true, "{run:?}");
    assert_eq!(snapshot(workspace.path()), expected);
}

/// While the job runs, the real workspace's `sub` is swapped for a symlink to a directory
/// outside it. Writing back `sub/x` must not follow that link: the entry fails, is reported,
/// and nothing appears outside the workspace.
#[test]
fn writing_back_never_follows_a_planted_symlink() {
    let workspace = Workspace::new();
    std::fs::create_dir(workspace.file("sub")).expect("mkdir");
    std::fs::set_permissions(
        workspace.file("sub"),
        std::fs::Permissions::from_mode(0o777),
    )
    .expect("chmod");
    let signals = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(signals.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    let outside = tempfile::tempdir().expect("tempdir");
    let profile = signals.path().join("signals.toml");
    std::fs::write(
        &profile,
        format!(
            "extends = \"standard\"\n[filesystem]\nread_write = [\"{}\"]\n",
            signals.path().display()
        ),
    )
    .expect("write profile");
    let ready = signals.path().join("ready");
    let go = signals.path().join("go");
    let script = format!(
        "echo inside > sub/x && echo fine > top && touch {} && while [ ! -e {} ]; do sleep 0.05; done",
        ready.display(),
        go.display()
    );
    let child = Command::new(common::SANDBOX)
        .args([
            "exec",
            "--backend",
            "native",
            "--output",
            "json",
            "--workspace-mode",
            "scratch",
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--workspace")
        .arg(workspace.path())
        .args(["--timeout", "60s", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sandbox");
    let started = std::time::Instant::now();
    while !ready.exists() {
        assert!(started.elapsed().as_secs() < 60, "the job never got ready");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::remove_dir(workspace.file("sub")).expect("rmdir");
    std::os::unix::fs::symlink(outside.path(), workspace.file("sub")).expect("plant symlink");
    std::fs::write(&go, "").expect("go");
    let output = child.wait_with_output().expect("wait");
    let outcome = common::outcome_from(&output.stdout);
    assert!(outcome.is_object(), "no Outcome: {output:?}");
    let outside_entries = std::fs::read_dir(outside.path()).expect("list").count();
    assert_eq!(
        outside_entries, 0,
        "written through the planted symlink: {outcome:#}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.file("top"))
            .ok()
            .as_deref(),
        Some("fine\n")
    );
    // The change set is taken against the workspace as it is now: `sub` is a symlink there
    // and a directory in the view, so writing back either replaces the link by a directory
    // (never following it) or fails that entry; both are reported.
    let write_back = &outcome["workspace"]["write_back"];
    let written: Vec<&str> = write_back["written"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if written.contains(&"sub/x") {
        let sub = std::fs::symlink_metadata(workspace.file("sub")).expect("stat sub");
        assert!(
            sub.is_dir(),
            "sub/x written, but sub is not a real directory: {outcome:#}"
        );
        assert_eq!(
            std::fs::read_to_string(workspace.file("sub/x"))
                .ok()
                .as_deref(),
            Some("inside\n")
        );
    } else {
        assert_eq!(write_back["failed"][0]["path"], "sub/x", "{outcome:#}");
        assert_eq!(outcome["workspace"]["committed"], false, "{outcome:#}");
    }
}
