//! The native backend: a jail built from namespaces, a read-only root, landlock, cgroups,
//! rlimits and seccomp, with no daemon. This file is the supervisor side: it plans, starts the
//! jail, enforces wall time, collects output and turns what happened into the Outcome.

pub mod cgroups;
pub mod egress;
mod jail;
pub mod landlock;
pub mod mounts;
pub mod seccomp;
pub(crate) mod sys;

use std::ffi::CString;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::error::SandboxError;
use crate::host::HostFacts;
use crate::outcome::{CgroupLimit, Ending, Isolation, Outcome};
use crate::output::{Captured, OutputSink};
use crate::profile::{Feature, NetworkMode};
use crate::secrets::Delivery;
use crate::signals::BlockedTerminating;
use crate::spec::JobSpec;

use self::cgroups::JobCgroup;
use self::egress::Egress;
use self::jail::{JailPlan, Report};
use self::landlock::LandlockPlan;
use self::mounts::MountPlan;
use self::seccomp::SeccompPlan;
use crate::network;

/// Runs `spec` in a native jail. Must be called while the process has a single thread (see
/// `sys::clone_into_namespaces`); the CLI does.
pub fn run(spec: &JobSpec, backend_reason: String) -> Result<Outcome, SandboxError> {
    let host = HostFacts::probe();
    check_requirements(spec, &host)?;
    let rootless = !nix::unistd::geteuid().is_root();
    let cgroup = match &host.cgroup {
        Ok(cgroup_host) => Some(cgroup_host.create(&spec.id, &spec.limits)?),
        Err(_) => None,
    };
    let swap_limited = cgroup.as_ref().is_none_or(|c| c.swap_limited);
    let result = run_in_cgroup(spec, rootless, cgroup.as_ref(), backend_reason);
    let removed = cgroup.map(JobCgroup::remove).transpose();
    let mut outcome = result?;
    // A limit this host cannot enforce is named, never silent (issue 16); a profile requiring
    // `cgroup` was refused above.
    if let Err(reason) = &host.cgroup {
        outcome.unenforced(spec, &CgroupLimit::ALL, &format!("no cgroup: {reason}"));
    } else if !swap_limited && host_has_swap() {
        outcome.unenforced(
            spec,
            &[CgroupLimit::Memory],
            "it caps RAM only: this host has swap and its kernel does not account it \
             (swapaccount=1), so the job may swap beyond the limit",
        );
    }
    if let Err(error) = removed {
        outcome.notes.push(format!("cleanup: {error}"));
    }
    Ok(outcome)
}

/// Whether the host has any swap a job could use beyond its memory limit.
fn host_has_swap() -> bool {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("SwapTotal:"))
                .map(|rest| rest.trim().trim_end_matches("kB").trim() != "0")
        })
        .unwrap_or(false)
}

fn check_requirements(spec: &JobSpec, host: &HostFacts) -> Result<(), SandboxError> {
    for feature in &spec.require {
        let missing = match feature {
            Feature::Netns => (spec.network == NetworkMode::Host).then(|| {
                "the network mode is `host`, which shares the host's network namespace".into()
            }),
            other => host.missing(*other),
        };
        if let Some(reason) = missing {
            return Err(SandboxError::Refused {
                feature: feature.to_string(),
                reason,
            });
        }
    }
    if !nix::unistd::geteuid().is_root() {
        if let Err(reason) = &host.user_namespaces {
            return Err(SandboxError::Refused {
                feature: "userns".into(),
                reason: format!("{reason}; without root, the native backend needs it"),
            });
        }
    }
    Ok(())
}

fn run_in_cgroup(
    spec: &JobSpec,
    rootless: bool,
    cgroup: Option<&JobCgroup>,
    backend_reason: String,
) -> Result<Outcome, SandboxError> {
    let mut egress = match spec.network {
        NetworkMode::Allowlist => Some(Egress::prepare(&spec.id)?),
        _ => None,
    };
    let proxy_socket = egress.as_ref().map(Egress::socket);
    // Every mode but `host` gets a network namespace of its own, holding only `lo` (and, for the
    // allowlist, the proxy's forwarder on it).
    let own_netns = spec.network != NetworkMode::Host;
    let mounts = MountPlan::new(spec, Path::new("/"), proxy_socket.as_deref())?;
    let (report_read, report_write) = pipe()?;
    let (stdout_read, stdout_write) = pipe()?;
    let (stderr_read, stderr_write) = pipe()?;
    let mut writable: Vec<PathBuf> = spec.tmpfs.iter().map(|(path, _)| path.clone()).collect();
    if spec.shm_size().is_some() {
        writable.push(PathBuf::from("/dev/shm"));
    }
    let tmpfs = writable.clone();
    if spec.workspace_writable() {
        writable.push(spec.workspace_mount.clone());
    }
    writable.extend(
        spec.binds
            .iter()
            .filter(|bind| bind.writable)
            .map(|bind| bind.target.clone()),
    );
    let plan = JailPlan {
        command: cstrings(spec.command.iter().map(String::as_bytes), "command")?,
        env: cstrings(
            spec.env
                .iter()
                .chain(
                    egress
                        .as_ref()
                        .map(|_| network::proxy_env(&spec.proxy.allowlist))
                        .iter()
                        .flatten(),
                )
                .map(|(k, v)| format!("{k}={v}").into_bytes())
                .chain(secret_env(spec)),
            "environment",
        )?,
        search_path: spec
            .env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, path)| std::env::split_paths(path).collect())
            .unwrap_or_default(),
        mounts,
        landlock: LandlockPlan {
            writable,
            devices: ["null", "zero", "full", "random", "urandom", "tty"]
                .iter()
                .map(|name| Path::new("/dev").join(name))
                .collect(),
            // Inside a network namespace of our own, everything a job can connect to is its own
            // loopback (its test servers, the proxy's forwarder): a TCP rule there protects
            // nothing and breaks every test suite with a local HTTP server (issue 16); the
            // allowlist governs what leaves. The rule is for a job sharing a namespace that is
            // not its own; `host` mode asked for the host's network, so it gets no rule.
            deny_tcp: !own_netns && spec.network != NetworkMode::Host,
            tcp_connect: egress
                .as_ref()
                .map(|_| network::PROXY_PORT)
                .into_iter()
                .collect(),
            required: spec.require.contains(&Feature::Landlock),
        },
        seccomp: SeccompPlan::build(spec.seccomp)?,
        limits: spec.limits.clone(),
        user: spec.user,
        outer_ids: rootless.then(|| (nix::unistd::geteuid(), nix::unistd::getegid())),
        cgroup_join: cgroup.map(JobCgroup::join_files).unwrap_or_default(),
        loopback: own_netns,
        forward: egress
            .as_ref()
            .map(|_| (network::PROXY_PORT, PathBuf::from(egress::JAIL_SOCKET))),
        tmpfs,
        stdout: stdout_write,
        stderr: stderr_write,
        report: report_write,
    };
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if own_netns {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if rootless {
        flags |= CloneFlags::CLONE_NEWUSER;
    }

    // Block the terminating signals before the clone, so that one arriving now is read from the
    // signalfd (killing the jail, removing the cgroup) rather than killing us outright. The
    // threads started below inherit the mask.
    let blocked = BlockedTerminating::block()?;

    let started = Instant::now();
    let cloned = sys::clone_into_namespaces(&mut || jail::init(&plan), flags);
    let JailPlan {
        stdout,
        stderr,
        report,
        ..
    } = plan;
    drop((stdout, stderr, report));
    let pid = cloned?;

    let proxy = egress
        .as_mut()
        .map(|egress| egress.start(spec.proxy.clone(), spec.observer.clone()))
        .transpose();
    let (stdout_sink, stderr_sink) = OutputSink::pair(
        spec.output,
        spec.limits.output.0,
        &spec.redactor,
        &spec.observer,
    );
    let readers = [
        spawn_reader(stdout_read, stdout_sink),
        spawn_reader(stderr_read, stderr_sink),
    ];
    let deadline = started + spec.limits.wall_time.0;
    let waited = wait_for_jail(pid, blocked.set(), deadline);
    let duration = started.elapsed();
    drop(blocked);
    let Waited {
        exit,
        timed_out,
        interrupted,
    } = waited?;
    let [stdout, stderr] = readers.map(|reader| reader.join().unwrap_or_default());
    let events = proxy?.map(egress::RunningProxy::finish).unwrap_or_default();
    let reports = read_reports(report_read);
    if let Some(signal) = interrupted {
        return Err(SandboxError::Interrupted {
            signal: signal as i32,
        });
    }

    let mut applied = None;
    let mut finished = None;
    for report in reports {
        match report {
            Report::Failed {
                message,
                refused: Some(feature),
            } => {
                return Err(SandboxError::Refused {
                    feature,
                    reason: message,
                })
            }
            Report::Failed {
                message,
                refused: None,
            } => return Err(SandboxError::Setup(message)),
            Report::Applied {
                landlock_abi,
                seccomp,
            } => applied = Some((landlock_abi, seccomp)),
            Report::Finished { .. } => finished = Some(report),
        }
    }
    let stats = cgroup.map(JobCgroup::stats).unwrap_or_default();
    let mut outcome = Outcome::new(
        spec,
        "native",
        backend_reason,
        isolation(spec, rootless, cgroup, applied),
    );
    outcome.duration_ms = duration.as_secs_f64() * 1000.0;
    outcome.cpu_ms = exit.cpu.as_secs_f64() * 1000.0;
    outcome.peak_memory_bytes = stats.peak_memory.or(Some(exit.max_rss_bytes));
    outcome.set_output(spec.output, stdout, stderr);
    outcome.network.events = events;
    let ending = match finished {
        Some(Report::Finished {
            exit_code,
            signal,
            full_tmpfs,
            exhausted_inodes,
        }) => Ending {
            exit_code,
            signal,
            full_tmpfs,
            exhausted_inodes,
            ..Ending::default()
        },
        _ => Ending::default(),
    };
    outcome
        .conclude(
            spec,
            Ending {
                timed_out,
                oom_kills: stats.oom_kills,
                pids_max_hits: stats.pids_max_hits,
                ..ending
            },
        )
        .map_err(|why| {
            SandboxError::Setup(format!("{why}: the jail's init ended without a report"))
        })?;
    Ok(outcome)
}

fn isolation(
    spec: &JobSpec,
    rootless: bool,
    cgroup: Option<&JobCgroup>,
    applied: Option<(Option<i32>, bool)>,
) -> Isolation {
    let mut namespaces = vec!["mount", "pid", "ipc", "uts", "cgroup"];
    if spec.network != NetworkMode::Host {
        namespaces.push("net");
    }
    if rootless {
        namespaces.push("user");
    }
    Isolation {
        user_ns: rootless,
        namespaces: namespaces.into_iter().map(str::to_owned).collect(),
        landlock_abi: applied.and_then(|(abi, _)| abi),
        seccomp: applied.is_some_and(|(_, seccomp)| seccomp),
        cgroup: cgroup.map(|c| c.version.name().to_owned()),
        net: spec.network,
        readonly_root: true,
        no_new_privs: applied.is_some(),
        capabilities_dropped: applied.is_some(),
        uid: spec.user.uid,
        gid: spec.user.gid,
    }
}

/// `NAME=value` for each secret delivered as a variable: part of the job's environment at
/// `execve`, never of anyone's argv.
fn secret_env(spec: &JobSpec) -> impl Iterator<Item = Vec<u8>> + '_ {
    spec.secrets
        .iter()
        .filter(|secret| secret.delivery == Delivery::Env)
        .map(|secret| [secret.name.as_bytes(), b"=", secret.value()].concat())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::sys("pipe2(O_CLOEXEC)", e))
}

fn cstrings<I, B>(items: I, what: &str) -> Result<Vec<CString>, SandboxError>
where
    I: IntoIterator<Item = B>,
    B: Into<Vec<u8>>,
{
    items
        .into_iter()
        .map(|item| {
            CString::new(item)
                .map_err(|_| SandboxError::InvalidSpec(format!("the {what} contains a NUL byte")))
        })
        .collect()
}

fn spawn_reader(pipe: OwnedFd, mut sink: OutputSink) -> std::thread::JoinHandle<Captured> {
    std::thread::spawn(move || {
        let mut source = std::fs::File::from(pipe);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => sink.write(&buffer[..count]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        sink.finish()
    })
}

struct Waited {
    exit: sys::Exit,
    timed_out: bool,
    interrupted: Option<Signal>,
}

/// Waits for the jail's init to end, killing it at the deadline or when one of the (blocked)
/// terminating signals arrives. One poll on a pidfd and a signalfd: no thread, no polling loop.
fn wait_for_jail(
    pid: Pid,
    terminating: &SigSet,
    deadline: Instant,
) -> Result<Waited, SandboxError> {
    let pidfd = sys::pidfd_open(pid)?;
    let signals = SignalFd::with_flags(terminating, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| SandboxError::sys("signalfd(INT, TERM, HUP)", e))?;
    let mut timed_out = false;
    let mut interrupted = None;
    loop {
        let timeout = if timed_out || interrupted.is_some() {
            PollTimeout::NONE
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX)
        };
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        let ready = match poll(&mut fds, timeout) {
            Ok(ready) => ready,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::sys("poll(pidfd, signalfd)", e)),
        };
        let [jail, signal] = fds.map(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
        if jail {
            return Ok(Waited {
                exit: sys::wait4(pid)?,
                timed_out,
                interrupted,
            });
        }
        if signal {
            if let Ok(Some(info)) = signals.read_signal() {
                interrupted = Signal::try_from(info.ssi_signo as i32).ok();
                let _ = kill(pid, Signal::SIGKILL);
            }
        } else if ready == 0 && !timed_out {
            timed_out = true;
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

fn read_reports(pipe: OwnedFd) -> Vec<Report> {
    let mut text = String::new();
    let _ = std::fs::File::from(pipe).read_to_string(&mut text);
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
