//! `from_overlay` and `from_copy`: every scenario gives the same, expected change set.

use std::path::Path;
use std::time::Instant;

use super::scenario::*;
use super::*;
use crate::workspace::{ChangeKind, FileType};

fn expect(scenario: fn(&Path), expected: &[(&str, &'static str, &'static str)]) -> ChangeSet {
    let run = run_both(scenario);
    assert_eq!(summary(&run.changes), entries(expected));
    run.changes
}

#[test]
fn edit_is_one_modified_file() {
    let run = run_both(edit);
    assert_eq!(
        summary(&run.changes),
        entries(&[("src/lib.rs", "modified", "file")])
    );
    let change = &run.changes.entries[0];
    assert!(!change.mode_changed && !change.binary);
    let size = std::fs::metadata(run.copy.path().join("src/lib.rs"))
        .unwrap()
        .len();
    assert_eq!(change.bytes, size);
    assert!(change
        .content_hash
        .as_deref()
        .unwrap()
        .starts_with("blake3:"));
}

#[test]
fn create_adds_files_and_new_dirs() {
    let changes = expect(
        create,
        &[
            ("added", "added", "dir"),
            ("added/deep", "added", "dir"),
            ("added/deep/x.txt", "added", "file"),
            ("added/empty.txt", "added", "file"),
            ("src/new.rs", "added", "file"),
        ],
    );
    assert_eq!(changes.files_created(), 5);
    assert_eq!(changes.changed_files(), 3);
    assert_eq!(
        changes.bytes_added(),
        "x\n".len() as u64 + "pub fn new() {}\n".len() as u64
    );
}

#[test]
fn delete_file_is_one_deleted_file() {
    expect(delete_file, &[("src/main.rs", "deleted", "file")]);
}

#[test]
fn delete_tree_lists_every_entry_below() {
    let changes = expect(
        delete_tree,
        &[
            ("docs", "deleted", "dir"),
            ("docs/guide", "deleted", "dir"),
            ("docs/guide/intro.md", "deleted", "file"),
            ("docs/guide/usage.md", "deleted", "file"),
            ("docs/index.md", "deleted", "file"),
        ],
    );
    assert_eq!(changes.changed_files(), 3);
    assert_eq!(changes.bytes_added(), 0);
}

#[test]
fn chmod_only_is_a_mode_change_without_content() {
    let changes = expect(chmod_only, &[("src/main.rs", "modified", "file")]);
    let change = &changes.entries[0];
    assert!(change.mode_changed);
    assert_eq!(
        (change.old_mode, change.new_mode),
        (Some(0o644), Some(0o755))
    );
    assert_eq!(change.content_hash, None, "commit must only chmod");
    assert_eq!(changes.mode_changed(), ["src/main.rs"]);
}

#[test]
fn chmod_and_edit_changes_both() {
    let changes = expect(chmod_and_edit, &[("bin/run.sh", "modified", "file")]);
    let change = &changes.entries[0];
    assert!(change.mode_changed && change.content_hash.is_some());
}

#[test]
fn symlink_create_records_the_target() {
    let changes = expect(
        symlink_create,
        &[
            ("dangling", "added", "symlink"),
            ("src/readme", "added", "symlink"),
        ],
    );
    assert_eq!(
        changes.entries[0].symlink_target.as_deref(),
        Some("/nonexistent/target")
    );
    assert_eq!(changes.entries[1].bytes, "../README.md".len() as u64);
}

#[test]
fn symlink_retarget_is_modified() {
    let changes = expect(symlink_retarget, &[("link", "modified", "symlink")]);
    assert_eq!(
        changes.entries[0].symlink_target.as_deref(),
        Some("src/main.rs")
    );
    assert!(!changes.entries[0].mode_changed);
}

#[test]
fn symlink_replaced_by_file_is_deleted_then_added() {
    expect(
        symlink_to_file,
        &[("link", "deleted", "symlink"), ("link", "added", "file")],
    );
}

#[test]
fn file_replaced_by_dir_is_deleted_then_added() {
    let changes = expect(
        file_to_dir,
        &[
            ("notes.txt", "deleted", "file"),
            ("notes.txt", "added", "dir"),
            ("notes.txt/a.txt", "added", "file"),
        ],
    );
    assert_eq!(changes.added(), ["notes.txt", "notes.txt/a.txt"]);
    assert_eq!(changes.deleted(), ["notes.txt"]);
}

#[test]
fn dir_replaced_by_file_deletes_the_tree() {
    expect(
        dir_to_file,
        &[
            ("docs/guide", "deleted", "dir"),
            ("docs/guide", "added", "file"),
            ("docs/guide/intro.md", "deleted", "file"),
            ("docs/guide/usage.md", "deleted", "file"),
        ],
    );
}

#[test]
fn opaque_dir_deletes_what_it_hides_and_keeps_what_it_recreates() {
    let run = run_both(opaque_dir);
    let docs = run.overlay.upper().join("docs");
    assert!(
        crate::workspace::sys::is_opaque(&docs).unwrap(),
        "the scenario must make docs opaque"
    );
    assert_eq!(
        summary(&run.changes),
        entries(&[
            ("docs/guide", "deleted", "dir"),
            ("docs/guide/intro.md", "deleted", "file"),
            ("docs/guide/usage.md", "deleted", "file"),
            ("docs/new.md", "added", "file"),
        ])
    );
}

#[test]
fn files_opened_for_write_but_unchanged_are_not_reported() {
    let run = run_both(unchanged_writes);
    // Overlay did copy them up: the upper dir alone would have reported them.
    assert!(run.overlay.upper().join("README.md").exists());
    assert!(run.overlay.upper().join("bin/run.sh").exists());
    assert_eq!(run.changes, ChangeSet::default());
}

#[test]
fn dir_chmod_is_a_modified_dir() {
    let changes = expect(dir_chmod, &[("src", "modified", "dir")]);
    assert_eq!(changes.changed_files(), 1);
    assert_eq!(changes.mode_changed(), ["src"]);
}

#[test]
fn rename_is_deleted_plus_added() {
    expect(
        rename_file,
        &[
            ("src/app.rs", "added", "file"),
            ("src/main.rs", "deleted", "file"),
        ],
    );
}

#[test]
fn binary_files_are_flagged() {
    let changes = expect(
        binary,
        &[
            ("data/blob.bin", "modified", "file"),
            ("data/new.bin", "added", "file"),
        ],
    );
    assert!(changes.entries.iter().all(|change| change.binary));
}

#[test]
fn fifo_is_skipped_not_an_entry() {
    let changes = expect(special, &[]);
    assert_eq!(changes.skipped, ["pipe"]);
}

#[test]
fn whiteout_made_by_the_job_in_a_copy_is_skipped() {
    // In a copy a 0:0 char device is a device the job made, not a deletion.
    let original = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    nix::sys::stat::mknod(
        &copy.path().join("dev"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    let changes = ChangeSet::from_copy(copy.path(), original.path()).unwrap();
    assert!(changes.entries.is_empty());
    assert_eq!(changes.skipped, ["dev"]);
}

#[test]
fn non_utf8_names_are_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let run = run_both(|root| {
        write(&root.join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x\n");
    });
    assert!(run.changes.entries.is_empty());
    assert_eq!(run.changes.skipped, ["bad\u{fffd}"]);
}

#[test]
fn totals_and_hash() {
    let run = run_both(|root| {
        edit(root);
        create(root);
        delete_tree(root);
        chmod_only(root);
    });
    let changes = &run.changes;
    assert_eq!(
        changes.added(),
        [
            "added",
            "added/deep",
            "added/deep/x.txt",
            "added/empty.txt",
            "src/new.rs"
        ]
    );
    assert_eq!(changes.modified(), ["src/lib.rs", "src/main.rs"]);
    assert_eq!(changes.deleted().len(), 5);
    assert_eq!(changes.mode_changed(), ["src/main.rs"]);
    assert_eq!(changes.files_created(), 5);
    // 3 added files, 2 modified, 3 deleted files; the added and deleted dirs do not count.
    assert_eq!(changes.changed_files(), 8);
    let lib = std::fs::metadata(run.copy.path().join("src/lib.rs"))
        .unwrap()
        .len();
    assert_eq!(changes.bytes_added(), lib + 13 + 2 + 16);

    let hash = changes.hash();
    assert!(hash.starts_with("blake3:") && hash.len() == 7 + 64);
    // Same size, other bytes: another change set, another hash.
    let mut other = changes.clone();
    other.entries[0].content_hash = Some("blake3:00".into());
    assert_ne!(other.hash(), hash);
    assert_eq!(changes.clone().hash(), hash);
}

#[test]
fn change_set_serializes_in_snake_case_and_has_a_schema() {
    let changes = run_both(symlink_to_file).changes;
    let json = serde_json::to_value(&changes).unwrap();
    assert_eq!(json["entries"][0]["kind"], "deleted");
    assert_eq!(json["entries"][0]["file_type"], "symlink");
    assert_eq!(json["entries"][1]["kind"], "added");
    let schema = serde_json::to_value(schemars::schema_for!(ChangeSet)).unwrap();
    assert!(schema.to_string().contains("content_hash"));
    assert_eq!(changes.entries[1].kind, ChangeKind::Added);
    assert_eq!(changes.entries[1].file_type, FileType::File);
}

/// Both views agree on a 10 000-file tree with 10 changes; with `--nocapture` it also prints
/// what each took (`from_overlay` reads only the upper dir, `from_copy` both trees).
#[test]
fn overlay_and_copy_agree_on_10k_files() {
    let original = tempfile::tempdir().unwrap();
    for dir in 0..100 {
        for file in 0..100 {
            let text = format!("dir {dir} file {file}\n").repeat(20);
            write(
                &original.path().join(format!("d{dir:03}/f{file:03}.txt")),
                text,
            );
        }
    }
    let mutate = |root: &Path| {
        for n in 0..10 {
            write(
                &root.join(format!("d{:03}/f{n:03}.txt", n * 7)),
                "changed\n",
            );
        }
    };
    let copy = tempfile::tempdir().unwrap();
    copy_tree(original.path(), copy.path());
    mutate(copy.path());
    let mut overlay = Overlay::mount(original.path());
    mutate(&overlay.merged());
    overlay.unmount();

    let timed = |f: &dyn Fn() -> ChangeSet| {
        let start = Instant::now();
        (f(), start.elapsed())
    };
    let (overlay_changes, from_overlay) =
        timed(&|| ChangeSet::from_overlay(&overlay.upper(), original.path()).unwrap());
    let (copy_changes, from_copy) =
        timed(&|| ChangeSet::from_copy(copy.path(), original.path()).unwrap());
    assert_eq!(overlay_changes.entries.len(), 10);
    assert_eq!(overlay_changes, copy_changes);
    println!("10 000 files, 10 changed: from_overlay {from_overlay:?}, from_copy {from_copy:?}");
}
