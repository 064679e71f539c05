//! The few syscalls nix does not wrap, each in a small function with its `unsafe` explained.
//! Errors read `call(args) => errno`.

#![allow(unsafe_code)]

use std::time::Duration;

use nix::unistd::Pid;

use crate::error::SandboxError;

fn check(result: libc::c_long, call: &str) -> Result<libc::c_long, SandboxError> {
    if result < 0 {
        Err(SandboxError::sys(call, nix::errno::Errno::last()))
    } else {
        Ok(result)
    }
}

/// How a waited-for process ended, and the CPU and memory it and its reaped children used.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub cpu: Duration,
    pub max_rss_bytes: u64,
}

/// `wait4(pid)`: like waitpid, plus the resource usage std and nix do not report.
pub fn wait4(pid: Pid) -> Result<Exit, SandboxError> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live for the call.
        let result = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut usage) };
        if result >= 0 {
            break;
        }
        let errno = nix::errno::Errno::last();
        if errno != nix::errno::Errno::EINTR {
            return Err(SandboxError::sys(format!("wait4({pid})"), errno));
        }
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Exit {
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}

/// Empties the effective, permitted and inheritable capability sets of the calling thread.
pub fn drop_all_capabilities() -> Result<(), SandboxError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: version 3 takes one header and an array of two data structs, both laid out as
    // the kernel's `__user_cap_header_struct` / `__user_cap_data_struct`; they outlive the call.
    let result =
        unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    check(result, "capset(all empty)").map(drop)
}

/// Marks every inherited descriptor from 3 up close-on-exec, so nothing the caller of `sandbox`
/// leaked to us (a Docker socket, an agent's pipe) reaches the job.
pub fn cloexec_from(first: libc::c_uint) -> Result<(), SandboxError> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes plain integers and touches only this process's fd table.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    check(result, "close_range(3.., CLOEXEC)").map(drop)
}

/// Brings up `lo` in the job's fresh network namespace (it starts down).
pub fn loopback_up() -> Result<(), SandboxError> {
    use std::os::fd::AsRawFd;
    let socket = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| SandboxError::sys("socket(AF_INET, SOCK_DGRAM)", e))?;
    // SAFETY: an all-zero ifreq is valid; we fill in the name and flags below.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags union member of `request`,
    // which lives for the call.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) };
    check(result as libc::c_long, "ioctl(lo, SIOCGIFFLAGS)")?;
    // SAFETY: the flags member was just written by the kernel.
    unsafe { request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads `request`.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    check(result as libc::c_long, "ioctl(lo, SIOCSIFFLAGS, UP)").map(drop)
}

/// Starts `child` as the first process of new namespaces (`clone(2)` with `flags`).
///
/// The caller must be single-threaded: glibc's clone runs no atfork handlers, so a lock held by
/// another thread (malloc's, say) would stay locked forever in the child.
pub fn clone_into_namespaces(
    child: &mut dyn FnMut() -> isize,
    flags: nix::sched::CloneFlags,
) -> Result<Pid, SandboxError> {
    let mut stack = vec![0u8; 4 << 20];
    // SAFETY: the child gets a private copy of the address space (no CLONE_VM), so the callback
    // and the stack it runs on are its own; `stack` outlives the call in the parent.
    unsafe { nix::sched::clone(Box::new(child), &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(|e| SandboxError::sys(format!("clone({flags:?})"), e))
}

/// Ends the calling process at once: no atexit handlers, no flushing of buffers that a forked
/// child shares with its parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

/// A pidfd for `pid`: readable once the process has exited, which lets one `poll` wait for a
/// child, a signal and a deadline at once.
pub fn pidfd_open(pid: Pid) -> Result<std::os::fd::OwnedFd, SandboxError> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = check(fd, &format!("pidfd_open({pid})"))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}
