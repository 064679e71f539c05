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
