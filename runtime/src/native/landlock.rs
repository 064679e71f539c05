//! Landlock, a second wall behind the mounts: read and execute anywhere in the (already
//! read-only) root, write only to the workspace (when writable) and the tmpfs mounts, no TCP
//! connect (ABI 4+) where the job has no network namespace of its own, no signals or abstract
//! sockets across the jail's edge (ABI 6+).
//!
//! `restrict_self` restricts only the calling thread, so it runs in the single-threaded job
//! process just before `execve`, never in the supervisor.

use std::path::PathBuf;

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, RestrictionStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use crate::error::SandboxError;

/// The newest ABI this build knows how to use.
const TARGET_ABI: ABI = ABI::V6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockPlan {
    /// Paths (inside the jail) where the job may write.
    pub writable: Vec<PathBuf>,
    /// Device files the job may read and write.
    pub devices: Vec<PathBuf>,
    /// Deny TCP connect: only for a job that shares a network namespace it does not own, where
    /// connecting reaches other people's services. In a namespace of our own the job's
    /// loopback is its own (issue 16: a test suite's local HTTP server) ...
    pub deny_tcp: bool,
    /// ... except to these ports (the egress proxy's forwarder); ignored without `deny_tcp`.
    pub tcp_connect: Vec<u16>,
    /// Refuse to run when the kernel does not enforce the ruleset.
    pub required: bool,
}

impl LandlockPlan {
    /// Restricts the calling thread. Returns the enforced ABI, or `None` when the kernel has no
    /// landlock and it was not required.
    pub fn apply(&self) -> Result<Option<i32>, SandboxError> {
        let abi = kernel_abi();
        if abi.is_none() {
            return if self.required {
                Err(refused("this kernel has no landlock"))
            } else {
                Ok(None)
            };
        }
        let fail = |e: landlock::RulesetError| SandboxError::Setup(format!("landlock: {e}"));
        let read = AccessFs::from_read(TARGET_ABI);
        let all = AccessFs::from_all(TARGET_ABI);
        // Best effort per feature: an older kernel enforces what it has; `required` only insists
        // that landlock is enforced at all, and the Outcome reports the ABI it got.
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(all)
            .map_err(fail)?;
        // Connect only, as DESIGN section 3 says; the caller asks for it only where the job has
        // no network namespace of its own (see `deny_tcp`).
        if self.deny_tcp {
            ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(fail)?;
        }
        let mut ruleset = ruleset
            .scope(Scope::from_all(TARGET_ABI))
            .map_err(fail)?
            .create()
            .map_err(fail)?;
        let rules = std::iter::once(("/".into(), read))
            .chain(self.writable.iter().map(|path| (path.clone(), all)))
            .chain(
                self.devices
                    .iter()
                    .map(|path| (path.clone(), read | AccessFs::WriteFile)),
            );
        for (path, access) in rules {
            let fd = landlock::PathFd::new(&path).map_err(|e| {
                SandboxError::Setup(format!("landlock: open {}: {e}", path.display()))
            })?;
            ruleset = ruleset
                .add_rule(landlock::PathBeneath::new(fd, access))
                .map_err(fail)?;
        }
        // Port rules exist only for a handled right: without `deny_tcp` they would be refused.
        for port in self.tcp_connect.iter().filter(|_| self.deny_tcp) {
            ruleset = ruleset
                .add_rule(landlock::NetPort::new(*port, AccessNet::ConnectTcp))
                .map_err(fail)?;
        }
        let status: RestrictionStatus = ruleset.restrict_self().map_err(fail)?;
        match status.ruleset {
            RulesetStatus::NotEnforced if self.required => {
                Err(refused("the ruleset was not enforced"))
            }
            RulesetStatus::NotEnforced => Ok(None),
            _ => Ok(abi.map(|abi| abi.min(TARGET_ABI as i32))),
        }
    }
}

fn refused(reason: &str) -> SandboxError {
    SandboxError::Refused {
        feature: "landlock".into(),
        reason: reason.into(),
    }
}

/// The landlock ABI the running kernel offers, or `None`.
pub fn kernel_abi() -> Option<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the kernel reads no
    // memory and only returns the ABI number (or -1 with ENOSYS/EOPNOTSUPP).
    #[allow(unsafe_code)]
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (version > 0).then_some(version as i32)
}
