//! The jail's filesystem: planned as data in the supervisor, applied by the jail's init inside
//! its new mount namespace.
//!
//! The new root is a tmpfs of our own holding one bind mount per top-level host directory, each
//! made read-only (recursively, with `mount_setattr`) the moment it is mounted; a hidden
//! top-level directory is not bound at all, only recreated empty. Every mount
//! point created after that is created in a tmpfs of ours: a missing mount point inside a host
//! directory fails with EROFS instead of being created on the host. As in bubblewrap, the host
//! root is first moved to `/oldroot` of a scratch tmpfs so that mount sources stay reachable
//! even when a tmpfs of the job covers them (a workspace in /tmp, say).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, mkdir, pivot_root};

use std::os::unix::fs::PermissionsExt;

use crate::error::SandboxError;
use crate::profile::{RootMode, UserSpec};
use crate::secrets::{Delivery, Secret};
use crate::spec::JobSpec;

/// Where the scratch tmpfs is mounted in the jail's namespace; its contents never reach the host.
const BASE: &str = "/tmp";
const NEW_ROOT: &str = "/newroot";
const OLD_ROOT: &str = "/oldroot";
/// Device nodes a job gets; everything else in /dev is absent.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Host top-level entries never bound: replaced by our own, or never useful.
const NOT_FROM_HOST: [&str; 5] = ["proc", "dev", "sys", "tmp", "lost+found"];
/// Parts of /proc that expose or change the host (the list Docker and runc mask).
const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];
const PROC_MASKED: [&str; 6] = [
    "kcore",
    "keys",
    "timer_list",
    "sched_debug",
    "kmsg",
    "latency_stats",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// A top-level host directory, bound recursively and made read-only at once.
    HostDir {
        name: String,
    },
    /// A hidden top-level host directory: not bound at all, just an empty directory in the new
    /// root, which is read-only at the end. Cheaper than a bind covered by a tmpfs. Also the
    /// allowlisted root's skeleton (`var`, `var/tmp`, with their modes).
    EmptyDir {
        name: String,
    },
    /// A skeleton directory of the allowlisted root with its mode (`view::SKELETON`).
    SkeletonDir {
        name: String,
        mode: u32,
    },
    /// A top-level host file, bound read-only.
    HostFile {
        name: String,
    },
    /// A top-level host symlink (`/bin -> usr/bin`), recreated.
    HostSymlink {
        name: String,
        target: PathBuf,
    },
    Proc,
    Sysfs,
    Dev,
    /// The job's private `/dev/shm` on the /dev above: POSIX shared memory and semaphores.
    Shm {
        size: u64,
        inodes: u64,
    },
    Tmpfs {
        target: PathBuf,
        size: u64,
        inodes: u64,
    },
    /// A host path bound at `target` (host paths are read below `/oldroot`).
    Bind {
        source: PathBuf,
        target: PathBuf,
        writable: bool,
    },
    /// An empty, read-only directory over a host directory.
    HideDir {
        target: PathBuf,
    },
    /// An empty, unreadable file over a host file or socket.
    HideFile {
        target: PathBuf,
    },
    /// An empty file of mode 0 over a secret under /etc (`view::etc_secrets`): the job's uid
    /// gets EACCES, as from the docker image's placeholder.
    SecretFile {
        target: PathBuf,
    },
    /// A tmpfs holding secret files (0400, owned by the job's uid), read-only once written.
    Secrets(SecretDir),
    /// The egress proxy's socket, bound last so that no hidden path can cover it.
    ProxySocket {
        source: PathBuf,
        target: PathBuf,
    },
}

/// One directory of secret files. Compared and printed by file names only: a plan is data that
/// tests print, and a secret's value must never be in it.
#[derive(Debug, Clone)]
pub struct SecretDir {
    pub target: PathBuf,
    pub files: Vec<Secret>,
    pub owner: UserSpec,
}

impl PartialEq for SecretDir {
    fn eq(&self, other: &Self) -> bool {
        let names = |dir: &SecretDir| -> Vec<String> {
            dir.files.iter().map(|secret| secret.name.clone()).collect()
        };
        self.target == other.target && self.owner == other.owner && names(self) == names(other)
    }
}

impl Eq for SecretDir {}

/// The whole filesystem of a job, in the order it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub ops: Vec<MountOp>,
    pub workdir: PathBuf,
}

impl MountPlan {
    /// Plans the jail's filesystem. Reads the host's `/` (top-level entries, and what hidden
    /// paths resolve to) but changes nothing.
    pub fn new(
        spec: &JobSpec,
        host_root: &Path,
        proxy_socket: Option<&Path>,
    ) -> Result<MountPlan, SandboxError> {
        let mut ops = Vec::new();
        let entries = std::fs::read_dir(host_root).map_err(|source| SandboxError::Io {
            what: "list the host root".into(),
            path: host_root.to_owned(),
            source,
        })?;
        let mut hidden: Vec<(PathBuf, bool)> = spec
            .hide
            .iter()
            .filter_map(|path| resolve_on_host(host_root, path))
            .collect();
        hidden.sort();
        hidden.dedup();
        let mut etc_secrets = Vec::new();
        match spec.root {
            RootMode::Readonly => readonly_root(entries, &mut hidden, &mut ops),
            RootMode::Allowlist => {
                allowlisted_root(entries, &mut ops);
                // Hidden paths outside what the allowlist shows are absent already, and a
                // skeleton directory is empty: covering them would only cost mounts.
                hidden.retain(|(path, _)| {
                    ops.iter().any(|op| match op {
                        MountOp::HostDir { name } => path.starts_with(Path::new("/").join(name)),
                        _ => false,
                    })
                });
                etc_secrets = crate::view::etc_secrets(host_root);
            }
        }
        ops.extend([MountOp::Proc, MountOp::Sysfs, MountOp::Dev]);
        let inodes = spec.limits.files;
        if let Some(size) = spec.shm_size() {
            ops.push(MountOp::Shm { size, inodes });
        }
        for (target, size) in &spec.tmpfs {
            ops.push(MountOp::Tmpfs {
                target: target.clone(),
                size: size.0.min(spec.limits.disk.0),
                inodes,
            });
        }
        // Hidden paths first, so that extra mounts below a hidden directory land in its tmpfs.
        for (target, is_dir) in hidden {
            ops.push(if is_dir {
                MountOp::HideDir { target }
            } else {
                MountOp::HideFile { target }
            });
        }
        for secret in etc_secrets {
            ops.push(if secret.is_dir {
                MountOp::HideDir {
                    target: secret.path,
                }
            } else {
                MountOp::SecretFile {
                    target: secret.path,
                }
            });
        }
        for bind in &spec.binds {
            ops.push(MountOp::Bind {
                source: bind.source.clone(),
                target: bind.target.clone(),
                writable: bind.writable,
            });
        }
        // Credentials after every bind: a toolchain or profile path that shows part of a home
        // must not show its keys (the ops below skip a target the job does not see).
        let mut credentials: Vec<(PathBuf, bool)> = spec
            .credentials
            .iter()
            .filter_map(|path| resolve_on_host(host_root, path))
            .collect();
        credentials.sort();
        credentials.dedup();
        // A credential file is covered by the unreadable placeholder: EACCES, not an empty
        // read a tool could take for an empty credential.
        for (target, is_dir) in credentials {
            ops.push(if is_dir {
                MountOp::HideDir { target }
            } else {
                MountOp::SecretFile { target }
            });
        }
        for target in spec.secret_dirs() {
            let files = spec
                .secrets
                .iter()
                .filter(|secret| match &secret.delivery {
                    Delivery::File(path) => path.parent() == Some(target.as_path()),
                    Delivery::Env => false,
                })
                .cloned()
                .collect();
            ops.push(MountOp::Secrets(SecretDir {
                target,
                files,
                owner: spec.user,
            }));
        }
        ops.push(MountOp::Bind {
            source: spec.workspace_source().to_owned(),
            target: spec.workspace_mount.clone(),
            writable: spec.workspace_writable(),
        });
        if let Some(socket) = proxy_socket {
            ops.push(MountOp::ProxySocket {
                source: socket.to_owned(),
                target: super::egress::JAIL_SOCKET.into(),
            });
        }
        Ok(MountPlan {
            ops,
            workdir: spec.workspace_mount.clone(),
        })
    }

    /// Builds the new root and pivots into it. Runs in the jail's init, in its own mount
    /// namespace, before any job code.
    pub fn apply(&self) -> Result<(), SandboxError> {
        let rw = MsFlags::empty();
        mount_fs(
            "none",
            "/",
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        )?;
        mount_fs(
            "tmpfs",
            BASE,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755,size=1m"),
        )?;
        chdir(BASE).map_err(|e| SandboxError::sys(format!("chdir({BASE})"), e))?;
        for dir in ["newroot", "oldroot"] {
            make_dir(Path::new(dir))?;
        }
        pivot_root(".", "oldroot").map_err(|e| SandboxError::sys("pivot_root(., oldroot)", e))?;
        chdir("/").map_err(|e| SandboxError::sys("chdir(/)", e))?;
        mount_fs(
            "tmpfs",
            NEW_ROOT,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | rw,
            Some("mode=0755,size=1m"),
        )?;
        std::fs::write("/hidden", b"").map_err(|source| SandboxError::Io {
            what: "create the placeholder for hidden files".into(),
            path: "/hidden".into(),
            source,
        })?;
        if self
            .ops
            .iter()
            .any(|op| matches!(op, MountOp::SecretFile { .. }))
        {
            std::fs::write("/unreadable", b"")
                .and_then(|()| {
                    std::fs::set_permissions("/unreadable", std::fs::Permissions::from_mode(0o000))
                })
                .map_err(|source| SandboxError::Io {
                    what: "create the placeholder for secrets under /etc".into(),
                    path: "/unreadable".into(),
                    source,
                })?;
        }
        let mut read_only_at_end = vec![PathBuf::from(NEW_ROOT)];
        for op in &self.ops {
            apply_op(op, &mut read_only_at_end)?;
        }
        for target in read_only_at_end.iter().rev() {
            remount_read_only(target)?;
        }
        umount2(OLD_ROOT, MntFlags::MNT_DETACH)
            .map_err(|e| SandboxError::sys("umount2(/oldroot)", e))?;
        // The runc way to leave the scratch tmpfs behind: pivot onto the new root with the old
        // one stacked beneath it, then detach the old one.
        chdir(NEW_ROOT).map_err(|e| SandboxError::sys("chdir(/newroot)", e))?;
        pivot_root(".", ".").map_err(|e| SandboxError::sys("pivot_root(., .)", e))?;
        umount2(".", MntFlags::MNT_DETACH)
            .map_err(|e| SandboxError::sys("umount2(old root)", e))?;
        chdir(&self.workdir)
            .map_err(|e| SandboxError::sys(format!("chdir({})", self.workdir.display()), e))
    }
}

/// The read-only root: every top-level host entry, a hidden directory as an empty one.
fn readonly_root(
    entries: std::fs::ReadDir,
    hidden: &mut Vec<(PathBuf, bool)>,
    ops: &mut Vec<MountOp>,
) {
    let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
    names.sort_by_key(|entry| entry.file_name());
    for entry in names {
        let name = entry.file_name().to_string_lossy().into_owned();
        if NOT_FROM_HOST.contains(&name.as_str()) {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_symlink() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                ops.push(MountOp::HostSymlink { name, target });
            }
        } else if file_type.is_dir() {
            let whole = (Path::new("/").join(&name), true);
            if let Some(at) = hidden.iter().position(|hide| *hide == whole) {
                hidden.remove(at);
                ops.push(MountOp::EmptyDir { name });
            } else {
                ops.push(MountOp::HostDir { name });
            }
        } else if file_type.is_file() {
            ops.push(MountOp::HostFile { name });
        }
    }
}

/// The allowlisted root (`view`): /usr and the host's top-level links into it (or, on a host
/// without merged /usr, its real /bin, /lib...), /etc (its secrets are covered by the caller),
/// and the skeleton's empty directories. Nothing else of the host's `/`: not /opt, /var, /srv,
/// /boot, other trees, nor files left at `/`.
fn allowlisted_root(entries: std::fs::ReadDir, ops: &mut Vec<MountOp>) {
    use crate::view::{MERGED_DIRS, SKELETON};
    let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
    names.sort_by_key(|entry| entry.file_name());
    let mut shown = Vec::new();
    for entry in names {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_symlink() {
            // Only links into /usr: anything else would dangle, as in the image.
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let into_usr = target
                .components()
                .find(|c| matches!(c, std::path::Component::Normal(_)))
                .is_some_and(|c| c.as_os_str() == "usr");
            if into_usr {
                shown.push(name.clone());
                ops.push(MountOp::HostSymlink { name, target });
            }
        } else if file_type.is_dir()
            && (name == "usr" || name == "etc" || MERGED_DIRS.contains(&name.as_str()))
        {
            shown.push(name.clone());
            ops.push(MountOp::HostDir { name });
        }
    }
    for (name, mode) in SKELETON {
        let top = name.split('/').next().unwrap_or(name);
        if NOT_FROM_HOST.contains(&top) || shown.iter().any(|s| s == name) {
            continue;
        }
        ops.push(MountOp::SkeletonDir {
            name: (*name).to_owned(),
            mode: *mode,
        });
    }
}

fn apply_op(op: &MountOp, read_only_at_end: &mut Vec<PathBuf>) -> Result<(), SandboxError> {
    let new = |path: &Path| Path::new(NEW_ROOT).join(path.strip_prefix("/").unwrap_or(path));
    let old = |path: &Path| Path::new(OLD_ROOT).join(path.strip_prefix("/").unwrap_or(path));
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    match op {
        MountOp::HostDir { name } => {
            let target = new(Path::new(name));
            make_dir(&target)?;
            bind(&old(Path::new(name)), &target, true)?;
            set_read_only_recursive(&target)?;
        }
        MountOp::EmptyDir { name } => make_dir(&new(Path::new(name)))?,
        MountOp::SkeletonDir { name, mode } => {
            let target = new(Path::new(name));
            make_dir(&target)?;
            // mkdir's mode passes through the umask; the skeleton's modes (1777) must not.
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode)).map_err(
                |source| SandboxError::Io {
                    what: "set the mode of a skeleton directory".into(),
                    path: target.clone(),
                    source,
                },
            )?;
        }
        MountOp::HostFile { name } => {
            let target = new(Path::new(name));
            make_file(&target)?;
            bind(&old(Path::new(name)), &target, false)?;
            set_read_only_recursive(&target)?;
        }
        MountOp::HostSymlink { name, target } => {
            std::os::unix::fs::symlink(target, new(Path::new(name))).map_err(|source| {
                SandboxError::Io {
                    what: format!("recreate the symlink to {}", target.display()),
                    path: new(Path::new(name)),
                    source,
                }
            })?;
        }
        MountOp::Proc => {
            let target = new(Path::new("proc"));
            make_dir(&target)?;
            // hidepid=2: the job sees only processes it may trace, so not the jail's init,
            // which holds the supervisor's argv.
            mount_fs(
                "proc",
                &target,
                Some("proc"),
                nosuid_nodev | MsFlags::MS_NOEXEC,
                Some("hidepid=2"),
            )?;
            for entry in PROC_READ_ONLY {
                let path = target.join(entry);
                if path.exists() {
                    bind(&path, &path, true)?;
                    set_read_only_recursive(&path)?;
                }
            }
            for entry in PROC_MASKED {
                let path = target.join(entry);
                if path.exists() {
                    bind(Path::new("/hidden"), &path, false)?;
                    set_read_only_recursive(&path)?;
                }
            }
        }
        MountOp::Sysfs => {
            // A fresh sysfs shows the job's own network namespace (only `lo`), not the host's.
            let target = new(Path::new("sys"));
            make_dir(&target)?;
            let flags = nosuid_nodev | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
            if mount_fs("sysfs", &target, Some("sysfs"), flags, None).is_err() {
                mount_fs(
                    "tmpfs",
                    &target,
                    Some("tmpfs"),
                    flags,
                    Some("size=4k,mode=0555"),
                )?;
            }
        }
        MountOp::Dev => {
            let dev = new(Path::new("dev"));
            make_dir(&dev)?;
            mount_fs(
                "tmpfs",
                &dev,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some("mode=0755,size=64k"),
            )?;
            for device in DEVICES {
                let target = dev.join(device);
                make_file(&target)?;
                bind(&old(&Path::new("/dev").join(device)), &target, false)?;
            }
            for (link, to) in [
                ("fd", "/proc/self/fd"),
                ("stdin", "/proc/self/fd/0"),
                ("stdout", "/proc/self/fd/1"),
                ("stderr", "/proc/self/fd/2"),
            ] {
                std::os::unix::fs::symlink(to, dev.join(link)).map_err(|source| {
                    SandboxError::Io {
                        what: "create a /dev symlink".into(),
                        path: dev.join(link),
                        source,
                    }
                })?;
            }
            make_dir(&dev.join("shm"))?;
            read_only_at_end.push(dev);
        }
        MountOp::Shm { size, inodes } => {
            // Its own mount, so that it stays writable when /dev is made read-only at the end.
            // noexec as Docker's: shared memory is for data, not for programs.
            let options = format!("mode=1777,size={size},nr_inodes={inodes}");
            mount_fs(
                "tmpfs",
                new(Path::new("dev/shm")),
                Some("tmpfs"),
                nosuid_nodev | MsFlags::MS_NOEXEC,
                Some(&options),
            )?;
        }
        MountOp::Tmpfs {
            target,
            size,
            inodes,
        } => {
            let target = new(target);
            make_dir_all(&target)?;
            let options = format!("mode=1777,size={size},nr_inodes={inodes}");
            mount_fs(
                "tmpfs",
                &target,
                Some("tmpfs"),
                nosuid_nodev,
                Some(&options),
            )?;
        }
        MountOp::Bind {
            source,
            target,
            writable,
        } => {
            let target = new(target);
            let source = old(source);
            if source.is_dir() {
                make_dir_all(&target)?;
            } else {
                make_file(&target)?;
            }
            bind(&source, &target, true)?;
            if !writable {
                set_read_only_recursive(&target)?;
            }
        }
        MountOp::HideDir { target } => {
            let target = new(target);
            if target.is_dir() {
                mount_fs(
                    "tmpfs",
                    &target,
                    Some("tmpfs"),
                    nosuid_nodev | MsFlags::MS_NOEXEC,
                    Some("mode=0755,size=64k"),
                )?;
                read_only_at_end.push(target);
            }
        }
        MountOp::Secrets(dir) => {
            let target = new(&dir.target);
            write_secrets(dir, &target)?;
            read_only_at_end.push(target);
        }
        MountOp::ProxySocket { source, target } => {
            let target = new(target);
            make_file(&target)?;
            bind(&old(source), &target, false)?;
        }
        MountOp::HideFile { target } => {
            let target = new(target);
            if target.symlink_metadata().is_ok() {
                bind(Path::new("/hidden"), &target, false)?;
                set_read_only_recursive(&target)?;
            }
        }
        MountOp::SecretFile { target } => {
            let target = new(target);
            if target.symlink_metadata().is_ok() {
                bind(Path::new("/unreadable"), &target, false)?;
                set_read_only_recursive(&target)?;
            }
        }
    }
    Ok(())
}

/// Mounts a small tmpfs at `target` and writes each secret into it, 0400 and owned by the job,
/// in a 0500 directory of the job's.
fn write_secrets(dir: &SecretDir, target: &Path) -> Result<(), SandboxError> {
    make_dir_all(target).map_err(|error| {
        SandboxError::Setup(format!(
            "cannot create {} for secret files ({}): its parent is a read-only host directory; \
             add the parent to filesystem.hide (an empty tmpfs) or deliver the secret below a \
             filesystem.tmpfs path",
            dir.target.display(),
            error.with_causes()
        ))
    })?;
    let size: usize = dir.files.iter().map(|s| s.value().len() + 4096).sum();
    mount_fs(
        "tmpfs",
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&format!("mode=0700,size={}", size + 4096)),
    )?;
    let uid = Some(nix::unistd::Uid::from_raw(dir.owner.uid));
    let gid = Some(nix::unistd::Gid::from_raw(dir.owner.gid));
    let io = |what: &str, path: &Path| {
        let (what, path) = (what.to_owned(), path.to_owned());
        move |source| SandboxError::Io { what, path, source }
    };
    for secret in &dir.files {
        let Delivery::File(path) = &secret.delivery else {
            continue;
        };
        let file = target.join(path.file_name().unwrap_or_default());
        std::fs::write(&file, secret.value()).map_err(io("write the secret file", path))?;
        nix::unistd::chown(&file, uid, gid)
            .map_err(|e| SandboxError::sys(format!("chown({})", path.display()), e))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400))
            .map_err(io("set the mode of the secret file", path))?;
    }
    nix::unistd::chown(target, uid, gid)
        .map_err(|e| SandboxError::sys(format!("chown({})", dir.target.display()), e))?;
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o500))
        .map_err(io("set the mode of the secrets directory", &dir.target))
}

/// Where a hidden path really is on the host (following symlinks such as /var/run -> /run), and
/// whether it is a directory; `None` when it does not exist or leaves the root.
fn resolve_on_host(host_root: &Path, path: &Path) -> Option<(PathBuf, bool)> {
    let on_host = host_root.join(path.strip_prefix("/").unwrap_or(path));
    let canonical = std::fs::canonicalize(&on_host).ok()?;
    let inside = canonical.strip_prefix(host_root).ok()?;
    let is_dir = canonical.is_dir();
    Some((Path::new("/").join(inside), is_dir))
}

fn mount_fs(
    source: &str,
    target: impl AsRef<Path>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SandboxError> {
    let target = target.as_ref();
    mount(Some(source), target, fstype, flags, data).map_err(|e| {
        SandboxError::sys(
            format!(
                "mount({source}, {}, {}, {flags:?}, {})",
                target.display(),
                fstype.unwrap_or("-"),
                data.unwrap_or("-")
            ),
            e,
        )
    })
}

fn bind(source: &Path, target: &Path, recursive: bool) -> Result<(), SandboxError> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, flags, None::<&str>).map_err(|e| {
        SandboxError::sys(
            format!("bind mount {} on {}", source.display(), target.display()),
            e,
        )
    })
}

/// Makes a mount and every mount below it read-only, nosuid and nodev-preserving, in one call.
/// A plain `MS_REMOUNT|MS_RDONLY` would leave submounts (a host /dev/shm, say) writable.
fn set_read_only_recursive(target: &Path) -> Result<(), SandboxError> {
    use crate::ownership::sys::{mount_setattr, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    let path = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| SandboxError::Setup(format!("{} contains a NUL byte", target.display())))?;
    mount_setattr(
        libc::AT_FDCWD,
        &path,
        libc::AT_RECURSIVE as libc::c_uint,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        None,
    )
    .map_err(|errno| {
        SandboxError::sys(
            format!(
                "mount_setattr({}, AT_RECURSIVE, RDONLY) (Linux 5.12+ is needed for a read-only root)",
                target.display()
            ),
            errno,
        )
    })
}

fn remount_read_only(target: &Path) -> Result<(), SandboxError> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(|e| SandboxError::sys(format!("remount {} read-only", target.display()), e))
}

fn make_dir(path: &Path) -> Result<(), SandboxError> {
    match mkdir(path, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(mount_point_error(path, e)),
    }
}

fn make_dir_all(path: &Path) -> Result<(), SandboxError> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        make_dir_all(parent)?;
    }
    make_dir(path)
}

fn make_file(path: &Path) -> Result<(), SandboxError> {
    if path.symlink_metadata().is_ok() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        make_dir_all(parent)?;
    }
    std::fs::File::create(path).map(drop).map_err(|e| {
        mount_point_error(
            path,
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })
}

fn mount_point_error(path: &Path, errno: nix::errno::Errno) -> SandboxError {
    let shown = path
        .strip_prefix(NEW_ROOT)
        .map(|p| Path::new("/").join(p))
        .unwrap_or(path.to_owned());
    if errno == nix::errno::Errno::EROFS {
        return SandboxError::Setup(format!(
            "cannot create the mount point {} inside the read-only host root: mount it at a \
             path that exists on the host, or at a new top-level directory",
            shown.display()
        ));
    }
    SandboxError::sys(format!("mkdir({})", shown.display()), errno)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Overrides;

    fn spec(profile: &str) -> JobSpec {
        crate::spec::test_spec(profile, Overrides::default(), &["true"]).unwrap()
    }

    #[test]
    fn plan_binds_host_dirs_and_replaces_proc_dev_sys_tmp() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["usr", "etc", "proc", "tmp", "home"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
        let mut ro = spec("standard");
        ro.workspace_mode = crate::profile::WorkspaceMode::Ro;
        let plan = MountPlan::new(&ro, root.path(), None).unwrap();
        assert!(plan.ops.contains(&MountOp::HostDir { name: "usr".into() }));
        assert!(plan.ops.contains(&MountOp::HostSymlink {
            name: "bin".into(),
            target: "usr/bin".into()
        }));
        assert!(!plan.ops.contains(&MountOp::HostDir {
            name: "proc".into()
        }));
        assert!(!plan.ops.contains(&MountOp::HostDir { name: "tmp".into() }));
        assert!(
            plan.ops.contains(&MountOp::EmptyDir {
                name: "home".into()
            }),
            "a hidden top-level directory is an empty one, not a bind under a tmpfs"
        );
        assert!(!plan.ops.contains(&MountOp::HostDir {
            name: "home".into()
        }));
        assert!(!plan.ops.contains(&MountOp::HideDir {
            target: "/home".into()
        }));
        let workspace = plan.ops.last().unwrap();
        assert!(
            matches!(
                workspace,
                MountOp::Bind {
                    writable: false,
                    ..
                }
            ),
            "an ro workspace is bound read-only"
        );
    }

    #[test]
    fn dev_shm_is_a_tmpfs_capped_by_disk_and_absent_at_zero() {
        let root = tempfile::tempdir().unwrap();
        let mut job = spec("standard");
        job.shm = crate::profile::ByteSize(1 << 30);
        job.limits.disk = crate::profile::ByteSize(32 << 20);
        let plan = MountPlan::new(&job, root.path(), None).unwrap();
        let shm: Vec<_> = plan
            .ops
            .iter()
            .filter(|op| matches!(op, MountOp::Shm { .. }))
            .collect();
        assert_eq!(
            shm,
            [&MountOp::Shm {
                size: 32 << 20,
                inodes: job.limits.files
            }]
        );
        let dev = plan.ops.iter().position(|op| *op == MountOp::Dev);
        let at = plan
            .ops
            .iter()
            .position(|op| matches!(op, MountOp::Shm { .. }));
        assert!(dev < at, "mounted on the /dev it belongs to");
        job.shm = crate::profile::ByteSize(0);
        let plan = MountPlan::new(&job, root.path(), None).unwrap();
        assert!(!plan.ops.iter().any(|op| matches!(op, MountOp::Shm { .. })));
    }

    #[test]
    fn the_allowlisted_root_shows_usr_its_links_etc_and_the_skeleton_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        for dir in [
            "usr/bin",
            "etc/ssl/private",
            "etc/ssh",
            "opt/x",
            "var/lib",
            "srv",
            "boot",
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        for file in [
            "etc/passwd",
            "etc/shadow",
            "etc/ssh/ssh_host_rsa_key",
            "keys.txt",
        ] {
            std::fs::write(root.path().join(file), "x").unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("/opt/x", root.path().join("x")).unwrap();
        let strict = spec("strict");
        assert_eq!(strict.root, RootMode::Allowlist);
        let plan = MountPlan::new(&strict, root.path(), None).unwrap();
        let host: Vec<&MountOp> = plan
            .ops
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    MountOp::HostDir { .. }
                        | MountOp::HostFile { .. }
                        | MountOp::HostSymlink { .. }
                )
            })
            .collect();
        assert_eq!(
            host,
            [
                &MountOp::HostSymlink {
                    name: "bin".into(),
                    target: "usr/bin".into()
                },
                &MountOp::HostDir { name: "etc".into() },
                &MountOp::HostDir { name: "usr".into() },
            ],
            "only /usr, its links and /etc come from the host"
        );
        for name in ["var", "var/tmp", "opt", "home", "root", "workspace", "out"] {
            assert!(
                plan.ops
                    .iter()
                    .any(|op| matches!(op, MountOp::SkeletonDir { name: n, .. } if n == name)),
                "{name} is an empty skeleton directory: {plan:?}"
            );
        }
        for secret in ["/etc/shadow", "/etc/ssh/ssh_host_rsa_key"] {
            assert!(
                plan.ops.contains(&MountOp::SecretFile {
                    target: secret.into()
                }),
                "{secret}: {plan:?}"
            );
        }
        assert!(plan.ops.contains(&MountOp::HideDir {
            target: "/etc/ssl/private".into()
        }));
        assert!(
            !plan.ops.iter().any(|op| matches!(op, MountOp::HideDir { target } if target.starts_with("/home") || target.starts_with("/root"))),
            "hiding an empty skeleton directory costs a mount for nothing: {plan:?}"
        );
    }

    #[test]
    fn hidden_symlinks_resolve_to_their_target_and_missing_paths_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("run")).unwrap();
        std::fs::create_dir_all(root.path().join("var")).unwrap();
        std::os::unix::fs::symlink("../run", root.path().join("var/run")).unwrap();
        let root_path = std::fs::canonicalize(root.path()).unwrap();
        assert_eq!(
            resolve_on_host(&root_path, Path::new("/var/run")),
            Some(("/run".into(), true))
        );
        assert_eq!(resolve_on_host(&root_path, Path::new("/nope")), None);
    }
}
