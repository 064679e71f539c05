//! The runtime's errors. Each says what was attempted, on which path, and what to do about it.

use std::path::PathBuf;

use crate::profile::ProfileError;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("invalid job: {0}")]
    InvalidSpec(String),
    /// A feature the profile requires (or that the job needs) cannot be enforced on this host.
    #[error("refusing to run: {feature} is required but {reason}")]
    Refused { feature: String, reason: String },
    /// Something the profile asks for that this version does not build yet; never ignored.
    #[error("refusing to run: {0}")]
    Unsupported(String),
    #[error("could not {what} ({path})")]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{call} => {errno}")]
    Sys {
        call: String,
        errno: nix::errno::Errno,
    },
    /// `sandbox` itself got SIGINT/SIGTERM/SIGHUP; the job was killed and cleaned up.
    #[error("interrupted by signal {signal}; the job was killed")]
    Interrupted { signal: i32 },
    /// The jail failed while setting itself up, before the command ran.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
}

impl SandboxError {
    /// What `sandbox exec` exits with for this error (DESIGN section 7): 128+N when `sandbox`
    /// was interrupted by signal N, like the shell; 125 for anything else the sandbox could not
    /// do.
    pub fn exit_code(&self) -> i32 {
        match self {
            SandboxError::Interrupted { signal } => 128 + signal,
            _ => 125,
        }
    }

    /// The message with every underlying cause, for places that have no error chain to print
    /// (the jail's report pipe).
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            text.push_str(&format!(": {error}"));
            cause = error.source();
        }
        text
    }

    pub fn sys(call: impl Into<String>, errno: nix::errno::Errno) -> Self {
        SandboxError::Sys {
            call: call.into(),
            errno,
        }
    }
}
