//! Computing a change set: walking an overlay's upper dir against its lower dir, or diffing a
//! copy against the original. Nothing here follows a symlink: entries are `lstat`ed and files
//! are opened with `O_NOFOLLOW`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::changes::{Change, ChangeKind, ChangeSet, FileType};
use super::{sys, WorkspaceError};

/// What one side of the diff holds at a path.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Absent,
    File {
        mode: u32,
    },
    Symlink {
        target: OsString,
    },
    Dir {
        mode: u32,
    },
    /// overlayfs's deletion marker in an upper dir: a character device 0:0.
    Whiteout,
    /// A fifo, socket or device node: never diffed, never written back.
    Special,
}

/// One directory level still to visit. The walk keeps a stack of these instead of recursing,
/// so a job that nests directories thousands deep cannot overflow our stack.
enum Task {
    /// An upper dir that merges with the lower dir at the same path: only what the upper holds
    /// changed.
    Merge(PathBuf),
    /// Two complete trees compared name by name: a copy, or an opaque upper dir.
    Compare(PathBuf),
    /// A dir only the new side has: everything below it is added.
    Added(PathBuf),
    /// A dir only the old side has: everything below it is deleted.
    Deleted(PathBuf),
}

impl ChangeSet {
    /// The changes recorded in an overlay's `upper` dir over `lower` (the real workspace).
    /// Call it once the overlay is unmounted, or at least once the job is gone.
    pub fn from_overlay(upper: &Path, lower: &Path) -> Result<ChangeSet, WorkspaceError> {
        Walk::new(upper, lower, true).run(Task::Merge(PathBuf::new()))
    }

    /// The changes between `copy` (what the job left) and `original`, by type, mode, size
    /// and then bytes.
    pub fn from_copy(copy: &Path, original: &Path) -> Result<ChangeSet, WorkspaceError> {
        Walk::new(copy, original, false).run(Task::Compare(PathBuf::new()))
    }
}

struct Walk<'a> {
    new_root: &'a Path,
    old_root: &'a Path,
    /// The new side is an overlay upper dir, whose 0:0 char devices are whiteouts.
    overlay: bool,
    todo: Vec<Task>,
    entries: Vec<Change>,
    skipped: Vec<String>,
}

impl<'a> Walk<'a> {
    fn new(new_root: &'a Path, old_root: &'a Path, overlay: bool) -> Self {
        Walk {
            new_root,
            old_root,
            overlay,
            todo: Vec::new(),
            entries: Vec::new(),
            skipped: Vec::new(),
        }
    }

    fn run(mut self, first: Task) -> Result<ChangeSet, WorkspaceError> {
        self.todo.push(first);
        while let Some(task) = self.todo.pop() {
            match task {
                Task::Merge(dir) => self.merge(&dir)?,
                Task::Compare(dir) => self.compare(&dir)?,
                Task::Added(dir) => {
                    for name in list(&self.new_root.join(&dir))? {
                        let rel = dir.join(name);
                        let new = self.new_node(&rel)?;
                        self.add(&rel, new)?;
                    }
                }
                Task::Deleted(dir) => {
                    for name in list(&self.old_root.join(&dir))? {
                        let rel = dir.join(name);
                        let old = self.old_node(&rel)?;
                        self.delete(&rel, old)?;
                    }
                }
            }
        }
        Ok(ChangeSet::new(self.entries, self.skipped))
    }

    fn merge(&mut self, dir: &Path) -> Result<(), WorkspaceError> {
        for name in list(&self.new_root.join(dir))? {
            let rel = dir.join(name);
            let new = node(&self.new_root.join(&rel))?;
            let old = self.old_node(&rel)?;
            match (old, new) {
                (old, Node::Whiteout) => self.delete(&rel, old)?,
                (Node::Dir { mode: old_mode }, Node::Dir { mode: new_mode })
                    if !sys::is_opaque(&self.new_root.join(&rel))? =>
                {
                    self.dir_mode(&rel, old_mode, new_mode);
                    self.todo.push(Task::Merge(rel));
                }
                // An opaque dir hides the lower one entirely: `pair` compares the two trees.
                (old, new) => self.pair(&rel, old, new)?,
            }
        }
        Ok(())
    }

    fn compare(&mut self, dir: &Path) -> Result<(), WorkspaceError> {
        let mut names: BTreeSet<OsString> = list(&self.new_root.join(dir))?.into_iter().collect();
        names.extend(list_if_dir(&self.old_root.join(dir))?);
        for name in names {
            let rel = dir.join(name);
            let new = self.new_node(&rel)?;
            let old = self.old_node(&rel)?;
            self.pair(&rel, old, new)?;
        }
        Ok(())
    }

    /// Records the difference between what the old and the new side hold at `rel`.
    fn pair(&mut self, rel: &Path, old: Node, new: Node) -> Result<(), WorkspaceError> {
        match (old, new) {
            (Node::Dir { mode: old_mode }, Node::Dir { mode: new_mode }) => {
                self.dir_mode(rel, old_mode, new_mode);
                self.todo.push(Task::Compare(rel.to_path_buf()));
            }
            (Node::File { mode: old_mode }, Node::File { mode: new_mode }) => {
                self.compare_files(rel, old_mode, new_mode)?;
            }
            (Node::Symlink { target: old }, Node::Symlink { target: new }) => {
                if old != new {
                    self.push_symlink(rel, ChangeKind::Modified, &new);
                }
            }
            // A special file the job left in place is no change of ours.
            (Node::Special, Node::Special) => {}
            // Anything else is a change of type (or an appearance, or a disappearance).
            (old, new) => {
                self.delete(rel, old)?;
                self.add(rel, new)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, rel: &Path, new: Node) -> Result<(), WorkspaceError> {
        match new {
            Node::Absent | Node::Whiteout => {}
            Node::Special => self.skip(rel),
            Node::Symlink { target } => self.push_symlink(rel, ChangeKind::Added, &target),
            Node::Dir { mode } => {
                if let Some(path) = self.utf8(rel) {
                    self.entries.push(Change {
                        new_mode: Some(mode),
                        ..change(path, ChangeKind::Added, FileType::Dir)
                    });
                    self.todo.push(Task::Added(rel.to_path_buf()));
                }
            }
            Node::File { mode } => {
                if let Some(path) = self.utf8(rel) {
                    let content = scan(&self.new_root.join(rel))?;
                    self.entries.push(Change {
                        new_mode: Some(mode),
                        bytes: content.size,
                        binary: content.binary,
                        content_hash: Some(content.hash_string()),
                        ..change(path, ChangeKind::Added, FileType::File)
                    });
                }
            }
        }
        Ok(())
    }

    /// Records the removal of `old`. Special files in the workspace are neither reported nor
    /// touched: the job could not have meant to remove what it cannot have made.
    fn delete(&mut self, rel: &Path, old: Node) -> Result<(), WorkspaceError> {
        let (file_type, old_mode) = match old {
            Node::Absent | Node::Whiteout | Node::Special => return Ok(()),
            Node::File { mode } => (FileType::File, Some(mode)),
            Node::Symlink { .. } => (FileType::Symlink, Some(0o777)),
            Node::Dir { mode } => (FileType::Dir, Some(mode)),
        };
        if let Some(path) = self.utf8(rel) {
            self.entries.push(Change {
                old_mode,
                ..change(path, ChangeKind::Deleted, file_type)
            });
            if file_type == FileType::Dir {
                self.todo.push(Task::Deleted(rel.to_path_buf()));
            }
        }
        Ok(())
    }

    /// Overlay copies a file up when it is merely opened for writing or chmod-ed to the same
    /// mode, so presence in the upper dir proves nothing: compare the bytes.
    fn compare_files(
        &mut self,
        rel: &Path,
        old_mode: u32,
        new_mode: u32,
    ) -> Result<(), WorkspaceError> {
        let old = scan(&self.old_root.join(rel))?;
        let new = scan(&self.new_root.join(rel))?;
        let content_changed = old.size != new.size || old.hash != new.hash;
        if !content_changed && old_mode == new_mode {
            return Ok(());
        }
        if let Some(path) = self.utf8(rel) {
            self.entries.push(Change {
                mode_changed: old_mode != new_mode,
                old_mode: Some(old_mode),
                new_mode: Some(new_mode),
                bytes: new.size,
                binary: old.binary || new.binary,
                content_hash: content_changed.then(|| new.hash_string()),
                ..change(path, ChangeKind::Modified, FileType::File)
            });
        }
        Ok(())
    }

    /// A directory that merely contains changes is no entry; one whose mode changed is.
    fn dir_mode(&mut self, rel: &Path, old_mode: u32, new_mode: u32) {
        if old_mode == new_mode {
            return;
        }
        if let Some(path) = self.utf8(rel) {
            self.entries.push(Change {
                mode_changed: true,
                old_mode: Some(old_mode),
                new_mode: Some(new_mode),
                ..change(path, ChangeKind::Modified, FileType::Dir)
            });
        }
    }

    fn push_symlink(&mut self, rel: &Path, kind: ChangeKind, target: &OsString) {
        let Some(target) = target.to_str() else {
            return self.skip(rel);
        };
        if let Some(path) = self.utf8(rel) {
            self.entries.push(Change {
                old_mode: (kind == ChangeKind::Modified).then_some(0o777),
                new_mode: Some(0o777),
                symlink_target: Some(target.to_string()),
                bytes: target.len() as u64,
                ..change(path, kind, FileType::Symlink)
            });
        }
    }

    /// The change set holds UTF-8 paths; a name that is not UTF-8 (with everything below it)
    /// goes to `skipped`, under a lossy rendering of its name.
    fn utf8(&mut self, rel: &Path) -> Option<String> {
        match rel.to_str() {
            Some(path) => Some(path.to_string()),
            None => {
                self.skip(rel);
                None
            }
        }
    }

    fn skip(&mut self, rel: &Path) {
        self.skipped.push(rel.to_string_lossy().into_owned());
    }

    /// The new side at `rel`, outside a merge: under an opaque or added overlay dir a whiteout
    /// hides nothing, and in a copy a 0:0 char device is just a device the job made.
    fn new_node(&self, rel: &Path) -> Result<Node, WorkspaceError> {
        Ok(match node(&self.new_root.join(rel))? {
            Node::Whiteout if self.overlay => Node::Absent,
            Node::Whiteout => Node::Special,
            other => other,
        })
    }

    /// The old side is the user's workspace (or the pristine original): no whiteouts there.
    fn old_node(&self, rel: &Path) -> Result<Node, WorkspaceError> {
        Ok(match node(&self.old_root.join(rel))? {
            Node::Whiteout => Node::Special,
            other => other,
        })
    }
}

pub(super) fn change(path: String, kind: ChangeKind, file_type: FileType) -> Change {
    Change {
        path,
        kind,
        file_type,
        mode_changed: false,
        old_mode: None,
        new_mode: None,
        symlink_target: None,
        bytes: 0,
        binary: false,
        content_hash: None,
    }
}

fn node(path: &Path) -> Result<Node, WorkspaceError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(Node::Absent)
        }
        Err(error) => return Err(WorkspaceError::read("lstat", path, error)),
    };
    let kind = meta.file_type();
    let mode = meta.mode() & 0o7777;
    Ok(if kind.is_file() {
        Node::File { mode }
    } else if kind.is_dir() {
        Node::Dir { mode }
    } else if kind.is_symlink() {
        let target = std::fs::read_link(path)
            .map_err(|error| WorkspaceError::read("read the symlink", path, error))?;
        Node::Symlink {
            target: target.into_os_string(),
        }
    } else if kind.is_char_device() && meta.rdev() == 0 {
        Node::Whiteout
    } else {
        Node::Special
    })
}

/// The names in a directory, sorted so the walk (and its errors) are deterministic.
fn list(dir: &Path) -> Result<Vec<OsString>, WorkspaceError> {
    let read = |error| WorkspaceError::read("list the directory", dir, error);
    let mut names = std::fs::read_dir(dir)
        .map_err(read)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    names.sort();
    Ok(names)
}

/// Like [`list`], but a side that has no directory there lists nothing.
fn list_if_dir(dir: &Path) -> Result<Vec<OsString>, WorkspaceError> {
    match node(dir)? {
        Node::Dir { .. } => list(dir),
        _ => Ok(Vec::new()),
    }
}

/// What the walk needs to know of a file's bytes.
pub(super) struct Content {
    pub size: u64,
    pub hash: blake3::Hash,
    pub binary: bool,
}

impl Content {
    pub fn hash_string(&self) -> String {
        format!("blake3:{}", self.hash.to_hex())
    }
}

/// git calls a file binary when one of its first 8000 bytes is NUL.
pub(super) const BINARY_PROBE: u64 = 8000;

/// Reads a file once, without following a symlink, for its size, hash and binary-ness (a NUL
/// in the first 8000 bytes, or not UTF-8: the patch is a `String`).
fn scan(path: &Path) -> Result<Content, WorkspaceError> {
    const CHUNK: usize = 64 * 1024;
    let read = |error| WorkspaceError::read("read", path, error);
    // O_NONBLOCK: should the entry have become a fifo since it was lstat-ed, open must not hang.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(read)?;
    if !file.metadata().map_err(read)?.is_file() {
        return Err(read(std::io::Error::other(
            "it is no longer a regular file",
        )));
    }
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut binary = false;
    // The first `carry` bytes of `buf` are an incomplete UTF-8 sequence left by the last chunk.
    let mut buf = vec![0u8; CHUNK + 4];
    let mut carry = 0;
    loop {
        let n = match file.read(&mut buf[carry..carry + CHUNK]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(read(error)),
        };
        let fresh = &buf[carry..carry + n];
        hasher.update(fresh);
        if size < BINARY_PROBE {
            let probe = (BINARY_PROBE - size).min(n as u64) as usize;
            binary |= fresh[..probe].contains(&0);
        }
        size += n as u64;
        if binary {
            carry = 0;
            continue;
        }
        let data = &buf[..carry + n];
        match std::str::from_utf8(data) {
            Ok(_) => carry = 0,
            Err(error) if error.error_len().is_none() => {
                let start = error.valid_up_to();
                let end = carry + n;
                buf.copy_within(start..end, 0);
                carry = end - start;
            }
            Err(_) => {
                binary = true;
                carry = 0;
            }
        }
    }
    Ok(Content {
        size,
        hash: hasher.finalize(),
        // A file that ends inside a UTF-8 sequence is not UTF-8.
        binary: binary || carry > 0,
    })
}
