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
    ("vhangup", libc::SYS_vhangup),
    ("uselib", libc::SYS_uselib),
];

/// Where a syscall takes a file mode that could carry set-uid/set-gid bits: its name, number,
/// the index of the mode argument and, for the open family, of the flags argument (the mode
/// only counts with `O_CREAT` or `O_TMPFILE`). A job sees a workspace owned by someone else as
/// its own (an idmapped mount, `crate::ownership`), so a set-uid file it made there would be the
/// owner's, root's say, on the host; these are refused in every mode but `off`.
const MODE_ARGS: &[(&str, i64, u8, Option<u8>)] = &[
    ("chmod", libc::SYS_chmod, 1, None),
    ("fchmod", libc::SYS_fchmod, 1, None),
    ("fchmodat", libc::SYS_fchmodat, 2, None),
    ("fchmodat2", libc::SYS_fchmodat2, 2, None),
    ("open", libc::SYS_open, 2, Some(1)),
    ("openat", libc::SYS_openat, 3, Some(2)),
    ("creat", libc::SYS_creat, 1, None),
    ("mkdir", libc::SYS_mkdir, 1, None),
    ("mkdirat", libc::SYS_mkdirat, 2, None),
    ("mknod", libc::SYS_mknod, 1, None),
    ("mknodat", libc::SYS_mknodat, 2, None),
];

/// The set-id bits no job may set.
const SET_ID_BITS: [u64; 2] = [libc::S_ISUID as u64, libc::S_ISGID as u64];

/// The open flags under which the mode argument is used. `O_TMPFILE` includes `O_DIRECTORY`,
/// which alone means no file is created: only its own bit is tested.
const CREATING_FLAGS: [u64; 2] = [
    libc::O_CREAT as u64,
    (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64,
];

/// File types `mknod` must not create: devices (a job that can make `/dev/mem` or a disk's
/// block device in a workspace has the host). FIFOs, sockets and regular files stay allowed
/// (`mkfifo`, GNU make's jobserver).
const DEVICE_TYPES: [u64; 2] = [libc::S_IFCHR as u64, libc::S_IFBLK as u64];

/// Syscalls answered with ENOSYS, so libc falls back to one the filter can inspect: `clone3`
/// passes its flags in memory, `openat2` its mode (what Docker and Flatpak do for clone3).
const ENOSYS: &[(&str, i64)] = &[("clone3", libc::SYS_clone3), ("openat2", libc::SYS_openat2)];

/// One denial of a syscall that looks at its arguments: every condition must hold. Each tests a
/// different argument, so runc ANDs them in the docker profile as the native filter does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ArgRule {
    name: &'static str,
    number: i64,
    /// (argument index, mask, value): `arg & mask == value`, on the low 32 bits.
    conditions: Vec<(u8, u64, u64)>,
}

/// The argument rules for set-id modes and device nodes, shared by both filters.
fn mode_rules() -> Vec<ArgRule> {
    let mut rules = Vec::new();
    for &(name, number, mode, flags) in MODE_ARGS {
        for bit in SET_ID_BITS {
            let set_id = (mode, bit, bit);
            match flags {
                Some(flags) => rules.extend(CREATING_FLAGS.iter().map(|&flag| ArgRule {
                    name,
                    number,
                    conditions: vec![(flags, flag, flag), set_id],
                })),
                None => rules.push(ArgRule {
                    name,
                    number,
                    conditions: vec![set_id],
                }),
            }
        }
        if name.starts_with("mknod") {
            rules.extend(DEVICE_TYPES.iter().map(|&kind| ArgRule {
                name,
                number,
                conditions: vec![(mode, libc::S_IFMT as u64, kind)],
            }));
        }
    }
    rules
}

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
        for arg_rule in mode_rules() {
            let conditions = arg_rule
                .conditions
                .iter()
                .map(|&(arg, mask, value)| {
                    SeccompCondition::new(
                        arg,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::MaskedEq(mask),
                        value,
                    )
                })
                .collect::<Result<_, _>>()
                .map_err(compile_error)?;
            denied
                .entry(arg_rule.number)
                .or_default()
                .push(SeccompRule::new(conditions).map_err(compile_error)?);
        }
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
        let enosys = compile(
            ENOSYS
                .iter()
                .map(|(_, number)| (*number, Vec::new()))
                .collect(),
            libc::ENOSYS,
            arch,
        )?;
        let mut programs = vec![deny_list, enosys];
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
/// runc ORs conditions that test the same argument (libseccomp could not AND them) and ANDs
/// conditions on different arguments, so no rule below tests one argument twice: a rule per
/// clone flag, per ioctl request, per socket family range, and per (creating flag, set-id bit)
/// for the open family, whose two conditions test the flags and the mode. Only the native architecture is listed: libseccomp answers a syscall from
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
    for rule in mode_rules() {
        let args = rule
            .conditions
            .iter()
            .map(|&(index, mask, value)| {
                condition(u32::from(index), "SCMP_CMP_MASKED_EQ", mask, value)
            })
            .collect::<Vec<_>>();
        syscalls.push(json!({
            "names": [rule.name],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::EPERM,
            "args": args,
        }));
    }
    for (name, _) in ENOSYS {
        syscalls.push(deny(name, libc::ENOSYS, None));
    }
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
        // Never two conditions on one argument in one rule: runc would OR them.
        for rule in profile["syscalls"].as_array().unwrap() {
            let mut indexes: Vec<u64> = rule["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|arg| arg["index"].as_u64().unwrap())
                .collect();
            let count = indexes.len();
            indexes.dedup();
            assert_eq!(indexes.len(), count, "{rule}");
        }
    }

    /// The docker profile and, through `mode_rules`, the native filter (both are built from
    /// it): set-id modes and device nodes are refused, everything else about modes is not.
    #[test]
    fn set_id_modes_and_device_nodes_are_refused_in_every_mode_but_off() {
        let eperm = Some(libc::EPERM as i64);
        let creat = libc::O_CREAT as u64 | libc::O_WRONLY as u64;
        let tmpfile = libc::O_TMPFILE as u64 | libc::O_RDWR as u64;
        for mode in [SeccompMode::Default, SeccompMode::Strict] {
            let profile = docker_profile(mode);
            let errno = |name: &str, args: [u64; 6]| docker_errno(&profile, name, args);
            for set_id in [0o4755, 0o2755, 0o6755, 0o4000] {
                assert_eq!(errno("chmod", [0, set_id, 0, 0, 0, 0]), eperm, "{set_id:o}");
                assert_eq!(errno("fchmod", [3, set_id, 0, 0, 0, 0]), eperm);
                assert_eq!(errno("fchmodat", [3, 0, set_id, 0, 0, 0]), eperm);
                assert_eq!(errno("fchmodat2", [3, 0, set_id, 0, 0, 0]), eperm);
                assert_eq!(errno("creat", [0, set_id, 0, 0, 0, 0]), eperm);
                assert_eq!(errno("open", [0, creat, set_id, 0, 0, 0]), eperm);
                assert_eq!(errno("openat", [3, 0, creat, set_id, 0, 0]), eperm);
                assert_eq!(errno("openat", [3, 0, tmpfile, set_id, 0, 0]), eperm);
                assert_eq!(errno("mkdir", [0, set_id, 0, 0, 0, 0]), eperm);
                assert_eq!(errno("mkdirat", [3, 0, set_id, 0, 0, 0]), eperm);
                let regular = libc::S_IFREG as u64 | set_id;
                assert_eq!(errno("mknodat", [3, 0, regular, 0, 0, 0]), eperm);
                // Without O_CREAT/O_TMPFILE the mode is ignored by the kernel, and so by us.
                assert_eq!(
                    errno("openat", [3, 0, libc::O_RDONLY as u64, set_id, 0, 0]),
                    None
                );
                // Junk above the 32 bits of a mode_t does not hide the bits.
                assert_eq!(errno("chmod", [0, (1 << 32) | set_id, 0, 0, 0, 0]), eperm);
            }
            for plain in [0o755, 0o1777, 0o644, 0] {
                assert_eq!(errno("chmod", [0, plain, 0, 0, 0, 0]), None, "{plain:o}");
                assert_eq!(errno("openat", [3, 0, creat, plain, 0, 0]), None);
                assert_eq!(errno("mkdirat", [3, 0, plain, 0, 0, 0]), None);
            }
            for device in [libc::S_IFCHR, libc::S_IFBLK] {
                let mode = device as u64 | 0o600;
                assert_eq!(errno("mknod", [0, mode, 0x103, 0, 0, 0]), eperm);
                assert_eq!(errno("mknodat", [3, 0, mode, 0x103, 0, 0]), eperm);
            }
            for harmless in [libc::S_IFIFO, libc::S_IFSOCK, libc::S_IFREG, 0] {
                let mode = harmless as u64 | 0o644;
                assert_eq!(errno("mknod", [0, mode, 0, 0, 0, 0]), None, "{mode:o}");
                assert_eq!(errno("mknodat", [3, 0, mode, 0, 0, 0]), None, "{mode:o}");
            }
            assert_eq!(errno("openat2", [0; 6]), Some(libc::ENOSYS as i64));
        }
    }

    #[test]
    fn every_mode_syscall_has_rules_for_both_set_id_bits() {
        let rules = mode_rules();
        for (name, _, mode_arg, flags) in MODE_ARGS {
            let of: Vec<_> = rules.iter().filter(|r| r.name == *name).collect();
            for bit in SET_ID_BITS {
                let expected = if flags.is_some() { 2 } else { 1 };
                let testing = of
                    .iter()
                    .filter(|r| r.conditions.contains(&(*mode_arg, bit, bit)))
                    .count();
                assert_eq!(testing, expected, "{name} {bit:o}");
            }
        }
    }
}
