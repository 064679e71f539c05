//! SIGINT, SIGTERM and SIGHUP while a job runs: both backends block them for the job's
//! duration and read them from a signalfd, so that `sandbox` kills and removes the job before it
//! exits, and the process's signal mask is as it was afterwards.

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};

use crate::error::SandboxError;

const TERMINATING: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The terminating signals, blocked on this thread (and on threads it starts from now on) until
/// this is dropped.
pub struct BlockedTerminating {
    set: SigSet,
    old_mask: SigSet,
}

impl BlockedTerminating {
    pub fn block() -> Result<BlockedTerminating, SandboxError> {
        let mut set = SigSet::empty();
        TERMINATING.iter().for_each(|signal| set.add(*signal));
        let mut old_mask = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask))
            .map_err(|e| SandboxError::sys("pthread_sigmask(BLOCK, INT TERM HUP)", e))?;
        Ok(BlockedTerminating { set, old_mask })
    }

    /// The blocked set, for a signalfd.
    pub fn set(&self) -> &SigSet {
        &self.set
    }
}

impl Drop for BlockedTerminating {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}
