//! The docker backend when things go wrong: an image or a workspace that does not exist, a job
//! that prints 1 GiB, and the engine itself stopped before a job or killed in the middle of
//! one. Each says what happened, exits 125 when the sandbox failed, and leaves nothing behind
//! that `sandbox gc` cannot remove.
//!
//! The engine faults stop and restart `dockerd`, which every other docker test needs: they run
//! only with SANDBOX_TEST_ENGINE_FAULTS=1 (scripts/test sets it), as root, and hold a lock
//! that keeps this file's other tests out meanwhile. Run test binaries one at a time (as
//! `cargo test` does), never beside other docker tests.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

mod common;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use common::{sandbox, Backend, Ran, Workspace, SANDBOX};
use serde_json::Value;

/// The engine-fault test takes it for writing; every other test here for reading.
static ENGINE: RwLock<()> = RwLock::new(());

const SANDBOX_FAILED: i32 = 125;

fn engine_shared() -> RwLockReadGuard<'static, ()> {
    ENGINE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

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

fn engine_socket() -> PathBuf {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    PathBuf::from(
        host.strip_prefix("unix://")
            .unwrap_or("/var/run/docker.sock"),
    )
}

/// `GET path` on the engine; `None` when it does not answer or not with JSON.
fn engine_get(path: &str) -> Option<Value> {
    let mut stream = std::os::unix::net::UnixStream::connect(engine_socket()).ok()?;
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

/// Containers (running or not) labelled `key=value`.
fn containers_labelled(key: &str, value: &str) -> Vec<Value> {
    let filters = format!(r#"{{"label":["{key}={value}"]}}"#);
    let encoded: String = filters
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    engine_get(&format!("/containers/json?all=1&filters={encoded}"))
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
    let _engine = engine_shared();
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
    let _engine = engine_shared();
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
    let _engine = engine_shared();
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
    let containers = containers_labelled("sandbox.pid", &pid);
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
        containers_labelled("sandbox.pid", &pid).is_empty(),
        "the container was left behind"
    );
}

// ---------------------------------------------------------------------------------------------
// The engine stopped, and killed mid-job

/// The running `dockerd`: its pid and command line.
fn dockerd() -> Option<(i32, Vec<String>)> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            if comm.trim() != "dockerd" || is_zombie(pid) {
                return None;
            }
            let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args = raw
                .split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            Some((pid, args))
        })
        .next()
}

/// A killed dockerd whose parent (init, here) has not reaped it yet.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after) = stat.rsplit_once(')')?;
            after.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

fn engine_ready() -> bool {
    engine_get("/version").is_some()
}

/// Keeps the engine running for everyone else: whatever a fault test does (or however it
/// panics), the engine is started again when the guard goes.
struct EngineGuard {
    command: Vec<String>,
}

impl EngineGuard {
    fn stop(&self, signal: nix::sys::signal::Signal) {
        let (pid, _) = dockerd().expect("dockerd runs");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal dockerd");
        let gone = wait_until(Duration::from_secs(60), || {
            std::fs::metadata(format!("/proc/{pid}")).is_err() || is_zombie(pid)
        });
        assert!(gone, "dockerd ({pid}) did not stop on {signal}");
    }

    fn start(&self) {
        if dockerd().is_none() {
            self.remove_stale_pid_files();
            // Started in the background by a shell that exits at once, so that dockerd is
            // nobody's child here (no zombie, no signal of the test harness reaches it).
            let started = Command::new("sh")
                .args([
                    "-c",
                    "\"$@\" >>/var/log/dockerd.log 2>&1 </dev/null &",
                    "sh",
                ])
                .args(&self.command)
                .process_group(0)
                .status()
                .expect("start dockerd");
            assert!(started.success(), "starting {:?}: {started}", self.command);
        }
        assert!(
            wait_until(Duration::from_secs(90), engine_ready),
            "the engine did not come back within 90s"
        );
    }
}

impl EngineGuard {
    /// A killed dockerd leaves its pid file and its containerd's, and while the dead processes
    /// are not reaped yet (zombies of init's, which can take a while here) a new dockerd takes
    /// them for running daemons: it refuses to start, or waits for a containerd that is gone.
    fn remove_stale_pid_files(&self) {
        let dockerd_pid_file = self
            .command
            .iter()
            .position(|arg| arg == "-p" || arg == "--pidfile")
            .and_then(|at| self.command.get(at + 1).cloned())
            .or_else(|| {
                self.command
                    .iter()
                    .find_map(|arg| arg.strip_prefix("--pidfile=").map(str::to_owned))
            })
            .unwrap_or_else(|| "/var/run/docker.pid".to_owned());
        for pid_file in [
            dockerd_pid_file.as_str(),
            "/var/run/docker/containerd/containerd.pid",
        ] {
            let stale = std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
                .is_some_and(|pid| {
                    std::fs::metadata(format!("/proc/{pid}")).is_err() || is_zombie(pid)
                });
            if stale {
                let _ = std::fs::remove_file(pid_file);
            }
        }
    }
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        if !engine_ready() {
            self.start();
        }
    }
}

/// Both engine faults in one test, so that nothing else here runs while the engine is down:
/// a job started with no engine exits 125 saying what to run (and `auto` runs natively
/// instead); a job whose engine is killed under it exits 125, leaves the workspace as it was
/// and no process running, and `gc` removes its container once the engine is back.
#[test]
fn engine_stopped_or_killed_is_a_clean_125() {
    if std::env::var_os("SANDBOX_TEST_ENGINE_FAULTS").is_none_or(|v| v != "1") {
        common::skip("stopping the Docker engine needs SANDBOX_TEST_ENGINE_FAULTS=1");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        common::skip("stopping and starting dockerd needs root");
        return;
    }
    let _exclusive = ENGINE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(reason) = Backend::Docker.unavailable() {
        common::skip(&reason);
        return;
    }
    let (_, command) = dockerd().expect("the engine answers, so dockerd runs here");
    let guard = EngineGuard { command };

    // 1. Stopped before the job.
    guard.stop(nix::sys::signal::Signal::SIGTERM);
    let ws = Workspace::new();
    let workspace = path_str(ws.path());
    let ran = sandbox(&[
        "exec",
        "--backend",
        "docker",
        "--workspace",
        workspace,
        "--",
        "sh",
        "-c",
        "touch /workspace/ran",
    ]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("no Docker engine answered"), "{ran:?}");
    assert!(ran.stderr.contains("scripts/setup"), "{ran:?}");
    assert!(!ws.file("ran").exists(), "the job ran anyway");
    let auto = sandbox(&[
        "exec",
        "--backend",
        "auto",
        "--output",
        "json",
        "--workspace",
        workspace,
        "--",
        "true",
    ]);
    assert_eq!(auto.code, 0, "{auto:?}");
    let outcome = common::outcome_from(auto.stdout.as_bytes());
    assert_eq!(outcome["backend"], "native", "{auto:?}");
    assert!(
        outcome["backend_reason"]
            .as_str()
            .is_some_and(|why| why.contains("no Docker engine answered")),
        "{auto:?}"
    );
    guard.start();

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
    guard.stop(nix::sys::signal::Signal::SIGKILL);
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
    guard.start();
    assert!(
        !containers_labelled("sandbox.pid", &supervisor).is_empty(),
        "expected the engine to still know the container of the killed job"
    );
    let removed = sandbox_gc();
    assert!(!removed.is_empty(), "gc removed nothing");
    assert!(
        containers_labelled("sandbox.pid", &supervisor).is_empty(),
        "gc left the container behind (it removed {removed:?})"
    );
}

/// `sandbox gc --output json`: what it removed.
fn sandbox_gc() -> Vec<String> {
    let ran = sandbox(&["gc", "--output", "json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let report: Value = serde_json::from_str(&ran.stdout).expect("gc prints JSON");
    report["removed"]
        .as_array()
        .expect("a list of removed containers")
        .iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect()
}
