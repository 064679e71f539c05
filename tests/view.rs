//! One filesystem view, allowlisted, the same on both backends; toolchains under a hidden home
//! run; credentials are never readable (issue 16 items 2 and 6).
//!
//! Run as root (the suite's setting): a home is planted under /home and a file at the host's
//! `/`, each removed when the test ends.
#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const JOB_TIME: Duration = Duration::from_secs(300);

/// A name no other test or process uses.
fn unique(prefix: &str) -> String {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{serial}-{nanos}", std::process::id())
}

/// The directory rustup's proxies are in for the user running the tests (`$CARGO_HOME/bin`).
fn host_cargo_bin() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    cargo_home.join("bin")
}

/// A directory removed (recursively) when dropped: for what a test plants outside tempdirs.
struct Planted(PathBuf);

impl Drop for Planted {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// `sandbox exec --backend B --output json --workspace WS ARGS -- sh -c SCRIPT`, with the
/// caller's environment given by `env` (PATH and HOME at least).
fn exec_with_env(
    backend: Backend,
    ws: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    script: &str,
) -> Run {
    let mut command = sandbox_command(&["exec", "--backend", backend.name(), "--output", "json"]);
    command.arg("--workspace").arg(ws).args(args);
    command.args(["--", "sh", "-c", script]);
    command.env_remove("CARGO_HOME").env_remove("RUSTUP_HOME");
    for (name, value) in env {
        command.env(name, value);
    }
    Run::from(
        command
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sandbox"),
    )
}

/// What the view test lists: the allowlisted root's top levels, the places the issue's
/// enumerator found host data in, the job's home, the workspace, the toolchain's directories,
/// and the bytes of a few /etc files (ones no test of this suite changes).
const LISTING: &str = r#"
for d in / /usr /opt /etc /var /home "$HOME" /workspace /root /root/.cargo /root/.cargo/bin \
         /root/.rustup "$CARGO_HOME" "$CARGO_HOME/registry"; do
  echo "== $d"; ls -A "$d" 2>&1
done
echo "== bytes"
for f in /etc/debian_version /etc/ld.so.conf /etc/nsswitch.conf /etc/os-release \
         /etc/login.defs /etc/bash.bashrc; do
  echo "$f $(cksum < "$f")"
done
"#;

fn listing(backend: Backend, ws: &Workspace) -> String {
    let path = format!("{}:/usr/bin:/bin", host_cargo_bin().display());
    let run = exec_with_env(
        backend,
        ws.path(),
        &["--profile", "strict"],
        &[("PATH", &path), ("HOME", "/root")],
        LISTING,
    );
    assert_eq!(run.code, 0, "{run:?}");
    // The engine creates /.dockerenv in every container; nothing we configure removes it.
    run.stdout()
        .lines()
        .filter(|line| *line != ".dockerenv")
        .collect::<Vec<_>>()
        .join("\n")
}

/// The section of `listing` after `== NAME`.
fn section<'a>(listing: &'a str, name: &str) -> Vec<&'a str> {
    listing
        .split("== ")
        .find_map(|part| part.strip_prefix(&format!("{name}\n")))
        .unwrap_or_default()
        .lines()
        .collect()
}

// The same strict job sees the same paths and contents on both backends; natively that view
// is the allowlisted root, whatever else the host has at `/`.
fn strict_sees_the_allowlisted_root_on_both_backends(backend: Backend) {
    let ws = Workspace::new();
    ws.write("file.txt", "hello\n");
    let seen = listing(backend, &ws);
    assert_eq!(
        section(&seen, "/"),
        [
            "bin",
            "dev",
            "etc",
            "home",
            "lib",
            "lib64",
            "opt",
            "out",
            "proc",
            "root",
            "run",
            "sbin",
            "sys",
            "tmp",
            "usr",
            "var",
            "workspace"
        ]
        .iter()
        .filter(|name| {
            // Top-level links into /usr come from the host: lib32, libx32 where it has them.
            !matches!(**name, "bin" | "lib" | "lib64" | "sbin")
                || Path::new("/").join(name).exists()
        })
        .copied()
        .collect::<Vec<_>>(),
        "{seen}"
    );
    assert!(section(&seen, "/opt").is_empty(), "{seen}");
    assert_eq!(section(&seen, "/var"), ["tmp"], "{seen}");
    assert_eq!(section(&seen, "/workspace"), ["file.txt"], "{seen}");
    assert_eq!(section(&seen, "/root/.cargo"), ["bin"], "{seen}");
    assert!(
        section(&seen, "/root/.cargo/bin").contains(&"cargo"),
        "{seen}"
    );
    assert!(
        section(&seen, "/root/.rustup").contains(&"toolchains"),
        "{seen}"
    );
    assert!(!section(&seen, "/tmp/.cargo/registry").is_empty(), "{seen}");
    let etc = section(&seen, "/etc");
    for secret in ["shadow", "gshadow"] {
        if Path::new("/etc").join(secret).exists() {
            assert!(etc.contains(&secret), "the name stays: {seen}");
        }
    }
    if backend == Backend::Docker {
        let native = listing(Backend::Native, &ws);
        assert_eq!(
            seen, native,
            "docker and native strict jobs see different files (if /etc changed since the \
             image was built, run `sandbox image build`)"
        );
    }
}

// 1. Nothing at the host's `/` but the allowlist reaches a strict job natively: not /var's data,
// /opt, /srv, /boot, other trees, nor a file of keys left at `/` (the enumerator of issue 16
// found each). Native only: the docker image never held any of them.
#[test]
fn strict_natively_shows_no_other_host_tree_nor_files_at_the_root() {
    let name = unique("sandbox-test-secret");
    let planted = Planted(Path::new("/").join(&name));
    if std::fs::write(&planted.0, "AKIA-SECRET-AT-ROOT\n").is_err() {
        skip("cannot write a file at the host's / (not root)");
        return;
    }
    std::fs::set_permissions(&planted.0, PermissionsExt::from_mode(0o644)).expect("chmod");
    let ws = Workspace::new();
    let script = format!(
        "ls -A /; echo ==; cat /{name}; ls -A /var /opt; \
         for d in /srv /boot /mnt /media /work /farm /old_root /var/lib /var/log; do \
           test -e $d && echo VISIBLE $d; done; echo end"
    );
    let run = strict_sh(Backend::Native, &ws, &script);
    assert_eq!(run.code, 0, "{run:?}");
    let out = run.stdout();
    assert!(!out.contains(&name), "{run:?}");
    assert!(!out.contains("AKIA-SECRET-AT-ROOT"), "{run:?}");
    assert!(
        run.job_stderr()
            .contains(&format!("/{name}: No such file or directory")),
        "{run:?}"
    );
    assert!(!out.contains("VISIBLE"), "{run:?}");
    let host_top: Vec<String> = std::fs::read_dir("/")
        .expect("list /")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let allowed = [
        "bin",
        "dev",
        "etc",
        "home",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "opt",
        "out",
        "proc",
        "root",
        "run",
        "sbin",
        "sys",
        "tmp",
        "usr",
        "var",
        "workspace",
    ];
    let root_listing: Vec<&str> = out.split("==").next().unwrap_or("").lines().collect();
    for entry in &root_listing {
        assert!(
            allowed.contains(entry),
            "{entry} at / is not allowlisted: {run:?}"
        );
    }
    assert!(
        host_top.iter().any(|e| !allowed.contains(&e.as_str())),
        "the host has nothing but the allowlist at /: the test proves nothing here"
    );
    // /opt holds nothing, /var only the skeleton's tmp.
    assert!(out.contains("/opt:\n\n/var:\ntmp\nend"), "{run:?}");
}

/// A home under /home with every credential of the issue's list planted (world-readable, so
/// that only the sandbox stands between them and the job), and a toolchain directory beside
/// them on the job's PATH.
struct PlantedHome {
    dir: Planted,
    token: String,
}

const CREDENTIAL_FILES: &[&str] = &[
    ".ssh/id_ed25519",
    ".aws/credentials",
    ".gnupg/private-keys-v1.d/key.key",
    ".config/gh/hosts.yml",
    ".docker/config.json",
    ".netrc",
    ".git-credentials",
    ".kube/config",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".cargo/credentials.toml",
    ".cargo/credentials",
];

impl PlantedHome {
    fn new() -> PlantedHome {
        let token = unique("CREDENTIAL-TOKEN");
        let dir = Planted(Path::new("/home").join(unique("sandbox-cred")));
        for file in CREDENTIAL_FILES {
            let path = dir.0.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, format!("{token}\n")).expect("plant a credential");
        }
        let tool = dir.0.join(".local/bin/hello-tool");
        std::fs::create_dir_all(tool.parent().expect("parent")).expect("mkdir");
        std::fs::write(&tool, "#!/bin/sh\necho tool-ran\n").expect("write the tool");
        std::fs::create_dir_all(dir.0.join(".cargo/bin")).expect("mkdir .cargo/bin");
        open_to_jobs(&dir.0);
        std::fs::set_permissions(&tool, PermissionsExt::from_mode(0o755)).expect("chmod");
        PlantedHome { dir, token }
    }
}

// 2. Credentials stay hidden whatever else of the home is visible: its toolchain directories
// are on PATH, and an operator profile even shows the whole home read-only.
fn blocks_reading_credentials_in_a_visible_home(backend: Backend) {
    let home = PlantedHome::new();
    let home_dir = home.dir.0.display().to_string();
    let profile = OperatorProfile::new(
        "whole-home.toml",
        &format!("extends = \"strict\"\n[filesystem]\nread_only = [\"{home_dir}\"]\n"),
    );
    let ws = Workspace::new();
    let reads: String = CREDENTIAL_FILES
        .iter()
        // Docker masks a file with /dev/null (an empty read), the jail with a mode-0 file
        // (EACCES): either way no byte of it may come back.
        .map(|file| {
            format!("[ -n \"$(cat {home_dir}/{file} 2>/dev/null)\" ] && echo READ {file}; ")
        })
        .collect();
    let script = format!(
        "hello-tool; ls -A {home_dir}; {reads} \
         grep -rs {token} {home_dir} /root /home /tmp && echo FOUND; echo end",
        token = home.token
    );
    for profile_arg in ["strict", profile.path.to_str().expect("utf-8 path")] {
        let path = format!("{home_dir}/.local/bin:{home_dir}/.cargo/bin:/usr/bin:/bin");
        let run = exec_with_env(
            backend,
            ws.path(),
            &["--profile", profile_arg],
            &[("PATH", &path), ("HOME", &home_dir)],
            &script,
        );
        assert_eq!(run.code, 0, "{profile_arg}: {run:?}");
        let out = run.stdout();
        assert!(out.contains("tool-ran"), "the toolchain must run: {run:?}");
        assert!(!out.contains("READ "), "{profile_arg}: {run:?}");
        assert!(!out.contains("FOUND"), "{profile_arg}: {run:?}");
        assert!(!out.contains(&home.token), "{profile_arg}: {run:?}");
    }
}

/// A tiny crate with one dependency, `cfg-if`, taken offline from the host's registry.
fn tiny_crate(ws: &Workspace) {
    ws.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\ncfg-if = \"1\"\n",
    );
    std::fs::create_dir_all(ws.file("src")).expect("mkdir src");
    ws.write(
        "src/lib.rs",
        "cfg_if::cfg_if! { if #[cfg(unix)] { pub fn os() -> &'static str { \"unix\" } } \
         else { pub fn os() -> &'static str { \"other\" } } }\n\
         #[test]\nfn knows_its_os() { assert_eq!(os(), \"unix\"); }\n",
    );
    open_to_jobs(ws.path());
}

/// Whether the host's registry has what `tiny_crate` needs offline.
fn registry_has_cfg_if(cargo_home: &Path) -> bool {
    std::fs::read_dir(cargo_home.join("registry/src"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .any(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("cfg-if-1."))
        })
}

// 3. The README's headline: `sandbox exec --profile strict -- cargo test --offline` in a
// rustup-installed, pre-fetched crate passes, as root.
fn cargo_test_offline_runs_in_strict(backend: Backend) {
    let bin = host_cargo_bin();
    let cargo_home = bin.parent().expect("cargo home").to_owned();
    if !bin.join("cargo").exists() || !registry_has_cfg_if(&cargo_home) {
        skip("no rustup-installed cargo with cfg-if in its registry for this user");
        return;
    }
    let ws = Workspace::new();
    tiny_crate(&ws);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut command = sandbox_command(&[
        "exec",
        "--backend",
        backend.name(),
        "--profile",
        "strict",
        "--workspace",
    ]);
    let result = tempfile::NamedTempFile::new().expect("tempfile");
    command
        .arg(ws.path())
        .arg("--result")
        .arg(result.path())
        .args(["--", "cargo", "test", "--offline"])
        .env_remove("RUSTUP_HOME")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env("CARGO_HOME", &cargo_home)
        .env("PATH", &path);
    let ran = run_within(&mut command, JOB_TIME);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("test knows_its_os ... ok"), "{ran:?}");
    let outcome = common::outcome_from(&std::fs::read(result.path()).expect("the Outcome"));
    assert!(
        outcome["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|note| note.as_str().is_some_and(|n| n
                .contains("toolchains under a hidden home")
                && n.contains("rustup"))),
        "the Outcome says what of the home was shown: {outcome:#}"
    );
}

/// The group of the Docker socket, for an unprivileged user allowed to use the engine.
fn docker_socket_gid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/var/run/docker.sock")
        .ok()
        .map(|meta| meta.gid())
}

/// A home of uid 65534's own under /home with a toolchain as a real user would have one: a
/// hardlinked copy (`cp -al`, no bytes copied) of the host's rustup home and cargo `bin`, and
/// of the registry entries `tiny_crate` needs.
fn unprivileged_home(cargo_home: &Path, rustup_home: &Path) -> Planted {
    let home = Planted(Path::new("/home").join(unique("sandbox-tc")));
    std::fs::create_dir_all(home.0.join(".cargo")).expect("mkdir");
    let copy = |from: &Path, to: &Path| {
        let status = Command::new("cp")
            .arg("-al")
            .arg(from)
            .arg(to)
            .status()
            .expect("cp -al");
        assert!(
            status.success(),
            "cp -al {} {}",
            from.display(),
            to.display()
        );
    };
    copy(rustup_home, &home.0.join(".rustup"));
    copy(&cargo_home.join("bin"), &home.0.join(".cargo/bin"));
    copy(
        &cargo_home.join("registry"),
        &home.0.join(".cargo/registry"),
    );
    let status = Command::new("chown")
        .args(["-R", "--no-dereference", "65534:65534"])
        .arg(&home.0)
        .status()
        .expect("chown");
    assert!(status.success());
    home
}

// 4. The same as uid 65534 with a toolchain in its own home. Natively an unprivileged user has
// no cgroup on this host (v1, nothing delegated), so its operator profile is strict without the
// `cgroup` requirement; the other requirements stay.
fn cargo_test_offline_runs_in_strict_unprivileged(backend: Backend) {
    let bin = host_cargo_bin();
    let cargo_home = bin.parent().expect("cargo home").to_owned();
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| cargo_home.with_file_name(".rustup"));
    if !nix::unistd::geteuid().is_root() {
        skip("needs root to make a home for uid 65534");
        return;
    }
    if !bin.join("cargo").exists() || !rustup_home.is_dir() || !registry_has_cfg_if(&cargo_home) {
        skip("no rustup-installed cargo with cfg-if in its registry");
        return;
    }
    let home = unprivileged_home(&cargo_home, &rustup_home);
    // Hardlinks keep the owner and mode, and uid 65534 must be able to run the copy.
    let sandbox = Planted(std::env::temp_dir().join(unique("sandbox-bin")));
    std::fs::copy(SANDBOX, &sandbox.0).expect("copy the binary");
    std::fs::set_permissions(&sandbox.0, PermissionsExt::from_mode(0o755)).expect("chmod");
    let profile = OperatorProfile::new(
        "strict-unprivileged.toml",
        "extends = \"strict\"\n[process]\nrequire = [\"landlock\", \"seccomp\", \"netns\"]\n",
    );
    std::fs::set_permissions(
        profile.path.parent().expect("dir"),
        PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::set_permissions(&profile.path, PermissionsExt::from_mode(0o644)).expect("chmod");
    let ws = Workspace::new();
    tiny_crate(&ws);
    // The unprivileged user's own checkout.
    ws.give_to(65534, 65534);
    let home_dir = home.0.display().to_string();
    let mut command = Command::new("setpriv");
    command.args(["--reuid=65534", "--regid=65534"]);
    match (backend, docker_socket_gid()) {
        (Backend::Docker, Some(gid)) => command.arg(format!("--groups={gid}")),
        _ => command.arg("--clear-groups"),
    };
    command
        .arg(&sandbox.0)
        .args(["exec", "--backend", backend.name(), "--profile"])
        .arg(&profile.path)
        .arg("--workspace")
        .arg(ws.path())
        .arg("--audit")
        .arg(home.0.join("audit.jsonl"))
        .args(["--", "cargo", "test", "--offline"])
        .current_dir(ws.path())
        .env_clear()
        .env("HOME", &home_dir)
        .env("PATH", format!("{home_dir}/.cargo/bin:/usr/bin:/bin"));
    let ran = run_within(&mut command, JOB_TIME);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("test knows_its_os ... ok"), "{ran:?}");
}

conformance!(
    strict_sees_the_allowlisted_root_on_both_backends,
    blocks_reading_credentials_in_a_visible_home,
    cargo_test_offline_runs_in_strict,
    cargo_test_offline_runs_in_strict_unprivileged,
);
