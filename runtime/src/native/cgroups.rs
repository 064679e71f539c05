//! cgroups for one job, on v1 (one directory per controller) or v2 (one directory), written
//! directly through cgroupfs. Each job's cgroup is a child of `sandbox/` under the cgroup the
//! supervisor itself runs in, so we only ever create, fill and remove directories of our own.
//!
//! Why not cgroups-rs: it pulls in a D-Bus stack for systemd, and on v2 it does not read
//! `memory.events`, which is where OOM kills are counted. The files we need are few.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::SandboxError;
use crate::profile::Limits;

const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];
const CPU_PERIOD_US: u64 = 100_000;
/// The files that keep a job from swapping beyond its memory limit, on v1 and v2.
const SWAP_FILES: [&str; 2] = ["memory.memsw.limit_in_bytes", "memory.swap.max"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    pub fn name(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }
}

/// Where this process may create job cgroups, or why it may not.
#[derive(Debug, Clone)]
pub struct CgroupHost {
    pub version: CgroupVersion,
    /// v1: the parent directory in each of memory, pids, cpu; v2: one directory.
    parents: Vec<PathBuf>,
}

impl CgroupHost {
    /// Finds the hierarchy and checks that we may create children under our own cgroup.
    pub fn detect() -> Result<CgroupHost, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts = cgroup_mounts(&mountinfo);
        let v1: Vec<PathBuf> = CONTROLLERS
            .iter()
            .filter_map(|controller| {
                let mount = mounts
                    .iter()
                    .find(|m| m.controllers.iter().any(|c| c == controller))?;
                let path = own_cgroup_path(&own, Some(controller))?;
                Some(join_cgroup(&mount.mount_point, &path).join("sandbox"))
            })
            .collect();
        let host = if v1.len() == CONTROLLERS.len() {
            CgroupHost {
                version: CgroupVersion::V1,
                parents: v1,
            }
        } else {
            let mount = mounts
                .iter()
                .find(|m| m.is_v2 && m.v2_controllers().iter().any(|c| c == "memory"))
                .ok_or("no cgroup hierarchy offers the memory, pids and cpu controllers")?;
            let path = own_cgroup_path(&own, None).ok_or("this process is in no v2 cgroup")?;
            let own_dir = match std::env::var_os("SANDBOX_CGROUP_PARENT") {
                Some(parent) => PathBuf::from(parent),
                None => join_cgroup(&mount.mount_point, &path),
            };
            CgroupHost {
                version: CgroupVersion::V2,
                parents: vec![own_dir],
            }
        };
        host.check_writable()?;
        Ok(host)
    }

    fn check_writable(&self) -> Result<(), String> {
        for parent in &self.parents {
            let existing = parent
                .ancestors()
                .find(|dir| dir.exists())
                .unwrap_or(Path::new("/"));
            match nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK) {
                Ok(()) => {}
                Err(nix::errno::Errno::EROFS) => {
                    return Err(format!(
                        "{} is on a read-only filesystem: the cgroup hierarchy is mounted \
                         read-only here (in a container, ask for a writable cgroup mount)",
                        existing.display()
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "{} is not writable by uid {}: the host does not delegate cgroups to \
                         this user (run as root, or under `systemd-run --user --scope -p \
                         Delegate=yes`)",
                        existing.display(),
                        nix::unistd::geteuid()
                    ))
                }
            }
        }
        Ok(())
    }

    /// Creates the job's cgroup and writes its limits.
    pub fn create(&self, job_id: &str, limits: &Limits) -> Result<JobCgroup, SandboxError> {
        let mut cgroup = JobCgroup {
            version: self.version,
            dirs: Vec::new(),
            swap_limited: true,
        };
        if self.version == CgroupVersion::V2 {
            enable_v2_controllers(&self.parents[0])?;
        }
        for parent in &self.parents {
            let dir = parent.join(job_id);
            std::fs::create_dir_all(&dir).map_err(|source| SandboxError::Io {
                what: "create the job's cgroup".into(),
                path: dir.clone(),
                source,
            })?;
            cgroup.dirs.push(dir);
        }
        for (file, value) in limit_files(self.version, limits) {
            // The swap files only exist with swap accounting (CONFIG_MEMCG_SWAP, swapaccount=1);
            // without it the memory limit caps RAM only, which `swap_limited` tells the Outcome.
            if SWAP_FILES.contains(&file) && !cgroup.file(file).exists() {
                cgroup.swap_limited = false;
                continue;
            }
            cgroup.write(file, &value)?;
        }
        Ok(cgroup)
    }
}

impl CgroupHost {
    /// Job cgroups whose supervisor is gone (it was killed before it could remove them), as
    /// cgroups that `JobCgroup::remove` empties and deletes.
    pub fn leftovers(&self) -> Vec<(String, JobCgroup)> {
        let Some(first) = self.parents.first() else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(first) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|job_id| crate::spec::supervisor_is_gone(job_id))
            .map(|job_id| {
                let dirs = self
                    .parents
                    .iter()
                    .map(|parent| parent.join(&job_id))
                    .collect();
                let cgroup = JobCgroup {
                    version: self.version,
                    dirs,
                    swap_limited: true,
                };
                (job_id, cgroup)
            })
            .collect()
    }
}

/// The files and values that enforce `limits`, in the order they must be written
/// (v1 refuses a memsw limit below the memory limit).
pub fn limit_files(version: CgroupVersion, limits: &Limits) -> Vec<(&'static str, String)> {
    let memory = limits.memory.0.to_string();
    let quota = ((limits.cpus * CPU_PERIOD_US as f64).round() as u64).max(1000);
    match version {
        CgroupVersion::V1 => vec![
            ("memory.limit_in_bytes", memory.clone()),
            ("memory.memsw.limit_in_bytes", memory),
            ("memory.swappiness", "0".into()),
            ("pids.max", limits.pids.to_string()),
            ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
            ("cpu.cfs_quota_us", quota.to_string()),
        ],
        CgroupVersion::V2 => vec![
            ("memory.max", memory),
            ("memory.swap.max", "0".into()),
            ("pids.max", limits.pids.to_string()),
            ("cpu.max", format!("{quota} {CPU_PERIOD_US}")),
        ],
    }
}

fn enable_v2_controllers(parent: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(parent).map_err(|source| SandboxError::Io {
        what: "create the cgroup parent".into(),
        path: parent.to_owned(),
        source,
    })?;
    let control = parent.join("cgroup.subtree_control");
    let wanted = "+memory +pids +cpu";
    std::fs::write(&control, wanted).map_err(|source| SandboxError::Io {
        what: format!(
            "enable `{wanted}` for job cgroups (a v2 cgroup with processes of its own cannot; \
             set SANDBOX_CGROUP_PARENT to an empty delegated cgroup)"
        ),
        path: control,
        source,
    })
}

/// One job's cgroup directories. Removed (after killing what is left in them) by `remove`.
#[derive(Debug)]
pub struct JobCgroup {
    pub version: CgroupVersion,
    dirs: Vec<PathBuf>,
    /// Whether swap is limited too (memory + swap = memory); false when the kernel does not
    /// account swap, where the memory limit holds for RAM only.
    pub swap_limited: bool,
}

/// What the cgroup saw of the job.
#[derive(Debug, Default, Clone, Copy)]
pub struct CgroupStats {
    pub peak_memory: Option<u64>,
    pub oom_kills: u64,
    pub pids_max_hits: u64,
}

impl JobCgroup {
    /// The file of that name in whichever directory has its controller.
    fn file(&self, name: &str) -> PathBuf {
        let dir = match self.version {
            CgroupVersion::V2 => &self.dirs[0],
            CgroupVersion::V1 => {
                let controller = name.split('.').next().unwrap_or(name);
                let index = CONTROLLERS
                    .iter()
                    .position(|c| *c == controller)
                    .unwrap_or(0);
                &self.dirs[index]
            }
        };
        dir.join(name)
    }

    fn write(&self, name: &str, value: &str) -> Result<(), SandboxError> {
        let path = self.file(name);
        std::fs::write(&path, value).map_err(|source| SandboxError::Io {
            what: format!("write `{value}` to the job's cgroup"),
            path,
            source,
        })
    }

    /// The files the jail writes `0` into to join (it does so itself, before it unshares its
    /// cgroup namespace, so that the namespace is rooted at the job's cgroup).
    ///
    /// On v1 that is `tasks`: the jail's init is single-threaded, so moving the thread moves the
    /// process, and a thread writing `0` for itself skips the global threadgroup lock, whose
    /// write side waits a whole RCU grace period (~20 ms here, measured with strace) when
    /// taken through `cgroup.procs`.
    pub fn join_files(&self) -> Vec<PathBuf> {
        let file = match self.version {
            CgroupVersion::V1 => "tasks",
            CgroupVersion::V2 => "cgroup.procs",
        };
        self.dirs.iter().map(|dir| dir.join(file)).collect()
    }

    pub fn stats(&self) -> CgroupStats {
        let read = |name: &str| std::fs::read_to_string(self.file(name)).ok();
        let number = |name: &str| read(name).and_then(|text| text.trim().parse::<u64>().ok());
        let keyed = |name: &str, key: &str| {
            read(name).and_then(|text| {
                text.lines().find_map(|line| {
                    let (k, v) = line.split_once(' ')?;
                    (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
                })
            })
        };
        match self.version {
            CgroupVersion::V1 => CgroupStats {
                peak_memory: number("memory.max_usage_in_bytes"),
                oom_kills: keyed("memory.oom_control", "oom_kill").unwrap_or(0),
                pids_max_hits: keyed("pids.events", "max").unwrap_or(0),
            },
            CgroupVersion::V2 => CgroupStats {
                peak_memory: number("memory.peak"),
                oom_kills: keyed("memory.events", "oom_kill").unwrap_or(0),
                pids_max_hits: keyed("pids.events", "max").unwrap_or(0),
            },
        }
    }

    /// Kills whatever is still in the cgroup (only the job's own processes can be there) and
    /// removes the directories. Never fails the job: what it cannot remove it reports.
    pub fn remove(self) -> Result<(), SandboxError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        for dir in self.dirs.iter().rev() {
            loop {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs
                    .lines()
                    .filter_map(|line| line.trim().parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(source) => {
                        return Err(SandboxError::Io {
                            what: "remove the job's cgroup".into(),
                            path: dir.clone(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

struct CgroupMount {
    mount_point: PathBuf,
    is_v2: bool,
    controllers: Vec<String>,
}

impl CgroupMount {
    fn v2_controllers(&self) -> Vec<String> {
        std::fs::read_to_string(self.mount_point.join("cgroup.controllers"))
            .map(|text| text.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut after = after.split_whitespace();
            let fstype = after.next()?;
            let _source = after.next()?;
            let super_options = after.next().unwrap_or("");
            let mount_point = before.split_whitespace().nth(4)?;
            match fstype {
                "cgroup2" => Some(CgroupMount {
                    mount_point: mount_point.into(),
                    is_v2: true,
                    controllers: Vec::new(),
                }),
                "cgroup" => Some(CgroupMount {
                    mount_point: mount_point.into(),
                    is_v2: false,
                    controllers: super_options.split(',').map(str::to_owned).collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// Our cgroup path in the hierarchy of `controller` (v1), or the unified one (`None`).
fn own_cgroup_path(proc_self_cgroup: &str, controller: Option<&str>) -> Option<String> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            Some(wanted) => controllers.split(',').any(|c| c == wanted),
            None => controllers.is_empty(),
        };
        matches.then(|| path.to_owned())
    })
}

fn join_cgroup(mount_point: &Path, cgroup_path: &str) -> PathBuf {
    mount_point.join(cgroup_path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_and_v2_mounts() {
        let mountinfo =
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                         41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                         22 27 0:21 / /proc rw,relatime - proc proc rw\n";
        let mounts = cgroup_mounts(mountinfo);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].controllers, ["rw", "memory"]);
        assert!(mounts[1].is_v2);
    }

    #[test]
    fn reads_own_path_per_controller() {
        let text = "8:pids:/\n4:memory:/outer/job\n1:cpu,cpuacct:/c\n0::/unified/path\n";
        assert_eq!(
            own_cgroup_path(text, Some("memory")).as_deref(),
            Some("/outer/job")
        );
        assert_eq!(own_cgroup_path(text, Some("cpu")).as_deref(), Some("/c"));
        assert_eq!(
            own_cgroup_path(text, None).as_deref(),
            Some("/unified/path")
        );
    }

    #[test]
    fn limit_files_swap_off_and_quota() {
        let limits = Limits {
            cpus: 1.5,
            ..Limits::default()
        };
        let v1 = limit_files(CgroupVersion::V1, &limits);
        assert_eq!(v1[0].1, v1[1].1, "memsw equals memory: no swap");
        assert!(v1.contains(&("cpu.cfs_quota_us", "150000".into())));
        let v2 = limit_files(CgroupVersion::V2, &limits);
        assert!(v2.contains(&("memory.swap.max", "0".into())));
        assert!(v2.contains(&("cpu.max", "150000 100000".into())));
    }
}
