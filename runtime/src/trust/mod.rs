//! Who is trusted (DESIGN §12). The operator is: command-line flags, the caller's environment,
//! `$XDG_CONFIG_HOME/sandbox`, `/etc/sandbox` and the built-ins. The project is not: everything
//! read from the workspace (`.sandbox/profiles/*`, `sandbox.toml`, tool configs) was written by
//! whoever wrote the change being judged, so it may only narrow what the operator allows.
//!
//! Trust is decided here, once, from where a file came from; the profile loader, the gate
//! config loader and write-back ask this module instead of deciding for themselves.

mod narrow;
mod protected;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use narrow::{widenings, Widening};
pub use protected::{is_git_path, Protected, DEFAULT_PROTECTED};

use crate::profile::Position;
use crate::workspace::{self, WorkspaceError, PROJECT_FILE_CAP};

/// The operator's configuration file, under `/etc/sandbox/` and `$XDG_CONFIG_HOME/sandbox/`.
pub const OPERATOR_CONFIG: &str = "config.toml";

/// The gate profiles a `sandbox.toml` may choose when the operator names none.
pub const DEFAULT_GATE_PROFILES: [&str; 1] = ["gate"];

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the operator configuration {path}: {source}")]
    ReadOperator {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}\n{snippet}")]
    InvalidOperator {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
    },
    /// A project file could not be read safely (a symlink, not a regular file, too large).
    #[error("refusing to read project file {rel} in {root}: {reason}")]
    ProjectFile {
        root: PathBuf,
        rel: String,
        reason: String,
    },
}

/// `[trust]` of the operator configuration.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrustSection {
    /// Projects whose configuration may widen their own sandbox, as absolute paths of their
    /// workspace (a trailing `/*` covers every project below a directory; `*` alone, all).
    pub projects: Vec<String>,
    /// Profiles a gate in `sandbox.toml` may run with, or narrow (default: `gate`).
    pub gate_profiles: Option<Vec<String>>,
    /// Protected paths (globs relative to the workspace) a job may still change.
    pub allow_protected: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorConfig {
    pub trust: TrustSection,
}

impl OperatorConfig {
    /// `/etc/sandbox/config.toml`, then `$XDG_CONFIG_HOME/sandbox/config.toml` (or
    /// `~/.config/...`): lists add up, a user's `gate_profiles` replaces the system's.
    pub fn load() -> Result<(OperatorConfig, Vec<PathBuf>), TrustError> {
        let mut merged = OperatorConfig::default();
        let mut read = Vec::new();
        for dir in operator_dirs() {
            let path = dir.join(OPERATOR_CONFIG);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                // A directory this user cannot enter (HOME=/root under `setpriv`, as git
                // meets it too) holds no configuration of theirs. A file they can see but not
                // read is a mistake of theirs to hear about.
                Err(error)
                    if error.kind() == std::io::ErrorKind::PermissionDenied
                        && !searchable(path.parent()) =>
                {
                    continue
                }
                Err(source) => return Err(TrustError::ReadOperator { path, source }),
            };
            let config: OperatorConfig = toml::from_str(&text).map_err(|error| {
                let at = Position::of(&text, error.span());
                TrustError::InvalidOperator {
                    path: path.clone(),
                    line: at.line,
                    column: at.column,
                    message: error.message().to_owned(),
                    snippet: at.snippet,
                }
            })?;
            merged.trust.projects.extend(config.trust.projects);
            merged
                .trust
                .allow_protected
                .extend(config.trust.allow_protected);
            if config.trust.gate_profiles.is_some() {
                merged.trust.gate_profiles = config.trust.gate_profiles;
            }
            read.push(path);
        }
        Ok((merged, read))
    }
}

/// Whether this user can look up names in `dir` (and every directory above it).
fn searchable(dir: Option<&Path>) -> bool {
    dir.is_some_and(|dir| nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).is_ok())
}

/// The operator's configuration directories, system first, so the user's file is read last.
pub fn operator_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/sandbox")];
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")));
    if let Some(config_home) = config_home {
        dirs.push(config_home.join("sandbox"));
    }
    dirs
}

/// What the operator said about trust on the command line.
#[derive(Debug, Clone, Default)]
pub struct TrustFlags {
    /// `--trust-project`: the project's configuration may widen its own sandbox.
    pub trust_project: bool,
    /// `--allow-protected GLOB`: protected paths a job may change after all.
    pub allow_protected: Vec<String>,
}

/// The trust decision for one workspace.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The workspace whose files are project configuration (canonical).
    pub workspace: PathBuf,
    /// Why the project is trusted, if it is.
    pub trusted: Option<String>,
    /// Profiles a gate may run with or narrow.
    pub gate_profiles: Vec<String>,
    /// Protected paths the operator lets jobs change.
    pub allow_protected: Vec<String>,
}

impl Trust {
    /// Decides for `workspace` from the flags and the operator configuration.
    pub fn decide(workspace: &Path, flags: &TrustFlags) -> Result<Trust, TrustError> {
        let (config, files) = OperatorConfig::load()?;
        let listed = config
            .trust
            .projects
            .iter()
            .find(|pattern| project_matches(pattern, workspace));
        let trusted = if flags.trust_project {
            Some("--trust-project".to_owned())
        } else {
            listed.map(|pattern| {
                let file = files
                    .last()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default();
                format!("[trust] projects = \"{pattern}\" in the operator configuration {file}")
            })
        };
        let mut allow_protected = config.trust.allow_protected;
        allow_protected.extend(flags.allow_protected.iter().cloned());
        Ok(Trust {
            workspace: workspace.to_owned(),
            trusted,
            gate_profiles: config.trust.gate_profiles.unwrap_or_else(|| {
                DEFAULT_GATE_PROFILES
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect()
            }),
            allow_protected,
        })
    }

    /// No flags, no operator configuration: what tests and library callers start from.
    pub fn untrusted(workspace: &Path) -> Trust {
        Trust {
            workspace: workspace.to_owned(),
            trusted: None,
            gate_profiles: DEFAULT_GATE_PROFILES
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            allow_protected: Vec::new(),
        }
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted.is_some()
    }

    /// The protected paths of this workspace, less what the operator allows.
    pub fn protected(&self) -> Result<Protected, String> {
        Protected::new(&self.allow_protected)
    }
}

/// git's `safe.directory` spelling: an exact path, `DIR/*` for everything below DIR, `*`.
fn project_matches(pattern: &str, workspace: &Path) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(dir) => workspace.starts_with(dir) && workspace != Path::new(dir),
        None => workspace == Path::new(pattern),
    }
}

/// Which trust applied to a job or a gate run, as the Outcome and the Verdict report it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrustReport {
    /// `untrusted` (the project may only narrow) or `trusted` (the operator said so).
    pub project: TrustLevel,
    /// Why the project is trusted, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Project files that shaped this run (relative to the workspace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub project_files: Vec<String>,
    /// The operator profile a project profile was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    #[default]
    Untrusted,
    Trusted,
}

/// Reads a project file as text, the one way project files are read: see
/// [`workspace::read_project_file`].
pub fn read_project_text(root: &Path, rel: &str) -> Result<Option<String>, TrustError> {
    let refuse = |reason: String| TrustError::ProjectFile {
        root: root.to_owned(),
        rel: rel.to_owned(),
        reason,
    };
    let bytes = match workspace::read_project_file(root, rel, PROJECT_FILE_CAP) {
        Ok(bytes) => bytes,
        Err(WorkspaceError::SymlinkInPath { .. }) => {
            return Err(refuse(
                "it, or a directory above it, is a symlink; project configuration is never \
                 read through a symlink, since the project chooses where it points"
                    .into(),
            ))
        }
        Err(error) => return Err(refuse(error.to_string())),
    };
    bytes
        .map(|bytes| String::from_utf8(bytes).map_err(|_| refuse("it is not UTF-8 text".into())))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_patterns_follow_safe_directory() {
        let ws = Path::new("/srv/ci/repo");
        assert!(project_matches("*", ws));
        assert!(project_matches("/srv/ci/repo", ws));
        assert!(project_matches("/srv/ci/*", ws));
        assert!(!project_matches("/srv/ci/*", Path::new("/srv/ci")));
        assert!(!project_matches("/srv/ci/rep", ws));
        assert!(!project_matches("/srv/ci/repo/sub", ws));
    }

    #[test]
    fn project_files_are_never_read_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/sandbox.toml"), "x = 1\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sandbox.toml")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("linked")).unwrap();
        for rel in ["sandbox.toml", "linked/sandbox.toml"] {
            let error = read_project_text(dir.path(), rel).unwrap_err().to_string();
            assert!(error.contains("symlink"), "{rel}: {error}");
        }
        assert_eq!(
            read_project_text(dir.path(), "real/sandbox.toml")
                .unwrap()
                .as_deref(),
            Some("x = 1\n")
        );
        assert_eq!(read_project_text(dir.path(), "absent.toml").unwrap(), None);
    }

    #[test]
    fn project_files_are_regular_and_small() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sandbox.toml")).unwrap();
        let error = read_project_text(dir.path(), "sandbox.toml").unwrap_err();
        assert!(error.to_string().contains("regular file"), "{error}");
        let big = vec![b'#'; PROJECT_FILE_CAP as usize + 1];
        std::fs::write(dir.path().join("big.toml"), big).unwrap();
        let error = read_project_text(dir.path(), "big.toml").unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
        nix::unistd::mkfifo(&dir.path().join("fifo.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = read_project_text(dir.path(), "fifo.toml").unwrap_err();
        assert!(error.to_string().contains("regular file"), "{error}");
    }
}
