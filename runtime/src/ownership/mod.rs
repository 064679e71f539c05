//! Workspace ownership: whoever owns the workspace, the job (uid/gid 65534 by default) sees it
//! as its own, without the user's tree being chowned.
//!
//! As root, the supervisor makes an idmapped mount of the workspace on the host (like a scratch
//! view, so both backends use the same one: the native jail binds it, the docker backend binds
//! it into the container, and a bind of an idmapped mount keeps its idmap). The idmap sends the
//! workspace owner's uid and gid onto the job's, one id each: what the job creates lands on the
//! host owned by the workspace owner, and files of any other owner stay foreign to it.
//! Unprivileged, the job's user namespace already maps it onto the caller, so a tree the caller
//! owns needs nothing, and a tree it does not own cannot be idmapped (that needs root): the job
//! then sees the host's permissions, and the Outcome's notes say so.
//!
//! An idmap must not become a way to plant privileged files in the owner's name: the mount is
//! nosuid and nodev, the seccomp filter refuses set-uid/set-gid modes and device nodes
//! (`native::seccomp`), and write-back drops set-id bits.

pub(crate) mod sys;

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::SandboxError;
use crate::profile::UserSpec;
use crate::spec::JobSpec;

const VIEW_PREFIX: &str = "sandbox-owner-";

/// Host ids the idmap translates: files of `owner` are seen as `job`'s, and the other way round
/// for what the job creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub owner: (u32, u32),
    pub job: (u32, u32),
}

impl IdMap {
    /// The ids a copy of a file owned by `(uid, gid)` gets so that the job sees it as the
    /// idmapped workspace would show it.
    pub fn as_job_sees(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            if uid == self.owner.0 { self.job.0 } else { uid },
            if gid == self.owner.1 { self.job.1 } else { gid },
        )
    }
}

/// What it takes for the job to see the workspace as its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// The job already acts as the owner on the host (the caller's own tree, unprivileged, or a
    /// tree owned by the job's uid).
    NotNeeded,
    /// An idmapped mount.
    Idmap(IdMap),
    /// Impossible here; why, for the Outcome's notes.
    Unavailable(String),
}

/// Decides the mapping for `workspace` and a job running as `job`.
pub fn mapping(workspace: &Path, job: UserSpec) -> Result<Mapping, SandboxError> {
    let meta = std::fs::metadata(workspace).map_err(|source| SandboxError::Io {
        what: "stat the workspace (to find its owner)".into(),
        path: workspace.to_owned(),
        source,
    })?;
    let owner = (meta.uid(), meta.gid());
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        // The job's user namespace maps it onto us: it acts as the caller on the host.
        if owner.0 == euid.as_raw() {
            return Ok(Mapping::NotNeeded);
        }
        return Ok(Mapping::Unavailable(format!(
            "ownership: the workspace {} is owned by uid {}, not by you (uid {euid}); an \
             idmapped mount needs root, so the job sees the host's permissions as uid {euid}",
            workspace.display(),
            owner.0
        )));
    }
    if owner.0 == job.uid {
        return Ok(Mapping::NotNeeded);
    }
    Ok(Mapping::Idmap(IdMap {
        owner,
        job: (job.uid, job.gid),
    }))
}

/// The id map of an idmapped workspace, as `inner outer count` extents (inner: the id on disk;
/// outer: the id the job sees): `owner` is seen as `job`, every other id as itself, so a file
/// of root's or of a colleague's shows its real owner (and an overlay can copy it up). Only an
/// id on disk equal to `job` is left unmapped, since `job` is taken by the owner; the job sees
/// such files as the overflow id and cannot act as their owner.
pub fn extents(owner: u32, job: u32) -> Vec<(u32, u32, u32)> {
    // u32::MAX is no valid id: the ids are 0..u32::MAX.
    const END: u64 = u32::MAX as u64;
    let (low, high) = (owner.min(job) as u64, owner.max(job) as u64);
    let mut extents = Vec::new();
    for (start, end) in [(0, low), (low + 1, high), (high + 1, END)] {
        if end > start {
            extents.push((start as u32, start as u32, (end - start) as u32));
        }
    }
    extents.push((owner, job, 1));
    extents
}

/// Attaches an idmapped clone of the mount at `source` on `target` (an existing directory),
/// nosuid and nodev, read-only when asked. Only `source`'s own mount is cloned: a mount below
/// the workspace does not show in it (what the kernel could not idmap would fail the whole).
pub fn attach(
    source: &Path,
    target: &Path,
    map: IdMap,
    read_only: bool,
) -> Result<(), SandboxError> {
    let userns = sys::user_namespace(
        &extents(map.owner.0, map.job.0),
        &extents(map.owner.1, map.job.1),
    )?;
    let tree = sys::open_tree_clone(source)?;
    let mut set = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    if read_only {
        set |= sys::MOUNT_ATTR_RDONLY;
    }
    sys::set_idmap(&tree, &userns, set, source)?;
    sys::move_mount(&tree, target)
}

/// Whether an idmapped mount of `dir` can be made here: tried, never attached (the detached
/// clone vanishes with its descriptor). For `sandbox doctor`.
pub fn probe(dir: &Path) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "not root: a workspace you do not own is seen with the host's \
                    permissions (an idmapped mount needs root)"
                .into(),
        );
    }
    let attempt = || -> Result<(), SandboxError> {
        let userns = sys::user_namespace(&extents(0, 65534), &extents(0, 65534))?;
        let tree = sys::open_tree_clone(dir)?;
        sys::set_idmap(&tree, &userns, sys::MOUNT_ATTR_NOSUID, dir)
    };
    attempt().map_err(|error| {
        format!(
            "an idmapped mount of {} failed ({}); a workspace owned by another user is seen \
             with the host's permissions",
            dir.display(),
            error.with_causes()
        )
    })
}

/// The workspace of a `ro`/`rw` job as the job sees it when it needs an idmap: a small private
/// tmpfs on `/tmp/sandbox-owner-<job id>` with the idmapped mount at `ws` inside it, so the
/// mount does not propagate anywhere and one detach takes both down. `sandbox gc` removes the
/// ones a killed `sandbox` left.
pub struct OwnerView {
    dir: PathBuf,
    mounted: bool,
}

impl OwnerView {
    /// The view `spec`'s job should get instead of the workspace itself, if any, and notes for
    /// the Outcome (why there is none when one was needed).
    pub fn prepare(spec: &JobSpec) -> Result<(Option<OwnerView>, Vec<String>), SandboxError> {
        let map = match mapping(&spec.workspace, spec.user)? {
            Mapping::NotNeeded => return Ok((None, Vec::new())),
            Mapping::Unavailable(why) => return Ok((None, vec![why])),
            Mapping::Idmap(map) => map,
        };
        let dir = std::env::temp_dir().join(format!("{VIEW_PREFIX}{}", spec.id));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| SandboxError::Io {
                what: "create the directory for the workspace's idmapped mount".into(),
                path: dir.clone(),
                source,
            })?;
        let mut view = OwnerView {
            dir,
            mounted: false,
        };
        // On error the half-built view is taken down by Drop.
        match view.build(&spec.workspace, map, !spec.workspace_writable()) {
            Ok(()) => Ok((Some(view), Vec::new())),
            Err(error) => Ok((None, vec![unavailable_note(&spec.workspace, map, &error)])),
        }
    }

    fn build(&mut self, workspace: &Path, map: IdMap, read_only: bool) -> Result<(), SandboxError> {
        mount(
            Some("sandbox-owner"),
            &self.dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=0700,size=16k,nr_inodes=8"),
        )
        .map_err(|e| SandboxError::sys(format!("mount(tmpfs, {})", self.dir.display()), e))?;
        self.mounted = true;
        mount(
            None::<&str>,
            &self.dir,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| SandboxError::sys(format!("mount(MS_PRIVATE, {})", self.dir.display()), e))?;
        let target = self.path();
        std::fs::create_dir(&target).map_err(|source| SandboxError::Io {
            what: "create the mount point of the idmapped workspace".into(),
            path: target.clone(),
            source,
        })?;
        attach(workspace, &target, map, read_only)
    }

    /// The directory the backends mount as the workspace.
    pub fn path(&self) -> PathBuf {
        self.dir.join("ws")
    }

    /// Unmounts and deletes the view.
    pub fn remove(mut self) -> Result<(), SandboxError> {
        self.take_down()
    }

    fn take_down(&mut self) -> Result<(), SandboxError> {
        if std::mem::take(&mut self.mounted) {
            umount2(&self.dir, MntFlags::MNT_DETACH)
                .map_err(|e| SandboxError::sys(format!("umount2({})", self.dir.display()), e))?;
        }
        match std::fs::remove_dir(&self.dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(SandboxError::Io {
                what: "remove the idmapped workspace's directory".into(),
                path: self.dir.clone(),
                source: error,
            }),
            _ => Ok(()),
        }
    }
}

impl Drop for OwnerView {
    fn drop(&mut self) {
        let _ = self.take_down();
    }
}

/// What the Outcome says when the workspace needed an idmap and could not get one.
pub fn unavailable_note(workspace: &Path, map: IdMap, error: &SandboxError) -> String {
    format!(
        "ownership: the workspace {} is owned by uid {}, and an idmapped mount onto the job's \
         uid {} failed ({}); the job sees the host's permissions",
        workspace.display(),
        map.owner.0,
        map.job.0,
        error.with_causes()
    )
}

/// Idmapped workspaces whose `sandbox` is gone (killed before it could clean up): detached,
/// their directories removed, and named in the result.
pub fn remove_leftovers() -> Vec<PathBuf> {
    crate::spec::orphaned_dirs(VIEW_PREFIX)
        .into_iter()
        .filter(|dir| {
            // The detach takes the idmapped mount inside along; a directory whose tmpfs was
            // never mounted just fails with EINVAL.
            let _ = umount2(dir, MntFlags::MNT_DETACH);
            std::fs::remove_dir(dir).is_ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_seen_as_the_job_and_nobody_else_is() {
        let map = IdMap {
            owner: (4242, 4343),
            job: (65534, 65534),
        };
        assert_eq!(map.as_job_sees(4242, 4343), (65534, 65534));
        assert_eq!(map.as_job_sees(0, 0), (0, 0));
        assert_eq!(map.as_job_sees(4242, 0), (65534, 0));
    }

    #[test]
    fn extents_map_the_owner_onto_the_job_and_everyone_else_onto_themselves() {
        let map = extents(4242, 65534);
        let lookup = |id: u32| {
            map.iter()
                .find(|(inner, _, count)| id >= *inner && (id - inner) < *count)
                .map(|(inner, outer, _)| outer + (id - inner))
        };
        assert_eq!(lookup(4242), Some(65534));
        assert_eq!(lookup(0), Some(0));
        assert_eq!(lookup(4241), Some(4241));
        assert_eq!(lookup(4243), Some(4243));
        assert_eq!(lookup(65533), Some(65533));
        assert_eq!(
            lookup(65534),
            None,
            "the job's id on disk is taken by the owner"
        );
        assert_eq!(lookup(u32::MAX - 1), Some(u32::MAX - 1));
        // No outer id twice: the kernel refuses overlapping extents.
        let mut outers: Vec<(u64, u64)> = map
            .iter()
            .map(|&(_, outer, count)| (outer as u64, outer as u64 + count as u64))
            .collect();
        outers.sort();
        assert!(outers.windows(2).all(|w| w[0].1 <= w[1].0), "{map:?}");
        // Root's tree for the job: root is the job, 65534 on disk unmapped.
        assert_eq!(extents(0, 65534)[0], (1, 1, 65533));
    }

    #[test]
    fn a_tree_owned_by_the_job_needs_no_idmap() {
        let dir = tempfile::tempdir().unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let job = UserSpec { uid: me, gid: 0 };
        assert_eq!(mapping(dir.path(), job).unwrap(), Mapping::NotNeeded);
        if nix::unistd::geteuid().is_root() {
            let job = UserSpec {
                uid: 65534,
                gid: 65534,
            };
            let expected = IdMap {
                owner: (0, nix::unistd::getegid().as_raw()),
                job: (65534, 65534),
            };
            assert_eq!(mapping(dir.path(), job).unwrap(), Mapping::Idmap(expected));
        }
    }
}
