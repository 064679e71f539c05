//! The allowlisted root (`filesystem.root = "allowlist"`): which host paths a job sees, one
//! list for both backends. The docker host image (`sandbox-images`, `plan::host`) is built from
//! these lists; the native jail mounts the same paths of the live host (`native::mounts`). So a
//! job sees the same names on both backends, and nothing that is not listed here, a toolchain
//! (`crate::toolchains`), the workspace, a tmpfs or a path the profile names (issue 16: an
//! enumerator run under `strict` listed /var, /opt, /srv, /boot and key files left at `/`).
//!
//! Also here: what of a home directory is a credential, hidden whatever else is visible.

use std::path::{Path, PathBuf};

/// Top-level directories that a merged-/usr host (Debian 12) has as symlinks into /usr. On an
/// older host they are real directories, and then they are shown (mirrored) like /usr.
pub const MERGED_DIRS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Empty directories of the allowlisted root: mount points (proc, sys, dev, workspace, out) and
/// the places programs expect to exist. Modes as on Debian, except `/root`: it is empty here,
/// and a toolchain under it (`/root/.rustup`) must be reachable by the job's uid.
pub const SKELETON: &[(&str, u32)] = &[
    ("usr", 0o755),
    ("tmp", 0o1777),
    ("workspace", 0o755),
    ("out", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("home", 0o755),
    ("root", 0o755),
    ("run", 0o755),
    ("var", 0o755),
    ("var/tmp", 0o1777),
    ("opt", 0o755),
];

/// Files in /etc a Docker engine bind-mounts its own version over. The image holds an empty
/// file for each; the native jail shows the host's (its network is its own namespace's, and a
/// host `resolv.conf` that points into /run dangles there like the image's empty one).
pub const ENGINE_MANAGED: &[&str] = &["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// Why a path under the host's /etc must not be readable in a job, if it must not. By name, so
/// that a secret in an unexpected directory is caught too. `path` is relative to the root
/// (`etc/shadow`). Engine-managed files are reported too (the image replaces them).
pub fn etc_exclusion(path: &Path) -> Option<&'static str> {
    if ENGINE_MANAGED
        .iter()
        .any(|managed| path == Path::new(managed))
    {
        return Some("replaced by an empty file (the engine mounts its own)");
    }
    let name = path.file_name()?.to_str()?;
    match name {
        "shadow" | "shadow-" | "gshadow" | "gshadow-" => Some("password hashes"),
        "opasswd" => Some("old password hashes"),
        "private" => Some("private keys"),
        "key.json" => Some("a private key (the Docker daemon's)"),
        "chap-secrets" | "pap-secrets" | "ipsec.secrets" => Some("credentials"),
        "system-connections" => Some("network credentials"),
        _ if name.starts_with("ssh_host_") => Some("an SSH host key"),
        _ if name.ends_with(".key") || name.ends_with(".keytab") => Some("a private key"),
        _ => None,
    }
}

/// A secret under /etc: its absolute path in the job, and whether it is a directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EtcSecret {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// Every secret below `root`/etc by [`etc_exclusion`] (engine-managed files are not secrets),
/// found by walking it. Both backends keep the name and cover the contents: the image holds an
/// unreadable empty placeholder, the native jail mounts one over the host's file. Uses the
/// directory entries' types (no stat per file): this runs for every allowlisted job.
pub fn etc_secrets(root: &Path) -> Vec<EtcSecret> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::from("etc")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let relative = dir.join(entry.file_name());
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let managed = ENGINE_MANAGED.iter().any(|m| relative == Path::new(m));
            if !managed && etc_exclusion(&relative).is_some() {
                found.push(EtcSecret {
                    path: Path::new("/").join(&relative),
                    is_dir: kind.is_dir(),
                });
            } else if kind.is_dir() {
                pending.push(relative);
            }
        }
    }
    found.sort();
    found
}

/// Credentials in a home directory, relative to it: hidden from every job whatever else of the
/// home is visible (DESIGN §13; issue 16 item 2). A toolchain's directories never hold these.
pub const CREDENTIALS: &[&str] = &[
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".kube",
    ".docker/config.json",
    ".config/gh",
    ".config/hub",
    ".config/gcloud",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".vault-token",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".terraform.d/credentials.tfrc.json",
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".history",
    ".python_history",
    ".node_repl_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
    ".lesshst",
    ".local/share/fish/fish_history",
];

/// Credential files of a cargo home (`$CARGO_HOME/credentials*`), wherever it is.
pub const CARGO_CREDENTIALS: &[&str] = &["credentials", "credentials.toml"];

/// Whether `dir` holds a credential of `home` (is the home, or an ancestor of one of its
/// credentials): such a directory is never shown as a toolchain directory.
pub fn holds_credentials(home: &Path, dir: &Path) -> bool {
    dir == home
        || CREDENTIALS
            .iter()
            .any(|credential| home.join(credential).starts_with(dir))
}

/// The home directories on this host: `/root`, each directory in `/home`, and `extra` (the
/// caller's `$HOME`, a `$CARGO_HOME` elsewhere). `root` is `/` except in tests.
pub fn homes(root: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut homes = vec![PathBuf::from("/root")];
    if let Ok(entries) = std::fs::read_dir(root.join("home")) {
        homes.extend(
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                .map(|entry| Path::new("/home").join(entry.file_name())),
        );
    }
    homes.extend(
        extra
            .iter()
            .filter(|path| path.is_absolute() && path.parent().is_some())
            .cloned(),
    );
    homes.sort();
    homes.dedup();
    homes
}

/// The credentials that exist under `homes` (and in `cargo_homes`), as absolute paths on the
/// host below `root`, with the path each resolves to when it is a symlink.
pub fn credentials(root: &Path, homes: &[PathBuf], cargo_homes: &[PathBuf]) -> Vec<PathBuf> {
    let on_host = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path));
    let candidates = homes
        .iter()
        .flat_map(|home| CREDENTIALS.iter().map(move |c| home.join(c)))
        .chain(
            cargo_homes
                .iter()
                .flat_map(|home| CARGO_CREDENTIALS.iter().map(move |c| home.join(c))),
        );
    let mut found = Vec::new();
    for path in candidates {
        let host = on_host(&path);
        if host.symlink_metadata().is_err() {
            continue;
        }
        if let Ok(real) = std::fs::canonicalize(&host) {
            if let Ok(inside) = real.strip_prefix(root) {
                let real = Path::new("/").join(inside);
                if real != path {
                    found.push(real);
                }
            }
        }
        found.push(path);
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_secrets_are_found_by_name_at_any_depth_and_engine_files_are_not_secrets() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        for dir in ["ssh", "ssl/private", "deep/er"] {
            std::fs::create_dir_all(etc.join(dir)).unwrap();
        }
        for file in [
            "shadow",
            "passwd",
            "hosts",
            "ssh/ssh_host_ed25519_key",
            "ssh/sshd_config",
            "deep/er/site.key",
        ] {
            std::fs::write(etc.join(file), "x").unwrap();
        }
        let found: Vec<(String, bool)> = etc_secrets(root.path())
            .into_iter()
            .map(|s| (s.path.display().to_string(), s.is_dir))
            .collect();
        assert_eq!(
            found,
            [
                ("/etc/deep/er/site.key".into(), false),
                ("/etc/shadow".into(), false),
                ("/etc/ssh/ssh_host_ed25519_key".into(), false),
                ("/etc/ssl/private".into(), true),
            ]
        );
    }

    #[test]
    fn credentials_are_found_in_every_home_and_through_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let root_path = std::fs::canonicalize(root.path()).unwrap();
        let alice = root_path.join("home/alice");
        std::fs::create_dir_all(alice.join(".config/gh")).unwrap();
        std::fs::create_dir_all(root_path.join("root")).unwrap();
        std::fs::create_dir_all(root_path.join("keys")).unwrap();
        std::fs::write(alice.join(".netrc"), "machine x password y").unwrap();
        std::os::unix::fs::symlink("../keys", root_path.join("root/.ssh")).unwrap();
        let homes = homes(&root_path, &[]);
        assert_eq!(homes, [PathBuf::from("/home/alice"), "/root".into()]);
        let found = credentials(&root_path, &homes, &[]);
        let expected: Vec<PathBuf> = [
            "/home/alice/.config/gh",
            "/home/alice/.netrc",
            "/keys",
            "/root/.ssh",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_home_and_the_parents_of_credentials_hold_credentials() {
        let home = Path::new("/home/u");
        assert!(holds_credentials(home, home));
        assert!(holds_credentials(home, Path::new("/home/u/.config")));
        assert!(holds_credentials(home, Path::new("/home/u/.cargo")));
        assert!(!holds_credentials(home, Path::new("/home/u/.cargo/bin")));
        assert!(!holds_credentials(home, Path::new("/home/u/.local/bin")));
    }
}
