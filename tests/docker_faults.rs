//! The docker backend when things go wrong: an image or a workspace that does not exist, a job
//! that prints 1 GiB, and the engine itself stopped before a job or killed in the middle of
//! one. Each says what happened, exits 125 when the sandbox failed, and leaves nothing behind
//! that `sandbox gc` cannot remove.
//!
//! The engine faults stop and kill a `dockerd` of the test's own (its own socket, data root,
//! exec root and pid file, started and stopped by the test): the machine's engine, which every
//! other docker test uses, is never signalled. They need root and run only with
//! SANDBOX_TEST_ENGINE_FAULTS=1 (scripts/test sets it), as starting an engine takes a while.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

mod common;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{sandbox, Backend, Ran, Workspace, SANDBOX};
use serde_json::Value;

const SANDBOX_FAILED: i32 = 125;

/// Whether the docker tests can run: an engine must answer (the image matters only to some).
fn engine_answers() -> bool {
    match sandbox_runtime::docker::engine_info(common::DOCKER_IMAGE, Duration::from_secs(5)) {
        Ok(_) => true,
        Err(why) => {
            common::skip(&why);
            false
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------------------------------------
// The engine's HTTP API over its unix socket, for looking at containers from outside.

/// The machine's engine socket (DOCKER_HOST, or the default).
fn engine_socket() -> PathBuf {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    PathBuf::from(
        host.strip_prefix("unix://")
            .unwrap_or("/var/run/docker.sock"),
    )
}

/// `GET path` on the engine at `socket`; `None` when it does not answer or not with JSON.
fn engine_get_at(socket: &Path, path: &str) -> Option<Value> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    // HTTP/1.0: the engine answers without chunking and closes the connection.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// `GET path` on the machine's engine.
fn engine_get(path: &str) -> Option<Value> {
    engine_get_at(&engine_socket(), path)
}

/// Containers (running or not) labelled `key=value`, on the engine at `socket`.
fn containers_labelled(socket: &Path, key: &str, value: &str) -> Vec<Value> {
    let filters = format!(r#"{{"label":["{key}={value}"]}}"#);
    let encoded: String = filters
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    engine_get_at(socket, &format!("/containers/json?all=1&filters={encoded}"))
        .and_then(|list| list.as_array().cloned())
        .unwrap_or_default()
}

/// Bytes under `dir`, not following symlinks.
fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_usage(&entry.path()),
            _ => entry.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

// ---------------------------------------------------------------------------------------------
// Faults of the job's set-up

#[test]
fn missing_image_exits_125_and_says_to_build_it() {
    if !engine_answers() {
        return;
    }
    let ws = Workspace::new();
    let profile = common::OperatorProfile::new(
        "no-image.toml",
        "extends = \"strict\"\n[backend]\nimage = \"sandbox/does-not-exist:latest\"\n",
    );
    let profile = &profile.path;
    let ran = sandbox(&[
        "exec",
        "--backend",
        "docker",
        "--profile",
        path_str(profile),
        "--workspace",
        path_str(ws.path()),
        "--",
        "sh",
        "-c",
        "touch /workspace/ran",
    ]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(
        ran.stderr.contains("sandbox/does-not-exist:latest"),
        "{ran:?}"
    );
    assert!(ran.stderr.contains("sandbox image build"), "{ran:?}");
    assert!(!ws.file("ran").exists(), "the job ran anyway");
}

#[test]
fn missing_workspace_exits_125_naming_the_path() {
    let ran = sandbox(&[
        "exec",
        "--backend",
        "docker",
        "--workspace",
        "/does/not/exist",
        "--",
        "true",
    ]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("/does/not/exist"), "{ran:?}");
}

/// 1 GiB of output: captured up to `limits.output`, the job not killed, and none of it in the
/// engine's logs (the container has no log driver), so the engine's disk does not fill up.
#[test]
fn output_flood_is_bounded_and_never_logged_by_the_engine() {
    if let Some(reason) = Backend::Docker.unavailable() {
        common::skip(&reason);
        return;
    }
    let ws = Workspace::new();
    let child = Command::new(SANDBOX)
        .args(["exec", "--backend", "docker", "--profile", "standard"])
        .args(["--timeout", "300s", "--output", "json", "--workspace"])
        .arg(ws.path())
        .args([
            "--",
            "sh",
            "-c",
            "head -c 1073741824 /dev/zero && touch /workspace/flooded && sleep 5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sandbox");
    let pid = child.id().to_string();
    let flooded = wait_until(Duration::from_secs(240), || ws.file("flooded").exists());
    let containers = containers_labelled(&engine_socket(), "sandbox.pid", &pid);
    let inspected = containers
        .first()
        .and_then(|c| c["Id"].as_str())
        .and_then(|id| engine_get(&format!("/containers/{id}/json")));
    // While the job sleeps after its flood: what the engine keeps of the container on disk.
    let root = engine_get("/info")
        .and_then(|info| info["DockerRootDir"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/docker"));
    let kept_on_disk = inspected
        .as_ref()
        .and_then(|c| c["Id"].as_str())
        .map(|id| root.join("containers").join(id))
        .filter(|dir| dir.is_dir())
        .map(|dir| (disk_usage(&dir), dir));
    let output = child.wait_with_output().expect("wait for sandbox");
    let run = common::Run::from(output);
    let captured = run.stdout().len();
    let mut shown = run.outcome.clone();
    shown["stdout"] = format!("<{captured} bytes>").into();
    assert!(flooded, "the job did not get through 1 GiB\n{shown:#}");
    let inspected = inspected.expect("the running container could be inspected");
    assert_eq!(
        inspected["HostConfig"]["LogConfig"]["Type"], "none",
        "{inspected:#}"
    );
    assert_eq!(inspected["LogPath"], "", "{inspected:#}");
    match kept_on_disk {
        Some((bytes, dir)) => assert!(bytes < 1 << 20, "{bytes} bytes in {}", dir.display()),
        None => common::skip(&format!(
            "{} is not readable here: the engine's disk use was not measured",
            root.display()
        )),
    }
    assert_eq!(run.code, 0, "{}\n{shown:#}", run.stderr);
    assert_eq!(run.status(), "exited", "{shown:#}");
    assert_eq!(run.outcome["stdout_truncated"], true, "{shown:#}");
    assert_eq!(run.limits_hit(), ["output"], "{shown:#}");
    assert!(captured > 0 && captured <= 16 << 20, "{shown:#}");
    assert!(
        containers_labelled(&engine_socket(), "sandbox.pid", &pid).is_empty(),
        "the container was left behind"
    );
}

// ---------------------------------------------------------------------------------------------
// The engine stopped, and killed mid-job

/// A `dockerd` of the test's own: socket, data root, exec root, pid file and log in a
/// directory of its own, no bridge and no iptables rules (its jobs have no network), started as
/// the test's child. Stopping or killing it touches nothing of the machine's engine; dropping it
/// stops it (and with it its containerd).
struct PrivateEngine {
    dir: tempfile::TempDir,
    dockerd: Option<std::process::Child>,
}

impl PrivateEngine {
    /// Starts the engine and imports the built-in profiles' image into it.
    fn new() -> PrivateEngine {
        let dir = tempfile::Builder::new()
            .prefix("sandbox-engine-")
            .tempdir()
            .expect("tempdir");
        let mut engine = PrivateEngine { dir, dockerd: None };
        engine.start();
        let built = sandbox_with(&engine, &["image", "build", "--from", "host"]);
        assert_eq!(
            built.code, 0,
            "importing the image into the private engine: {built:?}"
        );
        engine
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn ready(&self) -> bool {
        engine_get_at(&self.socket(), "/version").is_some()
    }

    fn start(&mut self) {
        assert!(self.dockerd.is_none(), "the private engine runs already");
        // A killed dockerd leaves its pid files; a new one would take them for running daemons.
        for stale in ["docker.pid", "exec/containerd/containerd.pid"] {
            let _ = std::fs::remove_file(self.dir.path().join(stale));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("dockerd.log"))
            .expect("the private engine's log");
        let root = self.dir.path();
        let dockerd = Command::new("dockerd")
            .arg("--host")
            .arg(self.docker_host())
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("docker.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            // Its own group: a Ctrl-C of the test harness is not its business.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start a private dockerd (scripts/setup installs docker.io)");
        self.dockerd = Some(dockerd);
        let ready = wait_until(Duration::from_secs(90), || self.ready());
        assert!(
            ready,
            "the private engine did not answer within 90s: {}",
            std::fs::read_to_string(root.join("dockerd.log")).unwrap_or_default()
        );
    }

    /// Sends `signal` to the private dockerd and reaps it.
    fn stop(&mut self, signal: nix::sys::signal::Signal) {
        let mut dockerd = self.dockerd.take().expect("the private engine runs");
        let pid = nix::unistd::Pid::from_raw(dockerd.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the private dockerd");
        let _ = dockerd.wait();
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.dockerd.is_some() {
            self.stop(nix::sys::signal::Signal::SIGTERM);
        }
        // dockerd makes its data root a mount of its own and leaves it: detach what is left
        // below our directory (deepest first), so that the directory can go.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<PathBuf> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(PathBuf::from)
            .filter(|point| point.starts_with(self.dir.path()))
            .collect();
        mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
        for point in mounts {
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `sandbox ARGS` against `engine`.
fn sandbox_with(engine: &PrivateEngine, args: &[&str]) -> Ran {
    common::run(
        Command::new(SANDBOX)
            .args(args)
            .env("DOCKER_HOST", engine.docker_host())
            .stdin(Stdio::null()),
    )
}

/// Both engine faults, on an engine of the test's own: a job started with no engine exits 125
/// saying what to run (and `auto` runs natively instead); a job whose engine is killed under it
/// exits 125, leaves the workspace as it was and no process running, and `gc` removes its
/// container once the engine is back.
#[test]
fn engine_stopped_or_killed_is_a_clean_125() {
    if std::env::var_os("SANDBOX_TEST_ENGINE_FAULTS").is_none_or(|v| v != "1") {
        common::skip("starting an engine of the test's own needs SANDBOX_TEST_ENGINE_FAULTS=1");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        common::skip("starting a private dockerd needs root");
        return;
    }
    let machine = dockerd_pids();
    let mut engine = PrivateEngine::new();

    // 1. Stopped before the job.
    engine.stop(nix::sys::signal::Signal::SIGTERM);
    let ws = Workspace::new();
    let workspace = path_str(ws.path());
    let ran = sandbox_with(
        &engine,
        &[
            "exec",
            "--backend",
            "docker",
            "--workspace",
            workspace,
            "--",
            "sh",
            "-c",
            "touch /workspace/ran",
        ],
    );
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("no Docker engine answered"), "{ran:?}");
    assert!(ran.stderr.contains("scripts/setup"), "{ran:?}");
    assert!(!ws.file("ran").exists(), "the job ran anyway");
    let auto = sandbox_with(
        &engine,
        &[
            "exec",
            "--backend",
            "auto",
            "--output",
            "json",
            "--workspace",
            workspace,
            "--",
            "true",
        ],
    );
    assert_eq!(auto.code, 0, "{auto:?}");
    let outcome = common::outcome_from(auto.stdout.as_bytes());
    assert_eq!(outcome["backend"], "native", "{auto:?}");
    assert!(
        outcome["backend_reason"]
            .as_str()
            .is_some_and(|why| why.contains("no Docker engine answered")),
        "{auto:?}"
    );
    engine.start();

    // 2. Killed in the middle of a job.
    let ws = Workspace::new();
    ws.write("keep.txt", "precious\n");
    let child = Command::new(SANDBOX)
        .args(["exec", "--backend", "docker", "--workspace-mode", "rw"])
        .arg("--workspace")
        .arg(ws.path())
        .args([
            "--",
            "sh",
            "-c",
            "touch /workspace/started; while true; do echo tick >> /workspace/ticks; sleep 0.05; done",
        ])
        .env("DOCKER_HOST", engine.docker_host())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sandbox");
    let supervisor = child.id().to_string();
    assert!(
        wait_until(Duration::from_secs(60), || ws.file("started").exists()),
        "the job did not start"
    );
    engine.stop(nix::sys::signal::Signal::SIGKILL);
    let output = child.wait_with_output().expect("wait for sandbox");
    let ran = Ran::from(output);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("Docker engine"), "{ran:?}");
    assert!(ran.stderr.contains("sandbox gc"), "{ran:?}");
    // The job is dead (its init was killed without the engine): nothing writes any more.
    let ticks = || {
        std::fs::metadata(ws.file("ticks"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let before = ticks();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ticks(), before, "the job still runs after sandbox gave up");
    assert_eq!(
        std::fs::read_to_string(ws.file("keep.txt")).expect("keep.txt is still there"),
        "precious\n"
    );

    // 3. The engine is back: its record of the container is `gc`'s to remove.
    engine.start();
    let socket = engine.socket();
    assert!(
        !containers_labelled(&socket, "sandbox.pid", &supervisor).is_empty(),
        "expected the engine to still know the container of the killed job"
    );
    let removed = sandbox_gc(&engine);
    assert!(!removed.is_empty(), "gc removed nothing");
    assert!(
        containers_labelled(&socket, "sandbox.pid", &supervisor).is_empty(),
        "gc left the container behind (it removed {removed:?})"
    );
    drop(engine);
    assert_eq!(
        dockerd_pids(),
        machine,
        "the machine's dockerd is not the one it was before the test"
    );
}

/// The pids of every running dockerd but ours: the machine's engine, which must outlive us.
fn dockerd_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "dockerd").then_some(pid)
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| !cmdline.contains("sandbox-engine-"))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// `sandbox gc --output json` against `engine`: what it removed.
fn sandbox_gc(engine: &PrivateEngine) -> Vec<String> {
    let ran = sandbox_with(engine, &["gc", "--output", "json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let report: Value = serde_json::from_str(&ran.stdout).expect("gc prints JSON");
    report["removed"]
        .as_array()
        .expect("a list of removed containers")
        .iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect()
}
