//! The patch: the real `git apply` turns a fresh copy of the original into the view.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::scenario::{self, *};
use super::*;
use crate::workspace::patch::quote;
use crate::workspace::{DiffBudget, NOT_DIFFED};

const GIT: &str = "/usr/local/bin/git";

/// Runs `git apply ARGS -` in `dir` with `patch` on stdin.
fn run_git_apply(dir: &Path, args: &[&str], patch: &str) -> std::process::Output {
    let mut child = Command::new(GIT)
        .arg("apply")
        .args(args)
        .arg("-")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(patch.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn git_apply(dir: &Path, patch: &str) {
    let output = run_git_apply(dir, &["-p1", "--whitespace=nowarn"], patch);
    assert!(
        output.status.success(),
        "git apply failed: {}\n--- patch ---\n{patch}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn git_apply_turns_the_original_into_the_view_for_every_text_scenario() {
    for &(name, scenario, text) in scenario::ALL {
        if !text {
            continue;
        }
        let run = run_both(scenario);
        let patch = run
            .changes
            .patch(run.original.path(), run.copy.path(), DiffBudget::default())
            .unwrap();
        // An unmounted overlay's upper dir holds every new content the patch needs.
        let from_upper = run
            .changes
            .patch(
                run.original.path(),
                &run.overlay.upper(),
                DiffBudget::default(),
            )
            .unwrap();
        assert_eq!(from_upper, patch, "{name}");

        let fresh = tempfile::tempdir().unwrap();
        copy_tree(run.original.path(), fresh.path());
        if !patch.text.is_empty() {
            git_apply(fresh.path(), &patch.text);
        }
        assert_eq!(
            git_snapshot(fresh.path()),
            git_snapshot(run.copy.path()),
            "{name}:\n{}",
            patch.text
        );
    }
}

#[test]
fn patch_text_is_what_git_would_print() {
    let run = run_both(|root| {
        chmod_only(root);
        symlink_retarget(root);
        no_newline(root);
        write(&root.join("new.txt"), "one\ntwo\n");
        write(&root.join("empty.txt"), "");
        std::fs::remove_file(root.join("docs/index.md")).unwrap();
    });
    let patch = run
        .changes
        .patch(run.original.path(), run.copy.path(), DiffBudget::default())
        .unwrap();
    let expected = "\
diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -1,3 +1,3 @@
 # demo
 
-A small workspace.
+A small workspace.
\\ No newline at end of file
diff --git a/docs/index.md b/docs/index.md
deleted file mode 100644
--- a/docs/index.md
+++ /dev/null
@@ -1 +0,0 @@
-# Docs
diff --git a/empty.txt b/empty.txt
new file mode 100644
diff --git a/link b/link
--- a/link
+++ b/link
@@ -1 +1 @@
-src/lib.rs
\\ No newline at end of file
+src/main.rs
\\ No newline at end of file
diff --git a/new.txt b/new.txt
new file mode 100644
--- /dev/null
+++ b/new.txt
@@ -0,0 +1,2 @@
+one
+two
diff --git a/notes.txt b/notes.txt
--- a/notes.txt
+++ b/notes.txt
@@ -1 +1 @@
-no newline at the end
\\ No newline at end of file
+no newline at the end, still
\\ No newline at end of file
diff --git a/src/main.rs b/src/main.rs
old mode 100644
new mode 100755
";
    assert_eq!(patch.text, expected);
    assert_eq!((patch.lines_added, patch.lines_removed), (5, 4));
}

#[test]
fn edit_counts_lines_with_three_lines_of_context() {
    let run = run_both(edit);
    let patch = run
        .changes
        .patch(run.original.path(), run.copy.path(), DiffBudget::default())
        .unwrap();
    assert_eq!((patch.lines_added, patch.lines_removed), (2, 1));
    assert!(
        patch.text.contains("@@ -7,7 +7,7 @@\n pub const L7"),
        "{}",
        patch.text
    );
    assert!(patch.text.contains("@@ -18,3 +18,4 @@\n"), "{}", patch.text);
}

#[test]
fn binary_files_are_named_not_diffed() {
    let run = run_both(binary);
    let patch = run
        .changes
        .patch(run.original.path(), run.copy.path(), DiffBudget::default())
        .unwrap();
    assert!(patch
        .text
        .contains("\nBinary files a/data/blob.bin and b/data/blob.bin differ\n"));
    assert!(patch.text.contains(
        "diff --git a/data/new.bin b/data/new.bin\nnew file mode 100644\n\
         Binary files /dev/null and b/data/new.bin differ\n"
    ));
    assert_eq!((patch.lines_added, patch.lines_removed), (0, 0));
}

#[test]
fn paths_are_quoted_as_git_quotes_them() {
    assert_eq!(quote("a/", "src/lib.rs"), "a/src/lib.rs");
    assert_eq!(quote("a/", "with space"), "a/with space");
    assert_eq!(
        quote("b/", "dir with space/say \"hi\" é.txt"),
        "\"b/dir with space/say \\\"hi\\\" \\303\\251.txt\""
    );
    assert_eq!(quote("a/", "tab\tand\\back"), "\"a/tab\\tand\\\\back\"");
    assert_eq!(quote("a/", "bell\u{7}\u{1}"), "\"a/bell\\a\\001\"");
}

#[test]
fn a_mode_change_git_cannot_express_renders_nothing() {
    let run = run_both(|root| chmod(&root.join("src/main.rs"), 0o600));
    assert_eq!(run.changes.mode_changed(), ["src/main.rs"]);
    let patch = run
        .changes
        .patch(run.original.path(), run.copy.path(), DiffBudget::default())
        .unwrap();
    assert_eq!(patch.text, "");
}

/// The budget counts the bytes of both sides of every file diffed, over the whole change set:
/// a file larger than what is left is skipped unread and named, and smaller ones after it
/// still fit.
#[test]
fn files_past_the_byte_budget_are_named_and_marked_not_diffed() {
    let run = run_both(|root| {
        write(&root.join("a.txt"), "a\n");
        write(&root.join("big.txt"), "x\n".repeat(1000));
        write(&root.join("c.txt"), "c\n");
    });
    let budget = DiffBudget {
        time: Duration::from_secs(3600),
        bytes: 100,
    };
    let patch = run
        .changes
        .patch(run.original.path(), run.copy.path(), budget)
        .unwrap();
    assert_eq!(patch.not_diffed, ["big.txt"]);
    assert_eq!(
        patch.bytes_read, 4,
        "a.txt and c.txt, not one byte of big.txt"
    );
    assert_eq!((patch.lines_added, patch.lines_removed), (2, 0));
    assert!(
        patch.text.contains(&format!(
            "diff --git a/big.txt b/big.txt\nnew file mode 100644\n{NOT_DIFFED}\n"
        )),
        "{}",
        patch.text
    );
    assert!(!patch.text.contains("+x"), "{}", patch.text);
    assert!(patch.text.contains("+c\n"), "{}", patch.text);
}

/// A modified file needs its old and its new content: a budget one byte short of both leaves
/// it out, one that covers both diffs it.
#[test]
fn a_modified_file_is_diffed_only_when_the_budget_covers_both_sides() {
    let run = run_both(scenario::edit);
    let size = |root: &Path| std::fs::metadata(root.join("src/lib.rs")).unwrap().len();
    let both = size(run.original.path()) + size(run.copy.path());
    let with = |bytes: u64| {
        let budget = DiffBudget {
            time: Duration::from_secs(3600),
            bytes,
        };
        run.changes
            .patch(run.original.path(), run.copy.path(), budget)
            .unwrap()
    };
    let enough = with(both);
    assert!(enough.not_diffed.is_empty(), "{enough:?}");
    assert_eq!(enough.bytes_read, both);
    assert_eq!((enough.lines_added, enough.lines_removed), (2, 1));
    let short = with(both - 1);
    assert_eq!(short.not_diffed, ["src/lib.rs"]);
    assert_eq!((short.lines_added, short.lines_removed), (0, 0));
}

/// A time budget of nothing is spent before the first file: every changed file is named, none
/// is read, and the real `git apply` refuses the patch whole rather than apply part of it.
#[test]
fn a_spent_time_budget_diffs_nothing_and_git_apply_refuses_the_patch() {
    let run = run_both(|root| {
        scenario::edit(root);
        scenario::create(root);
    });
    let budget = DiffBudget {
        time: Duration::ZERO,
        bytes: u64::MAX,
    };
    let patch = run
        .changes
        .patch(run.original.path(), run.copy.path(), budget)
        .unwrap();
    assert_eq!(
        patch.not_diffed,
        [
            "added/deep/x.txt",
            "added/empty.txt",
            "src/lib.rs",
            "src/new.rs"
        ]
    );
    assert_eq!(patch.bytes_read, 0);
    assert_eq!((patch.lines_added, patch.lines_removed), (0, 0));

    let fresh = tempfile::tempdir().unwrap();
    copy_tree(run.original.path(), fresh.path());
    let output = run_git_apply(fresh.path(), &["--check", "-p1"], &patch.text);
    assert!(
        !output.status.success(),
        "git apply took a patch with files left out:\n{}",
        patch.text
    );
    assert_eq!(
        git_snapshot(fresh.path()),
        git_snapshot(run.original.path())
    );
}
