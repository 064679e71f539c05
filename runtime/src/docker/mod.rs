//! The docker backend: the same JobSpec run as a container through the Docker Engine API.

use std::time::Duration;

use crate::error::SandboxError;
use crate::outcome::Outcome;
use crate::spec::JobSpec;

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
}

/// Asks the engine (DOCKER_HOST or the local socket) who it is and whether `image` exists,
/// giving up after `timeout`. The error says what to run.
pub fn engine_info(_image: &str, _timeout: Duration) -> Result<EngineInfo, String> {
    Err("the docker backend is being built".into())
}

/// Runs `spec` in a container.
pub fn run(_spec: &JobSpec, _backend_reason: String) -> Result<Outcome, SandboxError> {
    Err(SandboxError::Unsupported(
        "the docker backend is being built".into(),
    ))
}
