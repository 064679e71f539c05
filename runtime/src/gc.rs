//! `sandbox gc`: removes what a `sandbox` killed before it could clean up left behind: job
//! cgroups and egress-proxy directories of the native backend, scratch views (mounted on the
//! host for both backends), idmapped workspaces (likewise), containers of the docker one. (The native jail's other mounts live
//! in its own mount namespace and vanish with it.)

use serde::Serialize;

use crate::native::cgroups::CgroupHost;
use crate::native::egress;

#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// What was removed, one line each.
    pub removed: Vec<String>,
    /// What could not be looked at or removed, and why.
    pub notes: Vec<String>,
}

pub fn gc() -> GcReport {
    let mut report = GcReport::default();
    if let Ok(host) = CgroupHost::detect() {
        for (job_id, cgroup) in host.leftovers() {
            match cgroup.remove() {
                Ok(()) => report.removed.push(format!("cgroup of job {job_id}")),
                Err(error) => report.notes.push(error.with_causes()),
            }
        }
    }
    for dir in crate::scratch::remove_leftovers() {
        report
            .removed
            .push(format!("scratch view {}", dir.display()));
    }
    for dir in crate::ownership::remove_leftovers() {
        report
            .removed
            .push(format!("idmapped workspace {}", dir.display()));
    }
    for dir in egress::remove_leftovers() {
        report
            .removed
            .push(format!("egress directory {}", dir.display()));
    }
    // No 500 ms probe first: an engine that was just restarted may take longer to answer, and
    // gc is exactly what runs then.
    match crate::docker::gc() {
        Ok(containers) => report.removed.extend(
            containers
                .into_iter()
                .map(|name| format!("container {name}")),
        ),
        Err(error) => report
            .notes
            .push(format!("containers not checked: {}", error.with_causes())),
    }
    report
}
