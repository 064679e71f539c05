//! The JobSpec as a container configuration: plain data, built without an engine, inspected by
//! the unit tests below. DESIGN.md section 3 lists what the docker backend promises.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, Mount,
    MountBindOptions, MountBindOptionsPropagationEnum, MountType, ResourcesUlimits,
};

use crate::error::SandboxError;
use crate::network;
use crate::network::forwarder;
use crate::profile::{Feature, NetworkMode, SeccompMode, UserSpec};
use crate::secrets::Delivery;
use crate::spec::JobSpec;

use super::engine::EngineFacts;

/// What the container's `/proc` and `/sys` hide or freeze: the engine's defaults (which a
/// `MaskedPaths` of ours replaces rather than extends), plus `/proc/kmsg` as the native jail.
pub const DEFAULT_MASKED: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/kmsg",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const DEFAULT_READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A hidden directory with a mount below it: an empty, read-only tmpfs over it.
const HIDDEN_DIR_OPTIONS: &str = "ro,noexec,nosuid,nodev,size=64k,mode=0755";

/// How a path of `filesystem.hide` is hidden in the container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hidden {
    /// A `MaskedPaths` entry: the runtime binds /dev/null over a file, or an empty read-only
    /// tmpfs over a directory, and skips a path the container does not have.
    Masked(PathBuf),
    /// An empty read-only tmpfs mounted in path order with the other mounts, for a directory
    /// with a mount below it (which masking, done after all mounts, would cover up). The
    /// runtime gives it the mode of the directory it covers.
    Tmpfs(PathBuf),
}

/// Everything besides the JobSpec that decides the container's configuration.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Host paths bound read-only at the same place (the image's `sandbox.mirror` label).
    pub mirrors: Vec<PathBuf>,
    /// The engine's init binary at a path the container sees (under a mirror); `None` lets
    /// the engine add its own init (`HostConfig.Init`).
    pub mirrored_init: Option<PathBuf>,
    pub hidden: Vec<Hidden>,
    /// Our seccomp profile as Docker's JSON; `None` when the profile turns seccomp off.
    pub seccomp: Option<String>,
    /// `sandbox.*` labels: the job, and who started it (for `gc`).
    pub labels: BTreeMap<String, String>,
    /// For an allowlist job whose network namespace we cannot enter: the forwarder program and
    /// the host directory of the proxy's socket, both bound in (`network::forwarder`).
    pub forwarder: Option<Forwarder>,
}

/// The in-container forwarder of an allowlist job (see `Inputs::forwarder`).
#[derive(Debug, Clone)]
pub struct Forwarder {
    pub program: PathBuf,
    pub socket_dir: PathBuf,
}

/// Runs the job once a line arrives on stdin, after evaluating that line (see `container` and
/// `gate_line`); `$0` names the wrapper. The line is a shell variable, never an argument.
pub const GATE: [&str; 4] = [
    "/bin/sh",
    "-c",
    "IFS= read -r setup && eval \"$setup\" && unset setup && exec \"$@\"",
    "sandbox-job",
];

/// Whether the job waits for `gate_line` on stdin before it runs.
pub fn gated(spec: &JobSpec) -> bool {
    spec.network == NetworkMode::Allowlist || !spec.secrets.is_empty()
}

/// The line the gate evaluates: the secrets, exported or written to their files. Every byte of
/// a value is an octal escape of the shell's builtin `printf`, so the line is one line, holds
/// no quote, and no value ever becomes an argument of a program (`docker inspect` and
/// `/proc/*/cmdline` show neither). Files get mode 0400 from a umask set in a subshell (the
/// job keeps its own) and the job's uid from the user the container runs as.
pub fn gate_line(spec: &JobSpec, forwarded: bool) -> Vec<u8> {
    // Joined with `&&`: a secret that cannot be delivered, or a forwarder that cannot listen,
    // stops the job before it runs, with the message on its stderr.
    let mut steps = vec![":".to_owned()];
    if forwarded {
        // Returns once 127.0.0.1:PROXY_PORT listens; it forwards until the container ends.
        steps.push(format!(
            "{} {} {} {}/proxy.sock",
            forwarder::PROGRAM_IN_CONTAINER,
            forwarder::SUBCOMMAND,
            crate::network::PROXY_PORT,
            forwarder::SOCKET_DIR_IN_CONTAINER
        ));
    }
    for secret in &spec.secrets {
        let escaped: String = secret
            .value()
            .iter()
            .map(|byte| format!("\\{byte:03o}"))
            .collect();
        steps.push(match &secret.delivery {
            // The `x` keeps trailing newlines, which a command substitution would strip.
            Delivery::Env => format!(
                "{name}=$(printf '{escaped}'; printf x) && {name}=${{{name}%x}} && export {name}",
                name = secret.name
            ),
            Delivery::File(path) => {
                format!("(umask 0377; printf '{escaped}' > {})", shell_quote(path))
            }
        });
    }
    // The job may read its secrets, not add to them.
    steps.extend(
        spec.secret_dirs()
            .iter()
            .map(|dir| format!("chmod 0500 {}", shell_quote(dir))),
    );
    let mut line = steps.join(" && ");
    line.push('\n');
    line.into_bytes()
}

/// `process.require` against what the engine enforces. Landlock is the one layer a container
/// does not get: its read-only root and mounts stand in for it, and the Outcome says so
/// (`isolation.landlock_abi` is null, with a note).
pub fn check_requirements(spec: &JobSpec, engine: &EngineFacts) -> Result<(), SandboxError> {
    for feature in &spec.require {
        let missing = match feature {
            Feature::Netns => (spec.network == NetworkMode::Host).then(|| {
                "the network mode is `host`, which shares the host's network namespace".into()
            }),
            Feature::Seccomp => (spec.seccomp == SeccompMode::Off)
                .then(|| "the profile turns seccomp off (`process.seccomp = \"off\"`)".into()),
            Feature::Cgroup => {
                if engine.cgroup.is_none() {
                    Some("the Docker engine reports no cgroup version".into())
                } else if !engine.unsupported_limits.is_empty() {
                    let names: Vec<&str> =
                        engine.unsupported_limits.iter().map(|l| l.name()).collect();
                    Some(format!(
                        "the Docker engine cannot enforce limits.{} (docker info warns about \
                         it): its kernel lacks the cgroup controller",
                        names.join(", limits.")
                    ))
                } else {
                    None
                }
            }
            Feature::Userns => (!engine.user_namespace)
                .then(|| "the Docker engine does not remap users (dockerd --userns-remap)".into()),
            Feature::Landlock => None,
        };
        if let Some(reason) = missing {
            return Err(SandboxError::Refused {
                feature: feature.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

/// How each hidden path is hidden. Masking is the rule: it keeps the native jail's empty,
/// traversable directory (a tmpfs of ours would take the mode of what it covers, and a job
/// searching its PATH through a 0700 `/root` would get EACCES, exit 126, where the native jail
/// says 127). A directory something is mounted below gets a tmpfs instead, so that the mount
/// stays visible; a path something is mounted on is left to that mount. `exists` tells
/// whether a host path exists: below a mirror that is what the container sees.
pub fn classify_hidden(
    spec: &JobSpec,
    mirrors: &[PathBuf],
    exists: impl Fn(&Path) -> bool,
) -> Vec<Hidden> {
    let targets: Vec<&Path> = mirrors
        .iter()
        .chain(spec.binds.iter().map(|bind| &bind.target))
        .chain(spec.tmpfs.iter().map(|(path, _)| path))
        .map(PathBuf::as_path)
        .chain([spec.workspace_mount.as_path()])
        .collect();
    let secret_dirs = spec.secret_dirs();
    let targets: Vec<&Path> = targets
        .into_iter()
        .chain(secret_dirs.iter().map(PathBuf::as_path))
        .collect();
    let mut hidden: Vec<Hidden> = spec
        .hide
        .iter()
        .filter(|path| !targets.contains(&path.as_path()))
        .filter(|path| !mirrors.iter().any(|m| path.starts_with(m)) || exists(path))
        .map(|path| {
            if targets.iter().any(|target| target.starts_with(path)) {
                Hidden::Tmpfs(path.clone())
            } else {
                Hidden::Masked(path.clone())
            }
        })
        .collect();
    hidden.sort();
    hidden.dedup();
    hidden
}

/// The container for `spec`.
pub fn container(spec: &JobSpec, inputs: &Inputs) -> Result<ContainerCreateBody, SandboxError> {
    let mut mounts: Vec<Mount> = inputs
        .mirrors
        .iter()
        .map(|path| bind(path, path, true))
        .collect();
    mounts.extend(
        spec.binds
            .iter()
            .map(|extra| bind(&extra.source, &extra.target, !extra.writable)),
    );
    mounts.push(bind(
        spec.workspace_source(),
        &spec.workspace_mount,
        !spec.workspace_writable(),
    ));
    if let Some(forwarder) = &inputs.forwarder {
        mounts.push(bind(
            &forwarder.program,
            Path::new(forwarder::PROGRAM_IN_CONTAINER),
            true,
        ));
        mounts.push(bind(
            &forwarder.socket_dir,
            Path::new(forwarder::SOCKET_DIR_IN_CONTAINER),
            true,
        ));
    }

    let mut tmpfs = HashMap::new();
    for (target, size) in &spec.tmpfs {
        let size = size.0.min(spec.limits.disk.0);
        // The engine mounts tmpfs `noexec` unless told otherwise; the native jail's are not.
        tmpfs.insert(
            path_string(target),
            format!(
                "rw,exec,nosuid,nodev,size={size},mode=1777,nr_inodes={}",
                spec.limits.files
            ),
        );
    }
    for dir in spec.secret_dirs() {
        tmpfs.insert(
            path_string(&dir),
            format!(
                "rw,noexec,nosuid,nodev,size=1m,mode=0700,uid={},gid={}",
                container_user(spec).uid,
                container_user(spec).gid
            ),
        );
    }
    let mut masked: Vec<String> = DEFAULT_MASKED.iter().map(|p| (*p).to_owned()).collect();
    for hidden in &inputs.hidden {
        match hidden {
            Hidden::Tmpfs(path) => {
                tmpfs.insert(path_string(path), HIDDEN_DIR_OPTIONS.to_owned());
            }
            Hidden::Masked(path) => masked.push(path_string(path)),
        }
    }
    // Credentials of the host's homes: the runtime masks after every mount (so a toolchain
    // bind cannot show one) and skips a path the container does not have.
    masked.extend(spec.credentials.iter().map(|path| path_string(path)));

    let mut security = vec!["no-new-privileges".to_owned()];
    security.push(match &inputs.seccomp {
        Some(profile) => format!("seccomp={profile}"),
        None => "seccomp=unconfined".to_owned(),
    });

    let limits = &spec.limits;
    let memory = clamp(limits.memory.0);
    let cpu_seconds = limits.cpu_time.0.as_secs().max(1);
    let ulimit = |name: &str, soft: u64, hard: u64| ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(clamp(soft)),
        hard: Some(clamp(hard)),
    };
    let network_mode = match spec.network {
        NetworkMode::Host => "host",
        NetworkMode::None | NetworkMode::Allowlist => "none",
    };

    // The job waits for one line on stdin before it runs: with the allowlist, the proxy's
    // listener is put into the container's network namespace after the start, and the job's
    // first connection must find it there; secrets arrive on that line, so that the
    // container's configuration never holds them. Every image we build has /bin/sh.
    let gated = gated(spec);
    let command = if gated {
        [
            GATE.iter().map(|s| (*s).to_owned()).collect(),
            spec.command.clone(),
        ]
        .concat()
    } else {
        spec.command.clone()
    };
    let proxy_env = if gated {
        network::proxy_env(&spec.proxy.allowlist)
    } else {
        Vec::new()
    };

    let (entrypoint, init) = match &inputs.mirrored_init {
        Some(init) => (vec![path_string(init), "--".to_owned()], false),
        // `[""]` clears an entrypoint the image may have; the engine's init runs the command.
        None => (vec![String::new()], true),
    };

    let host_config = HostConfig {
        readonly_rootfs: Some(true),
        mounts: Some(mounts),
        tmpfs: Some(tmpfs),
        masked_paths: Some(masked),
        readonly_paths: Some(DEFAULT_READ_ONLY.iter().map(|p| (*p).to_owned()).collect()),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(security),
        // Swap off: memory + swap = memory.
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some((limits.cpus * 1e9).round() as i64),
        pids_limit: Some(clamp(limits.pids)),
        // The native jail's rlimits: SIGXCPU at the CPU-time limit and SIGKILL a second later.
        ulimits: Some(vec![
            ulimit("nofile", limits.open_files, limits.open_files),
            ulimit("fsize", limits.file_size.0, limits.file_size.0),
            ulimit("cpu", cpu_seconds, cpu_seconds + 1),
            ulimit("core", 0, 0),
        ]),
        init: Some(init),
        network_mode: Some(network_mode.to_owned()),
        // A private IPC namespace with the job's own /dev/shm (nosuid, nodev, noexec), sized as
        // natively: Python's multiprocessing needs it (issue 16). `none` is also private, but
        // without any /dev/shm.
        ipc_mode: Some(
            if spec.shm_size().is_some() {
                "private"
            } else {
                "none"
            }
            .to_owned(),
        ),
        shm_size: spec.shm_size().map(clamp),
        cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
        // The job's output reaches us through attach only: a job printing 1 GiB must not
        // write 1 GiB of logs on the engine's disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".to_owned()),
            config: None,
        }),
        auto_remove: Some(false),
        privileged: Some(false),
        ..HostConfig::default()
    };

    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: Some(entrypoint),
        cmd: Some(command),
        env: Some(
            spec.env
                .iter()
                .chain(&proxy_env)
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
        user: Some(format!(
            "{}:{}",
            container_user(spec).uid,
            container_user(spec).gid
        )),
        working_dir: Some(path_string(&spec.workspace_mount)),
        hostname: Some("sandbox".to_owned()),
        labels: Some(inputs.labels.clone().into_iter().collect()),
        attach_stdin: Some(gated),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(gated),
        stdin_once: Some(gated),
        tty: Some(false),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    })
}

/// The ids the container runs as. As root, the profile's: a workspace owned by someone else is
/// idmapped onto them (`crate::ownership`). Unprivileged there is no idmap, and a container does
/// not map ids the way the native jail's user namespace maps the job onto the caller; running as
/// the caller's own ids is what lets the job act as the owner of the caller's tree, as natively
/// (and a caller holding the engine's socket gives the job nothing it does not hold already).
pub fn container_user(spec: &JobSpec) -> UserSpec {
    if nix::unistd::geteuid().is_root() {
        spec.user
    } else {
        UserSpec {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

fn bind(source: &Path, target: &Path, read_only: bool) -> Mount {
    Mount {
        source: Some(path_string(source)),
        target: Some(path_string(target)),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        bind_options: Some(MountBindOptions {
            propagation: Some(MountBindOptionsPropagationEnum::RPRIVATE),
            ..MountBindOptions::default()
        }),
        ..Mount::default()
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path_string(path).replace('\'', "'\\''"))
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The engine takes signed 64-bit numbers; a limit beyond them is no limit anyway.
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::profile::{ByteSize, HumanDuration};
    use crate::spec::Overrides;

    fn spec(profile: &str) -> JobSpec {
        crate::spec::test_spec(profile, Overrides::default(), &["sh", "-c", "id"]).unwrap()
    }

    fn host_config(body: &ContainerCreateBody) -> &HostConfig {
        body.host_config.as_ref().unwrap()
    }

    fn inputs() -> Inputs {
        Inputs {
            mirrors: vec!["/usr".into()],
            mirrored_init: Some("/usr/bin/docker-init".into()),
            hidden: Vec::new(),
            seccomp: Some("{}".into()),
            labels: BTreeMap::from([("sandbox.job".into(), "j".into())]),
            forwarder: None,
        }
    }

    #[test]
    fn strict_maps_every_promise() {
        let mut spec = spec("strict");
        spec.limits.memory = ByteSize(64 << 20);
        spec.limits.cpus = 0.5;
        spec.limits.pids = 64;
        spec.limits.cpu_time = HumanDuration(Duration::from_secs(90));
        let body = container(&spec, &inputs()).unwrap();
        let host = host_config(&body);
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_owned()][..]));
        let security = host.security_opt.as_ref().unwrap();
        assert_eq!(security[0], "no-new-privileges");
        assert_eq!(security[1], "seccomp={}");
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, host.memory, "swap off");
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.ipc_mode.as_deref(), Some("private"));
        assert_eq!(
            host.shm_size,
            Some(64 << 20),
            "docker's default, as natively"
        );
        assert_eq!(
            host.log_config.as_ref().unwrap().typ.as_deref(),
            Some("none")
        );
        assert_eq!(host.privileged, Some(false));
        let ulimits: BTreeMap<_, _> = host
            .ulimits
            .as_ref()
            .unwrap()
            .iter()
            .map(|u| (u.name.clone().unwrap(), (u.soft.unwrap(), u.hard.unwrap())))
            .collect();
        assert_eq!(ulimits["cpu"], (90, 91));
        assert_eq!(ulimits["core"], (0, 0));
        assert_eq!(ulimits["nofile"], (1024, 1024));
        assert_eq!(ulimits["fsize"], (256 << 20, 256 << 20));
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        assert_eq!(body.hostname.as_deref(), Some("sandbox"));
        assert_eq!(body.working_dir.as_deref(), Some("/workspace"));
        assert_eq!(body.tty, Some(false));
        assert_eq!(body.open_stdin, Some(false));
        assert_eq!(body.image.as_deref(), Some("sandbox/host:latest"));
    }

    #[test]
    fn the_environment_is_exactly_the_specs() {
        let mut spec = spec("strict");
        spec.env = vec![
            ("PATH".into(), "/usr/bin".into()),
            ("A".into(), "b=c".into()),
        ];
        let body = container(&spec, &inputs()).unwrap();
        assert_eq!(
            body.env.as_deref(),
            Some(&["PATH=/usr/bin".to_owned(), "A=b=c".to_owned()][..])
        );
    }

    #[test]
    fn the_init_runs_from_the_mirror_or_is_the_engines() {
        let spec = spec("strict");
        let body = container(&spec, &inputs()).unwrap();
        assert_eq!(
            body.entrypoint.as_deref(),
            Some(&["/usr/bin/docker-init".to_owned(), "--".to_owned()][..])
        );
        assert_eq!(host_config(&body).init, Some(false));
        assert_eq!(body.cmd.as_ref().unwrap(), &spec.command);

        let engine_init = Inputs {
            mirrored_init: None,
            ..inputs()
        };
        let body = container(&spec, &engine_init).unwrap();
        assert_eq!(body.entrypoint.as_deref(), Some(&[String::new()][..]));
        assert_eq!(host_config(&body).init, Some(true));
    }

    #[test]
    fn mounts_mirror_workspace_and_extra_paths() {
        let mut spec = spec("standard");
        spec.binds = [("/opt/ro", false), ("/srv/rw", true)]
            .into_iter()
            .map(|(path, writable)| crate::spec::Bind {
                source: path.into(),
                target: path.into(),
                writable,
            })
            .collect();
        let body = container(&spec, &inputs()).unwrap();
        let mounts: Vec<(String, String, bool)> = host_config(&body)
            .mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m.typ, Some(MountType::BIND));
                (
                    m.source.clone().unwrap(),
                    m.target.clone().unwrap(),
                    m.read_only.unwrap(),
                )
            })
            .collect();
        let workspace = spec.workspace.display().to_string();
        assert_eq!(
            mounts,
            [
                ("/usr".into(), "/usr".into(), true),
                ("/opt/ro".into(), "/opt/ro".into(), true),
                ("/srv/rw".into(), "/srv/rw".into(), false),
                (workspace, "/workspace".into(), false),
            ]
        );
        let mut ro = spec.clone();
        ro.workspace_mode = crate::profile::WorkspaceMode::Ro;
        let body = container(&ro, &inputs()).unwrap();
        let last = host_config(&body).mounts.as_ref().unwrap().last().cloned();
        assert_eq!(last.unwrap().read_only, Some(true));
    }

    #[test]
    fn tmpfs_is_capped_by_disk_and_files_and_hidden_paths_are_empty() {
        let mut spec = spec("strict");
        spec.tmpfs = vec![("/tmp".into(), ByteSize(1 << 30))];
        spec.limits.disk = ByteSize(512 << 20);
        spec.limits.files = 20000;
        let inputs = Inputs {
            hidden: vec![
                Hidden::Tmpfs("/home".into()),
                Hidden::Masked("/run/docker.sock".into()),
            ],
            ..inputs()
        };
        let body = container(&spec, &inputs).unwrap();
        let host = host_config(&body);
        let tmpfs = host.tmpfs.as_ref().unwrap();
        assert_eq!(
            tmpfs["/tmp"],
            format!(
                "rw,exec,nosuid,nodev,size={},mode=1777,nr_inodes=20000",
                512 << 20
            )
        );
        assert!(tmpfs["/home"].starts_with("ro,"), "{tmpfs:?}");
        let masked = host.masked_paths.as_ref().unwrap();
        assert!(masked.contains(&"/run/docker.sock".to_owned()));
        assert!(masked.contains(&"/proc/kcore".to_owned()), "defaults kept");
        assert!(host
            .readonly_paths
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_owned()));
    }

    #[test]
    fn dev_shm_is_capped_by_disk_and_absent_at_zero() {
        let mut spec = spec("standard");
        spec.shm = ByteSize(1 << 30);
        spec.limits.disk = ByteSize(32 << 20);
        let body = container(&spec, &inputs()).unwrap();
        assert_eq!(host_config(&body).shm_size, Some(32 << 20));
        assert_eq!(host_config(&body).ipc_mode.as_deref(), Some("private"));
        spec.shm = ByteSize(0);
        let body = container(&spec, &inputs()).unwrap();
        assert_eq!(host_config(&body).shm_size, None);
        assert_eq!(host_config(&body).ipc_mode.as_deref(), Some("none"));
    }

    #[test]
    fn hidden_paths_are_masked_unless_something_is_mounted_below() {
        let mut spec = spec("strict");
        spec.workspace_mount = "/home/me/project".into();
        spec.binds = vec![crate::spec::Bind {
            source: "/srv/data".into(),
            target: "/srv/data".into(),
            writable: false,
        }];
        spec.hide = [
            "/home",
            "/run/docker.sock",
            "/media",
            "/usr/share/secret",
            "/usr/absent",
            "/srv/data",
            "/tmp",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let exists = |path: &Path| path != Path::new("/usr/absent");
        assert_eq!(
            classify_hidden(&spec, &["/usr".into()], exists),
            [
                Hidden::Masked("/media".into()),
                Hidden::Masked("/run/docker.sock".into()),
                Hidden::Masked("/usr/share/secret".into()),
                Hidden::Tmpfs("/home".into()),
            ],
            "/usr/absent is not there to hide; /srv/data and /tmp are mounts of the job's"
        );
    }

    #[test]
    fn seccomp_off_is_unconfined_and_host_network_is_host() {
        let mut spec = spec("permissive");
        spec.network = NetworkMode::Host;
        let inputs = Inputs {
            seccomp: None,
            ..inputs()
        };
        let body = container(&spec, &inputs).unwrap();
        let host = host_config(&body);
        assert!(host
            .security_opt
            .as_ref()
            .unwrap()
            .contains(&"seccomp=unconfined".to_owned()));
        assert_eq!(host.network_mode.as_deref(), Some("host"));
    }

    #[test]
    fn allowlist_jobs_wait_for_the_proxy_and_see_no_network() {
        let mut allowlist = spec("standard");
        allowlist.network = NetworkMode::Allowlist;
        let body = container(&allowlist, &inputs()).unwrap();
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        let cmd = body.cmd.unwrap();
        assert_eq!(cmd[..4], GATE.map(str::to_owned));
        assert_eq!(cmd[4..], allowlist.command[..]);
        assert_eq!(body.open_stdin, Some(true));
        assert_eq!(body.stdin_once, Some(true));
        let env = body.env.unwrap();
        assert!(env.contains(&"HTTPS_PROXY=http://127.0.0.1:3128".to_owned()));
    }

    #[test]
    fn a_forwarded_allowlist_job_binds_the_forwarder_and_starts_it_before_the_job() {
        let mut allowlist = spec("standard");
        allowlist.network = NetworkMode::Allowlist;
        let forwarded = Inputs {
            forwarder: Some(Forwarder {
                program: "/usr/local/bin/sandbox".into(),
                socket_dir: "/tmp/sandbox-egress-j".into(),
            }),
            ..inputs()
        };
        let body = container(&allowlist, &forwarded).unwrap();
        let mounts = host_config(&body).mounts.clone().unwrap();
        for (source, target) in [
            ("/usr/local/bin/sandbox", "/.sandbox-forward"),
            ("/tmp/sandbox-egress-j", "/.sandbox-egress"),
        ] {
            assert!(
                mounts.iter().any(|m| m.source.as_deref() == Some(source)
                    && m.target.as_deref() == Some(target)
                    && m.read_only == Some(true)),
                "{source} -> {target}: {mounts:?}"
            );
        }
        let line = String::from_utf8(gate_line(&allowlist, true)).unwrap();
        assert_eq!(
            line,
            ": && /.sandbox-forward egress-forward 3128 /.sandbox-egress/proxy.sock\n"
        );
        assert_eq!(gate_line(&allowlist, false), b":\n");
        let plain = container(&allowlist, &inputs()).unwrap();
        assert!(!host_config(&plain)
            .mounts
            .iter()
            .flatten()
            .any(|m| m.target.as_deref() == Some("/.sandbox-forward")));
    }

    #[test]
    fn requirements_are_checked_against_the_engine() {
        let engine = EngineFacts {
            cgroup: Some("v1".into()),
            ..EngineFacts::default()
        };
        check_requirements(&spec("strict"), &engine).unwrap();
        let mut host_net = spec("strict");
        host_net.network = NetworkMode::Host;
        let refused = check_requirements(&host_net, &engine).unwrap_err();
        assert!(refused.to_string().contains("netns"), "{refused}");
        let no_cgroup = EngineFacts::default();
        assert!(check_requirements(&spec("strict"), &no_cgroup).is_err());
        let no_memory_controller = EngineFacts {
            unsupported_limits: vec![crate::outcome::CgroupLimit::Memory],
            ..engine
        };
        let refused = check_requirements(&spec("strict"), &no_memory_controller).unwrap_err();
        assert!(refused.to_string().contains("limits.memory"), "{refused}");
    }
}
