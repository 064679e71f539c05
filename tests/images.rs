//! `sandbox image build|list` end to end: the real binary builds images in the real engine,
//! `sandbox image list` finds them, and containers run from them (started with the docker CLI,
//! here only, to check the images independently of our docker backend).

#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{run, sandbox, sandbox_command, skip, Ran};

/// What the binary exits with when it could not do what was asked (DESIGN section 7).
const SANDBOX_FAILED: i32 = 125;

/// The host image is built by scripts/setup on every fresh machine: it must take seconds.
const HOST_BUILD_BUDGET: Duration = Duration::from_secs(20);

const DOCKER: &str = "/usr/bin/docker";

/// Whether an engine answers, asked the way users ask: through `sandbox image list`.
fn engine_answers() -> bool {
    let listed = sandbox(&["image", "list", "--output", "json"]);
    if listed.code == 0 {
        return true;
    }
    let stderr = &listed.stderr;
    assert!(
        stderr.contains("no Docker engine answered"),
        "image list failed for another reason than a missing engine:\n{stderr}"
    );
    skip(&format!("no Docker engine: {}", stderr.trim()));
    false
}

fn build(from: &str, tag: &str) -> Ran {
    let built = sandbox(&["image", "build", "--from", from, "--tag", tag]);
    assert_eq!(built.code, 0, "build failed:\n{built:?}");
    built
}

/// `sandbox image list --output json`, the image whose tags include `tag`.
fn listed(tag: &str) -> Value {
    let output = sandbox(&["image", "list", "--output", "json"]);
    assert_eq!(output.code, 0, "{output:?}");
    let images: Value = serde_json::from_str(&output.stdout).expect("list prints JSON");
    images
        .as_array()
        .expect("list prints an array")
        .iter()
        .find(|image| {
            image["tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t == tag))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{tag} not in `sandbox image list`:\n{output:?}"))
}

/// `docker run --rm ARGS...`, as the job's user (65534) on a read-only root, the way the
/// docker backend runs jobs.
fn docker_run(args: &[&str]) -> Ran {
    run(Command::new(DOCKER)
        .args([
            "run",
            "--rm",
            "--read-only",
            "--user",
            "65534",
            "--network",
            "none",
        ])
        .args(args))
}

/// Removes a test image when the test ends, however it ends.
struct RemoveImage(&'static str);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER)
            .args(["image", "rm", self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn builds_a_busybox_image_that_runs() {
    if !engine_answers() {
        return;
    }
    let tag = "sandbox/test-busybox:latest";
    let _cleanup = RemoveImage(tag);
    build("busybox", tag);

    let image = listed(tag);
    assert_eq!(image["source"], "busybox", "{image:#}");
    assert_eq!(image["mirror"], serde_json::json!([]), "{image:#}");
    assert!(image["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("sha256:")));
    assert!(image["size"].as_u64().is_some_and(|size| size > 0));

    let ran = docker_run(&[tag, "/bin/sh", "-c", "echo ok; id -u; test -d /workspace"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.stdout, "ok\n65534\n");
}

#[test]
fn builds_the_host_image_in_seconds_without_secrets() {
    if !engine_answers() {
        return;
    }
    let started = Instant::now();
    let built = sandbox(&["image", "build", "--from", "host", "--output", "json"]);
    let took = started.elapsed();
    assert_eq!(built.code, 0, "{built:?}");
    eprintln!("sandbox image build --from host took {took:?}");
    assert!(
        took < HOST_BUILD_BUDGET,
        "building the host image took {took:?}; scripts/setup runs it on every fresh machine"
    );
    let report: Value = serde_json::from_str(&built.stdout).expect("build prints JSON");
    assert_eq!(report["tag"], "sandbox/host:latest");
    assert!(report["excluded"]
        .as_array()
        .is_some_and(|e| e.iter().any(|o| o["path"] == "etc/shadow")));

    let image = listed("sandbox/host:latest");
    assert_eq!(image["source"], "host");
    assert_eq!(image["mirror"], serde_json::json!(["/usr"]));

    // With the host's /usr bound read-only, as the docker backend does for `sandbox.mirror`.
    let ran = docker_run(&[
        "-v",
        "/usr:/usr:ro",
        "sandbox/host:latest",
        "sh",
        "-c",
        // The secrets' names stay (the native jail shows the same names), as empty files of
        // mode 0.
        "test ! -s /etc/shadow && test ! -s /etc/gshadow && test \"$(stat -c %a /etc/shadow)\" = 0 \
         && python3 -c 'print(1)'",
    ]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.stdout, "1\n");
}

#[test]
fn dir_image_does_not_follow_symlinks_out_of_the_directory() {
    if !engine_answers() {
        return;
    }
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox-static is installed (scripts/setup)");
    let root = tempfile::tempdir().expect("tempdir");
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    for applet in ["sh", "cat", "echo"] {
        symlink("busybox", bin.join(applet)).expect("symlink applet");
    }
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "host secret\n").expect("write secret");
    symlink(&secret, root.path().join("escape")).expect("symlink");

    let tag = "sandbox/test-dir:latest";
    let _cleanup = RemoveImage(tag);
    build(root.path().to_str().expect("utf-8 temp path"), tag);
    assert_eq!(listed(tag)["source"], "dir");

    let ran = docker_run(&[tag, "/bin/sh", "-c", "cat /escape; echo status=$?"]);
    assert!(!ran.stdout.contains("host secret"), "{ran:?}");
    assert!(ran.stdout.contains("status=1"), "{ran:?}");
}

#[test]
fn build_without_an_engine_exits_125_and_says_what_to_run() {
    let missing = tempfile::tempdir().expect("tempdir");
    let socket = format!("unix://{}", missing.path().join("docker.sock").display());
    for args in [
        &["image", "build", "--from", "busybox"][..],
        &["image", "list"][..],
    ] {
        let output = run(sandbox_command(args).env("DOCKER_HOST", &socket));
        assert_eq!(output.code, SANDBOX_FAILED, "{output:?}");
        assert!(output.stderr.contains("scripts/setup"), "{output:?}");
        assert!(output.stderr.contains(&socket), "{output:?}");
    }
}

#[test]
fn build_from_a_directory_without_a_shell_is_refused() {
    let empty = tempfile::tempdir().expect("tempdir");
    let path = empty.path().to_str().expect("utf-8 temp path");
    let output = sandbox(&["image", "build", "--from", path]);
    assert_eq!(output.code, SANDBOX_FAILED, "{output:?}");
    assert!(output.stderr.contains("/bin/sh"), "{output:?}");

    let output = sandbox(&["image", "build", "--from", "./no-such-dir-here"]);
    assert_eq!(output.code, SANDBOX_FAILED, "{output:?}");
    assert!(output.stderr.contains("does not exist"), "{output:?}");
}
