//! Inside the jail. The cloned child becomes pid 1 of the new pid namespace: it finishes the
//! namespaces, builds the filesystem, forks the job, reaps every process, and when the job's
//! main process ends kills whatever it left behind. The job process drops everything it can
//! (uid, capabilities, rlimits, landlock, seccomp) and executes the command.
//!
//! Both talk to the supervisor only through the report pipe: one JSON line per message.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Pid, Uid};
use serde::{Deserialize, Serialize};

use super::landlock::LandlockPlan;
use super::mounts::MountPlan;
use super::seccomp::SeccompPlan;
use super::sys;
use crate::error::SandboxError;
use crate::profile::{Limits, UserSpec};

/// Everything the jail needs, prepared by the supervisor before the clone.
pub struct JailPlan {
    pub command: Vec<CString>,
    pub env: Vec<CString>,
    pub search_path: Vec<PathBuf>,
    pub mounts: MountPlan,
    pub landlock: LandlockPlan,
    pub seccomp: SeccompPlan,
    pub limits: Limits,
    pub user: UserSpec,
    /// Set when we are not root: the job's uid/gid are mapped onto ours in a new user namespace.
    pub outer_ids: Option<(Uid, Gid)>,
    pub cgroup_join: Vec<PathBuf>,
    pub loopback: bool,
    /// The egress forwarder: a port on the jail's loopback and the proxy socket it leads to.
    pub forward: Option<(u16, PathBuf)>,
    pub tmpfs: Vec<PathBuf>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub report: OwnedFd,
}

/// A message from the jail to the supervisor.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Setting up failed; the command never ran.
    Failed {
        message: String,
        refused: Option<String>,
    },
    /// The job process applied its restrictions and is about to exec.
    Applied {
        landlock_abi: Option<i32>,
        seccomp: bool,
    },
    /// The job's main process ended; everything else in the jail has been killed and reaped.
    Finished {
        exit_code: Option<i32>,
        signal: Option<i32>,
        full_tmpfs: Vec<PathBuf>,
        exhausted_inodes: Vec<PathBuf>,
    },
}

/// The exit status of the init when setup failed.
pub const SETUP_FAILED: i32 = 125;

fn send(report: BorrowedFd<'_>, message: &Report) {
    if let Ok(mut line) = serde_json::to_vec(message) {
        line.push(b'\n');
        // One write of less than PIPE_BUF bytes is atomic; a failure means the supervisor is
        // gone, and our death signal follows.
        let _ = nix::unistd::write(report, &line);
    }
}

fn failed(error: &SandboxError) -> Report {
    let refused = match error {
        SandboxError::Refused { feature, .. } => Some(feature.clone()),
        _ => None,
    };
    Report::Failed {
        message: error.with_causes(),
        refused,
    }
}

/// The body of the cloned child (pid 1 of the jail). Ends the process with `exit_group`: a
/// plain return would end only this thread and leave the forwarder thread (and with it the
/// whole namespace) alive.
pub fn init(plan: &JailPlan) -> ! {
    let report = plan.report.as_fd_borrowed();
    let job = match prepare(plan) {
        Ok(job) => job,
        Err(error) => {
            send(report, &failed(&error));
            sys::exit_now(SETUP_FAILED);
        }
    };
    let main_status = reap_until_empty(job);
    let (full_tmpfs, exhausted_inodes) = full_mounts(&plan.tmpfs);
    let (exit_code, signal) = match main_status {
        Some(WaitStatus::Exited(_, code)) => (Some(code), None),
        Some(WaitStatus::Signaled(_, signal, _)) => (None, Some(signal as i32)),
        _ => (None, None),
    };
    send(
        report,
        &Report::Finished {
            exit_code,
            signal,
            full_tmpfs,
            exhausted_inodes,
        },
    );
    sys::exit_now(0)
}

trait AsFdBorrowed {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
}

impl AsFdBorrowed for OwnedFd {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// Finishes the namespaces, builds the filesystem and forks the job. Returns the job's pid.
fn prepare(plan: &JailPlan) -> Result<Pid, SandboxError> {
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    )
    .map_err(|e| SandboxError::sys("sigprocmask(SETMASK, {})", e))?;
    // If the supervisor dies, so does the jail: pid 1 going takes every process in it along.
    nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL))
        .map_err(|e| SandboxError::sys("prctl(PDEATHSIG)", e))?;
    if let Some((uid, gid)) = plan.outer_ids {
        map_ids(plan.user, uid, gid)?;
    }
    // The init keeps the supervisor's memory (argv, the host environment) and, as root, its
    // capabilities: nothing in the jail may read or trace it.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| SandboxError::sys("prctl(SET_DUMPABLE, 0)", e))?;
    for procs in &plan.cgroup_join {
        std::fs::write(procs, "0").map_err(|source| SandboxError::Io {
            what: "join the job's cgroup".into(),
            path: procs.clone(),
            source,
        })?;
    }
    // Unshared only now, so that the job sees its own cgroup as the root of the hierarchy.
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| SandboxError::sys("unshare(CLONE_NEWCGROUP)", e))?;
    nix::unistd::sethostname("sandbox")
        .map_err(|e| SandboxError::sys("sethostname(sandbox)", e))?;
    plan.mounts.apply()?;
    if plan.loopback {
        sys::loopback_up()?;
    }
    // Listening before the job exists, so its first connection finds the port open.
    let forwarder = match &plan.forward {
        Some((port, socket)) => {
            let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, *port))
                .map_err(|source| SandboxError::Io {
                    what: format!("listen on 127.0.0.1:{port} for the egress proxy"),
                    path: socket.clone(),
                    source,
                })?;
            Some((listener, socket.clone()))
        }
        None => None,
    };
    #[allow(unsafe_code)]
    // SAFETY: this process has one thread, so the child inherits no lock held by another thread.
    match unsafe { fork() }.map_err(|e| SandboxError::sys("fork(job)", e))? {
        ForkResult::Child => {
            let error = exec_job(plan);
            send(plan.report.as_fd_borrowed(), &failed(&error));
            sys::exit_now(SETUP_FAILED);
        }
        ForkResult::Parent { child } => {
            if let Some((listener, socket)) = forwarder {
                super::egress::forward(listener, socket);
            }
            // Only the job keeps the output pipes, so the supervisor sees EOF when it is gone.
            let _ = nix::unistd::close(plan.stdout.as_raw_fd());
            let _ = nix::unistd::close(plan.stderr.as_raw_fd());
            Ok(child)
        }
    }
}

/// Maps the job's uid/gid onto ours: a rootless jail writes with the caller's identity.
fn map_ids(user: UserSpec, uid: Uid, gid: Gid) -> Result<(), SandboxError> {
    let write = |file: &str, text: String| {
        std::fs::write(file, &text).map_err(|source| SandboxError::Io {
            what: format!("write `{}` (user namespace mapping)", text.trim()),
            path: file.into(),
            source,
        })
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{} {uid} 1\n", user.uid))?;
    write("/proc/self/gid_map", format!("{} {gid} 1\n", user.gid))
}

/// Waits for every process in the jail. When the job's main process ends, kills the rest
/// (a background child must not outlive the job). Returns the main process's status.
fn reap_until_empty(job: Pid) -> Option<WaitStatus> {
    let mut main_status = None;
    loop {
        match waitpid(None, None) {
            Ok(status) => {
                if status.pid() == Some(job) {
                    main_status = Some(status);
                    // pid 1 signalling -1 reaches every other process of the namespace.
                    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return main_status,
        }
    }
}

/// Which tmpfs mounts ended full of bytes or of inodes (what `disk` and `files` limit).
fn full_mounts(tmpfs: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut full = Vec::new();
    let mut no_inodes = Vec::new();
    for path in tmpfs {
        if let Ok(stat) = nix::sys::statvfs::statvfs(path) {
            if stat.blocks_available() == 0 {
                full.push(path.clone());
            }
            if stat.files_available() == 0 {
                no_inodes.push(path.clone());
            }
        }
    }
    (full, no_inodes)
}

/// The job process: drops every privilege, restricts itself, and executes the command.
/// Returns only on failure.
fn exec_job(plan: &JailPlan) -> SandboxError {
    match restrict(plan) {
        Ok(landlock_abi) => {
            send(
                plan.report.as_fd_borrowed(),
                &Report::Applied {
                    landlock_abi,
                    seccomp: !plan.seccomp.programs.is_empty(),
                },
            );
            exec_searching_path(plan)
        }
        Err(error) => error,
    }
}

fn restrict(plan: &JailPlan) -> Result<Option<i32>, SandboxError> {
    nix::unistd::setsid().map_err(|e| SandboxError::sys("setsid()", e))?;
    dup_onto(plan.stdout.as_raw_fd(), 1)?;
    dup_onto(plan.stderr.as_raw_fd(), 2)?;
    sys::cloexec_from(3)?;
    set_rlimits(&plan.limits)?;
    drop_privileges(plan)?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| SandboxError::sys("prctl(NO_NEW_PRIVS)", e))?;
    let landlock_abi = plan.landlock.apply()?;
    plan.seccomp.apply()?;
    Ok(landlock_abi)
}

fn dup_onto(fd: RawFd, target: RawFd) -> Result<(), SandboxError> {
    // SAFETY: `target` is 1 or 2, which this process owns; dup2 replaces it atomically.
    #[allow(unsafe_code)]
    let result = unsafe { libc::dup2(fd, target) };
    if result < 0 {
        return Err(SandboxError::sys(
            format!("dup2({fd}, {target})"),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

fn set_rlimits(limits: &Limits) -> Result<(), SandboxError> {
    use nix::sys::resource::{setrlimit, Resource};
    let cpu_seconds = limits.cpu_time.0.as_secs().max(1);
    let rules = [
        (
            Resource::RLIMIT_NOFILE,
            limits.open_files,
            limits.open_files,
        ),
        (
            Resource::RLIMIT_FSIZE,
            limits.file_size.0,
            limits.file_size.0,
        ),
        // SIGXCPU at the soft limit, SIGKILL a second later.
        (Resource::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
        (Resource::RLIMIT_CORE, 0, 0),
    ];
    for (resource, soft, hard) in rules {
        setrlimit(resource, soft, hard).map_err(|e| {
            SandboxError::sys(format!("setrlimit({resource:?}, {soft}, {hard})"), e)
        })?;
    }
    Ok(())
}

/// Becomes the job's uid/gid with no capabilities left in any set, the bounding set included.
fn drop_privileges(plan: &JailPlan) -> Result<(), SandboxError> {
    for cap in 0..=last_capability() {
        // SAFETY: PR_CAPBSET_DROP takes a capability number, no pointers.
        #[allow(unsafe_code)]
        let result = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match nix::errno::Errno::result(result) {
            Ok(_) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => return Err(SandboxError::sys(format!("prctl(CAPBSET_DROP, {cap})"), e)),
        }
    }
    let uid = Uid::from_raw(plan.user.uid);
    let gid = Gid::from_raw(plan.user.gid);
    if plan.outer_ids.is_none() {
        nix::unistd::setgroups(&[gid])
            .map_err(|e| SandboxError::sys(format!("setgroups([{gid}])"), e))?;
    }
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| SandboxError::sys(format!("setresgid({gid})"), e))?;
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| SandboxError::sys(format!("setresuid({uid})"), e))?;
    sys::drop_all_capabilities()?;
    // Ambient capabilities would survive execve; there must be none.
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    #[allow(unsafe_code)]
    let result = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if result < 0 {
        return Err(SandboxError::sys(
            "prctl(CAP_AMBIENT_CLEAR_ALL)",
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(63)
}

/// Executes the command like a shell does: a name with a slash as it is, otherwise the first
/// match along the job's PATH. Exits 127 when nothing is found, 126 when found but not
/// executable, with the shell's message on the job's stderr.
fn exec_searching_path(plan: &JailPlan) -> SandboxError {
    let program = plan.command[0].as_bytes();
    let candidates: Vec<CString> = if program.contains(&b'/') {
        vec![plan.command[0].clone()]
    } else {
        plan.search_path
            .iter()
            .filter_map(|dir| {
                CString::new(
                    dir.join(std::ffi::OsStr::from_bytes(program))
                        .as_os_str()
                        .as_bytes(),
                )
                .ok()
            })
            .collect()
    };
    let mut not_executable = None;
    for candidate in &candidates {
        let errno = match nix::unistd::execve(candidate, &plan.command, &plan.env) {
            Err(errno) => errno,
            Ok(never) => match never {},
        };
        match errno {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => continue,
            other => {
                not_executable.get_or_insert(other);
            }
        }
    }
    let name = String::from_utf8_lossy(program);
    let (code, message) = match not_executable {
        Some(errno) => (
            126,
            format!("sandbox: {name}: cannot execute: {}\n", errno.desc()),
        ),
        None => (127, format!("sandbox: {name}: command not found\n")),
    };
    // SAFETY: fd 2 is the job's stderr pipe, set up by `restrict`.
    #[allow(unsafe_code)]
    let stderr = unsafe { BorrowedFd::borrow_raw(2) };
    let _ = nix::unistd::write(stderr, message.as_bytes());
    sys::exit_now(code)
}
