//! Scratch workspaces: the change set a job left, its patch, and writing it back.
//!
//! A scratch job works on a copy-on-write view of the user's workspace: an overlay whose upper
//! dir collects what the job wrote, or a plain copy. Once the job has exited:
//!
//! 1. [`ChangeSet::from_overlay`] or [`ChangeSet::from_copy`] says what changed, as data that
//!    the Outcome carries and that gates can inspect;
//! 2. [`ChangeSet::patch`] renders it as a git patch (`git apply` accepts it);
//! 3. [`commit`] writes exactly those entries back into the real workspace, atomically per file,
//!    and never follows a symlink out of the workspace.
//!
//! The view handed to `patch` and `commit` may be the merged overlay, the copy, or — for an
//! overlay that is already unmounted — the upper dir itself: both only read the new content of
//! added and modified entries, and those are all in the upper dir.

mod changes;
mod commit;
mod patch;
mod stage;
mod sys;
mod walk;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use nix::errno::Errno;

pub use changes::{Change, ChangeKind, ChangeSet, FileType};
pub use commit::{commit, CommitFailure, CommitReport};
pub use patch::{DiffBudget, Patch, NOT_DIFFED};

/// Puts `paths` (and everything below them) in `view` back as they are in `base`: their
/// content, their absence, their mode. Written by the same code as write-back, so a symlink the
/// job planted in the view cannot redirect it. `sandbox check` uses it to judge a change with
/// the configuration its base tree had (DESIGN §12).
pub fn restore(
    base: &std::path::Path,
    view: &std::path::Path,
    paths: &[String],
) -> Result<CommitReport, WorkspaceError> {
    let related = |entry: &str| {
        paths.iter().any(|path| {
            entry == path
                || entry.starts_with(&format!("{path}/"))
                || path.starts_with(&format!("{entry}/"))
        })
    };
    let reverse = ChangeSet::from_copy(base, view)?;
    let entries = reverse
        .entries
        .into_iter()
        .filter(|change| related(&change.path))
        .collect();
    Ok(commit(&ChangeSet::new(entries, Vec::new()), base, view))
}

/// The most a project configuration file (`sandbox.toml`, `.sandbox/profiles/*.toml`) may hold.
pub const PROJECT_FILE_CAP: u64 = 1 << 20;

/// Reads a project file below `root` without following any symlink (see DESIGN §12): regular
/// files only, at most `cap` bytes; `Ok(None)` when there is none.
pub fn read_project_file(
    root: &std::path::Path,
    rel: &str,
    cap: u64,
) -> Result<Option<Vec<u8>>, WorkspaceError> {
    sys::read_beneath(root, rel, cap)
}

/// What went wrong while diffing, rendering or writing back a scratch workspace. Each message
/// names the path and the attempted operation, and says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Reading a tree failed; no change set is produced rather than a partial one.
    #[error(
        "could not {what} {path}: {source}; the scratch view or the workspace changed or \
         vanished while it was read — check that nothing else is using them and rerun the job"
    )]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A system call on a path failed; rendered as `call(path) => errno`.
    #[error("{call}({path}) => {errno}")]
    Sys {
        call: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// A symlink sits where a directory (or, for a file entry, the file) was expected.
    #[error(
        "refusing to follow a symlink at or above {path} in {root}: write-back never follows \
         symlinks, so a symlink planted in place of a directory cannot redirect it outside the \
         workspace; inspect {path}, replace it with a real directory if that is what you want, \
         and commit again"
    )]
    SymlinkInPath { root: PathBuf, path: String },
    /// The parent directory of an entry does not exist (anymore).
    #[error(
        "the directory holding {path} does not exist in {root} (was it removed, or did creating \
         it fail above?); nothing was written for it"
    )]
    MissingParent { root: PathBuf, path: String },
    /// The view no longer holds what the change set describes.
    #[error(
        "{path} in the view ({view}) no longer matches the change set ({detail}); nothing was \
         written for it — recompute the change set from the view and commit again"
    )]
    ViewChanged {
        view: PathBuf,
        path: String,
        detail: String,
    },
    /// A deleted directory still holds entries the change set does not list.
    #[error(
        "directory {path} was not removed: it holds entries the job never saw (created in the \
         workspace after the job started, or special files); remove them by hand if the \
         directory should go"
    )]
    NotEmpty { path: String },
    /// A path in the change set is not a plain relative path; only a hand-made change set can
    /// have one.
    #[error("invalid path {path:?} in the change set: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// `openat2(2)` is needed to resolve paths without following symlinks.
    #[error(
        "openat2 is not available (Linux 5.6 or later is needed) so {root} cannot be written \
         safely; apply the patch by hand with `git apply` instead"
    )]
    NoOpenat2 { root: PathBuf },
    /// A project file is a directory, a device or a FIFO: only regular files are read.
    #[error("{path} is not a regular file; project configuration is read from regular files only")]
    NotRegular { path: PathBuf },
    /// A project file is larger than configuration ever is.
    #[error("{path} is {size} bytes, more than the {cap} bytes a project file may have")]
    TooLarge { path: PathBuf, size: u64, cap: u64 },
}

impl WorkspaceError {
    fn read(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WorkspaceError::Read {
            what,
            path: path.into(),
            source,
        }
    }

    fn sys(call: &'static str, path: impl Into<PathBuf>, errno: Errno) -> Self {
        WorkspaceError::Sys {
            call,
            path: path.into(),
            errno,
        }
    }
}
