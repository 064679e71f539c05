//! The change set: what a scratch job changed in its view of the workspace, as plain data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every change a job made to its view of the workspace, sorted by path. Built by
/// [`ChangeSet::from_overlay`] or [`ChangeSet::from_copy`]; both give the same set for the same
/// job.
///
/// A type change (file → dir, dir → symlink, …) is two entries on the same path, `deleted`
/// (the old entry, and everything below it if it was a directory) then `added` (the new one):
/// that is how git renders it, and it lets [`commit`](super::commit()) remove before it creates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeSet {
    /// Sorted by path; on one path, `deleted` comes before `added`.
    pub entries: Vec<Change>,
    /// Paths the job created that are never written back: fifos, sockets and device nodes, and
    /// any name or symlink target that is not UTF-8. Sorted.
    pub skipped: Vec<String>,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// Relative to the workspace, `/`-separated, no `.` or `..` components.
    pub path: String,
    pub kind: ChangeKind,
    /// Of the new entry; of the old one for `deleted`.
    pub file_type: FileType,
    /// The permission bits differ between old and new (never for symlinks).
    pub mode_changed: bool,
    /// Permission bits (`mode & 0o7777`) before; `None` for `added`.
    pub old_mode: Option<u32>,
    /// Permission bits after; `None` for `deleted`.
    pub new_mode: Option<u32>,
    /// The new target of an added or modified symlink.
    pub symlink_target: Option<String>,
    /// Size of the new content (a symlink's is its target); 0 for `deleted` and directories.
    pub bytes: u64,
    /// For added and modified files: the old or the new content has a NUL byte in its first
    /// 8000 bytes (git's test) or is not UTF-8, so the patch says `Binary files … differ`.
    /// Deleted files are not read, and are `false` here.
    pub binary: bool,
    /// `blake3:<hex>` of the new content when the content is written back: added files and
    /// files whose bytes changed. `None` for a change of mode only, symlinks, directories and
    /// deletions. Commit checks the view still holds exactly this.
    pub content_hash: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    // Declared in the order entries on one path are sorted and committed.
    Deleted,
    Modified,
    Added,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    File,
    Symlink,
    Dir,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Deleted => "deleted",
            ChangeKind::Modified => "modified",
            ChangeKind::Added => "added",
        }
    }
}

impl FileType {
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Symlink => "symlink",
            FileType::Dir => "dir",
        }
    }
}

impl Change {
    /// Whether committing this entry writes file content (as opposed to only a mode).
    pub fn writes_content(&self) -> bool {
        self.file_type == FileType::File
            && self.kind != ChangeKind::Deleted
            && self.content_hash.is_some()
    }
}

impl ChangeSet {
    /// Puts entries and skipped paths in their canonical order.
    pub(super) fn new(mut entries: Vec<Change>, mut skipped: Vec<String>) -> ChangeSet {
        entries.sort_by(|a, b| (a.path.as_str(), a.kind).cmp(&(b.path.as_str(), b.kind)));
        skipped.sort();
        skipped.dedup();
        ChangeSet { entries, skipped }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn added(&self) -> Vec<String> {
        self.paths(|change| change.kind == ChangeKind::Added)
    }

    pub fn modified(&self) -> Vec<String> {
        self.paths(|change| change.kind == ChangeKind::Modified)
    }

    pub fn deleted(&self) -> Vec<String> {
        self.paths(|change| change.kind == ChangeKind::Deleted)
    }

    pub fn mode_changed(&self) -> Vec<String> {
        self.paths(|change| change.mode_changed)
    }

    /// Sum of the new sizes of added and modified regular files (a file whose mode alone
    /// changed counts too).
    pub fn bytes_added(&self) -> u64 {
        self.entries
            .iter()
            .filter(|c| c.file_type == FileType::File && c.kind != ChangeKind::Deleted)
            .map(|c| c.bytes)
            .sum()
    }

    /// Added entries of any type, directories included.
    pub fn files_created(&self) -> u64 {
        self.entries
            .iter()
            .filter(|c| c.kind == ChangeKind::Added)
            .count() as u64
    }

    /// Entries, leaving out directories that were only added or deleted (their files are
    /// entries of their own); a directory whose mode changed counts.
    pub fn changed_files(&self) -> u64 {
        self.entries
            .iter()
            .filter(|c| c.file_type != FileType::Dir || c.kind == ChangeKind::Modified)
            .count() as u64
    }

    /// `blake3:<hex>` over a canonical encoding of the entries, which carry the hash of every
    /// new content: two change sets that would commit the same thing hash equal. `skipped` is
    /// left out because commit never writes it.
    pub fn hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"sandbox/changeset@1\0");
        let mut field = |bytes: &[u8]| {
            // Length-prefixed, so no two different field sequences encode the same bytes.
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        for change in &self.entries {
            let mode = |mode: Option<u32>| mode.map_or(String::new(), |m| format!("{m:o}"));
            field(change.path.as_bytes());
            field(change.kind.as_str().as_bytes());
            field(change.file_type.as_str().as_bytes());
            field(&[u8::from(change.mode_changed), u8::from(change.binary)]);
            field(mode(change.old_mode).as_bytes());
            field(mode(change.new_mode).as_bytes());
            field(change.symlink_target.as_deref().unwrap_or("").as_bytes());
            field(&change.bytes.to_le_bytes());
            field(change.content_hash.as_deref().unwrap_or("").as_bytes());
        }
        format!("blake3:{}", hasher.finalize().to_hex())
    }

    fn paths(&self, keep: impl Fn(&Change) -> bool) -> Vec<String> {
        self.entries
            .iter()
            .filter(|change| keep(change))
            .map(|change| change.path.clone())
            .collect()
    }
}
