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
    /// The Docker engine did not answer, or stopped answering while the job ran: nothing is
    /// wrong with the job, which may well run once the engine is back.
    #[error("{0}")]
    EngineUnavailable(String),
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

    /// Whether the same job may run if tried again unchanged (the Outcome's `retryable`): true
    /// for transient infrastructure (an engine that does not answer, a resource that was briefly
    /// exhausted), false for what only a change of profile, flags or host fixes. Decided by the
    /// error's kind, never by its wording.
    pub fn retryable(&self) -> bool {
        match self {
            SandboxError::EngineUnavailable(_) => true,
            SandboxError::Sys { errno, .. } => transient(*errno),
            SandboxError::Io { source, .. } => {
                matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) || source
                    .raw_os_error()
                    .is_some_and(|code| transient(nix::errno::Errno::from_raw(code)))
            }
            // Someone stopped this run on purpose; trying again would overrule them.
            SandboxError::Interrupted { .. } => false,
            SandboxError::Profile(_)
            | SandboxError::InvalidSpec(_)
            | SandboxError::Refused { .. }
            | SandboxError::Unsupported(_)
            | SandboxError::Setup(_) => false,
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

/// Errnos that say "not now" rather than "not here": out of processes, memory or descriptors
/// for the moment, or a peer that did not answer in time.
fn transient(errno: nix::errno::Errno) -> bool {
    use nix::errno::Errno;
    matches!(
        errno,
        Errno::EAGAIN
            | Errno::ENOMEM
            | Errno::EMFILE
            | Errno::ENFILE
            | Errno::EBUSY
            | Errno::ETIMEDOUT
            | Errno::EINTR
    )
}

#[cfg(test)]
mod tests {
    use super::SandboxError;
    use nix::errno::Errno;

    #[test]
    fn only_transient_infrastructure_is_retryable() {
        let io = |source: std::io::Error| SandboxError::Io {
            what: "clone the jail".into(),
            path: "/proc/self".into(),
            source,
        };
        let retryable = [
            SandboxError::EngineUnavailable("no Docker engine answered".into()),
            SandboxError::sys("clone3()", Errno::EAGAIN),
            SandboxError::sys("mmap()", Errno::ENOMEM),
            io(std::io::Error::from_raw_os_error(libc::EMFILE)),
            io(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        ];
        for error in retryable {
            assert!(error.retryable(), "{error:?} should be retryable");
        }
        let final_ = [
            SandboxError::InvalidSpec("--memory: `12Q` is not a size".into()),
            SandboxError::Refused {
                feature: "userns".into(),
                reason: "user namespaces are disabled".into(),
            },
            SandboxError::Unsupported("limits.io".into()),
            SandboxError::Setup("mount /proc".into()),
            SandboxError::Interrupted { signal: 15 },
            SandboxError::sys("mount()", Errno::EPERM),
            io(std::io::Error::from_raw_os_error(libc::ENOENT)),
        ];
        for error in final_ {
            assert!(!error.retryable(), "{error:?} should not be retryable");
        }
    }
}
