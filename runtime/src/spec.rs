//! The resolved `JobSpec`: a profile plus the caller's overrides, checked, with host paths made
//! absolute. Backends take nothing else.

use std::path::{Path, PathBuf};

use crate::error::SandboxError;
use crate::events::{JobObserver, Observer};
use crate::network::{Allowlist, ProxyConfig};
use crate::profile::{
    BackendChoice, ByteSize, CommitPolicy, Feature, HumanDuration, Limits, NetworkMode,
    ResolvedProfile, RootMode, ScratchView, SeccompMode, UserSpec, WorkspaceMode,
};
use crate::secrets::{Delivery, Redactor, Secret};
use crate::trust::{Protected, TrustReport};

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: String,
    pub profile: String,
    pub backend: BackendChoice,
    /// The image the docker backend runs (`backend.image`).
    pub image: String,
    pub command: Vec<String>,
    /// The host directory mounted as the workspace (canonical).
    pub workspace: PathBuf,
    pub workspace_mount: PathBuf,
    pub workspace_mode: WorkspaceMode,
    /// When a scratch workspace is written back.
    pub commit: CommitPolicy,
    pub scratch_view: ScratchView,
    /// The directory the backends mount as the workspace when it is not `workspace` itself:
    /// a scratch job's copy-on-write view (set by `crate::run`).
    pub view: Option<PathBuf>,
    pub tmpfs: Vec<(PathBuf, ByteSize)>,
    /// `filesystem.shm`: the size asked for the job's private `/dev/shm` (see `shm_size`).
    pub shm: ByteSize,
    /// `filesystem.root`: the host's whole root read-only, or the allowlisted one (`view`).
    pub root: RootMode,
    pub hide: Vec<PathBuf>,
    /// Credentials in the host's homes (`view::credentials`), hidden after every bind so that
    /// no bind, toolchain or profile path can show one.
    pub credentials: Vec<PathBuf>,
    /// The toolchains under a home the job's PATH points into, shown read-only
    /// (`toolchains::plan`): `rustup`, `pyenv`, ...
    pub toolchains: Vec<String>,
    /// Host paths bound into the job: `filesystem.read_only` / `read_write` at their own place,
    /// then the caller's `--ro-bind` / `--bind`.
    pub binds: Vec<Bind>,
    pub network: NetworkMode,
    /// Where `allowlist` lets the job connect, and how the egress proxy treats connections.
    pub proxy: ProxyConfig,
    pub limits: Limits,
    pub user: UserSpec,
    /// The job's whole environment: nothing of the host's leaks in but `env.pass`.
    pub env: Vec<(String, String)>,
    pub seccomp: SeccompMode,
    pub require: Vec<Feature>,
    /// The secrets with their values; their `Debug` never shows a value.
    pub secrets: Vec<Secret>,
    /// Replaces the secrets' values in everything we emit.
    pub redactor: Redactor,
    pub output: OutputMode,
    /// Where a scratch job's change set is written as a git-style patch.
    pub diff: Option<PathBuf>,
    /// Who is told of the job's events as they happen (`--events`): nobody unless the caller
    /// calls [`JobSpec::observe`].
    pub observer: Observer,
    /// Paths a scratch job's changes may not reach (DESIGN §12).
    pub protected: Protected,
    /// Which trust the profile was loaded with.
    pub trust: TrustReport,
}

/// A host path visible in the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub writable: bool,
}

/// How the job's stdout and stderr reach the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Forwarded live to our own stdout/stderr.
    Stream,
    /// Kept (up to `limits.output` in all) for the Outcome.
    Capture,
}

/// What a caller may override on top of the profile (the CLI's flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub backend: Option<BackendChoice>,
    pub workspace: Option<PathBuf>,
    pub workspace_mode: Option<WorkspaceMode>,
    pub timeout: Option<HumanDuration>,
    pub memory: Option<ByteSize>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    pub env: Vec<(String, String)>,
    pub network: Option<NetworkMode>,
    /// Rules added to the profile's `network.allow`.
    pub allow: Vec<String>,
    /// Secrets given on the command line; one named like a profile secret replaces it.
    pub secrets: Vec<Secret>,
    pub commit: Option<CommitPolicy>,
    /// Write a scratch job's change set here as a git-style patch.
    pub diff: Option<PathBuf>,
    /// Host paths bound into the job (`--bind`, `--ro-bind`): sources must exist.
    pub binds: Vec<Bind>,
    /// Protected paths the operator lets the job change (`--allow-protected`, `[trust]
    /// allow_protected`).
    pub allow_protected: Vec<String>,
}

impl JobSpec {
    pub fn new(
        resolved: &ResolvedProfile,
        overrides: Overrides,
        command: Vec<String>,
        output: OutputMode,
    ) -> Result<JobSpec, SandboxError> {
        if command.is_empty() {
            return Err(SandboxError::InvalidSpec(
                "no command given: write it after `--`, e.g. `sandbox exec -- sh -c 'id'`".into(),
            ));
        }
        let profile = &resolved.profile;
        let mut limits = profile.limits.clone();
        if let Some(timeout) = overrides.timeout {
            limits.wall_time = timeout;
        }
        if let Some(memory) = overrides.memory {
            limits.memory = memory;
        }
        if let Some(cpus) = overrides.cpus {
            limits.cpus = cpus;
        }
        if let Some(pids) = overrides.pids {
            limits.pids = pids;
        }
        check_limits(&limits)?;

        let workspace = workspace_dir(overrides.workspace.as_deref())?;

        let mut env: Vec<(String, String)> = profile
            .process
            .env
            .pass
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
            .collect();
        let set = profile
            .process
            .env
            .set
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()));
        let mut explicit_env = Vec::new();
        for (name, value) in set.chain(overrides.env) {
            check_env_name(&name)?;
            explicit_env.push(name.clone());
            env.retain(|(existing, _)| *existing != name);
            env.push((name, value));
        }
        if !env.iter().any(|(name, _)| name == "PATH") {
            env.push((
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ));
        }

        let network = overrides.network.unwrap_or(profile.network.mode);
        let rules: Vec<&String> = profile
            .network
            .allow
            .iter()
            .chain(&overrides.allow)
            .collect();
        let allow = Allowlist {
            resolve_names_for_address_rules: profile.network.resolve_names_for_address_rules,
            ..Allowlist::parse(&rules).map_err(|error| {
                SandboxError::InvalidSpec(format!("network.allow / --allow: {error}"))
            })?
        };
        if !allow.rules.is_empty() && network != NetworkMode::Allowlist {
            return Err(SandboxError::InvalidSpec(format!(
                "allow rules are given but the network mode is `{network}`: use --network allowlist \
                 (or the `networked` profile)"
            )));
        }

        let fs = &profile.filesystem;
        let workspace_mode = overrides.workspace_mode.unwrap_or(fs.workspace.mode);
        let workspace_mount = fs.workspace.mount.as_path();
        if workspace_mount == Path::new("/") {
            return Err(SandboxError::InvalidSpec(
                "filesystem.workspace.mount must not be `/`".into(),
            ));
        }
        if overrides.diff.is_some() && workspace_mode != WorkspaceMode::Scratch {
            return Err(SandboxError::InvalidSpec(format!(
                "--diff needs a scratch workspace, and this one is `{workspace_mode}`: add \
                 --workspace-mode scratch"
            )));
        }
        trust_workspace_for_git(&mut env, workspace_mount);
        let secrets = secrets(resolved, overrides.secrets, workspace_mount)?;
        for secret in &secrets {
            if secret.delivery == Delivery::Env {
                env.retain(|(name, _)| *name != secret.name);
            }
        }
        let mut binds: Vec<Bind> = [(&fs.read_only, false), (&fs.read_write, true)]
            .into_iter()
            .flat_map(|(list, writable)| {
                list.iter().map(move |path| Bind {
                    source: path.as_path().to_owned(),
                    target: path.as_path().to_owned(),
                    writable,
                })
            })
            .collect();
        for bind in overrides.binds {
            binds.push(checked_bind(bind)?);
        }
        let toolchains = toolchains_for(&command, &mut env, &mut binds, &explicit_env);
        let paths = |list: &[crate::profile::AbsolutePath]| {
            list.iter()
                .map(|p| p.as_path().to_owned())
                .collect::<Vec<_>>()
        };
        Ok(JobSpec {
            id: new_job_id(),
            profile: resolved.name.clone(),
            backend: overrides.backend.unwrap_or(profile.backend.prefer),
            image: profile.backend.image.clone(),
            command,
            workspace,
            workspace_mount: workspace_mount.to_owned(),
            workspace_mode,
            commit: overrides.commit.unwrap_or(fs.commit),
            scratch_view: fs.scratch_view,
            view: None,
            // A bind the caller asked for replaces a profile's tmpfs at the same place (`gate`
            // has a tmpfs `/out`; the gate runner binds a directory it reads afterwards there).
            tmpfs: fs
                .tmpfs
                .iter()
                .map(|(path, size)| (path.as_path().to_owned(), *size))
                .chain(
                    toolchains
                        .tmpfs
                        .iter()
                        .map(|path| (path.clone(), ByteSize(crate::toolchains::CARGO_HOME_SIZE))),
                )
                .filter(|(path, _)| !binds.iter().any(|bind| bind.target == *path))
                .collect(),
            shm: fs.shm,
            root: fs.root,
            hide: paths(&fs.hide),
            credentials: toolchains.credentials,
            toolchains: toolchains.found,
            binds,
            network,
            proxy: ProxyConfig {
                allowlist: allow,
                idle_timeout: profile.network.idle_timeout.0,
                total_timeout: profile.network.connection_time.0,
                max_connections: profile.network.max_connections as usize,
            },
            limits,
            user: profile.process.user,
            env,
            seccomp: profile.process.seccomp,
            require: profile.process.require.clone(),
            redactor: Redactor::new(&secrets),
            secrets,
            output,
            diff: overrides.diff,
            observer: Observer::default(),
            protected: Protected::new(&overrides.allow_protected)
                .map_err(SandboxError::InvalidSpec)?,
            trust: resolved.trust.clone(),
        })
    }

    /// Tells `sink` of this job's events, with the job's secrets redacted from them.
    pub fn observe(&mut self, sink: std::sync::Arc<dyn JobObserver>) {
        self.observer = Observer::new(sink, self.redactor.clone());
    }
}

/// The profile's secrets, then the command line's, with their values read now: a missing
/// source refuses the job before anything runs.
fn secrets(
    resolved: &ResolvedProfile,
    from_flags: Vec<Secret>,
    workspace_mount: &Path,
) -> Result<Vec<Secret>, SandboxError> {
    let mut secrets = Vec::new();
    for (name, spec) in &resolved.profile.secrets {
        if from_flags.iter().any(|secret| secret.name == *name) {
            continue;
        }
        let secret = Secret::resolve(name, &spec.from, &spec.deliver_as).map_err(|error| {
            SandboxError::InvalidSpec(format!("{}: {error}", declared_at(resolved, name)))
        })?;
        secrets.push(secret);
    }
    secrets.extend(from_flags);
    for secret in &secrets {
        if let Delivery::File(path) = &secret.delivery {
            if path.as_os_str().as_encoded_bytes().contains(&b'\n') {
                return Err(SandboxError::InvalidSpec(format!(
                    "secret {}: its file path holds a newline",
                    secret.name
                )));
            }
            if path.starts_with(workspace_mount) {
                return Err(SandboxError::InvalidSpec(format!(
                    "secret {}: {} is inside the workspace ({}), where the job's changes are \
                     written back; deliver it elsewhere, e.g. file:/run/secrets/{}",
                    secret.name,
                    path.display(),
                    workspace_mount.display(),
                    secret.name.to_lowercase()
                )));
            }
        }
    }
    Ok(secrets)
}

/// git refuses a repository whose owner is not the current user ("detected dubious
/// ownership", CVE-2022-24765), and the job's HOME is a fresh tmpfs, so no global config helps.
/// The workspace is the job's own (see `crate::ownership`), so it is marked safe: the mount
/// and, for repositories below it, `mount/*` (git 2.46+; older ones read it as a path that
/// never matches). Through `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n` in the job's environment,
/// after any the caller passes, never in anyone's config file. A caller's count that is no
/// number is left for git to report.
fn trust_workspace_for_git(env: &mut Vec<(String, String)>, mount: &Path) {
    let count = match env.iter().find(|(name, _)| name == "GIT_CONFIG_COUNT") {
        None => 0,
        Some((_, value)) => match value.trim().parse::<usize>() {
            Ok(count) => count,
            Err(_) => return,
        },
    };
    let mount = mount.display().to_string();
    let entries = [mount.clone(), format!("{}/*", mount.trim_end_matches('/'))];
    let mut added = Vec::new();
    for (offset, value) in entries.into_iter().enumerate() {
        let n = count + offset;
        added.push((format!("GIT_CONFIG_KEY_{n}"), "safe.directory".to_owned()));
        added.push((format!("GIT_CONFIG_VALUE_{n}"), value));
    }
    added.push((
        "GIT_CONFIG_COUNT".to_owned(),
        (count + added.len() / 2).to_string(),
    ));
    env.retain(|(name, _)| !added.iter().any(|(ours, _)| ours == name));
    env.extend(added);
}

impl JobSpec {
    /// The host directory the backends mount as the workspace.
    pub fn workspace_source(&self) -> &Path {
        self.view.as_deref().unwrap_or(&self.workspace)
    }

    /// The directories that hold secret files: each gets a tmpfs of its own.
    pub fn secret_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .secrets
            .iter()
            .filter_map(|secret| match &secret.delivery {
                Delivery::File(path) => path.parent().map(Path::to_path_buf),
                Delivery::Env => None,
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// The bytes of the job's `/dev/shm`, capped at `limits.disk` like every tmpfs of the
    /// job's; `None` when there is none (`filesystem.shm = 0`: a tmpfs of size 0 would be
    /// unlimited).
    pub fn shm_size(&self) -> Option<u64> {
        Some(self.shm.0.min(self.limits.disk.0)).filter(|size| *size > 0)
    }

    /// Whether the job may write its workspace (in place, or in its scratch view).
    pub fn workspace_writable(&self) -> bool {
        self.workspace_mode != WorkspaceMode::Ro
    }
}

/// A caller's bind: an existing source (made canonical) and an absolute target.
fn checked_bind(bind: Bind) -> Result<Bind, SandboxError> {
    let source = std::fs::canonicalize(&bind.source).map_err(|source| SandboxError::Io {
        what: "open the source of a bind".into(),
        path: bind.source.clone(),
        source,
    })?;
    let target_ok = bind.target.is_absolute()
        && bind.target != Path::new("/")
        && !bind
            .target
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if !target_ok {
        return Err(SandboxError::InvalidSpec(format!(
            "bind target {} must be an absolute path other than / without `..`",
            bind.target.display()
        )));
    }
    Ok(Bind { source, ..bind })
}

/// What `toolchains_for` adds to a job besides binds and variables.
struct Toolchains {
    tmpfs: Vec<PathBuf>,
    credentials: Vec<PathBuf>,
    found: Vec<String>,
}

/// Shows the job the toolchains under a home its PATH and `argv[0]` point into, read-only, with
/// the variables they need (`toolchains::plan`), and finds the credentials to hide. A variable
/// the profile's `env.set` or the caller's `--env` sets is left alone; one passed from the
/// caller's environment (`CARGO_HOME`) is replaced, since the host's path means nothing here.
fn toolchains_for(
    command: &[String],
    env: &mut Vec<(String, String)>,
    binds: &mut Vec<Bind>,
    explicit_env: &[String],
) -> Toolchains {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let caller_cargo_home = var("CARGO_HOME").filter(|path| path.is_absolute());
    let extra_homes: Vec<PathBuf> = var("HOME").into_iter().collect();
    let homes = crate::view::homes(Path::new("/"), &extra_homes);
    let job_path = env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let job_home = env
        .iter()
        .find(|(name, _)| name == "HOME")
        .map(|(_, value)| PathBuf::from(value))
        .filter(|home| home.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let plan = crate::toolchains::plan(&crate::toolchains::Inputs {
        path: &job_path,
        argv0: command.first().map(String::as_str).unwrap_or(""),
        rustup_home: var("RUSTUP_HOME").filter(|path| path.is_absolute()),
        cargo_home: caller_cargo_home.clone(),
        homes: &homes,
        job_home,
        root: Path::new("/"),
    });
    let taken = |binds: &[Bind], target: &Path| binds.iter().any(|bind| bind.target == target);
    for dir in &plan.read_only {
        if !taken(binds, dir) {
            // The source is resolved now (a symlinked ~/.rustup), the target stays as PATH
            // names it.
            let source = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            binds.push(Bind {
                source,
                target: dir.clone(),
                writable: false,
            });
        }
    }
    for (source, target) in &plan.moved {
        if !taken(binds, target) {
            binds.push(Bind {
                source: std::fs::canonicalize(source).unwrap_or_else(|_| source.clone()),
                target: target.clone(),
                writable: false,
            });
        }
    }
    for (name, value) in &plan.env {
        if !explicit_env.contains(name) {
            env.retain(|(existing, _)| existing != name);
            env.push((name.clone(), value.clone()));
        }
    }
    let mut cargo_homes: Vec<PathBuf> = homes.iter().map(|home| home.join(".cargo")).collect();
    cargo_homes.extend(caller_cargo_home);
    Toolchains {
        credentials: crate::view::credentials(Path::new("/"), &homes, &cargo_homes),
        tmpfs: plan.tmpfs,
        found: plan.found,
    }
}

/// `file:line: secrets.NAME` for the profile layer that declares secret `name`.
fn declared_at(resolved: &ResolvedProfile, name: &str) -> String {
    for source in &resolved.sources {
        let crate::profile::ProfileSource::File(path) = source else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let line = text.lines().position(|line| {
            line.trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        if let Some(line) = line {
            return format!("{}:{}: secrets.{name}", path.display(), line + 1);
        }
    }
    format!("profile {}: secrets.{name}", resolved.name)
}

fn check_limits(limits: &Limits) -> Result<(), SandboxError> {
    let bad = |what: &str| Err(SandboxError::InvalidSpec(what.into()));
    if !(limits.cpus.is_finite() && limits.cpus > 0.0) {
        return bad("limits.cpus must be a positive number of cores, e.g. 0.5 or 2");
    }
    if limits.pids == 0 {
        return bad("limits.pids must be at least 1");
    }
    if limits.memory.0 < (4 << 20) {
        return bad("limits.memory must be at least 4M: nothing runs in less");
    }
    if limits.wall_time.0.is_zero() {
        return bad("limits.wall_time must be longer than 0s");
    }
    Ok(())
}

fn check_env_name(name: &str) -> Result<(), SandboxError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(SandboxError::InvalidSpec(format!(
            "`{name}` is not an environment variable name"
        )));
    }
    Ok(())
}

/// The workspace a job (and the project configuration it reads) is in: `given`, else the
/// current directory; canonical, and a directory.
pub fn workspace_dir(given: Option<&Path>) -> Result<PathBuf, SandboxError> {
    let workspace = match given {
        Some(dir) => dir.to_owned(),
        None => std::env::current_dir().map_err(|source| SandboxError::Io {
            what: "read the current directory (the default workspace)".into(),
            path: ".".into(),
            source,
        })?,
    };
    canonical_dir(&workspace)
}

fn canonical_dir(path: &Path) -> Result<PathBuf, SandboxError> {
    let canonical = std::fs::canonicalize(path).map_err(|source| SandboxError::Io {
        what: "open the workspace (pass an existing directory with --workspace)".into(),
        path: path.to_owned(),
        source,
    })?;
    if !canonical.is_dir() {
        return Err(SandboxError::InvalidSpec(format!(
            "workspace {} is not a directory",
            path.display()
        )));
    }
    Ok(canonical)
}

/// The directories `<temp dir>/<prefix><job id>` whose `sandbox` has ended (see
/// `supervisor_is_gone`): what a killed `sandbox` left for `gc`.
pub fn orphaned_dirs(prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let job_id = name.strip_prefix(prefix)?;
            supervisor_is_gone(job_id).then(|| entry.path())
        })
        .collect()
}

/// Whether the `sandbox` process that ran job `job_id` has ended (ids carry its pid in hex,
/// see `new_job_id`). A pid now used by another program counts as ended; one used by another
/// `sandbox` counts as running, which errs on the side of leaving things alone.
pub fn supervisor_is_gone(job_id: &str) -> bool {
    let Some(pid) = job_id
        .split('-')
        .nth(1)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
    else {
        return false;
    };
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => comm.trim() != "sandbox",
        Err(_) => true,
    }
}

/// A job id unique on this host: time, pid and a counter, no randomness needed.
pub(crate) fn new_job_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:x}-{:x}-{}",
        nanos & 0xffff_ffff_ffff,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A spec from a built-in profile, for unit tests across the crate.
#[cfg(test)]
pub fn test_spec(
    profile: &str,
    overrides: Overrides,
    command: &[&str],
) -> Result<JobSpec, SandboxError> {
    let resolved = crate::profile::load_with_search_path(profile, &[])?;
    let overrides = Overrides {
        workspace: Some(std::env::temp_dir()),
        ..overrides
    };
    let command = command.iter().map(|arg| (*arg).to_owned()).collect();
    JobSpec::new(&resolved, overrides, command, OutputMode::Capture)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_trusts_the_workspace_mount_after_the_callers_own_config() {
        let mut env = vec![
            ("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()),
            ("GIT_CONFIG_KEY_0".to_owned(), "user.name".to_owned()),
            ("GIT_CONFIG_VALUE_0".to_owned(), "me".to_owned()),
        ];
        trust_workspace_for_git(&mut env, Path::new("/work"));
        let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("GIT_CONFIG_COUNT"), Some("3"));
        assert_eq!(get("GIT_CONFIG_VALUE_0"), Some("me"));
        assert_eq!(get("GIT_CONFIG_KEY_1"), Some("safe.directory"));
        assert_eq!(get("GIT_CONFIG_VALUE_1"), Some("/work"));
        assert_eq!(get("GIT_CONFIG_VALUE_2"), Some("/work/*"));
        let mut bogus = vec![("GIT_CONFIG_COUNT".to_owned(), "many".to_owned())];
        trust_workspace_for_git(&mut bogus, Path::new("/work"));
        assert_eq!(
            bogus.len(),
            1,
            "a count git will reject is left for git to report"
        );
    }

    fn build(overrides: Overrides) -> Result<JobSpec, SandboxError> {
        test_spec("standard", overrides, &["true"])
    }

    #[test]
    fn allow_rules_need_the_allowlist_mode() {
        let rules = vec!["example.com:443".to_owned()];
        let refused = build(Overrides {
            allow: rules.clone(),
            ..Overrides::default()
        });
        assert!(matches!(refused, Err(SandboxError::InvalidSpec(_))));
        let spec = build(Overrides {
            allow: rules,
            network: Some(NetworkMode::Allowlist),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(spec.proxy.allowlist.rules.len(), 1);
    }

    #[test]
    fn supervisor_liveness_is_read_from_the_job_id() {
        let own = format!("abc-{:x}-0", std::process::id());
        assert!(supervisor_is_gone(&own), "a test binary is not `sandbox`");
        assert!(
            !supervisor_is_gone("not-an-id"),
            "unparseable ids are left alone"
        );
    }
}
