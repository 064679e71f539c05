//! What this host can enforce, probed without changing anything: used to refuse profiles whose
//! `require` cannot be met, and by `sandbox doctor`.

use std::path::Path;

use serde::Serialize;

use crate::native::cgroups::CgroupHost;
use crate::native::landlock::kernel_abi;
use crate::outcome::CgroupLimit;
use crate::profile::{self, Feature};

pub struct HostFacts {
    pub landlock_abi: Option<i32>,
    pub seccomp: bool,
    pub cgroup: Result<CgroupHost, String>,
    /// Whether this user may create user namespaces (needed when not root).
    pub user_namespaces: Result<(), String>,
    pub overlayfs: bool,
}

impl HostFacts {
    pub fn probe() -> HostFacts {
        HostFacts {
            landlock_abi: kernel_abi(),
            seccomp: seccomp_available(),
            cgroup: CgroupHost::detect(),
            user_namespaces: user_namespaces(),
            overlayfs: std::fs::read_to_string("/proc/filesystems")
                .map(|text| text.lines().any(|line| line.ends_with("\toverlay")))
                .unwrap_or(false),
        }
    }

    /// Why `feature` is unavailable, or `None` when it is there.
    pub fn missing(&self, feature: Feature) -> Option<String> {
        match feature {
            Feature::Landlock => self.landlock_abi.is_none().then(|| {
                "this kernel has no landlock (CONFIG_SECURITY_LANDLOCK, lsm=landlock)".into()
            }),
            Feature::Cgroup => self.cgroup.as_ref().err().cloned(),
            Feature::Seccomp => {
                (!self.seccomp).then(|| "this kernel has no seccomp filters".into())
            }
            Feature::Netns => None,
            Feature::Userns => self.user_namespaces.as_ref().err().cloned(),
        }
    }
}

fn seccomp_available() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|text| text.lines().any(|line| line.starts_with("Seccomp:")))
        .unwrap_or(false)
}

fn user_namespaces() -> Result<(), String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|text| text.trim().to_owned())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0")
        && !nix::unistd::geteuid().is_root()
    {
        return Err(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
                .into(),
        );
    }
    if !Path::new("/proc/self/ns/user").exists() {
        return Err("this kernel has no user namespaces".into());
    }
    Ok(())
}

/// `sandbox doctor`: the host's isolation features and which built-in profiles can run here.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub kernel: String,
    pub uid: u32,
    pub landlock_abi: Option<i32>,
    pub seccomp: bool,
    pub cgroup: FeatureState,
    pub user_namespaces: FeatureState,
    pub overlayfs: bool,
    /// Which of a profile's limits this user can enforce on the native backend.
    pub limits: LimitsReport,
    /// Whether a workspace owned by someone else can be idmapped onto the job's uid here (tried
    /// on the current directory); without it the job sees the host's permissions.
    pub idmapped_mounts: FeatureState,
    pub docker: FeatureState,
    pub profiles: Vec<ProfileReadiness>,
}

/// The profile's `[limits]` by name, split by whether this user can enforce them natively. A
/// job under an unenforced limit runs with the limit named in its Outcome's
/// `limits_unenforced`, unless its profile requires `cgroup`.
#[derive(Debug, Serialize)]
pub struct LimitsReport {
    pub enforced: Vec<String>,
    pub unenforced: Vec<String>,
    /// How each kind is enforced, and why any is not.
    pub detail: String,
}

/// Limits that rlimits, tmpfs sizes, the supervisor or write-back enforce for every user.
const ALWAYS_ENFORCED: [&str; 9] = [
    "wall_time",
    "cpu_time",
    "open_files",
    "file_size",
    "disk",
    "files",
    "changed_files",
    "changed_lines",
    "output",
];

fn limits_report(facts: &HostFacts) -> LimitsReport {
    let cgroup_limits = CgroupLimit::ALL.iter().map(|limit| limit.name().to_owned());
    let mut enforced: Vec<String> = ALWAYS_ENFORCED.iter().map(|n| (*n).to_owned()).collect();
    let always = "wall_time by the supervisor; cpu_time, open_files, file_size by rlimits; disk \
                  and files by tmpfs sizes and the scratch view; changed_* and output by sandbox";
    match &facts.cgroup {
        Ok(host) => {
            enforced.extend(cgroup_limits);
            LimitsReport {
                enforced,
                unenforced: Vec::new(),
                detail: format!(
                    "memory, pids, cpus by a cgroup {} of the job's own; {always}",
                    host.version.name()
                ),
            }
        }
        Err(reason) => LimitsReport {
            enforced,
            unenforced: cgroup_limits.collect(),
            detail: format!(
                "memory, pids, cpus need a cgroup and none is available ({reason}): jobs run \
                 with them named in the Outcome's limits_unenforced, and profiles requiring \
                 `cgroup` refuse; {always}"
            ),
        },
    }
}

#[derive(Debug, Serialize)]
pub struct FeatureState {
    pub available: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct ProfileReadiness {
    pub name: String,
    pub runnable: bool,
    pub missing: Vec<String>,
}

pub fn doctor() -> DoctorReport {
    let facts = HostFacts::probe();
    let profiles = profile::BUILTINS
        .iter()
        .map(|(name, _)| {
            let missing = match profile::load_with_search_path(name, &[]) {
                Ok(resolved) => readiness(&facts, &resolved.profile),
                Err(error) => vec![error.to_string()],
            };
            ProfileReadiness {
                name: (*name).to_owned(),
                runnable: missing.is_empty(),
                missing,
            }
        })
        .collect();
    DoctorReport {
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        uid: nix::unistd::geteuid().as_raw(),
        landlock_abi: facts.landlock_abi,
        seccomp: facts.seccomp,
        cgroup: match &facts.cgroup {
            Ok(host) => FeatureState {
                available: true,
                detail: format!("{} (memory, pids, cpu)", host.version.name()),
            },
            Err(reason) => FeatureState {
                available: false,
                detail: reason.clone(),
            },
        },
        user_namespaces: match &facts.user_namespaces {
            Ok(()) => FeatureState {
                available: true,
                detail: "available".into(),
            },
            Err(reason) => FeatureState {
                available: false,
                detail: reason.clone(),
            },
        },
        overlayfs: facts.overlayfs,
        limits: limits_report(&facts),
        idmapped_mounts: idmapped_mounts(),
        docker: docker_engine(),
        profiles,
    }
}

fn idmapped_mounts() -> FeatureState {
    let dir = std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir());
    match crate::ownership::probe(&dir) {
        Ok(()) => FeatureState {
            available: true,
            detail: format!(
                "a workspace owned by anyone is the job's own (tried on {})",
                dir.display()
            ),
        },
        Err(reason) => FeatureState {
            available: false,
            detail: reason,
        },
    }
}

/// What keeps a profile from running here on the native backend (empty: it runs).
fn readiness(facts: &HostFacts, profile: &profile::Profile) -> Vec<String> {
    let mut missing: Vec<String> = profile
        .process
        .require
        .iter()
        .filter_map(|feature| {
            facts
                .missing(*feature)
                .map(|why| format!("{feature}: {why}"))
        })
        .collect();
    if !nix::unistd::geteuid().is_root() {
        if let Err(why) = &facts.user_namespaces {
            missing.push(format!("userns: {why}"));
        }
    }
    missing
}

/// The Docker engine as `auto` sees it: version, API, storage driver, cgroup version, and
/// whether the default image is there.
fn docker_engine() -> FeatureState {
    let image = profile::BackendSection::default().image;
    match crate::docker::engine_info(&image, crate::AUTO_ENGINE_TIMEOUT) {
        Ok(engine) => FeatureState {
            available: engine.image_present,
            detail: format!(
                "{} at {} (API {}, storage {}, cgroup {}); image {} {}",
                engine.version,
                engine.endpoint,
                engine.api_version,
                engine.storage_driver,
                engine.cgroup_version,
                engine.image,
                if engine.image_present {
                    "present"
                } else {
                    "missing: run `sandbox image build`"
                }
            ),
        },
        Err(why) => FeatureState {
            available: false,
            detail: why,
        },
    }
}
