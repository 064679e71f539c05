//! Toolchains under a hidden home (issue 16 item 2): `sandbox exec --profile strict -- cargo
//! test` found no `cargo` (exit 127) because rustup, pyenv, nvm and pipx live in `/root` and
//! `/home`, which every profile hides. This plans, as data, what a job needs of a home to run
//! the toolchains its `PATH` (and an absolute `argv[0]`) points into: each toolchain's own
//! directories read-only at the same place, never the home itself nor anything holding a
//! credential (`view::CREDENTIALS`), and the environment the toolchain needs. Both backends
//! apply the plan through the JobSpec (binds, a tmpfs, variables).
//!
//! Cargo: by experiment (cargo 1.95, rustup 1.28), `cargo test --offline` runs with a read-only
//! `CARGO_HOME` (it skips its package-cache lock on EROFS). The job still gets a cargo home of
//! its own, a small tmpfs at `$HOME/.cargo` with the host's `registry` and `git` bound
//! read-only inside: so cargo keeps its lock and usage tracking, and nothing else of the host's
//! cargo home (credentials, a config with a token, installed-crate records) is in view.

use std::path::{Path, PathBuf};

use crate::view;

/// Bytes of the job's own cargo home (a lock, cargo's usage database); charged to the job's
/// memory like every tmpfs, and capped at `limits.disk`.
pub const CARGO_HOME_SIZE: u64 = 64 << 20;

/// What a plan is made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The `PATH` the job will get.
    pub path: &'a str,
    /// The job's `argv[0]`.
    pub argv0: &'a str,
    /// The caller's `RUSTUP_HOME` and `CARGO_HOME`, when set.
    pub rustup_home: Option<PathBuf>,
    pub cargo_home: Option<PathBuf>,
    /// The host's home directories (`view::homes`).
    pub homes: &'a [PathBuf],
    /// The job's `HOME` (a tmpfs in every built-in profile).
    pub job_home: PathBuf,
    /// The host's root: `/` except in tests.
    pub root: &'a Path,
}

/// What a job gets to run the toolchains it points into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Host directories shown read-only at the same place.
    pub read_only: Vec<PathBuf>,
    /// Host directories shown read-only elsewhere: (host, job).
    pub moved: Vec<(PathBuf, PathBuf)>,
    /// Writable tmpfs directories of the job's (its own cargo home).
    pub tmpfs: Vec<PathBuf>,
    /// Variables the toolchains need.
    pub env: Vec<(String, String)>,
    /// Which toolchains were found (`rustup`, `pyenv`, `nvm`, `pipx`, `local`), for the notes.
    pub found: Vec<String>,
    /// `PATH` entries under a home that stay hidden, and why.
    pub skipped: Vec<(PathBuf, &'static str)>,
}

impl Plan {
    fn show(&mut self, dir: PathBuf) {
        if !self.read_only.contains(&dir) {
            self.read_only.push(dir);
        }
    }

    fn set(&mut self, name: &str, value: &Path) {
        self.env.retain(|(existing, _)| existing != name);
        self.env.push((name.into(), value.display().to_string()));
    }

    fn found(&mut self, what: &str) {
        if !self.found.iter().any(|f| f == what) {
            self.found.push(what.into());
        }
    }
}

/// Plans the toolchains `inputs.path` and `inputs.argv0` point into under a home.
pub fn plan(inputs: &Inputs) -> Plan {
    let exists = |path: &Path| {
        inputs
            .root
            .join(path.strip_prefix("/").unwrap_or(path))
            .is_dir()
    };
    let mut entries: Vec<PathBuf> = std::env::split_paths(inputs.path)
        .filter(|entry| entry.is_absolute())
        .collect();
    if inputs.argv0.starts_with('/') {
        if let Some(dir) = Path::new(inputs.argv0).parent() {
            entries.push(dir.to_owned());
        }
    }
    let mut plan = Plan::default();
    let caller_cargo_bin = inputs.cargo_home.as_ref().map(|home| home.join("bin"));
    for entry in entries {
        if !exists(&entry) {
            continue;
        }
        let home = inputs
            .homes
            .iter()
            .filter(|home| entry.starts_with(home) && entry != **home)
            .max_by_key(|home| home.as_os_str().len());
        if caller_cargo_bin.as_ref() == Some(&entry) {
            rust(
                &mut plan,
                inputs,
                &entry,
                home.map(PathBuf::as_path),
                &exists,
            );
            continue;
        }
        let Some(home) = home else {
            continue;
        };
        let relative = entry.strip_prefix(home).unwrap_or(&entry);
        let parts: Vec<&str> = relative
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        match parts.as_slice() {
            [".cargo", "bin"] => rust(&mut plan, inputs, &entry, Some(home), &exists),
            [".rustup", "toolchains", toolchain, ..] => {
                plan.show(home.join(".rustup/toolchains").join(toolchain));
                plan.found("rustup");
                cargo_home(&mut plan, inputs, home, &exists);
            }
            [".pyenv", ..] => {
                let root = home.join(".pyenv");
                plan.show(root.clone());
                plan.set("PYENV_ROOT", &root);
                plan.found("pyenv");
                pip_cache(&mut plan, home, &exists);
            }
            [".nvm", "versions", "node", version, ..] => {
                plan.show(home.join(".nvm/versions/node").join(version));
                plan.found("nvm");
            }
            [".local", "bin"] => {
                plan.show(entry.clone());
                // pipx's virtualenvs (before and after pipx 1.3) and `pip --user` packages,
                // which the scripts in ~/.local/bin run.
                for dir in [".local/pipx", ".local/share/pipx", ".local/lib"] {
                    if exists(&home.join(dir)) {
                        plan.show(home.join(dir));
                        plan.found("pipx");
                    }
                }
                plan.found("local");
                pip_cache(&mut plan, home, &exists);
            }
            _ if view::holds_credentials(home, &entry) => plan
                .skipped
                .push((entry.clone(), "it is a home or holds a credential")),
            _ => {
                plan.show(entry.clone());
                plan.found("local");
            }
        }
    }
    // A directory inside another one shown is shown already.
    let shown = plan.read_only.clone();
    plan.read_only.retain(|dir| {
        !shown
            .iter()
            .any(|other| other != dir && dir.starts_with(other))
    });
    plan
}

/// rustup's proxies in a cargo `bin` directory: the proxies, rustup's home (toolchains,
/// settings) read-only, and the job's own cargo home.
fn rust(
    plan: &mut Plan,
    inputs: &Inputs,
    bin: &Path,
    home: Option<&Path>,
    exists: &dyn Fn(&Path) -> bool,
) {
    plan.show(bin.to_owned());
    plan.found("rustup");
    let rustup = inputs
        .rustup_home
        .clone()
        .or_else(|| home.map(|home| home.join(".rustup")));
    if let Some(rustup) = rustup.filter(|dir| exists(dir)) {
        plan.show(rustup.clone());
        plan.set("RUSTUP_HOME", &rustup);
    }
    let host_cargo = inputs
        .cargo_home
        .clone()
        .or_else(|| bin.parent().map(Path::to_owned));
    if let Some(host_cargo) = host_cargo {
        own_cargo_home(plan, inputs, &host_cargo, exists);
    }
}

/// The job's cargo home for a toolchain found without a cargo `bin` directory.
fn cargo_home(plan: &mut Plan, inputs: &Inputs, home: &Path, exists: &dyn Fn(&Path) -> bool) {
    let host_cargo = inputs
        .cargo_home
        .clone()
        .unwrap_or_else(|| home.join(".cargo"));
    own_cargo_home(plan, inputs, &host_cargo, exists);
}

/// A writable tmpfs at `$HOME/.cargo` with the host's package caches read-only inside.
fn own_cargo_home(
    plan: &mut Plan,
    inputs: &Inputs,
    host_cargo: &Path,
    exists: &dyn Fn(&Path) -> bool,
) {
    let job_cargo = inputs.job_home.join(".cargo");
    if plan.tmpfs.contains(&job_cargo) {
        return;
    }
    plan.tmpfs.push(job_cargo.clone());
    for cache in ["registry", "git"] {
        if exists(&host_cargo.join(cache)) {
            plan.moved
                .push((host_cargo.join(cache), job_cargo.join(cache)));
        }
    }
    plan.set("CARGO_HOME", &job_cargo);
}

/// pip's cache, read-only: wheels a `pip install --no-index` may take offline.
fn pip_cache(plan: &mut Plan, home: &Path, exists: &dyn Fn(&Path) -> bool) {
    let cache = home.join(".cache/pip");
    if exists(&cache) {
        plan.show(cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeHost {
        root: tempfile::TempDir,
    }

    impl FakeHost {
        fn new(dirs: &[&str]) -> FakeHost {
            let root = tempfile::tempdir().unwrap();
            for dir in dirs {
                std::fs::create_dir_all(root.path().join(dir.trim_start_matches('/'))).unwrap();
            }
            FakeHost { root }
        }

        fn plan(&self, path: &str, argv0: &str) -> Plan {
            self.plan_with(path, argv0, None, None)
        }

        fn plan_with(
            &self,
            path: &str,
            argv0: &str,
            rustup_home: Option<&str>,
            cargo_home: Option<&str>,
        ) -> Plan {
            let homes = view::homes(self.root.path(), &[]);
            plan(&Inputs {
                path,
                argv0,
                rustup_home: rustup_home.map(PathBuf::from),
                cargo_home: cargo_home.map(PathBuf::from),
                homes: &homes,
                job_home: "/tmp".into(),
                root: self.root.path(),
            })
        }
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn rustup_shows_its_proxies_and_home_and_gives_the_job_a_cargo_home_of_its_own() {
        let host = FakeHost::new(&[
            "/home/u/.cargo/bin",
            "/home/u/.cargo/registry",
            "/home/u/.rustup/toolchains/stable/bin",
            "/home/u/.ssh",
        ]);
        let plan = host.plan("/home/u/.cargo/bin:/usr/bin", "cargo");
        assert_eq!(
            plan.read_only,
            paths(&["/home/u/.cargo/bin", "/home/u/.rustup"])
        );
        assert_eq!(plan.tmpfs, paths(&["/tmp/.cargo"]));
        assert_eq!(
            plan.moved,
            [(
                PathBuf::from("/home/u/.cargo/registry"),
                PathBuf::from("/tmp/.cargo/registry")
            )]
        );
        assert_eq!(
            plan.env,
            [
                ("RUSTUP_HOME".to_owned(), "/home/u/.rustup".to_owned()),
                ("CARGO_HOME".to_owned(), "/tmp/.cargo".to_owned())
            ]
        );
        assert_eq!(plan.found, ["rustup"]);
    }

    #[test]
    fn the_callers_rustup_and_cargo_homes_are_followed() {
        let host = FakeHost::new(&["/root", "/opt/rust/cargo/bin", "/opt/rust/rustup"]);
        let plan = host.plan_with(
            "/opt/rust/cargo/bin:/usr/bin",
            "cargo",
            Some("/opt/rust/rustup"),
            Some("/opt/rust/cargo"),
        );
        assert_eq!(
            plan.read_only,
            paths(&["/opt/rust/cargo/bin", "/opt/rust/rustup"])
        );
        assert!(plan
            .env
            .contains(&("RUSTUP_HOME".into(), "/opt/rust/rustup".into())));
    }

    #[test]
    fn pyenv_nvm_pipx_and_other_home_directories_show_only_their_own_directories() {
        let host = FakeHost::new(&[
            "/root/.pyenv/shims",
            "/root/.pyenv/bin",
            "/root/.nvm/versions/node/v20.1.0/bin",
            "/root/.nvm/versions/node/v18.0.0/bin",
            "/root/.local/bin",
            "/root/.local/share/pipx/venvs/black",
            "/root/.cache/pip",
            "/root/go/bin",
            "/root/.aws",
        ]);
        let plan = host.plan(
            "/root/.pyenv/shims:/root/.pyenv/bin:/root/.nvm/versions/node/v20.1.0/bin:\
             /root/.local/bin:/root/go/bin:/usr/bin",
            "node",
        );
        assert_eq!(
            plan.read_only,
            paths(&[
                "/root/.pyenv",
                "/root/.cache/pip",
                "/root/.nvm/versions/node/v20.1.0",
                "/root/.local/bin",
                "/root/.local/share/pipx",
                "/root/go/bin",
            ])
        );
        assert_eq!(plan.env, [("PYENV_ROOT".into(), "/root/.pyenv".into())]);
        assert_eq!(plan.found, ["pyenv", "nvm", "pipx", "local"]);
        assert!(plan.tmpfs.is_empty());
    }

    #[test]
    fn a_home_itself_or_a_directory_holding_credentials_is_never_shown() {
        let host = FakeHost::new(&["/root/.ssh", "/root/.config/gh", "/home/u/.aws"]);
        let plan = host.plan("/root:/root/.config:/home/u/.aws:/home/u", "/root/.ssh/x");
        assert!(plan.read_only.is_empty(), "{plan:?}");
        assert_eq!(
            plan.skipped
                .iter()
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>(),
            paths(&["/root/.config", "/home/u/.aws", "/root/.ssh"])
        );
    }

    #[test]
    fn an_absolute_argv0_under_a_home_counts_like_a_path_entry_and_missing_dirs_do_not() {
        let host = FakeHost::new(&["/home/u/tools/bin"]);
        let plan = host.plan("/home/u/nothing-here:/usr/bin", "/home/u/tools/bin/run");
        assert_eq!(plan.read_only, paths(&["/home/u/tools/bin"]));
    }
}
