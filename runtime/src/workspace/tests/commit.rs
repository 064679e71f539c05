//! Commit: the workspace ends up equal to the view, and nothing outside the change set — or
//! outside the workspace — is touched.

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use super::scenario::{self, *};
use super::*;
use crate::workspace::{commit, Change, ChangeKind, CommitReport, FileType};

fn names(report: &CommitReport) -> (Vec<&str>, Vec<&str>) {
    let written = report.written.iter().map(String::as_str).collect();
    let failed = report.failed.iter().map(|f| f.path.as_str()).collect();
    (written, failed)
}

/// Names in a directory that look like commit's temp files.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".sandbox-"))
        .collect()
}

#[test]
fn committed_workspace_equals_the_view_for_every_scenario() {
    for &(name, scenario, _) in scenario::ALL {
        let run = run_both(scenario);
        let view = snapshot(run.copy.path());

        // From a copy view, into a second pristine workspace.
        let workspace = tempfile::tempdir().unwrap();
        copy_tree(run.original.path(), workspace.path());
        let report = commit(&run.changes, run.copy.path(), workspace.path());
        assert!(report.is_complete(), "{name}: {report:?}");
        assert_eq!(snapshot(workspace.path()), view, "{name} (copy view)");

        // From the unmounted overlay's upper dir, into the lower dir itself.
        let report = commit(&run.changes, &run.overlay.upper(), run.original.path());
        assert!(report.is_complete(), "{name}: {report:?}");
        assert_eq!(
            snapshot(run.original.path()),
            view,
            "{name} (overlay upper)"
        );
        let paths: Vec<_> = run.changes.entries.iter().map(|c| c.path.clone()).collect();
        let mut unique = paths.clone();
        unique.dedup();
        assert_eq!(report.written, unique, "{name}");
    }
}

#[test]
fn commit_touches_only_the_change_set() {
    let run = run_both(|root| {
        edit(root);
        chmod_only(root);
    });
    let root = run.original.path();
    let untouched = inode_of(&root.join("README.md"));
    let chmodded = inode_of(&root.join("src/main.rs"));
    let edited = inode_of(&root.join("src/lib.rs"));
    let report = commit(&run.changes, run.copy.path(), root);
    assert_eq!(report.written, ["src/lib.rs", "src/main.rs"]);
    assert_eq!(inode_of(&root.join("README.md")), untouched);
    // A mode change is made in place; new content arrives by rename.
    assert_eq!(inode_of(&root.join("src/main.rs")), chmodded);
    assert_ne!(inode_of(&root.join("src/lib.rs")), edited);
    assert!(temp_files(&root.join("src")).is_empty());
}

#[test]
fn planted_symlink_in_the_workspace_fails_only_its_entries() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path();
    write(&root.join("a.txt"), "a\n");
    write(&root.join("sub/x"), "x\n");
    let view = tempfile::tempdir().unwrap();
    copy_tree(root, view.path());
    write(&view.path().join("a.txt"), "a, edited\n");
    write(&view.path().join("sub/x"), "x, edited\n");
    write(&view.path().join("sub/y"), "y\n");
    write(&view.path().join("z.txt"), "z\n");
    let changes = ChangeSet::from_copy(view.path(), root).unwrap();

    // Between the job and the commit, `sub` becomes a symlink out of the workspace.
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("x"), "outside\n");
    std::fs::remove_dir_all(root.join("sub")).unwrap();
    symlink(outside.path(), root.join("sub")).unwrap();

    let report = commit(&changes, view.path(), root);
    assert_eq!(
        names(&report),
        (vec!["a.txt", "z.txt"], vec!["sub/x", "sub/y"])
    );
    assert!(report.not_attempted.is_empty());
    for failure in &report.failed {
        assert!(
            failure
                .error
                .contains("refusing to follow a symlink at or above sub/"),
            "{}",
            failure.error
        );
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("x")).unwrap(),
        "outside\n"
    );
    let outside_names: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert_eq!(outside_names.len(), 1, "nothing may be written outside");
    assert_eq!(
        std::fs::read_to_string(root.join("a.txt")).unwrap(),
        "a, edited\n"
    );
}

#[test]
fn commit_does_not_write_through_a_symlink_the_job_made() {
    // The view holds `esc -> <outside>`; a (hand-made) change set also claims `esc/pwn`.
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("pwn"), "pwn");
    let view = tempfile::tempdir().unwrap();
    symlink(outside.path(), view.path().join("esc")).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let changes = ChangeSet {
        entries: vec![
            Change {
                path: "esc".into(),
                kind: ChangeKind::Added,
                file_type: FileType::Symlink,
                mode_changed: false,
                old_mode: None,
                new_mode: Some(0o777),
                bytes: target.len() as u64,
                symlink_target: Some(target),
                binary: false,
                content_hash: None,
            },
            Change {
                path: "esc/pwn".into(),
                kind: ChangeKind::Added,
                file_type: FileType::File,
                mode_changed: false,
                old_mode: None,
                new_mode: Some(0o644),
                symlink_target: None,
                bytes: 3,
                binary: false,
                content_hash: Some(format!("blake3:{}", blake3::hash(b"pwn").to_hex())),
            },
        ],
        skipped: Vec::new(),
    };
    // Copying `esc/pwn` out of the view refuses the symlink, before the workspace is touched:
    // nothing at all is written back, not even `esc`.
    let report = commit(&changes, view.path(), workspace.path());
    assert_eq!(names(&report), (vec![], vec![]));
    assert_eq!(report.not_attempted, ["esc", "esc/pwn"]);
    let aborted = report.aborted.unwrap_or_default();
    assert!(aborted.contains("esc/pwn"), "{aborted}");
    assert!(
        aborted.contains("refusing to follow a symlink"),
        "{aborted}"
    );
    assert_eq!(std::fs::read_dir(workspace.path()).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(outside.path().join("pwn")).unwrap(),
        "pwn"
    );
}

#[test]
fn content_changed_in_the_view_after_the_diff_is_not_written() {
    let run = run_both(|root| {
        edit(root);
        create(root);
    });
    write(
        &run.copy.path().join("src/lib.rs"),
        "swapped after review\n",
    );
    let root = run.original.path();
    let before = std::fs::read(root.join("src/lib.rs")).unwrap();
    // All or nothing: the one file that does not match stops the whole write-back before the
    // workspace is touched.
    let report = commit(&run.changes, run.copy.path(), root);
    assert_eq!(names(&report), (vec![], vec![]));
    assert_eq!(report.not_attempted.len(), run.changes.entries.len());
    let aborted = report.aborted.unwrap_or_default();
    assert!(aborted.contains("src/lib.rs"), "{aborted}");
    assert!(
        aborted.contains("no longer matches the change set"),
        "{aborted}"
    );
    assert!(!root.join("src/new.rs").exists());
    assert!(!root.join("added").exists());
    assert_eq!(std::fs::read(root.join("src/lib.rs")).unwrap(), before);
    assert!(
        temp_files(&root.join("src")).is_empty(),
        "the temp file is cleaned up"
    );
}

#[test]
fn deleted_dir_that_gained_a_file_is_kept() {
    let run = run_both(delete_tree);
    let root = run.original.path();
    write(&root.join("docs/guide/added-meanwhile.md"), "keep me\n");
    let report = commit(&run.changes, run.copy.path(), root);
    assert_eq!(
        names(&report),
        (
            vec![
                "docs/guide/intro.md",
                "docs/guide/usage.md",
                "docs/index.md"
            ],
            vec!["docs", "docs/guide"]
        )
    );
    assert!(report.failed[1].error.contains("was not removed"));
    assert!(root.join("docs/guide/added-meanwhile.md").exists());
    assert!(!root.join("docs/index.md").exists());
}

#[test]
fn unopenable_workspace_attempts_nothing() {
    let run = run_both(file_to_dir);
    let missing = run.original.path().join("no-such-dir");
    let report = commit(&run.changes, run.copy.path(), &missing);
    assert!(report.written.is_empty() && report.failed.is_empty());
    assert_eq!(report.not_attempted, ["notes.txt", "notes.txt/a.txt"]);
    assert!(report.aborted.unwrap().contains("no-such-dir"));
}

#[test]
fn set_id_bits_are_never_written_back() {
    let run = run_both(|root| chmod(&root.join("bin/run.sh"), 0o6755));
    assert_eq!(run.changes.entries[0].new_mode, Some(0o6755));
    let report = commit(&run.changes, run.copy.path(), run.original.path());
    assert!(report.is_complete());
    assert_eq!(mode_of(&run.original.path().join("bin/run.sh")), 0o755);
}

#[test]
fn written_entries_keep_the_owner_of_the_workspace() {
    let run = run_both(|root| {
        edit(root);
        write(&root.join("src/new.rs"), "new\n");
        std::fs::create_dir(root.join("src/mod")).unwrap();
        symlink("new.rs", root.join("src/alias")).unwrap();
    });
    let root = run.original.path();
    let user = Some(nix::unistd::Uid::from_raw(4321));
    let group = Some(nix::unistd::Gid::from_raw(4321));
    nix::unistd::chown(&root.join("src"), user, group).unwrap();
    nix::unistd::chown(&root.join("src/lib.rs"), user, group).unwrap();
    let report = commit(&run.changes, run.copy.path(), root);
    assert!(report.is_complete(), "{report:?}");
    for path in ["src/lib.rs", "src/new.rs", "src/mod", "src/alias"] {
        let meta = std::fs::symlink_metadata(root.join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4321, 4321), "{path}");
    }
}

#[test]
fn read_only_new_dir_is_filled_then_sealed() {
    let run = run_both(|root| {
        write(&root.join("sealed/inside.txt"), "in\n");
        chmod(&root.join("sealed"), 0o555);
    });
    let report = commit(&run.changes, run.copy.path(), run.original.path());
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(mode_of(&run.original.path().join("sealed")), 0o555);
    assert_eq!(snapshot(run.original.path()), snapshot(run.copy.path()));
}

#[test]
fn mode_change_is_not_applied_through_a_planted_symlink() {
    let run = run_both(|root| {
        chmod_only(root);
        dir_chmod(root);
    });
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    write(&secret, "s\n");
    chmod(&secret, 0o600);
    let root = run.original.path();
    std::fs::remove_file(root.join("src/main.rs")).unwrap();
    symlink(&secret, root.join("src/main.rs")).unwrap();
    let report = commit(&run.changes, run.copy.path(), root);
    assert_eq!(names(&report), (vec!["src"], vec!["src/main.rs"]));
    assert!(report.failed[0]
        .error
        .contains("refusing to follow a symlink"));
    assert_eq!(mode_of(&secret), 0o600);
    assert_eq!(mode_of(&root.join("src")), 0o700);
}

#[test]
fn hand_made_paths_cannot_leave_the_workspace() {
    let workspace = tempfile::tempdir().unwrap();
    let view = tempfile::tempdir().unwrap();
    let deleted = |path: &str| Change {
        path: path.into(),
        kind: ChangeKind::Deleted,
        file_type: FileType::File,
        mode_changed: false,
        old_mode: Some(0o644),
        new_mode: None,
        symlink_target: None,
        bytes: 0,
        binary: false,
        content_hash: None,
    };
    let name = format!(
        "{}-victim",
        workspace.path().file_name().unwrap().to_str().unwrap()
    );
    let victim = workspace.path().parent().unwrap().join(&name);
    write(&victim, "v\n");
    let changes = ChangeSet {
        entries: vec![
            deleted(&format!("../{name}")),
            deleted(victim.to_str().unwrap()),
            deleted("a/./b"),
        ],
        skipped: Vec::new(),
    };
    let report = commit(&changes, view.path(), workspace.path());
    assert_eq!(report.failed.len(), 3);
    assert!(report
        .failed
        .iter()
        .all(|f| f.error.contains("invalid path")));
    assert!(victim.exists());
    std::fs::remove_file(victim).unwrap();
}
