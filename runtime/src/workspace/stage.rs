//! The content of a change set, copied into the workspace's filesystem before the workspace
//! itself is touched. Copying is what fails in practice (a full disk, a view that changed), so
//! it happens first: if any file cannot be staged, nothing is written back. Installing a staged
//! file is then a rename, which needs no space.

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::OFlag;
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::changes::Change;
use super::sys::Root;
use super::WorkspaceError;

static STAGE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden directory at the workspace's root holding one file per change with content,
/// named by the change's index. Removed, with whatever it still holds, when dropped.
pub(super) struct Stage {
    pub(super) dir: OwnedFd,
    root: OwnedFd,
    name: String,
    staged: HashMap<usize, String>,
}

impl Stage {
    /// Copies every file the change set writes from `view` into a new staging directory of
    /// `workspace`. The error names the path that could not be staged.
    pub(super) fn fill(
        workspace: &Root,
        view: &Root,
        entries: &[Change],
    ) -> Result<Stage, (String, WorkspaceError)> {
        let at_root = |error| (String::new(), error);
        let root = workspace
            .open_beneath("", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(at_root)?;
        let name = format!(
            ".sandbox-stage-{}-{}",
            std::process::id(),
            STAGE_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        mkdirat(&root, name.as_str(), Mode::from_bits_truncate(0o700)).map_err(|errno| {
            at_root(WorkspaceError::sys(
                "mkdirat",
                workspace.path().join(&name),
                errno,
            ))
        })?;
        let dir = workspace
            .open_beneath(&name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(at_root)?;
        let mut stage = Stage {
            dir,
            root,
            name,
            staged: HashMap::new(),
        };
        for (index, change) in entries.iter().enumerate() {
            if change.writes_content() {
                stage
                    .copy(workspace, view, index, change)
                    .map_err(|error| (change.path.clone(), error))?;
            }
        }
        Ok(stage)
    }

    fn copy(
        &mut self,
        workspace: &Root,
        view: &Root,
        index: usize,
        change: &Change,
    ) -> Result<(), WorkspaceError> {
        let staged = index.to_string();
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let path = workspace.path().join(&self.name).join(&staged);
        let fd = nix::fcntl::openat(
            &self.dir,
            staged.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| WorkspaceError::sys("openat", &path, errno))?;
        self.staged.insert(index, staged);
        let mut target = File::from(fd);
        copy_checked(view, change, &mut target, path.clone())?;
        target
            .sync_all()
            .map_err(|error| WorkspaceError::read("fsync", path, error))
    }

    /// The staged file of change `index`, if it was staged.
    pub(super) fn staged(&self, index: usize) -> Option<&str> {
        self.staged.get(&index).map(String::as_str)
    }

    /// The file left the stage (renamed into the workspace).
    pub(super) fn installed(&mut self, index: usize) {
        self.staged.remove(&index);
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // Best effort, like a temp file beside its target: a leftover is a hidden, clearly
        // named directory, and failing over it would hide the error that brought us here.
        for name in self.staged.values() {
            let _ = unlinkat(&self.dir, name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        let _ = unlinkat(&self.root, self.name.as_str(), UnlinkatFlags::RemoveDir);
    }
}

/// Copies the view's file for `change` into `target`, checking that it is the content the
/// change set describes (size and blake3): a view edited after the change set was read must
/// not slip in unreviewed content.
pub(super) fn copy_checked(
    view: &Root,
    change: &Change,
    target: &mut File,
    target_path: PathBuf,
) -> Result<(), WorkspaceError> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let mut source = File::from(view.open_beneath(&change.path, flags, Mode::empty())?);
    let view_changed = |detail: &str| WorkspaceError::ViewChanged {
        view: view.path().to_path_buf(),
        path: change.path.clone(),
        detail: detail.to_string(),
    };
    let read_error = |error| WorkspaceError::read("read", view.path().join(&change.path), error);
    if !source.metadata().map_err(read_error)?.is_file() {
        return Err(view_changed("it is no longer a regular file"));
    }
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(read_error(error)),
        };
        hasher.update(&buf[..n]);
        target
            .write_all(&buf[..n])
            .map_err(|error| WorkspaceError::read("write", target_path.clone(), error))?;
        size += n as u64;
    }
    let hash = format!("blake3:{}", hasher.finalize().to_hex());
    if size != change.bytes || Some(hash.as_str()) != change.content_hash.as_deref() {
        return Err(view_changed("its content differs"));
    }
    Ok(())
}
