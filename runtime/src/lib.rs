//! `sandbox-runtime`: profiles, the job spec, the native backend and the Outcome.
//!
//! One `JobSpec` in, one `Outcome` out: [`run`] picks the backend and runs the job.

pub mod error;
pub mod host;
pub mod native;
pub mod outcome;
pub mod output;
pub mod profile;
pub mod spec;

pub use error::SandboxError;
pub use outcome::{Outcome, Status};
pub use spec::{JobSpec, OutputMode, Overrides};

/// Runs one job on the backend its spec asks for.
pub fn run(spec: &JobSpec) -> Result<Outcome, SandboxError> {
    use profile::BackendChoice;
    let reason = match spec.backend {
        BackendChoice::Native => "native requested".to_owned(),
        BackendChoice::Auto => {
            "auto: native (the docker backend is not part of this build yet)".to_owned()
        }
        BackendChoice::Docker => {
            return Err(SandboxError::Unsupported(
                "the docker backend is not part of this build yet; use --backend native".into(),
            ))
        }
    };
    native::run(spec, reason)
}
