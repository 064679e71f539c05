//! The docker backend: the same JobSpec run as a container through the Docker Engine API
//! (`bollard`), never through the docker CLI.
//!
//! - `engine`: finding the engine (`DOCKER_HOST` or the local socket) and what it has;
//! - `config`: the JobSpec as a container configuration, plain data that tests inspect;
//! - `job`: create, attach, start, wait with the wall-time limit, and the Outcome;
//! - `host`: what a local engine lets us see of the container (its init's pidfd, its cgroup);
//! - `cleanup`: removing the container however the job ends, and `gc` for what a crashed
//!   `sandbox` left behind.
//!
//! Every entry point is synchronous: it runs its own current-thread tokio runtime and shuts it
//! down before returning, so that no thread outlives the call. `auto` asks the engine first and
//! may then run the native backend, which `clone`s and needs the process to be single-threaded.

mod cleanup;
mod config;
mod engine;
mod host;
mod interrupts;
mod job;

use std::future::Future;
use std::time::Duration;

use crate::error::SandboxError;
use crate::outcome::Outcome;
use crate::spec::JobSpec;

pub use cleanup::gc;
pub use engine::{connect, endpoint};

/// What `sandbox doctor` and `auto` learn from the engine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineInfo {
    pub endpoint: String,
    pub version: String,
    pub api_version: String,
    pub storage_driver: String,
    pub cgroup_version: String,
    pub image: String,
    pub image_present: bool,
    /// The image's id when the engine has it (`None`: it does not).
    pub image_id: Option<String>,
}

/// Asks the engine (DOCKER_HOST or the local socket) who it is and whether `image` exists,
/// giving up after `timeout`. The error says what to run.
pub fn engine_info(image: &str, timeout: Duration) -> Result<EngineInfo, String> {
    block_on(engine::engine_info(image, timeout))
        .map_err(|error| error.to_string())
        .and_then(|answer| answer)
}

/// Runs `spec` in a container and removes the container, however the job ends.
pub fn run(spec: &JobSpec, backend_reason: String) -> Result<Outcome, SandboxError> {
    block_on(job::run(spec, backend_reason))?
}

/// Runs `future` to completion on a current-thread runtime that is shut down before returning.
/// Dropping the runtime joins its blocking pool (name lookups for `tcp://` engines run there),
/// so when this returns the process has exactly the threads it had before.
fn block_on<F: Future>(future: F) -> Result<F::Output, SandboxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|source| SandboxError::Io {
            what: "start the event loop that talks to the Docker engine".into(),
            path: "/proc/self".into(),
            source,
        })?;
    let output = runtime.block_on(future);
    drop(runtime);
    Ok(output)
}

#[cfg(test)]
mod tests {
    /// The native backend `clone`s right after `auto` asked the engine, and must then be the
    /// only thread. Run in a child test process with one test thread, where `/proc/self/task`
    /// counts nothing but us.
    #[test]
    fn asking_the_engine_leaves_no_thread_behind() {
        const PROBE: &str = "SANDBOX_THREAD_PROBE";
        let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
        if std::env::var_os(PROBE).is_some() {
            let before = threads();
            // Whether or not an engine answers, the runtime is built, used and dropped.
            let _ = super::engine_info("sandbox/host:latest", std::time::Duration::from_secs(2));
            let _ = super::gc();
            assert_eq!(threads(), before, "engine_info/gc left threads behind");
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "docker::tests::asking_the_engine_leaves_no_thread_behind",
                "--exact",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(PROBE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the probe did not run:\n{text}");
    }
}
