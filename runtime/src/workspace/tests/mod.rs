//! Tests for scratch workspaces. They run as root (CI does): the overlay ones mount a real
//! overlay, with the options the runtime uses, on a tmpfs upper.
//!
//! Every scenario is a function that mutates a view with `std::fs`; [`run_both`] runs it on a
//! copy and on a mounted overlay and checks both report the same change set.

mod changes;
mod commit;
mod patch;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use tempfile::TempDir;

use super::ChangeSet;

pub(super) fn write(path: &Path, text: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

pub(super) fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub(super) fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

pub(super) fn inode_of(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).unwrap().ino()
}

/// The workspace every scenario starts from.
pub(super) fn original_tree(root: &Path) {
    write(&root.join("README.md"), "# demo\n\nA small workspace.\n");
    let lib: String = (1..=20)
        .map(|n| format!("pub const L{n}: u32 = {n};\n"))
        .collect();
    write(&root.join("src/lib.rs"), lib);
    write(&root.join("src/main.rs"), "fn main() {}\n");
    write(&root.join("docs/index.md"), "# Docs\n");
    write(&root.join("docs/guide/intro.md"), "Intro\n");
    write(&root.join("docs/guide/usage.md"), "Usage\n");
    write(&root.join("bin/run.sh"), "#!/bin/sh\necho run\n");
    chmod(&root.join("bin/run.sh"), 0o755);
    write(&root.join("notes.txt"), "no newline at the end");
    write(&root.join("data/blob.bin"), b"\x00\x01\x02binary\x00");
    write(&root.join("dir with space/say \"hi\" é.txt"), "hello\n");
    std::fs::create_dir(root.join("empty")).unwrap();
    symlink("src/lib.rs", root.join("link")).unwrap();
}

/// One path as a tree comparison sees it. Special files are left out: nothing writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    File { mode: u32, content: Vec<u8> },
    Symlink(PathBuf),
    Dir { mode: u32 },
}

/// Every path below `root` with its type, mode and content; symlinks are not followed.
pub(super) fn snapshot(root: &Path) -> BTreeMap<String, Item> {
    let mut items = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(root.join(&dir)).unwrap() {
            let rel = dir.join(entry.unwrap().file_name());
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.mode() & 0o7777;
            let item = if meta.is_symlink() {
                Item::Symlink(std::fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                todo.push(rel.clone());
                Item::Dir { mode }
            } else if meta.is_file() {
                let content = std::fs::read(&path).unwrap();
                Item::File { mode, content }
            } else {
                continue;
            };
            items.insert(rel.to_string_lossy().into_owned(), item);
        }
    }
    items
}

/// What git tracks of a tree: files (only the owner's execute bit) and symlinks.
pub(super) fn git_snapshot(root: &Path) -> BTreeMap<String, Item> {
    snapshot(root)
        .into_iter()
        .filter_map(|(path, item)| match item {
            Item::Dir { .. } => None,
            Item::File { mode, content } => {
                let mode = if mode & 0o100 != 0 { 0o755 } else { 0o644 };
                Some((path, Item::File { mode, content }))
            }
            symlink => Some((path, symlink)),
        })
        .collect()
}

/// A copy that keeps modes and symlinks, like the runtime's copy view.
pub(super) fn copy_tree(from: &Path, to: &Path) {
    for (path, item) in snapshot(from) {
        let target = to.join(&path);
        match item {
            Item::Dir { .. } => std::fs::create_dir_all(&target).unwrap(),
            Item::File { content, .. } => write(&target, content),
            Item::Symlink(link) => {
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                symlink(link, &target).unwrap();
            }
        }
    }
    // Modes last, so a read-only directory does not stop its own copy.
    for (path, item) in snapshot(from).into_iter().rev() {
        if let Item::File { mode, .. } | Item::Dir { mode } = item {
            chmod(&to.join(path), mode);
        }
    }
}

/// An overlay over `lower`, mounted as the runtime mounts it, with upper and work on a tmpfs.
pub(super) struct Overlay {
    root: TempDir,
    mounted: bool,
}

impl Overlay {
    pub(super) fn mount(lower: &Path) -> Overlay {
        let root = tempfile::tempdir().unwrap();
        let store = root.path().join("store");
        std::fs::create_dir(&store).unwrap();
        mount(
            Some("tmpfs"),
            &store,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=0700"),
        )
        .unwrap();
        let overlay = Overlay {
            root,
            mounted: true,
        };
        for dir in [overlay.upper(), overlay.work(), overlay.merged()] {
            std::fs::create_dir(dir).unwrap();
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off,xino=off",
            lower.display(),
            overlay.upper().display(),
            overlay.work().display()
        );
        mount(
            Some("overlay"),
            &overlay.merged(),
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .unwrap();
        overlay
    }

    pub(super) fn merged(&self) -> PathBuf {
        self.root.path().join("merged")
    }

    pub(super) fn upper(&self) -> PathBuf {
        self.root.path().join("store/upper")
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("store/work")
    }

    /// Unmounts the overlay; the upper dir stays readable on its tmpfs.
    pub(super) fn unmount(&mut self) {
        umount2(&self.merged(), MntFlags::empty()).unwrap();
        self.mounted = false;
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.merged(), MntFlags::MNT_DETACH);
        }
        let _ = umount2(&self.root.path().join("store"), MntFlags::MNT_DETACH);
    }
}

/// A scenario run through both kinds of view.
pub(super) struct Run {
    pub original: TempDir,
    /// The copy view, after the scenario.
    pub copy: TempDir,
    /// The overlay over `original`, unmounted after the scenario.
    pub overlay: Overlay,
    pub changes: ChangeSet,
}

/// Runs `scenario` on a copy of the original tree and on an overlay over it, and checks that
/// both views end up alike and that `from_copy` and `from_overlay` agree.
pub(super) fn run_both(scenario: fn(&Path)) -> Run {
    let original = tempfile::tempdir().unwrap();
    original_tree(original.path());

    let copy = tempfile::tempdir().unwrap();
    copy_tree(original.path(), copy.path());
    scenario(copy.path());
    let from_copy = ChangeSet::from_copy(copy.path(), original.path()).unwrap();

    let mut overlay = Overlay::mount(original.path());
    scenario(&overlay.merged());
    assert_eq!(snapshot(&overlay.merged()), snapshot(copy.path()));
    overlay.unmount();
    let from_overlay = ChangeSet::from_overlay(&overlay.upper(), original.path()).unwrap();

    assert_eq!(from_overlay, from_copy, "overlay and copy disagree");
    assert_eq!(from_overlay.hash(), from_copy.hash());
    Run {
        original,
        copy,
        overlay,
        changes: from_copy,
    }
}

/// `(path, kind, type)` of every entry, for terse assertions.
pub(super) fn summary(changes: &ChangeSet) -> Vec<(String, &'static str, &'static str)> {
    changes
        .entries
        .iter()
        .map(|c| (c.path.clone(), c.kind.as_str(), c.file_type.as_str()))
        .collect()
}

pub(super) fn entries(
    list: &[(&str, &'static str, &'static str)],
) -> Vec<(String, &'static str, &'static str)> {
    list.iter()
        .map(|&(path, kind, file_type)| (path.to_string(), kind, file_type))
        .collect()
}

/// The scenarios, each a job's edits to its view. Patch and commit tests run them all.
pub(super) mod scenario {
    use super::*;

    pub fn edit(root: &Path) {
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
        let lib = lib.replace("L10: u32 = 10", "L10: u32 = 100") + "pub const L21: u32 = 21;\n";
        write(&root.join("src/lib.rs"), lib);
    }

    pub fn create(root: &Path) {
        write(&root.join("src/new.rs"), "pub fn new() {}\n");
        write(&root.join("added/deep/x.txt"), "x\n");
        write(&root.join("added/empty.txt"), "");
    }

    pub fn delete_file(root: &Path) {
        std::fs::remove_file(root.join("src/main.rs")).unwrap();
    }

    pub fn delete_tree(root: &Path) {
        std::fs::remove_dir_all(root.join("docs")).unwrap();
    }

    pub fn chmod_only(root: &Path) {
        chmod(&root.join("src/main.rs"), 0o755);
    }

    pub fn chmod_and_edit(root: &Path) {
        chmod(&root.join("bin/run.sh"), 0o644);
        write(&root.join("bin/run.sh"), "#!/bin/sh\necho walk\n");
    }

    pub fn symlink_create(root: &Path) {
        symlink("../README.md", root.join("src/readme")).unwrap();
        symlink("/nonexistent/target", root.join("dangling")).unwrap();
    }

    pub fn symlink_retarget(root: &Path) {
        std::fs::remove_file(root.join("link")).unwrap();
        symlink("src/main.rs", root.join("link")).unwrap();
    }

    pub fn symlink_to_file(root: &Path) {
        std::fs::remove_file(root.join("link")).unwrap();
        write(&root.join("link"), "now a file\n");
    }

    pub fn file_to_dir(root: &Path) {
        std::fs::remove_file(root.join("notes.txt")).unwrap();
        write(&root.join("notes.txt/a.txt"), "a\n");
    }

    pub fn dir_to_file(root: &Path) {
        std::fs::remove_dir_all(root.join("docs/guide")).unwrap();
        write(&root.join("docs/guide"), "now a file\n");
    }

    /// `rm -rf docs && mkdir docs && …`: overlay marks the new `docs` opaque.
    pub fn opaque_dir(root: &Path) {
        std::fs::remove_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir(root.join("docs")).unwrap();
        write(&root.join("docs/index.md"), "# Docs\n");
        write(&root.join("docs/new.md"), "new\n");
    }

    /// Copied up by overlay, yet no change.
    pub fn unchanged_writes(root: &Path) {
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .open(root.join("README.md"))
                .unwrap(),
        );
        write(&root.join("src/main.rs"), "fn main() {}\n");
        chmod(&root.join("bin/run.sh"), 0o755);
        chmod(&root.join("docs"), 0o755);
    }

    pub fn dir_chmod(root: &Path) {
        chmod(&root.join("src"), 0o700);
    }

    pub fn no_newline(root: &Path) {
        write(&root.join("notes.txt"), "no newline at the end, still");
        write(&root.join("README.md"), "# demo\n\nA small workspace.");
    }

    pub fn odd_names(root: &Path) {
        write(
            &root.join("dir with space/say \"hi\" é.txt"),
            "hello\nworld\n",
        );
        write(&root.join("tab\tand\\back.txt"), "t\n");
    }

    /// Overlay copies the file up under its new name and whites out the old one.
    pub fn rename_file(root: &Path) {
        std::fs::rename(root.join("src/main.rs"), root.join("src/app.rs")).unwrap();
    }

    pub fn binary(root: &Path) {
        write(
            &root.join("data/blob.bin"),
            b"\x00\x01\x02binary, changed\x00",
        );
        write(&root.join("data/new.bin"), b"\x00\xff");
    }

    pub fn special(root: &Path) {
        nix::unistd::mkfifo(
            &root.join("pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
    }

    /// A name, the edits, and whether the patch round-trips through `git apply` (text only).
    pub type Scenario = (&'static str, fn(&Path), bool);

    pub const ALL: &[Scenario] = &[
        ("edit", edit, true),
        ("create", create, true),
        ("delete_file", delete_file, true),
        ("delete_tree", delete_tree, true),
        ("chmod_only", chmod_only, true),
        ("chmod_and_edit", chmod_and_edit, true),
        ("symlink_create", symlink_create, true),
        ("symlink_retarget", symlink_retarget, true),
        ("symlink_to_file", symlink_to_file, true),
        ("file_to_dir", file_to_dir, true),
        ("dir_to_file", dir_to_file, true),
        ("opaque_dir", opaque_dir, true),
        ("unchanged_writes", unchanged_writes, true),
        ("dir_chmod", dir_chmod, true),
        ("no_newline", no_newline, true),
        ("odd_names", odd_names, true),
        ("rename_file", rename_file, true),
        ("binary", binary, false),
        ("special", special, true),
    ];
}
