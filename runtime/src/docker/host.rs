//! What a local engine lets us see of a container from the host: its init process (as a pidfd,
//! to notice its end at once and to kill it even when the engine no longer answers), and its
//! cgroup (forks refused at the pids limit, peak memory, OOM kills, CPU time).
//!
//! The cgroup must be read the moment the init exits: the engine's runtime removes it soon
//! after, and cgroup v1 gives no notification when `pids.events` changes. When the init has
//! exited, every process of the container is gone (the kernel kills a pid namespace with its
//! init before reporting the init's exit), so what we read then is final.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The container's first process (the init), seen from the host.
pub struct InitProcess {
    pidfd: AsyncFd<OwnedFd>,
    pub cgroup: Option<ContainerCgroup>,
}

impl InitProcess {
    /// Opens `pid` (the engine's `State.Pid`) if it is the container's: its cgroup path must
    /// name the container's id, which also rules out a pid seen through another pid namespace
    /// or reused by now. Must be called inside the runtime.
    pub fn find(pid: i64, container_id: &str) -> Option<InitProcess> {
        let pid = i32::try_from(pid).ok().filter(|pid| *pid > 0)?;
        let pidfd = crate::native::sys::pidfd_open(nix::unistd::Pid::from_raw(pid)).ok()?;
        // Read after opening the pidfd: if this still names the container, the pidfd does too.
        let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        if container_id.len() < 12 || !membership.contains(container_id) || !is_namespace_init(pid)
        {
            return None;
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup = ContainerCgroup::locate(&membership, &mountinfo, container_id);
        // SAFETY: the OwnedFd keeps its descriptor open, and always the same one, for as long
        // as the AsyncFd owns it.
        let pidfd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }.ok()?;
        Some(InitProcess { pidfd, cgroup })
    }

    /// SIGKILL to the init, which takes the whole pid namespace with it. Works without the
    /// engine; fails (EPERM) when we are not root and the job's uid is not ours.
    pub fn kill(&self) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal takes a pidfd we own, a signal number, a null siginfo and
        // no flags; it touches no memory of ours.
        let result = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.get_ref().as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if result == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// A TCP listener on the container's own loopback (`127.0.0.1:port`): the egress proxy's
    /// door into a container whose network is `none`. A short-lived thread enters the
    /// container's network namespace through the init's pidfd and binds there; the socket
    /// stays in that namespace while we accept from it in ours, so no process is added to the
    /// container and nothing else of the host becomes reachable from it.
    pub fn listen_in_netns(&self, port: u16) -> std::io::Result<std::net::TcpListener> {
        let pidfd = self.pidfd.get_ref();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(pidfd, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(std::io::Error::from)?;
                    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
        })
    }

    /// Waits for the init to exit. Read the cgroup at once then: the runtime removes it as soon
    /// as the engine has heard of the exit.
    pub async fn exited(&self) {
        if let Ok(mut ready) = self.pidfd.readable().await {
            ready.retain_ready();
        }
    }

    pub fn sample(&self) -> Option<CgroupSample> {
        self.cgroup.as_ref().and_then(ContainerCgroup::sample)
    }
}

/// Finds the container's init while the engine is still starting it: the runtime creates the
/// container's cgroup and puts its init there before the init executes anything, so polling
/// for that cgroup during the `start` request catches the init even of a job that ends at
/// once (`true`), whose pid would be gone by the time `start` answers. Looks where the engine
/// puts cgroups (`docker/ID` with the cgroupfs driver, `system.slice/docker-ID.scope` with
/// systemd); pending forever when they never appear (the caller bounds it by `start`).
pub async fn catch_init(container_id: &str) -> InitProcess {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let candidates: Vec<PathBuf> = cgroup_mounts(&mountinfo)
        .iter()
        .filter(|m| m.version == 2 || m.options.split(',').any(|option| option == "pids"))
        .flat_map(|m| {
            [
                m.point.join("docker").join(container_id),
                m.point
                    .join("system.slice")
                    .join(format!("docker-{container_id}.scope")),
            ]
        })
        .map(|dir| dir.join("cgroup.procs"))
        .collect();
    if candidates.is_empty() {
        return std::future::pending().await;
    }
    loop {
        // The runtime's own setup processes pass through the cgroup first; the container's
        // init is the one that is pid 1 of a pid namespace of its own.
        let found = candidates.iter().find_map(|procs| {
            std::fs::read_to_string(procs)
                .ok()?
                .lines()
                .filter_map(|line| line.trim().parse::<i64>().ok())
                .find_map(|pid| InitProcess::find(pid, container_id))
        });
        if let Some(init) = found {
            return init;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether `pid` is the first process of a pid namespace below ours (`NSpid: 4242 1`), as a
/// container's init is, and the runtime's setup processes in our namespace are not.
fn is_namespace_init(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("NSpid:"))?;
            let ids: Vec<&str> = line["NSpid:".len()..].split_whitespace().collect();
            Some(ids.len() >= 2 && ids.last() == Some(&"1"))
        })
        .unwrap_or(false)
}

/// The container's cgroup files we read, on v1 (one directory per controller) or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCgroup {
    V1 {
        pids: Option<PathBuf>,
        memory: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
    },
    V2 {
        dir: PathBuf,
    },
}

/// What the container's cgroup said when its init exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupSample {
    pub pids_max_hits: u64,
    pub oom_kills: u64,
    pub peak_memory: Option<u64>,
    pub cpu: Option<Duration>,
}

impl ContainerCgroup {
    /// Where the container's cgroup is, from its init's `/proc/PID/cgroup` and our mountinfo.
    /// Only paths naming the container count: an exiting process shows the root cgroup for
    /// some controllers, whose counters are the whole host's. The engine gives a container the
    /// same path in every v1 hierarchy, so one named path serves for all three controllers we
    /// read, even for one the init has not joined yet when we look.
    pub fn locate(
        membership: &str,
        mountinfo: &str,
        container_id: &str,
    ) -> Option<ContainerCgroup> {
        let mounts = cgroup_mounts(mountinfo);
        let entries: Vec<(&str, &str)> = membership
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                Some((controllers, path))
            })
            .filter(|(_, path)| path.contains(container_id))
            .collect();
        let v1_path = entries
            .iter()
            .find(|(controllers, _)| {
                controllers
                    .split(',')
                    .any(|c| ["pids", "memory", "cpuacct"].contains(&c))
            })
            .map(|(_, path)| *path);
        if let Some(path) = v1_path {
            let dir = |controller: &str| {
                mounts
                    .iter()
                    .find(|m| m.version == 1 && m.options.split(',').any(|o| o == controller))?
                    .join(path)
            };
            return Some(ContainerCgroup::V1 {
                pids: dir("pids"),
                memory: dir("memory"),
                cpuacct: dir("cpuacct"),
            });
        }
        // No v1 controller: the unified hierarchy (`0::/path`).
        let (_, path) = entries
            .iter()
            .find(|(controllers, _)| controllers.is_empty())?;
        let mount = mounts.iter().find(|m| m.version == 2)?;
        Some(ContainerCgroup::V2 {
            dir: mount.join(path)?,
        })
    }

    /// Reads the counters; `None` when the cgroup is gone already.
    pub fn sample(&self) -> Option<CgroupSample> {
        let read = |path: PathBuf| std::fs::read_to_string(path).ok();
        let number = |text: Option<String>| text.and_then(|t| t.trim().parse::<u64>().ok());
        let sample = match self {
            ContainerCgroup::V1 {
                pids,
                memory,
                cpuacct,
            } => {
                let events = pids.as_ref().and_then(|d| read(d.join("pids.events")));
                let oom = memory
                    .as_ref()
                    .and_then(|d| read(d.join("memory.oom_control")));
                let peak = memory
                    .as_ref()
                    .and_then(|d| number(read(d.join("memory.max_usage_in_bytes"))));
                let cpu = cpuacct
                    .as_ref()
                    .and_then(|d| number(read(d.join("cpuacct.usage"))))
                    .map(Duration::from_nanos);
                if events.is_none() && peak.is_none() && cpu.is_none() {
                    return None;
                }
                CgroupSample {
                    pids_max_hits: keyed(events.as_deref(), "max"),
                    oom_kills: keyed(oom.as_deref(), "oom_kill"),
                    peak_memory: peak,
                    cpu,
                }
            }
            ContainerCgroup::V2 { dir } => {
                let events = read(dir.join("pids.events"));
                let stat = read(dir.join("cpu.stat"))?;
                CgroupSample {
                    pids_max_hits: keyed(events.as_deref(), "max"),
                    oom_kills: keyed(read(dir.join("memory.events")).as_deref(), "oom_kill"),
                    peak_memory: number(read(dir.join("memory.peak"))),
                    cpu: Some(Duration::from_micros(keyed(Some(&stat), "usage_usec"))),
                }
            }
        };
        Some(sample)
    }
}

/// `key N` out of a flat-keyed cgroup file (`max 3`, `oom_kill 1`); 0 when absent.
fn keyed(text: Option<&str>, key: &str) -> u64 {
    text.into_iter()
        .flat_map(str::lines)
        .find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == key).then(|| value.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

struct CgroupMount {
    version: u8,
    /// The part of the hierarchy mounted (`/` unless we are in a cgroup namespace of our own).
    root: PathBuf,
    point: PathBuf,
    options: String,
}

impl CgroupMount {
    /// The directory of `path` (as `/proc/PID/cgroup` writes it) under this mount; `None` when
    /// it lies outside what is mounted.
    fn join(&self, path: &str) -> Option<PathBuf> {
        let inside = Path::new(path).strip_prefix(&self.root).ok()?;
        if inside
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return None;
        }
        Some(self.point.join(inside))
    }
}

/// cgroup and cgroup2 mounts from `/proc/self/mountinfo`:
/// `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mut after = after.split(' ');
            let version = match after.next()? {
                "cgroup" => 1,
                "cgroup2" => 2,
                _ => return None,
            };
            let options = after.nth(1).unwrap_or_default().to_owned();
            Some(CgroupMount {
                version,
                root: PathBuf::from(unescape(fields.get(3)?)),
                point: PathBuf::from(unescape(fields.get(4)?)),
                options,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The engine's init binary, when a mirrored host path holds it: the container then runs it
/// from there (at the same path) as its entrypoint. Docker's own `Init` binds the binary on
/// `/sbin/docker-init`, which in an image whose `/sbin` is a symlink into a mirrored `/usr`
/// resolves into the host's read-only `/usr/sbin`, where the bind is hidden by the mirror
/// mounted on top and the container fails to start. Only meaningful for a local engine.
pub fn mirrored_init(mirrors: &[PathBuf], init_binary: Option<&str>) -> Option<PathBuf> {
    let name = init_binary.unwrap_or("docker-init");
    if name.contains('/') {
        let path = PathBuf::from(name);
        return (mirrors.iter().any(|m| path.starts_with(m)) && is_executable(&path))
            .then_some(path);
    }
    // Where dockerd looks for it: its PATH, then its libexec directories.
    const DIRS: [&str; 10] = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/lib/docker",
        "/usr/lib/docker",
        "/usr/local/libexec/docker",
        "/usr/libexec/docker",
    ];
    DIRS.iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| mirrors.iter().any(|m| path.starts_with(m)) && is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o001 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";

    #[test]
    fn finds_a_v1_container_cgroup() {
        let membership = "\
9:name=systemd:/docker/abc
8:pids:/docker/abc
4:memory:/docker/abc
1:cpu,cpuacct:/docker/abc
0::/
";
        assert_eq!(
            ContainerCgroup::locate(membership, MOUNTINFO_V1, "abc"),
            Some(ContainerCgroup::V1 {
                pids: Some("/sys/fs/cgroup/pids/docker/abc".into()),
                memory: Some("/sys/fs/cgroup/memory/docker/abc".into()),
                cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct/docker/abc".into()),
            })
        );
    }

    #[test]
    fn finds_a_v2_container_cgroup() {
        let mountinfo = "35 25 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            ContainerCgroup::locate("0::/system.slice/docker-abc.scope\n", mountinfo, "abc"),
            Some(ContainerCgroup::V2 {
                dir: "/sys/fs/cgroup/system.slice/docker-abc.scope".into()
            })
        );
        // Outside what is mounted (we are in a cgroup namespace of our own): not guessed.
        assert_eq!(
            ContainerCgroup::locate("0::/../docker/abc\n", mountinfo, "abc"),
            None
        );
    }

    #[test]
    fn uses_the_containers_path_for_every_controller() {
        // An exiting process shows the root for some controllers (and an init being set up
        // has not joined them all yet): the container's path serves for every controller.
        let exiting = "8:pids:/docker/abc\n4:memory:/\n";
        assert_eq!(
            ContainerCgroup::locate(exiting, MOUNTINFO_V1, "abc"),
            Some(ContainerCgroup::V1 {
                pids: Some("/sys/fs/cgroup/pids/docker/abc".into()),
                memory: Some("/sys/fs/cgroup/memory/docker/abc".into()),
                cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct/docker/abc".into()),
            })
        );
    }

    #[test]
    fn reads_flat_keyed_counters() {
        assert_eq!(keyed(Some("max 7\n"), "max"), 7);
        assert_eq!(
            keyed(
                Some("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
                "oom_kill"
            ),
            2
        );
        assert_eq!(keyed(None, "max"), 0);
    }

    #[test]
    fn finds_the_init_only_under_a_mirror() {
        let Some(found) = ["/usr/bin/docker-init", "/usr/sbin/docker-init"]
            .into_iter()
            .find(|path| is_executable(Path::new(path)))
        else {
            return;
        };
        assert_eq!(
            mirrored_init(&[PathBuf::from("/usr")], None),
            Some(PathBuf::from(found))
        );
        assert_eq!(mirrored_init(&[PathBuf::from("/opt")], None), None);
    }
}
