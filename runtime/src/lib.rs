//! `sandbox-runtime`: profiles, the job spec, the native backend and the Outcome.
//!
//! One `JobSpec` in, one `Outcome` out: [`run`] picks the backend and runs the job.

pub mod audit;
pub mod docker;
pub mod error;
pub mod gc;
pub mod host;
pub mod native;
pub mod network;
pub mod outcome;
pub mod output;
pub mod profile;
pub mod secrets;
mod signals;
pub mod spec;
pub mod workspace;

pub use error::SandboxError;
pub use outcome::{Outcome, Status};
pub use spec::{JobSpec, OutputMode, Overrides};

/// How long `auto` waits for a Docker engine before running natively.
pub const AUTO_ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs one job on the backend its spec asks for; `auto` takes docker when an engine answers
/// within 500 ms and has the image, else native, and the Outcome says which and why.
pub fn run(spec: &JobSpec) -> Result<Outcome, SandboxError> {
    use profile::BackendChoice;
    match spec.backend {
        BackendChoice::Native => native::run(spec, "native requested".into()),
        BackendChoice::Docker => docker::run(spec, "docker requested".into()),
        BackendChoice::Auto => match docker::engine_info(&spec.image, AUTO_ENGINE_TIMEOUT) {
            Ok(engine) if engine.image_present => docker::run(
                spec,
                format!(
                    "auto: docker {} answered and has {}",
                    engine.version, spec.image
                ),
            ),
            Ok(engine) => native::run(
                spec,
                format!(
                    "auto: native (docker {} has no image {}; run `sandbox image build`)",
                    engine.version, spec.image
                ),
            ),
            Err(why) => native::run(spec, format!("auto: native ({why})")),
        },
    }
}
