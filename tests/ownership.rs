//! Workspace ownership (issue 16): whoever owns the workspace, the job sees it as its own, and
//! what it creates lands on the host owned by the workspace's owner; and that must not become a
//! way to plant set-id files, device nodes, hardlinks to host files or files of another owner.
//! Every conformance test here runs on both backends, in a workspace of the caller's and in one
//! of another user (`conformance!`).

// Test fixtures fail loudly.
#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::*;

/// Every entry below `root` with its uid, gid and mode, for the host-side assertions.
fn entries(root: &Path) -> Vec<(String, u32, u32, u32, bool)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("list") {
            let entry = entry.expect("entry");
            let meta = entry.path().symlink_metadata().expect("lstat");
            let name = entry
                .path()
                .strip_prefix(root)
                .expect("below root")
                .display()
                .to_string();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            let special = !(meta.is_dir() || meta.is_file() || meta.file_type().is_symlink());
            found.push((name, meta.uid(), meta.gid(), meta.mode(), special));
        }
    }
    found
}

/// Nothing in the workspace is set-id, a device, or owned by anyone but the workspace's owner.
fn assert_nothing_planted(workspace: &Workspace, run: &impl std::fmt::Debug) {
    let owner = workspace.owner();
    for (name, uid, gid, mode, special) in entries(workspace.path()) {
        assert_eq!(mode & 0o6000, 0, "{name} is set-id ({mode:o})\n{run:?}");
        assert!(
            !special,
            "{name} is a device, fifo or socket ({mode:o})\n{run:?}"
        );
        assert_eq!((uid, gid), owner, "{name} is not the owner's\n{run:?}");
    }
}

/// Runs `script` in `profile` with a `rw` workspace.
fn job(backend: Backend, workspace: &Workspace, profile: &str, script: &str) -> Run {
    exec_json(
        backend,
        workspace,
        &["--profile", profile, "--workspace-mode", "rw"],
        &["sh", "-c", script],
    )
}

/// Each way to plant a set-uid or set-gid file fails with EPERM, in every profile whose
/// seccomp is on; a plain mode still works.
fn blocks_planting_a_set_id_file(backend: Backend) {
    let workspace = Workspace::new();
    workspace.write("tool", "#!/bin/sh\n");
    let script = r#"
        import os
        def attempt(name, call):
            try:
                call()
                print(name, "ok")
            except OSError as error:
                print(name, error.errno)
        attempt("chmod", lambda: os.chmod("tool", 0o4755))
        attempt("chmod-g", lambda: os.chmod("tool", 0o2755))
        attempt("open", lambda: os.close(os.open("suid", os.O_CREAT | os.O_WRONLY, 0o4755)))
        attempt("tmpfile", lambda: os.close(os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o2755)))
        attempt("mkdir", lambda: os.mkdir("sgid", 0o2775))
        attempt("mknod", lambda: os.mknod("reg", 0o100000 | 0o4755))
        attempt("plain", lambda: os.chmod("tool", 0o755))
    "#;
    let script = script
        .lines()
        .map(|line| line.strip_prefix("        ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    for profile in ["standard", "strict"] {
        let run = exec_json(
            backend,
            &workspace,
            &["--profile", profile, "--workspace-mode", "rw"],
            &["python3", "-c", &script],
        );
        assert_eq!(run.code, 0, "{profile}: {run:?}");
        let eperm = libc::EPERM.to_string();
        for attempt in ["chmod", "chmod-g", "open", "tmpfile", "mkdir", "mknod"] {
            assert!(
                run.stdout().contains(&format!("{attempt} {eperm}\n")),
                "{profile}: {attempt} was not refused with EPERM\n{run:?}"
            );
        }
        assert!(run.stdout().contains("plain ok\n"), "{profile}: {run:?}");
        // The shell tools agree.
        let run = job(
            backend,
            &workspace,
            profile,
            "chmod 4755 tool; echo chmod=$?; install -m 4755 tool installed; echo install=$?",
        );
        assert!(run.stdout().contains("chmod=1"), "{profile}: {run:?}");
        assert!(run.stdout().contains("install=1"), "{profile}: {run:?}");
        assert_nothing_planted(&workspace, &run);
    }
}

/// A character device cannot be made (`mknod c 1 3` would be /dev/mem... here /dev/null's
/// twin, but any device number is the host's); a FIFO can, in `strict` too.
fn blocks_device_nodes_but_not_fifos(backend: Backend) {
    let workspace = Workspace::new();
    for profile in ["standard", "strict"] {
        let run = job(
            backend,
            &workspace,
            profile,
            "mknod dev c 1 3; echo mknod=$?; mknod blk b 7 0; echo blk=$?; \
             mkfifo pipe && echo fifo=$? && rm pipe",
        );
        assert!(run.stdout().contains("mknod=1"), "{profile}: {run:?}");
        assert!(run.stdout().contains("blk=1"), "{profile}: {run:?}");
        assert!(run.stdout().contains("fifo=0"), "{profile}: {run:?}");
        assert!(
            run.job_stderr().contains("Operation not permitted"),
            "{profile}: {run:?}"
        );
        assert_nothing_planted(&workspace, &run);
    }
}

/// A hardlink to a host file would make the host file writable through the workspace (and
/// keep it after write-back); it crosses mounts, so EXDEV.
fn blocks_hardlinking_a_host_file(backend: Backend) {
    let workspace = Workspace::new();
    let run = strict_python(
        backend,
        &workspace,
        "import os\ntry:\n    os.link('/etc/passwd', 'pw')\n    print('linked')\nexcept OSError as e:\n    print(e.errno)",
    );
    assert_eq!(run.stdout().trim(), libc::EXDEV.to_string(), "{run:?}");
    assert!(!workspace.file("pw").exists(), "{run:?}");
    assert_nothing_planted(&workspace, &run);
}

/// The job cannot give a file to another uid (root's, say) or group: no CAP_CHOWN, and ids
/// outside the idmap do not even exist for it.
fn blocks_chown_to_another_owner(backend: Backend) {
    let workspace = Workspace::new();
    workspace.write("mine", "x\n");
    for profile in ["standard", "strict"] {
        let run = job(
            backend,
            &workspace,
            profile,
            "chown 0 mine; echo root=$?; chown 4343 mine; echo other=$?; chgrp 0 mine; \
             echo group=$?",
        );
        for attempt in ["root=1", "other=1", "group=1"] {
            assert!(
                run.stdout().contains(attempt),
                "{profile} {attempt}: {run:?}"
            );
        }
        assert_nothing_planted(&workspace, &run);
    }
}

fn strict_python(backend: Backend, workspace: &Workspace, script: &str) -> Run {
    exec_json(
        backend,
        workspace,
        &["--profile", "strict", "--workspace-mode", "rw"],
        &["python3", "-c", script],
    )
}

/// A 0700 workspace with 0600 files, whoever owns it: the job reads, edits and creates (a file
/// and a directory) in `rw`, and on the host the new entries belong to the workspace's owner.
/// In `ro` it reads but cannot write.
fn the_job_owns_its_workspace_in_rw_and_ro(backend: Backend) {
    let workspace = Workspace::new();
    workspace.write("secret.txt", "only the owner reads this\n");
    let run = job(
        backend,
        &workspace,
        "standard",
        "set -e; cat secret.txt; echo more >> secret.txt; echo new > new.txt; mkdir -p dir/sub; \
         echo deep > dir/sub/file; stat -c '%u:%g %a' . secret.txt",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout().starts_with("only the owner reads this\n"),
        "{run:?}"
    );
    // Inside, the job is the owner of its workspace and of the owner's files.
    assert!(
        run.stdout().contains("65534:65534 700\n65534:65534 600\n"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.file("secret.txt")).expect("read"),
        "only the owner reads this\nmore\n"
    );
    assert_nothing_planted(&workspace, &run);
    let names: Vec<String> = entries(workspace.path()).into_iter().map(|e| e.0).collect();
    for name in ["new.txt", "dir", "dir/sub", "dir/sub/file"] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }

    // The mount the job got: nosuid and nodev whatever else, idmapped when the job's uid does
    // not own the tree (as root it never does here).
    let run = job(
        backend,
        &workspace,
        "standard",
        "grep \" $(pwd) \" /proc/self/mountinfo",
    );
    let options = run
        .stdout()
        .split(' ')
        .nth(5)
        .unwrap_or_default()
        .to_owned();
    for option in ["nosuid", "nodev"] {
        assert!(options.split(',').any(|o| o == option), "{option}: {run:?}");
    }
    if is_root() {
        assert!(options.contains("idmapped"), "{run:?}");
    }

    let run = exec_json(
        backend,
        &workspace,
        &["--profile", "standard", "--workspace-mode", "ro"],
        &["sh", "-c", "cat new.txt; echo x > other.txt; echo wrote=$?"],
    );
    assert!(run.stdout().starts_with("new\n"), "{run:?}");
    assert!(!run.stdout().contains("wrote=0"), "{run:?}");
    assert!(
        run.job_stderr().contains("Read-only file system"),
        "{run:?}"
    );
    assert!(!workspace.file("other.txt").exists(), "{run:?}");
}

/// The same in `scratch`, through the copy-on-write view and write-back, in every profile that
/// runs a scratch workspace: read, edit, create, and the written-back entries are the owner's.
fn the_job_owns_its_workspace_in_scratch(backend: Backend) {
    let workspace = Workspace::new();
    workspace.write("secret.txt", "only the owner reads this\n");
    for view in ["overlay", "copy"] {
        let profile = OperatorProfile::new(
            "scratch.toml",
            &format!(
                "extends = \"strict\"\n[filesystem]\nscratch_view = \"{view}\"\n\
                 workspace = {{ mount = \"/workspace\", mode = \"scratch\" }}\n"
            ),
        );
        let script = format!(
            "set -e; cat secret.txt; echo {view} >> secret.txt; echo new > new-{view}.txt; \
             mkdir dir-{view}; echo deep > dir-{view}/file"
        );
        let run = exec_json(
            backend,
            &workspace,
            &["--profile", profile.path.to_str().expect("utf-8")],
            &["sh", "-c", &script],
        );
        assert_eq!(run.code, 0, "{view}: {run:?}");
        assert_eq!(run.outcome["workspace"]["view"], view, "{run:?}");
        assert_eq!(
            run.outcome["workspace"]["committed"], true,
            "{view}: {run:?}"
        );
        assert!(
            run.stdout().starts_with("only the owner reads this\n"),
            "{run:?}"
        );
        assert!(
            std::fs::read_to_string(workspace.file("secret.txt"))
                .expect("read")
                .ends_with(&format!("{view}\n")),
            "{view}: {run:?}"
        );
        assert_eq!(
            std::fs::read_to_string(workspace.file(&format!("dir-{view}/file"))).expect("read"),
            "deep\n"
        );
        assert_nothing_planted(&workspace, &run);
    }
}

/// Set-id bits the job did give a file (seccomp off lets it) are dropped on write-back: a
/// scratch job never hands the workspace owner a set-uid program.
fn write_back_drops_set_id_bits(backend: Backend) {
    let workspace = Workspace::new();
    workspace.write("tool", "#!/bin/sh\n");
    let profile = OperatorProfile::new(
        "unfiltered.toml",
        "extends = \"standard\"\n[filesystem]\n\
         workspace = { mount = \"/workspace\", mode = \"scratch\" }\n[process]\nseccomp = \"off\"\nrequire = []\n",
    );
    let run = exec_json(
        backend,
        &workspace,
        &["--profile", profile.path.to_str().expect("utf-8")],
        &[
            "sh",
            "-c",
            "set -e; chmod 4755 tool; cp tool new; chmod 6755 new; stat -c %a tool new",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // Inside the view the bits were set: the test proves write-back removed them.
    assert_eq!(run.stdout(), "4755\n6755\n", "{run:?}");
    assert_eq!(run.outcome["workspace"]["committed"], true, "{run:?}");
    for name in ["tool", "new"] {
        let mode = std::fs::metadata(workspace.file(name))
            .expect("stat")
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "{name}: {mode:o}\n{run:?}");
    }
    assert_nothing_planted(&workspace, &run);
}

/// git works on a workspace that is not the job's on the host, in every built-in profile:
/// `safe.directory` comes through the job's environment.
fn git_works_in_every_profile(backend: Backend) {
    for profile in ["standard", "strict", "gate", "networked"] {
        let workspace = Workspace::new();
        workspace.write("a.txt", "a\n");
        let run = exec_json(
            backend,
            &workspace,
            &["--profile", profile, "--workspace-mode", "rw"],
            &[
                "sh",
                "-c",
                "set -e; git init -q; git add a.txt; \
                 git -c user.name=t -c user.email=t@example.com commit -qm first; \
                 echo b > b.txt; git status --short",
            ],
        );
        assert_eq!(run.code, 0, "{profile}: {run:?}");
        assert_eq!(run.stdout(), "?? b.txt\n", "{profile}: {run:?}");
        assert!(workspace.file(".git/HEAD").exists(), "{profile}");
        assert_nothing_planted(&workspace, &run);

        // A colleague's repository inside the workspace is neither the job's nor mapped onto
        // it: only `safe.directory` (`/workspace/*`) lets git read it. (Only root can make one.)
        if !is_root() {
            continue;
        }
        let vendor = workspace.file("vendor");
        let host_git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", workspace.path())
                .status()
                .expect("git");
            assert!(status.success(), "git {args:?}");
        };
        let vendor_path = vendor.to_str().expect("utf-8");
        host_git(&["init", "-q", vendor_path]);
        host_git(&[
            "-C",
            vendor_path,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "vendored",
        ]);
        let status = std::process::Command::new("chown")
            .args(["-R", "4343:4343"])
            .arg(&vendor)
            .status()
            .expect("chown");
        assert!(status.success());
        open_to_jobs(&vendor);
        let run = exec_json(
            backend,
            &workspace,
            &["--profile", profile, "--workspace-mode", "ro"],
            &["git", "-C", "vendor", "log", "--format=%s"],
        );
        assert_eq!(run.stdout(), "vendored\n", "{profile}: {run:?}");
        std::fs::remove_dir_all(&vendor).expect("rm vendor");
    }
}

conformance!(
    blocks_planting_a_set_id_file,
    blocks_device_nodes_but_not_fifos,
    blocks_hardlinking_a_host_file,
    blocks_chown_to_another_owner,
    the_job_owns_its_workspace_in_rw_and_ro,
    the_job_owns_its_workspace_in_scratch,
    write_back_drops_set_id_bits,
    git_works_in_every_profile,
);

/// The git identity and safe.directory entries a caller passes stay, ours come after them.
#[test]
fn the_callers_git_config_comes_first() {
    let workspace = Workspace::new();
    let run = exec_json(
        Backend::Native,
        &workspace,
        &[
            "--env",
            "GIT_CONFIG_COUNT=1",
            "--env",
            "GIT_CONFIG_KEY_0=user.name",
            "--env",
            "GIT_CONFIG_VALUE_0=Caller",
        ],
        &["git", "config", "--get-all", "user.name"],
    );
    assert_eq!(run.stdout(), "Caller\n", "{run:?}");
    let run = exec_json(
        Backend::Native,
        &workspace,
        &[
            "--env",
            "GIT_CONFIG_COUNT=1",
            "--env",
            "GIT_CONFIG_KEY_0=safe.directory",
            "--env",
            "GIT_CONFIG_VALUE_0=/elsewhere",
        ],
        &["git", "config", "--get-all", "safe.directory"],
    );
    assert!(run.stdout().starts_with("/elsewhere\n"), "{run:?}");
    assert_eq!(run.stdout().lines().count(), 3, "{run:?}");
}

/// An idmapped workspace left by a SIGKILLed `sandbox` is detached and removed by `gc`.
#[test]
fn gc_removes_the_idmapped_workspace_of_a_killed_sandbox() {
    if !is_root() {
        skip("idmapped workspaces are made only as root");
        return;
    }
    set_ownership(Ownership::Foreign);
    let workspace = Workspace::new();
    let before = owner_views();
    let mut child = sandbox_command(&["exec", "--backend", "native", "--workspace-mode", "rw"])
        .arg("--workspace")
        .arg(workspace.path())
        .args(["--", "sleep", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let left = loop {
        let new: Vec<String> = owner_views()
            .into_iter()
            .filter(|v| !before.contains(v))
            .collect();
        if !new.is_empty() {
            break new;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no idmapped workspace appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL sandbox");
    child.wait().expect("wait");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        mounts.contains(&left[0]),
        "{left:?} is not mounted:\n{mounts}"
    );
    let ran = sandbox(&["gc", "--output", "json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains(&left[0]), "{ran:?}");
    assert!(!Path::new(&left[0]).exists(), "{ran:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&left[0]), "{left:?} still mounted");
}

fn owner_views() -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .expect("list tmp")
        .filter_map(Result::ok)
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains("/sandbox-owner-"))
        .collect()
}

/// On a filesystem that cannot be idmapped (ramfs), the job gets the workspace with the host's
/// permissions, as the README documents, and the Outcome's notes say why.
#[test]
fn a_filesystem_without_idmaps_falls_back_and_says_so() {
    if !is_root() {
        skip("idmapped workspaces are made only as root");
        return;
    }
    let workspace = Workspace::new();
    let status = std::process::Command::new("mount")
        .args(["-t", "ramfs", "sandbox-test-ramfs"])
        .arg(workspace.path())
        .status()
        .expect("mount");
    assert!(status.success(), "mount -t ramfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(workspace.path());
    std::os::unix::fs::chown(workspace.path(), Some(4242), Some(4242)).expect("chown");
    std::fs::set_permissions(workspace.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    for backend in [Backend::Native, Backend::Docker] {
        if let Some(reason) = backend.unavailable() {
            skip(&reason);
            continue;
        }
        let run = job(backend, &workspace, "standard", "ls >/dev/null && touch x");
        assert_ne!(
            run.code, 0,
            "the host's permissions: 0755 and 4242's\n{run:?}"
        );
        let notes = run.outcome["notes"].to_string();
        assert!(
            notes.contains("ownership:") && notes.contains("MOUNT_ATTR_IDMAP"),
            "{run:?}"
        );
    }
}

/// `sandbox check --profile strict` on a checkout as CI makes it (root's, 0755 directories,
/// 0644 files): a good change is written back, owned by the checkout's owner; a bad one (a
/// failing gate) is rolled back.
#[test]
fn check_in_strict_writes_back_to_a_root_owned_worktree() {
    if !is_root() {
        skip("a root-owned worktree is the root case");
        return;
    }
    let worktree = tempfile::tempdir().expect("tempdir");
    let root = worktree.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(
        root.join("sandbox.toml"),
        "[[gate]]\nname = \"no-todo\"\ncommand = [\"sh\", \"-c\", \"! grep -rn TODO --include=*.txt .\"]\n",
    )
    .expect("write");
    std::fs::create_dir(root.join("src")).expect("mkdir");
    std::fs::write(root.join("src/a.txt"), "a\n").expect("write");
    for backend in [Backend::Native, Backend::Docker] {
        if let Some(reason) = backend.unavailable() {
            skip(&reason);
            continue;
        }
        let check = |script: &str| {
            let ran = run(sandbox_command(&[
                "check",
                "--backend",
                backend.name(),
                "--profile",
                "strict",
                "--output",
                "json",
            ])
            .arg("--workspace")
            .arg(root)
            .args(["--", "sh", "-c", script]));
            let verdict = verdict_from(ran.stdout.as_bytes());
            (ran, verdict)
        };
        let good = format!(
            "echo good >> src/a.txt && mkdir -p {0} && echo new > {0}/b.txt",
            backend.name()
        );
        let (ran, verdict) = check(&good);
        assert_eq!(ran.code, 0, "{}: {ran:?}", backend.name());
        assert_eq!(verdict["job"]["workspace"]["committed"], true, "{ran:?}");
        assert!(std::fs::read_to_string(root.join("src/a.txt"))
            .expect("read")
            .ends_with("good\n"));
        for name in [
            backend.name().to_owned(),
            format!("{}/b.txt", backend.name()),
        ] {
            let meta = std::fs::metadata(root.join(&name)).expect("stat");
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "{name}: {ran:?}");
        }

        let (ran, verdict) = check("echo TODO > bad.txt && echo worse >> src/a.txt");
        assert_eq!(ran.code, 1, "{ran:?}");
        assert_eq!(
            verdict_gate(&verdict, "no-todo")["status"],
            "fail",
            "{ran:?}"
        );
        assert_eq!(verdict["job"]["workspace"]["committed"], false, "{ran:?}");
        assert!(!root.join("bad.txt").exists(), "{ran:?}");
        assert!(!std::fs::read_to_string(root.join("src/a.txt"))
            .expect("read")
            .contains("worse"));
    }
}
