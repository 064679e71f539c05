//! The seccomp filters: a deny list compiled with `seccompiler` in the supervisor (so the jail
//! only has to load it), applied last, after `no_new_privs`, just before `execve`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::SandboxError;
use crate::profile::SeccompMode;

/// Syscalls no job needs and every container escape of the last decade used one of:
/// mounts and namespaces (CVE-2022-0185), kernel modules and kexec, bpf and perf (local root
/// bugs by the dozen), keyrings (no per-namespace isolation), userfaultfd and io_uring (race
/// and use-after-free primitives), ptrace and process_vm_* (reading another process),
/// open_by_handle_at (the "shocker" escape).
const DENIED: &[(&str, i64)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("syslog", libc::SYS_syslog),
    ("acct", libc::SYS_acct),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("quotactl", libc::SYS_quotactl),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
];

/// Also denied under `strict`: rarely needed, often in exploit chains.
const DENIED_STRICT: &[(&str, i64)] = &[
    ("personality", libc::SYS_personality),
    ("mknod", libc::SYS_mknod),
    ("mknodat", libc::SYS_mknodat),
    ("vhangup", libc::SYS_vhangup),
    ("uselib", libc::SYS_uselib),
];

/// clone() flags that create namespaces: a job must not build a sandbox of its own in which it
/// is root (CVE-2022-0492 and friends need exactly that).
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// Socket families a strict job may open; netlink, packet, vsock, AF_ALG and the rest are out.
const STRICT_SOCKET_FAMILIES: [u64; 3] = [
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
];

/// The filters to load, in order; empty when seccomp is off.
pub struct SeccompPlan {
    pub programs: Vec<BpfProgram>,
}

impl SeccompPlan {
    pub fn build(mode: SeccompMode) -> Result<SeccompPlan, SandboxError> {
        if mode == SeccompMode::Off {
            return Ok(SeccompPlan {
                programs: Vec::new(),
            });
        }
        let arch: TargetArch = std::env::consts::ARCH
            .try_into()
            .map_err(|_| unsupported_arch())?;
        let mut denied: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        let names = DENIED.iter().chain(if mode == SeccompMode::Strict {
            DENIED_STRICT
        } else {
            &[]
        });
        for (_, number) in names {
            denied.insert(*number, Vec::new());
        }
        let clone_rules = NAMESPACE_FLAGS
            .iter()
            .map(|flag| {
                rule(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(*flag),
                    *flag,
                )
            })
            .collect::<Result<_, _>>()?;
        denied.insert(libc::SYS_clone, clone_rules);
        // TIOCSTI and TIOCLINUX push keystrokes into a terminal the job shares with its caller
        // (CVE-2017-5226 in bubblewrap).
        denied.insert(
            libc::SYS_ioctl,
            vec![
                rule(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::TIOCSTI)?,
                rule(
                    1,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Eq,
                    libc::TIOCLINUX,
                )?,
            ],
        );
        if mode == SeccompMode::Strict {
            let socket_rules = vec![SeccompRule::new(
                STRICT_SOCKET_FAMILIES
                    .iter()
                    .map(|family| {
                        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *family)
                    })
                    .collect::<Result<_, _>>()
                    .map_err(compile_error)?,
            )
            .map_err(compile_error)?];
            denied.insert(libc::SYS_socket, socket_rules);
        }
        let deny_list = compile(denied, libc::EPERM, arch)?;
        // clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes libc fall
        // back to clone(), which the rules above can inspect (what Docker and Flatpak do).
        let clone3 = compile(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            libc::ENOSYS,
            arch,
        )?;
        let mut programs = vec![deny_list, clone3];
        if arch == TargetArch::x86_64 {
            programs.push(deny_x32_abi());
        }
        Ok(SeccompPlan { programs })
    }

    /// Loads every filter into the calling thread. `no_new_privs` must already be set.
    pub fn apply(&self) -> Result<(), SandboxError> {
        for program in &self.programs {
            seccompiler::apply_filter(program).map_err(|error| {
                SandboxError::Setup(format!("loading the seccomp filter: {error}"))
            })?;
        }
        Ok(())
    }
}

fn rule(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompRule, SandboxError> {
    let condition = SeccompCondition::new(arg, len, op, value).map_err(compile_error)?;
    SeccompRule::new(vec![condition]).map_err(compile_error)
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<BpfProgram, SandboxError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(compile_error)?;
    filter.try_into().map_err(compile_error)
}

fn compile_error(error: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(format!("compiling the seccomp filter: {error}"))
}

fn unsupported_arch() -> SandboxError {
    SandboxError::Refused {
        feature: "seccomp".into(),
        reason: format!(
            "this build has no seccomp filter for {}",
            std::env::consts::ARCH
        ),
    }
}

/// x32 syscalls share x86_64's audit arch but set bit 30 of the number, so a deny list keyed on
/// x86_64 numbers would not see `mount` called through x32. seccompiler cannot express a range
/// of syscall numbers, hence these five hand-written instructions.
fn deny_x32_abi() -> BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        // seccomp_data.nr is at offset 0
        insn(LD_W_ABS, 0, 0, 0),
        insn(JGE_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        insn(RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
}

/// The names of the denied syscalls, for `sandbox doctor` and the README.
pub fn denied_names(mode: SeccompMode) -> Vec<&'static str> {
    let strict: &[(&str, i64)] = if mode == SeccompMode::Strict {
        DENIED_STRICT
    } else {
        &[]
    };
    DENIED.iter().chain(strict).map(|(name, _)| *name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_builds_no_filter_and_default_builds_all() {
        assert!(SeccompPlan::build(SeccompMode::Off)
            .unwrap()
            .programs
            .is_empty());
        let default = SeccompPlan::build(SeccompMode::Default).unwrap();
        let strict = SeccompPlan::build(SeccompMode::Strict).unwrap();
        assert!(default.programs.len() >= 2);
        assert!(strict.programs[0].len() > default.programs[0].len());
    }

    #[test]
    fn the_deny_list_names_the_escapes() {
        let names = denied_names(SeccompMode::Default);
        for needed in [
            "mount",
            "bpf",
            "ptrace",
            "unshare",
            "keyctl",
            "io_uring_setup",
        ] {
            assert!(names.contains(&needed), "{needed}");
        }
    }
}
