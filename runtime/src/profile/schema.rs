//! The profile schema: every field a profile file may set, documented once, here.
//!
//! One set of types serves both a single file (where absent fields take the defaults below)
//! and the resolved profile after `extends` (where files are merged table by table first, so
//! that a child overrides its parent field by field).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::units::{ByteSize, HumanDuration};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// One line saying what the profile is for.
    pub description: String,
    /// The profile this one inherits from; its fields are overridden one by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    pub backend: BackendSection,
    pub filesystem: FilesystemSection,
    pub network: NetworkSection,
    pub limits: Limits,
    pub process: ProcessSection,
    /// Secrets to inject: NAME = { from = "env:VAR" | "file:PATH", as = "env" | "file:/path" }.
    pub secrets: BTreeMap<String, SecretSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BackendSection {
    /// `auto` runs on docker when an engine answers and the image exists, else native.
    pub prefer: BackendChoice,
    /// The image the docker backend runs.
    pub image: String,
}

impl Default for BackendSection {
    fn default() -> Self {
        BackendSection {
            prefer: BackendChoice::Auto,
            image: "sandbox/host:latest".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Auto,
    Native,
    Docker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemSection {
    /// What of the host's root a job sees, never writable: `readonly` (every top-level host
    /// directory but those hidden) or `allowlist` (only /usr and its links, a sanitised /etc
    /// without secrets, empty skeleton directories, the toolchains the job's PATH points into,
    /// and `read_only` / `read_write` paths; the docker host image is the same list).
    pub root: RootMode,
    pub workspace: WorkspaceSection,
    /// When a scratch workspace is written back: `always`, `on-success` or `never`.
    pub commit: CommitPolicy,
    /// How a scratch view is made: `auto` (overlayfs, a copy when the kernel refuses it),
    /// `overlay` (refuse without it) or `copy`.
    pub scratch_view: ScratchView,
    /// Empty tmpfs mounts, path = size.
    pub tmpfs: BTreeMap<AbsolutePath, ByteSize>,
    /// The size of the job's private `/dev/shm` (POSIX shared memory and semaphores, which
    /// Python's multiprocessing needs): a tmpfs of its own, nosuid, nodev, noexec, also capped
    /// at `limits.disk` and charged to `limits.memory`. `0` leaves `/dev/shm` an empty,
    /// read-only directory.
    pub shm: ByteSize,
    /// Host paths replaced by an empty directory (or an empty file) inside the job.
    pub hide: Vec<AbsolutePath>,
    /// Extra host paths visible read-only at the same place.
    pub read_only: Vec<AbsolutePath>,
    /// Extra host paths visible read-write at the same place.
    pub read_write: Vec<AbsolutePath>,
}

impl Default for FilesystemSection {
    fn default() -> Self {
        FilesystemSection {
            root: RootMode::Readonly,
            workspace: WorkspaceSection::default(),
            commit: CommitPolicy::OnSuccess,
            scratch_view: ScratchView::Auto,
            tmpfs: BTreeMap::from([(AbsolutePath::from_static("/tmp"), ByteSize(256 << 20))]),
            // What `docker run` gives every container.
            shm: ByteSize(64 << 20),
            hide: Vec::new(),
            read_only: Vec::new(),
            read_write: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RootMode {
    Readonly,
    Allowlist,
}

impl fmt::Display for RootMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RootMode::Readonly => "readonly",
            RootMode::Allowlist => "allowlist",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceSection {
    /// Where the workspace appears inside the job; also the job's working directory.
    pub mount: AbsolutePath,
    /// `ro`, `rw` or `scratch` (a copy-on-write view written back per `commit`).
    pub mode: WorkspaceMode,
}

impl Default for WorkspaceSection {
    fn default() -> Self {
        WorkspaceSection {
            mount: AbsolutePath::from_static("/workspace"),
            mode: WorkspaceMode::Rw,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceMode {
    Ro,
    #[default]
    Rw,
    Scratch,
}

impl fmt::Display for WorkspaceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkspaceMode::Ro => "ro",
            WorkspaceMode::Rw => "rw",
            WorkspaceMode::Scratch => "scratch",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CommitPolicy {
    Always,
    OnSuccess,
    Never,
}

impl fmt::Display for CommitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommitPolicy::Always => "always",
            CommitPolicy::OnSuccess => "on-success",
            CommitPolicy::Never => "never",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScratchView {
    Auto,
    Overlay,
    Copy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSection {
    /// `none` (loopback only), `allowlist` (only through the egress proxy) or `host`.
    pub mode: NetworkMode,
    /// Allowed destinations: `host:port`, `*.domain:port`, `host:*`, `10.0.0.0/8:5432`,
    /// `[::1]:443`; a leading `!` denies, and deny wins.
    pub allow: Vec<String>,
    /// A proxied connection with no traffic either way for this long is closed.
    pub idle_timeout: HumanDuration,
    /// No proxied connection lives longer than this.
    pub connection_time: HumanDuration,
    /// Proxied connections open at once; more are refused.
    pub max_connections: u32,
    /// Whether the proxy looks up a name no name rule matches, to let address rules
    /// (`10.0.0.0/8:5432`) allow it by where it leads. Off: address rules apply to address
    /// literals only, and such a name is refused without any lookup (a lookup alone can carry
    /// data out, as `<data>.attacker.example`).
    pub resolve_names_for_address_rules: bool,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            mode: NetworkMode::None,
            allow: Vec::new(),
            idle_timeout: HumanDuration(std::time::Duration::from_secs(60)),
            connection_time: HumanDuration(std::time::Duration::from_secs(3600)),
            max_connections: 512,
            resolve_names_for_address_rules: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    None,
    Allowlist,
    Host,
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::None => "none",
            NetworkMode::Allowlist => "allowlist",
            NetworkMode::Host => "host",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Memory for the whole job (swap is not counted extra: it is off).
    pub memory: ByteSize,
    /// CPU quota in cores, e.g. 0.5 or 2.
    pub cpus: f64,
    /// Processes and threads the job may have at once.
    pub pids: u64,
    /// Wall-clock time before the whole job is killed (exit 124).
    pub wall_time: HumanDuration,
    /// CPU time of each process (RLIMIT_CPU).
    pub cpu_time: HumanDuration,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Largest file a job may write (RLIMIT_FSIZE).
    pub file_size: ByteSize,
    /// Total bytes a job may add to its tmpfs mounts, and to a scratch workspace.
    pub disk: ByteSize,
    /// Total files a job may create on its tmpfs mounts, and in a scratch workspace.
    pub files: u64,
    /// Entries a scratch job may add, modify or delete; beyond it nothing is committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_files: Option<u64>,
    /// Lines a scratch job may add or remove (as its patch counts them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_lines: Option<u64>,
    /// Captured stdout+stderr; beyond it the capture is truncated, the job is not killed.
    pub output: ByteSize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: ByteSize(1 << 30),
            cpus: 1.0,
            pids: 256,
            wall_time: HumanDuration(std::time::Duration::from_secs(600)),
            cpu_time: HumanDuration(std::time::Duration::from_secs(600)),
            open_files: 1024,
            file_size: ByteSize(256 << 20),
            disk: ByteSize(512 << 20),
            files: 20_000,
            changed_files: None,
            changed_lines: None,
            output: ByteSize(16 << 20),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSection {
    /// `uid:gid` the job runs as.
    pub user: UserSpec,
    pub env: EnvSection,
    /// `default` (deny list), `strict` (default plus more) or `off`.
    pub seccomp: SeccompMode,
    /// Isolation features that must be enforced, or the job refuses to run (exit 125).
    pub require: Vec<Feature>,
}

impl Default for ProcessSection {
    fn default() -> Self {
        ProcessSection {
            user: UserSpec {
                uid: 65534,
                gid: 65534,
            },
            env: EnvSection::default(),
            seccomp: SeccompMode::Default,
            require: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EnvSection {
    /// Host variables passed through by name; nothing else of the host's environment is.
    pub pass: Vec<String>,
    /// Variables set for the job.
    pub set: BTreeMap<String, String>,
}

impl Default for EnvSection {
    fn default() -> Self {
        EnvSection {
            pass: vec!["PATH".into(), "LANG".into(), "TERM".into()],
            set: BTreeMap::from([("HOME".into(), "/tmp".into())]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    Default,
    Strict,
    Off,
}

/// An isolation feature a profile can insist on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    Landlock,
    Cgroup,
    Seccomp,
    Netns,
    Userns,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Landlock => "landlock",
            Feature::Cgroup => "cgroup",
            Feature::Seccomp => "seccomp",
            Feature::Netns => "netns",
            Feature::Userns => "userns",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// `env:VAR` or `file:PATH`.
    pub from: String,
    /// `env` or `file:/path/in/job`.
    #[serde(rename = "as")]
    pub deliver_as: String,
}

/// `uid:gid`, both numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSpec {
    pub uid: u32,
    pub gid: u32,
}

impl std::str::FromStr for UserSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a user: write numeric `uid:gid`, e.g. 65534:65534");
        let (uid, gid) = text.split_once(':').ok_or_else(bad)?;
        Ok(UserSpec {
            uid: uid.parse().map_err(|_| bad())?,
            gid: gid.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// An absolute, normalised path (no `..`, no `.`); anything else is rejected where it is read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbsolutePath(PathBuf);

impl AbsolutePath {
    fn from_static(path: &'static str) -> Self {
        AbsolutePath(PathBuf::from(path))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl std::str::FromStr for AbsolutePath {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        use std::path::Component;
        let path = Path::new(text);
        if !path.is_absolute() {
            return Err(format!("`{text}` must be an absolute path"));
        }
        if path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(format!("`{text}` must not contain `.` or `..`"));
        }
        Ok(AbsolutePath(path.components().collect()))
    }
}

impl fmt::Display for AbsolutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

/// Serde and JSON Schema for the small string-typed values above.
macro_rules! string_typed {
    ($ty:ty, $description:literal) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "description": $description })
            }
        }
    };
}

string_typed!(UserSpec, "numeric uid:gid");
string_typed!(AbsolutePath, "an absolute path");
