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

/// The same deny list as a Docker seccomp profile (the JSON `docker run --security-opt
/// seccomp=FILE` reads), for the docker backend. We pass our own list rather than keeping the
/// engine's default profile because that one allows `ptrace` (of a sibling with the same uid)
/// from kernel 4.8 on, and every backend must refuse what the native jail refuses.
///
/// runc ORs conditions that test the same argument (libseccomp could not AND them), so every
/// rule below has exactly one condition: a rule per clone flag, per ioctl request, per socket
/// family range. Only the native architecture is listed: libseccomp answers a syscall from
/// any other ABI (i386, x32) with its bad-arch action instead of letting it through unchecked,
/// as the native filter does. `Off` has no profile: the backend asks for `unconfined`.
pub fn docker_profile(mode: SeccompMode) -> serde_json::Value {
    use serde_json::json;
    if mode == SeccompMode::Off {
        return serde_json::Value::Null;
    }
    let deny = |name: &str, errno: i32, arg: Option<serde_json::Value>| {
        let mut rule = json!({
            "names": [name],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno,
        });
        if let Some(arg) = arg {
            rule["args"] = json!([arg]);
        }
        rule
    };
    let condition = |index: u32, op: &str, value: u64, value_two: u64| json!({ "index": index, "op": op, "value": value, "valueTwo": value_two });
    let mut syscalls = vec![json!({
        "names": denied_names(mode),
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": libc::EPERM,
    })];
    for flag in NAMESPACE_FLAGS {
        syscalls.push(deny(
            "clone",
            libc::EPERM,
            Some(condition(0, "SCMP_CMP_MASKED_EQ", flag, flag)),
        ));
    }
    // The request is an `unsigned int`: compare its low 32 bits only, or a request with junk
    // in the upper half would slip past while the kernel still reads it as TIOCSTI.
    for request in [libc::TIOCSTI, libc::TIOCLINUX] {
        syscalls.push(deny(
            "ioctl",
            libc::EPERM,
            Some(condition(1, "SCMP_CMP_MASKED_EQ", 0xffff_ffff, request)),
        ));
    }
    if mode == SeccompMode::Strict {
        for family in denied_socket_families() {
            let arg = match family {
                FamilyRule::Is(family) => condition(0, "SCMP_CMP_EQ", family, 0),
                FamilyRule::Above(family) => condition(0, "SCMP_CMP_GT", family, 0),
            };
            syscalls.push(deny("socket", libc::EPERM, Some(arg)));
        }
    }
    syscalls.push(deny("clone3", libc::ENOSYS, None));
    let mut profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": syscalls,
    });
    if let Some(arch) = docker_arch() {
        profile["architectures"] = json!([arch]);
    }
    profile
}

/// One rule of the strict socket-family deny list, as the docker profile writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyRule {
    Is(u64),
    Above(u64),
}

/// Every family but those in `STRICT_SOCKET_FAMILIES`, as rules of one condition each: the
/// ones below the highest allowed one by name, and everything above it (which also catches a
/// family with junk in its upper 32 bits, since the comparison is on 64 bits).
fn denied_socket_families() -> Vec<FamilyRule> {
    let highest = STRICT_SOCKET_FAMILIES.iter().copied().max().unwrap_or(0);
    (0..highest)
        .filter(|family| !STRICT_SOCKET_FAMILIES.contains(family))
        .map(FamilyRule::Is)
        .chain([FamilyRule::Above(highest)])
        .collect()
}

fn docker_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("SCMP_ARCH_X86_64"),
        "aarch64" => Some("SCMP_ARCH_AARCH64"),
        "riscv64" => Some("SCMP_ARCH_RISCV64"),
        _ => None,
    }
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

    /// What runc does with a docker profile: the first rule of a syscall whose conditions all
    /// hold decides (with one condition per rule, ORing rules is all there is); else allow.
    fn docker_errno(profile: &serde_json::Value, name: &str, args: [u64; 6]) -> Option<i64> {
        profile["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|rule| {
                rule["names"]
                    .as_array()
                    .is_some_and(|names| names.iter().any(|n| n == name))
            })
            .find(|rule| {
                rule["args"].as_array().into_iter().flatten().all(|arg| {
                    let value = arg["value"].as_u64().unwrap();
                    let two = arg["valueTwo"].as_u64().unwrap();
                    let actual = args[arg["index"].as_u64().unwrap() as usize];
                    match arg["op"].as_str().unwrap() {
                        "SCMP_CMP_EQ" => actual == value,
                        "SCMP_CMP_GT" => actual > value,
                        "SCMP_CMP_MASKED_EQ" => actual & value == two,
                        other => panic!("unexpected op {other}"),
                    }
                })
            })
            .map(|rule| rule["errnoRet"].as_i64().unwrap())
    }

    #[test]
    fn docker_profile_denies_what_the_native_filter_denies() {
        assert!(docker_profile(SeccompMode::Off).is_null());
        let profile = docker_profile(SeccompMode::Default);
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
        let eperm = Some(libc::EPERM as i64);
        for name in denied_names(SeccompMode::Default) {
            assert_eq!(docker_errno(&profile, name, [0; 6]), eperm, "{name}");
        }
        assert_eq!(docker_errno(&profile, "read", [0; 6]), None);
        assert_eq!(docker_errno(&profile, "personality", [0; 6]), None);
        // clone: a thread or a fork is fine, a namespace is not.
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(
            docker_errno(&profile, "clone", [thread, 0, 0, 0, 0, 0]),
            None
        );
        for flag in NAMESPACE_FLAGS {
            assert_eq!(
                docker_errno(&profile, "clone", [thread | flag, 0, 0, 0, 0, 0]),
                eperm,
                "{flag:#x}"
            );
        }
        assert_eq!(
            docker_errno(&profile, "clone3", [0; 6]),
            Some(libc::ENOSYS as i64)
        );
        let tiocsti = libc::TIOCSTI;
        assert_eq!(
            docker_errno(&profile, "ioctl", [0, tiocsti, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(
            docker_errno(&profile, "ioctl", [0, (1 << 32) | tiocsti, 0, 0, 0, 0]),
            eperm,
            "junk in the upper half of the request"
        );
        assert_eq!(
            docker_errno(&profile, "ioctl", [0, libc::TIOCGWINSZ, 0, 0, 0, 0]),
            None
        );
        // Default mode leaves socket families alone.
        assert_eq!(docker_errno(&profile, "socket", [16, 3, 0, 0, 0, 0]), None);
    }

    #[test]
    fn strict_docker_profile_allows_only_unix_and_ip_sockets() {
        let profile = docker_profile(SeccompMode::Strict);
        for name in denied_names(SeccompMode::Strict) {
            assert!(docker_errno(&profile, name, [0; 6]).is_some(), "{name}");
        }
        for family in 0..64u64 {
            let allowed = STRICT_SOCKET_FAMILIES.contains(&family);
            assert_eq!(
                docker_errno(&profile, "socket", [family, 1, 0, 0, 0, 0]).is_none(),
                allowed,
                "family {family}"
            );
        }
        assert!(docker_errno(&profile, "socket", [(1 << 32) | 16, 3, 0, 0, 0, 0]).is_some());
        // Never two conditions in one rule: runc would OR them.
        for rule in profile["syscalls"].as_array().unwrap() {
            assert!(rule["args"].as_array().map_or(0, Vec::len) <= 1, "{rule}");
        }
    }
}
