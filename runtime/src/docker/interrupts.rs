//! SIGINT, SIGTERM and SIGHUP to `sandbox` while a container runs: read from a signalfd, so
//! that the job's container is removed before we exit (like the native supervisor does).
//!
//! Why not `tokio::signal`: it installs process-wide handlers that stay after the runtime is
//! gone, so a library caller's Ctrl-C would be swallowed for the rest of its life. Blocking the
//! signals for the duration of the job and reading them from a signalfd leaves the process as
//! it found it.

use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::SandboxError;
use crate::signals::BlockedTerminating;

pub struct Interrupts {
    // Dropped in this order: the signalfd, then the mask (a signal still pending then acts).
    signals: AsyncFd<SignalFd>,
    _blocked: BlockedTerminating,
}

impl Interrupts {
    /// Blocks the terminating signals on this thread (threads started later inherit the mask)
    /// and opens a signalfd for them. Must be called inside the runtime.
    pub fn block() -> Result<Interrupts, SandboxError> {
        let blocked = BlockedTerminating::block()?;
        let signals = SignalFd::with_flags(
            blocked.set(),
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        )
        .map_err(|e| SandboxError::sys("signalfd(INT, TERM, HUP)", e))?;
        // SAFETY: the SignalFd owns its descriptor and keeps it open, unchanged, for as long as
        // the AsyncFd owns it.
        #[allow(unsafe_code)]
        let signals = unsafe { AsyncFd::register_with_interest(signals, Interest::READABLE) }
            .map_err(|error| SandboxError::Io {
                what: "watch the signalfd for SIGINT/SIGTERM/SIGHUP".into(),
                path: "/proc/self/fd".into(),
                source: error.into(),
            })?;
        Ok(Interrupts {
            signals,
            _blocked: blocked,
        })
    }

    /// The next terminating signal's number; pending forever when none comes (or the signalfd
    /// cannot be watched, in which case the signal stays pending and acts once unblocked).
    pub async fn next(&self) -> i32 {
        loop {
            let Ok(mut ready) = self.signals.readable().await else {
                return std::future::pending().await;
            };
            match ready.get_inner().read_signal() {
                Ok(Some(info)) => return info.ssi_signo as i32,
                Ok(None) => ready.clear_ready(),
                Err(_) => return std::future::pending().await,
            }
        }
    }
}
