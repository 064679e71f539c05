//! No leftovers: every container carries labels saying which job it runs and which `sandbox`
//! process started it; the job removes its container however it ends, and `gc` removes the
//! containers whose `sandbox` died before it could.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use bollard::Docker;

use crate::error::SandboxError;
use crate::spec::JobSpec;

use super::engine::{self, describe};

pub const JOB_LABEL: &str = "sandbox.job";
const PROFILE_LABEL: &str = "sandbox.profile";
const PID_LABEL: &str = "sandbox.pid";
/// The supervisor's start time (clock ticks after boot): with the pid, names one process even
/// after the pid is reused.
const PID_START_LABEL: &str = "sandbox.pid_start";
const BOOT_LABEL: &str = "sandbox.boot";
const MACHINE_LABEL: &str = "sandbox.machine";

/// How long removing a container may take (killing it, unmounting its layers).
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);
const GC_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `sandbox` process that starts (and must remove) containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervisor {
    pub pid: u32,
    pub start: Option<u64>,
    pub boot: String,
    pub machine: String,
}

impl Supervisor {
    pub fn current() -> Supervisor {
        let pid = std::process::id();
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_owned())
                .unwrap_or_default()
        };
        Supervisor {
            pid,
            start: start_time(pid),
            boot: read("/proc/sys/kernel/random/boot_id"),
            machine: read("/etc/machine-id"),
        }
    }

    /// The labels of a container this supervisor starts for `spec`.
    pub fn labels(&self, spec: &JobSpec) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (JOB_LABEL.to_owned(), spec.id.clone()),
            (PROFILE_LABEL.to_owned(), spec.profile.clone()),
            (PID_LABEL.to_owned(), self.pid.to_string()),
            (BOOT_LABEL.to_owned(), self.boot.clone()),
            (MACHINE_LABEL.to_owned(), self.machine.clone()),
        ]);
        if let Some(start) = self.start {
            labels.insert(PID_START_LABEL.to_owned(), start.to_string());
        }
        labels
    }

    /// Whether the `sandbox` that started a container with `labels` is gone for sure, seen from
    /// this supervisor: on this machine, in an earlier boot, or its process no longer exists
    /// (or is another one now). A container started on another machine sharing the engine is
    /// not ours to judge, nor one whose labels do not name its supervisor.
    pub fn owner_is_gone(&self, labels: &HashMap<String, String>) -> bool {
        let label = |key: &str| labels.get(key).map(String::as_str).unwrap_or_default();
        if label(MACHINE_LABEL) != self.machine {
            return false;
        }
        if label(BOOT_LABEL) != self.boot {
            return true;
        }
        let Ok(pid) = label(PID_LABEL).parse::<u32>() else {
            return false;
        };
        match (start_time(pid), label(PID_START_LABEL).parse::<u64>().ok()) {
            (None, _) => true,
            (Some(now), Some(then)) => now != then,
            (Some(_), None) => false,
        }
    }
}

/// Field 22 of `/proc/PID/stat`, after the command name (which may hold spaces and parens).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Removes `name` (killing it first if it runs); a container that is not there is fine.
pub async fn remove(docker: &Docker, name: &str) -> Result<(), String> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        link: false,
    };
    match tokio::time::timeout(REMOVE_TIMEOUT, docker.remove_container(name, Some(options))).await {
        Ok(Ok(()))
        | Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        })) => Ok(()),
        // 409: a removal is already under way (the engine's own, or a `gc`).
        Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        })) if message.contains("already in progress") => Ok(()),
        Ok(Err(error)) => Err(describe(&error)),
        Err(_) => Err(format!("no answer within {}s", REMOVE_TIMEOUT.as_secs())),
    }
}

/// Removes every container labelled `sandbox.job` whose `sandbox` process is gone (killed
/// before it could clean up, or cut off from the engine mid-job); returns their names.
pub fn gc() -> Result<Vec<String>, SandboxError> {
    super::block_on(gc_async())?
}

async fn gc_async() -> Result<Vec<String>, SandboxError> {
    let docker = engine::connect(GC_CONNECT_TIMEOUT).await?;
    let engine_error = |what: &str, error: bollard::errors::Error| SandboxError::Io {
        what: format!("{what} through the Docker engine"),
        path: engine::endpoint().into(),
        source: std::io::Error::other(describe(&error)),
    };
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_owned(),
            vec![JOB_LABEL.to_owned()],
        )])),
        ..ListContainersOptions::default()
    };
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error("list the sandbox containers", e))?;
    let me = Supervisor::current();
    let mut removed = Vec::new();
    for container in containers {
        let labels = container.labels.unwrap_or_default();
        if !me.owner_is_gone(&labels) {
            continue;
        }
        let Some(id) = container.id else { continue };
        let name = container
            .names
            .unwrap_or_default()
            .first()
            .map(|name| name.trim_start_matches('/').to_owned())
            .unwrap_or_else(|| id.chars().take(12).collect());
        remove(&docker, &id).await.map_err(|why| SandboxError::Io {
            what: format!("remove the leftover container {name}"),
            path: engine::endpoint().into(),
            source: std::io::Error::other(why),
        })?;
        removed.push(name);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, String)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_live_supervisor_keeps_its_containers() {
        let me = Supervisor::current();
        assert!(me.start.is_some());
        let mine = labels(&[
            (MACHINE_LABEL, me.machine.clone()),
            (BOOT_LABEL, me.boot.clone()),
            (PID_LABEL, me.pid.to_string()),
            (PID_START_LABEL, me.start.unwrap().to_string()),
        ]);
        assert!(!me.owner_is_gone(&mine));
    }

    #[test]
    fn a_dead_or_reused_pid_or_an_earlier_boot_is_gone() {
        let me = Supervisor::current();
        let base = |pid: String, start: String, boot: String| {
            labels(&[
                (MACHINE_LABEL, me.machine.clone()),
                (BOOT_LABEL, boot),
                (PID_LABEL, pid),
                (PID_START_LABEL, start),
            ])
        };
        let start = me.start.unwrap();
        // pid_max is at most 2^22: this pid cannot exist.
        assert!(me.owner_is_gone(&base("99999999".into(), "1".into(), me.boot.clone())));
        assert!(me.owner_is_gone(&base(
            me.pid.to_string(),
            (start + 1).to_string(),
            me.boot.clone()
        )));
        assert!(me.owner_is_gone(&base(
            me.pid.to_string(),
            start.to_string(),
            "another-boot".into()
        )));
        // Another machine's container, or one that does not name its supervisor: not ours.
        let mut elsewhere = base("99999999".into(), "1".into(), me.boot.clone());
        elsewhere.insert(MACHINE_LABEL.into(), "another-machine".into());
        assert!(!me.owner_is_gone(&elsewhere));
        let mut anonymous = base(String::new(), String::new(), me.boot.clone());
        anonymous.remove(PID_LABEL);
        assert!(!me.owner_is_gone(&anonymous));
    }
}
