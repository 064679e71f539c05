//! The new mount API calls nix does not wrap, and the throwaway user namespace an idmap needs,
//! each in a small function with its `unsafe` explained. Errors read `call(args) => errno`.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::error::SandboxError;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(dirfd, path, flags, {attr_set: set, userns_fd})`: the one call behind the
/// jail's read-only root and the workspace's idmap.
pub fn mount_setattr(
    dirfd: libc::c_int,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
    set: u64,
    userns_fd: Option<libc::c_int>,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns_fd.map_or(0, |fd| fd as u64),
    };
    // SAFETY: `path` is NUL-terminated and `attr` a properly laid-out `struct mount_attr`, both
    // outliving the call; the kernel only reads them.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if result != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn c_path(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SandboxError::Setup(format!("{} contains a NUL byte", path.display())))
}

/// `open_tree(path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)`: a detached copy of the mount at
/// `path` (not of the mounts below it), which vanishes when the descriptor is closed unless it
/// is attached with [`move_mount`].
pub fn open_tree_clone(path: &Path) -> Result<OwnedFd, SandboxError> {
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(SandboxError::sys(
            format!("open_tree({}, OPEN_TREE_CLONE)", path.display()),
            Errno::last(),
        ));
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// `mount_setattr(tree, "", AT_EMPTY_PATH, {IDMAP | set, userns})` on a detached tree: its
/// files are seen through `userns`'s id maps, and `set` (nosuid, nodev, rdonly) applies.
pub fn set_idmap(
    tree: &OwnedFd,
    userns: &OwnedFd,
    set: u64,
    what: &Path,
) -> Result<(), SandboxError> {
    mount_setattr(
        tree.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH as libc::c_uint,
        MOUNT_ATTR_IDMAP | set,
        Some(userns.as_raw_fd()),
    )
    .map_err(|errno| {
        SandboxError::sys(
            format!(
                "mount_setattr(clone of {}, MOUNT_ATTR_IDMAP)",
                what.display()
            ),
            errno,
        )
    })?;
    Ok(())
}

/// `move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attaches a detached tree.
pub fn move_mount(tree: &OwnedFd, target: &Path) -> Result<(), SandboxError> {
    let c = c_path(target)?;
    // SAFETY: `tree` is an open mount descriptor; both paths are valid NUL-terminated strings
    // that outlive the call; the kernel only reads them.
    let result = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if result != 0 {
        return Err(SandboxError::sys(
            format!("move_mount(idmapped tree, {})", target.display()),
            Errno::last(),
        ));
    }
    Ok(())
}

/// A user namespace with the given uid and gid maps (`inner outer count` extents), as a
/// descriptor for `MOUNT_ATTR_IDMAP`. A namespace needs a process to be made in: a child is
/// cloned straight into a new one (a fork, with no new stack), waits to be killed, and is
/// reaped; the descriptor keeps the namespace alive.
pub fn user_namespace(
    uid_map: &[(u32, u32, u32)],
    gid_map: &[(u32, u32, u32)],
) -> Result<OwnedFd, SandboxError> {
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with a null stack is fork(): the child gets a copy of
    // our memory. It only calls `pause` (async-signal-safe) until SIGKILL, so it never touches
    // a lock another of our threads might have held at the clone.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        loop {
            // SAFETY: pause has no arguments and no memory effects.
            unsafe { libc::pause() };
        }
    }
    if pid < 0 {
        return Err(SandboxError::sys("clone(CLONE_NEWUSER)", Errno::last()));
    }
    let child = Pid::from_raw(pid as libc::pid_t);
    let result = map_and_open(child, uid_map, gid_map);
    // Our own child, whatever happened above.
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    result
}

fn map_and_open(
    child: Pid,
    uid_map: &[(u32, u32, u32)],
    gid_map: &[(u32, u32, u32)],
) -> Result<OwnedFd, SandboxError> {
    // Each map must be written in one write(2).
    let write = |file: &str, map: &[(u32, u32, u32)]| {
        let path = format!("/proc/{child}/{file}");
        let text: String = map
            .iter()
            .map(|(inner, outer, count)| format!("{inner} {outer} {count}\n"))
            .collect();
        std::fs::write(&path, &text).map_err(|source| SandboxError::Io {
            what: format!("write the idmap `{}` to", text.trim().replace('\n', "; ")),
            path: path.into(),
            source,
        })
    };
    write("uid_map", uid_map)?;
    write("gid_map", gid_map)?;
    let path = format!("/proc/{child}/ns/user");
    std::fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|source| SandboxError::Io {
            what: "open the idmap's user namespace".into(),
            path: path.into(),
            source,
        })
}
