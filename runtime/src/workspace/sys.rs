//! The system calls behind the workspace code that `std` does not offer: resolving a path
//! beneath a directory descriptor without following any symlink, and reading overlayfs's
//! opaque-directory marker.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::WorkspaceError;

/// A directory the caller named (the workspace or the view), held open so that every path
/// below it is resolved from this descriptor and not from a path string that could be swapped.
pub(super) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens the root itself. The one place a symlink may be followed: the caller chose this
    /// path, the job did not.
    pub(super) fn open(path: &Path) -> Result<Root, WorkspaceError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty())
            .map_err(|errno| WorkspaceError::sys("open", path, errno))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `rel` below the root. `RESOLVE_NO_SYMLINKS` refuses a symlink in any component,
    /// the last one included, so a symlink planted in place of a directory (`sub -> /etc`)
    /// cannot redirect the open outside the root; `RESOLVE_BENEATH` refuses `..` escapes.
    pub(super) fn open_beneath(
        &self,
        rel: &str,
        flags: OFlag,
        mode: Mode,
    ) -> Result<OwnedFd, WorkspaceError> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .mode(mode)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let target = if rel.is_empty() { "." } else { rel };
        // EAGAIN: the kernel saw a concurrent rename or mount during a RESOLVE_BENEATH walk and
        // asks us to retry rather than risk a wrong answer.
        let mut attempts = 0;
        loop {
            match openat2(self.fd.as_fd(), target, how) {
                Err(Errno::EAGAIN) if attempts < 8 => attempts += 1,
                Ok(fd) => return Ok(fd),
                Err(errno) => return Err(self.beneath_error(rel, errno)),
            }
        }
    }

    /// Opens the directory that holds `rel` (read-only, so it can be fsynced) and returns it
    /// with the last component of `rel`.
    pub(super) fn parent<'a>(&self, rel: &'a str) -> Result<(OwnedFd, &'a str), WorkspaceError> {
        check_rel(rel)?;
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let fd = self
            .open_beneath(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(|error| match error {
                WorkspaceError::Sys {
                    errno: Errno::ENOENT,
                    ..
                } => WorkspaceError::MissingParent {
                    root: self.path.clone(),
                    path: rel.to_string(),
                },
                // Name the entry that was refused, not just the directory above it.
                WorkspaceError::SymlinkInPath { root, .. } => WorkspaceError::SymlinkInPath {
                    root,
                    path: rel.to_string(),
                },
                other => other,
            })?;
        Ok((fd, name))
    }

    fn beneath_error(&self, rel: &str, errno: Errno) -> WorkspaceError {
        match errno {
            Errno::ELOOP => WorkspaceError::SymlinkInPath {
                root: self.path.clone(),
                path: rel.to_string(),
            },
            Errno::ENOSYS => WorkspaceError::NoOpenat2 {
                root: self.path.clone(),
            },
            errno => WorkspaceError::sys("openat2(RESOLVE_BENEATH)", self.path.join(rel), errno),
        }
    }
}

/// Refuses anything but a plain relative path of normal components: change sets built by the
/// walker never hold one, but a change set can also be deserialized.
pub(super) fn check_rel(rel: &str) -> Result<(), WorkspaceError> {
    let reason = if rel.is_empty() {
        Some("it is empty")
    } else if rel.starts_with('/') {
        Some("it is absolute")
    } else if rel.contains('\0') {
        Some("it contains a NUL byte")
    } else if rel
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        Some("it has an empty, `.` or `..` component")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(WorkspaceError::InvalidPath {
            path: rel.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Whether overlayfs marked this upper directory opaque: it replaced the lower directory
/// instead of merging with it. Only `trusted.overlay.opaque` counts: the job can write
/// `user.*` xattrs through the merged view, but overlayfs refuses it `trusted.overlay.*`.
pub(super) fn is_opaque(dir: &Path) -> Result<bool, WorkspaceError> {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        WorkspaceError::sys("lgetxattr(trusted.overlay.opaque)", dir, Errno::EINVAL)
    })?;
    let name = c"trusted.overlay.opaque";
    let mut value = [0u8; 8];
    // SAFETY: `path` and `name` are NUL-terminated and outlive the call; the kernel writes at
    // most `value.len()` bytes into `value`, which we own, and returns how many it wrote.
    #[allow(unsafe_code)]
    let len = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    match usize::try_from(len) {
        Ok(len) => Ok(value.get(..len) == Some(b"y".as_slice())),
        // No marker, no xattr support, or a value too long to be "y": not opaque.
        Err(_) => match Errno::last() {
            Errno::ENODATA | Errno::ENOTSUP | Errno::ERANGE => Ok(false),
            errno => Err(WorkspaceError::sys(
                "lgetxattr(trusted.overlay.opaque)",
                dir,
                errno,
            )),
        },
    }
}

/// Reads `rel` below `root` the way every project file is read (DESIGN §12): no symlink in any
/// component, no `..` out of the root, a regular file only, at most `cap` bytes. `Ok(None)` when
/// it does not exist. A project file that is a symlink to `/proc/self/environ` or `/etc/shadow`
/// would otherwise be read by the supervisor and quoted back in a parse error.
pub(super) fn read_beneath(
    root: &Path,
    rel: &str,
    cap: u64,
) -> Result<Option<Vec<u8>>, WorkspaceError> {
    use std::io::Read;
    check_rel(rel)?;
    let root = Root::open(root)?;
    let fd = match root.open_beneath(
        rel,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(WorkspaceError::Sys {
            errno: Errno::ENOENT | Errno::ENOTDIR,
            ..
        }) => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut file = std::fs::File::from(fd);
    let path = root.path().join(rel);
    let metadata = file
        .metadata()
        .map_err(|source| WorkspaceError::read("inspect", &path, source))?;
    if !metadata.is_file() {
        return Err(WorkspaceError::NotRegular { path });
    }
    if metadata.len() > cap {
        return Err(WorkspaceError::TooLarge {
            path,
            size: metadata.len(),
            cap,
        });
    }
    let mut bytes = Vec::new();
    file.by_ref()
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| WorkspaceError::read("read", &path, source))?;
    if bytes.len() as u64 > cap {
        return Err(WorkspaceError::TooLarge {
            path,
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(Some(bytes))
}
