//! The copy-on-write view a `scratch` job works on, for both backends: prepared on the host
//! before the job, read for the change set after it, then removed.
//!
//! As root the view lives on a tmpfs of its own, sized `limits.disk` (plus what a copy needs)
//! with `limits.files` inodes, so a job that fills it is stopped by ENOSPC at the cap instead
//! of filling the host's disk (bubblewrap's `--tmp-overlay` makes the same choice). On it,
//! an overlay whose lower layer is the workspace, or, when the kernel refuses the overlay, a
//! copy. Without root nothing can be mounted on the host: the view is a copy in a directory,
//! and `disk`/`files` are measured on the change set afterwards.
//!
//! The tmpfs is mounted on the job's own directory and made private, so nothing below it
//! propagates to other namespaces, and the upper, work and view directories all live inside it.
//! That keeps start-up and teardown cheap: one directory on the host's disk (on a filesystem
//! mounted with `discard`, every directory removed there is a synchronous TRIM) and one
//! recursive detach, which waits for one RCU grace period instead of one per mount.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use crate::ownership::{IdMap, Mapping};
use crate::profile::ScratchView;
use crate::spec::JobSpec;
use crate::workspace::ChangeSet;

const SCRATCH_PREFIX: &str = "sandbox-scratch-";
/// Inodes beyond `limits.files` for what the overlay itself makes: copied-up parent
/// directories and whiteouts. The exact count is taken from the change set.
const INODE_SLACK: u64 = 1024;
/// A tmpfs charges a page per small file; the exact `disk` figure is taken from the change set,
/// this only keeps many small files from hitting the backstop before the cap.
const BLOCK: u64 = 4096;

/// How the view was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ViewKind {
    Overlay,
    Copy,
}

pub struct Scratch {
    dir: PathBuf,
    kind: ViewKind,
    view: PathBuf,
    /// The tmpfs holding the view (the job's directory itself), when we could mount one: where
    /// "full" is read.
    store: Option<PathBuf>,
    /// Why the view is what it is (a fallback, a cap measured afterwards).
    pub notes: Vec<String>,
}

impl Scratch {
    /// Makes the view of `spec.workspace` for job `spec.id`.
    pub fn prepare(spec: &JobSpec) -> Result<Scratch, SandboxError> {
        let dir = std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{}", spec.id));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create the scratch directory", &dir))?;
        let mut scratch = Scratch {
            kind: ViewKind::Copy,
            view: dir.join("copy"),
            store: None,
            notes: Vec::new(),
            dir,
        };
        // On error the half-built view is taken down by Drop.
        scratch.build(spec)?;
        Ok(scratch)
    }

    fn build(&mut self, spec: &JobSpec) -> Result<(), SandboxError> {
        let root = nix::unistd::geteuid().is_root();
        // Whoever owns the workspace, the job must see its view as its own: the overlay's lower
        // layer is an idmapped mount of it, a copy is made with the ids the idmap would show.
        let map = match crate::ownership::mapping(&spec.workspace, spec.user)? {
            Mapping::Idmap(map) => Some(map),
            Mapping::NotNeeded => None,
            Mapping::Unavailable(why) => {
                self.notes.push(why);
                None
            }
        };
        if !root {
            if spec.scratch_view == ScratchView::Overlay {
                return Err(SandboxError::Refused {
                    feature: "overlay scratch view".into(),
                    reason: "mounting on the host needs root; use filesystem.scratch_view = \
                             \"auto\" or \"copy\""
                        .into(),
                });
            }
            self.notes.push(
                "scratch: a copy (not root: nothing can be mounted on the host); disk and files \
                 are measured on the change set after the job, not enforced during it"
                    .into(),
            );
            return copy_tree(&spec.workspace, &self.view, None);
        }
        let store = self.dir.clone();
        let limits = &spec.limits;
        let overlay_wanted = spec.scratch_view != ScratchView::Copy;
        let (extra_bytes, extra_files) = if overlay_wanted {
            (0, 0)
        } else {
            tree_size(&spec.workspace)?
        };
        let options = format!(
            "mode=0700,size={},nr_inodes={}",
            limits.disk.0 + limits.files.saturating_mul(BLOCK) + extra_bytes,
            limits.files + INODE_SLACK + extra_files
        );
        mount(
            Some("sandbox-scratch"),
            &store,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|e| {
            SandboxError::sys(format!("mount(tmpfs, {}, {options})", store.display()), e)
        })?;
        self.store = Some(store.clone());
        make_private(&store)?;
        if overlay_wanted {
            match self.mount_overlay(&spec.workspace, &store, map) {
                Ok(()) => return Ok(()),
                Err(error) if spec.scratch_view == ScratchView::Overlay => return Err(error),
                Err(error) => self.notes.push(format!(
                    "scratch: a copy, because the overlay failed ({}); disk and files are \
                     capped at the copy's size plus the limits",
                    error.with_causes()
                )),
            }
            // The copy needs room for the workspace too: remount the store bigger.
            let (bytes, files) = tree_size(&spec.workspace)?;
            let options = format!(
                "size={},nr_inodes={}",
                limits.disk.0 + limits.files.saturating_mul(BLOCK) + bytes,
                limits.files + INODE_SLACK + files
            );
            mount(
                None::<&str>,
                &store,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(options.as_str()),
            )
            .map_err(|e| {
                SandboxError::sys(format!("remount({}, {options})", store.display()), e)
            })?;
        }
        self.view = store.join("copy");
        copy_tree(&spec.workspace, &self.view, map.as_ref())
    }

    fn mount_overlay(
        &mut self,
        workspace: &Path,
        store: &Path,
        map: Option<IdMap>,
    ) -> Result<(), SandboxError> {
        let path = workspace.to_string_lossy();
        if path.contains([',', ':', '\\']) {
            return Err(SandboxError::Unsupported(format!(
                "the workspace path {path} has a `,`, `:` or `\\`, which overlay options cannot carry"
            )));
        }
        let (upper, work, view) = (store.join("upper"), store.join("work"), store.join("view"));
        for dir in [&upper, &work, &view] {
            make_dir(dir)?;
        }
        // overlayfs cannot be idmapped itself (EINVAL on Linux 6.18), but takes an idmapped
        // lower layer (5.19+): copied-up and new files then land in the upper directory with
        // the job's ids, and write-back gives them the workspace owner's.
        let mut lower = workspace.to_owned();
        let mut seen = map;
        if let Some(map) = map {
            let idmapped = store.join("lower");
            make_dir(&idmapped)?;
            match crate::ownership::attach(workspace, &idmapped, map, true) {
                Ok(()) => lower = idmapped,
                Err(error) => {
                    self.notes
                        .push(crate::ownership::unavailable_note(workspace, map, &error));
                    seen = None;
                }
            }
        }
        let lower = lower.to_string_lossy();
        // The view's root takes the upper directory's owner and mode: make them the
        // workspace's as the job sees it, or the job could not even list its own workspace.
        let meta = std::fs::metadata(workspace).map_err(io("stat", workspace))?;
        let (uid, gid) = seen.map_or((meta.uid(), meta.gid()), |map| {
            map.as_job_sees(meta.uid(), meta.gid())
        });
        std::os::unix::fs::chown(&upper, Some(uid), Some(gid))
            .map_err(io("set the owner of", &upper))?;
        std::fs::set_permissions(
            &upper,
            std::fs::Permissions::from_mode(meta.mode() & 0o7777),
        )
        .map_err(io("set the mode of", &upper))?;
        // Plain layers: no redirects, metacopy or index, so the upper directory says exactly
        // what changed (see `ChangeSet::from_overlay`).
        let options = format!(
            "lowerdir={lower},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off,\
             xino=off",
            upper.display(),
            work.display()
        );
        mount(
            Some("sandbox-scratch"),
            &view,
            Some("overlay"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|e| SandboxError::sys(format!("mount(overlay, {})", view.display()), e))?;
        self.kind = ViewKind::Overlay;
        self.view = view;
        Ok(())
    }

    pub fn kind(&self) -> ViewKind {
        self.kind
    }

    /// The directory the job gets as its workspace.
    pub fn view(&self) -> &Path {
        &self.view
    }

    /// What the job changed, compared with `workspace`.
    pub fn changes(&self, workspace: &Path) -> Result<ChangeSet, SandboxError> {
        let changes = match (self.kind, &self.store) {
            (ViewKind::Overlay, Some(store)) => {
                ChangeSet::from_overlay(&store.join("upper"), workspace)
            }
            _ => ChangeSet::from_copy(&self.view, workspace),
        };
        changes.map_err(|error| SandboxError::Setup(format!("reading the change set: {error}")))
    }

    /// Whether the job ran the view's tmpfs out of bytes, and out of inodes.
    pub fn exhausted(&self) -> (bool, bool) {
        let Some(store) = &self.store else {
            return (false, false);
        };
        match nix::sys::statvfs::statvfs(store) {
            Ok(stat) => (stat.blocks_available() == 0, stat.files_available() == 0),
            Err(_) => (false, false),
        }
    }

    /// Unmounts and deletes the view.
    pub fn remove(mut self) -> Result<(), SandboxError> {
        self.take_down()
    }

    fn take_down(&mut self) -> Result<(), SandboxError> {
        // Detaching the tmpfs takes the overlay on it along.
        if let Some(store) = self.store.take() {
            umount2(&store, MntFlags::MNT_DETACH)
                .map_err(|e| SandboxError::sys(format!("umount2({})", store.display()), e))?;
        }
        if self.dir.exists() {
            remove_tree(&self.dir)?;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.take_down();
    }
}

/// Scratch directories whose `sandbox` is gone (killed before it could clean up): their mounts
/// detached, the directories removed, and named in the result.
pub fn remove_leftovers() -> Vec<PathBuf> {
    crate::spec::orphaned_dirs(SCRATCH_PREFIX)
        .into_iter()
        .filter(|dir| {
            // A recursive detach takes every mount below along; a directory that is not a
            // mount point (a copy view) just fails with EINVAL.
            let _ = umount2(dir, MntFlags::MNT_DETACH);
            remove_tree(dir).is_ok()
        })
        .collect()
}

/// Makes the mount at `dir` private: mounts below it stay in this namespace.
fn make_private(dir: &Path) -> Result<(), SandboxError> {
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| SandboxError::sys(format!("mount(MS_PRIVATE, {})", dir.display()), e))
}

/// Bytes (rounded up to tmpfs pages) and entries below `dir`, for sizing a copy's tmpfs.
fn tree_size(dir: &Path) -> Result<(u64, u64), SandboxError> {
    let mut bytes = 0;
    let mut files = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io("list", &dir))? {
            let entry = entry.map_err(io("list", &dir))?;
            let meta = entry.metadata().map_err(io("stat", &entry.path()))?;
            files += 1;
            bytes += meta.len().div_ceil(BLOCK) * BLOCK;
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok((bytes, files))
}

/// Copies `from` to `to` (which must not exist): directories, regular files and symlinks with
/// their modes, and as root their owners (as `map` would show them to the job), so the job may
/// write what it could write in place. Fifos, sockets and devices are left out: a job gets none
/// of them from its workspace.
fn copy_tree(from: &Path, to: &Path, map: Option<&IdMap>) -> Result<(), SandboxError> {
    let root = nix::unistd::geteuid().is_root();
    let mut pending = vec![(from.to_owned(), to.to_owned())];
    // Directory modes are set once their contents are in: a 0555 directory can still be filled.
    let mut dir_modes = Vec::new();
    while let Some((source, target)) = pending.pop() {
        let meta = std::fs::symlink_metadata(&source).map_err(io("stat", &source))?;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            make_dir(&target)?;
            dir_modes.push((target.clone(), meta.mode() & 0o7777));
            for entry in std::fs::read_dir(&source).map_err(io("list", &source))? {
                let entry = entry.map_err(io("list", &source))?;
                pending.push((entry.path(), target.join(entry.file_name())));
            }
        } else if file_type.is_symlink() {
            let link = std::fs::read_link(&source).map_err(io("read the symlink", &source))?;
            std::os::unix::fs::symlink(&link, &target)
                .map_err(io("create the symlink", &target))?;
        } else if file_type.is_file() {
            std::fs::copy(&source, &target).map_err(io("copy the file to", &target))?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(meta.mode()))
                .map_err(io("set the mode of", &target))?;
        } else {
            continue;
        }
        if root {
            let (uid, gid) = map.map_or((meta.uid(), meta.gid()), |map| {
                map.as_job_sees(meta.uid(), meta.gid())
            });
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .map_err(io("set the owner of", &target))?;
        }
    }
    for (dir, mode) in dir_modes.into_iter().rev() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(io("set the mode of", &dir))?;
    }
    Ok(())
}

/// Removes a tree that a job wrote: entries are made writable first, since the job may have
/// left read-only directories behind, and symlinks are never followed.
fn remove_tree(dir: &Path) -> Result<(), SandboxError> {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(_) => {
            make_writable(dir);
            std::fs::remove_dir_all(dir).map_err(io("remove the scratch directory", dir))
        }
    }
}

fn make_writable(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
            make_writable(&entry.path());
        }
    }
}

fn make_dir(dir: &Path) -> Result<(), SandboxError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.to_owned();
    let path = path.to_owned();
    move |source| SandboxError::Io { what, path, source }
}
