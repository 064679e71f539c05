//! Faults of the host, injected for real: the workspace's filesystem is full, the cgroup
//! hierarchy is read-only. Each ends with the documented exit code, a message that says what
//! happened, and the user's workspace untouched. (The engine killed mid-run: docker_faults.rs;
//! `sandbox` itself killed: signals.rs and scratch.rs; a requirement the host lacks: cli.rs.)
//!
//! Both run the binary in a mount namespace of the test's own (`unshare --mount`), where the
//! small tmpfs and the read-only remounts live and die with the test.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::process::{Command, Stdio};

use common::SANDBOX;
use serde_json::Value;

struct Shell {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `script` as root in a new mount namespace; `$SANDBOX` names the binary.
fn in_own_mounts(script: &str) -> Option<Shell> {
    if !nix::unistd::geteuid().is_root() {
        common::skip("mounting a tmpfs and remounting cgroups needs root");
        return None;
    }
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc", script])
        .env("SANDBOX", SANDBOX)
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    Some(Shell {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// A scratch job writes 1 MiB and edits a file of a 256 KiB workspace. Its view (a tmpfs of its
/// own) has room; the workspace does not. The copies are made before the workspace is touched,
/// so nothing is written back, not even the small edit: exit 125, `sandbox_error` with its
/// `reason`, the cause in `workspace.write_back`, and the workspace byte for byte as before.
#[test]
fn a_full_workspace_filesystem_writes_back_nothing() {
    let Some(ran) = in_own_mounts(
        r#"
ws=$(mktemp -d /tmp/sandbox-full-ws.XXXXXX)
# The directory is on the host's /tmp; only the mount is this namespace's.
trap 'umount "$ws"; rmdir "$ws"' EXIT
mount -t tmpfs -o size=256k tmpfs "$ws"
chmod 0777 "$ws"
echo original > "$ws/keep.txt"
chmod 0666 "$ws/keep.txt"
code=0
"$SANDBOX" exec --backend native --profile strict --workspace "$ws" --output json \
    -- sh -c 'echo changed > keep.txt; head -c 1048576 /dev/zero > big.bin' || code=$?
echo "exit=$code" >&2
echo "keep=$(cat "$ws/keep.txt")" >&2
echo "entries=$(ls -A "$ws" | tr '\n' ' ')" >&2
"#,
    ) else {
        return;
    };
    let outcome: Value = serde_json::from_str(&ran.stdout).unwrap_or(Value::Null);
    let context = format!("exit {}\n{}\n{outcome:#}", ran.code, ran.stderr);
    assert!(ran.stderr.contains("exit=125"), "{context}");
    assert_eq!(outcome["status"], "sandbox_error", "{context}");
    assert_eq!(outcome["exit_code"], 125, "{context}");
    let reason = outcome["reason"].as_str().unwrap_or("");
    assert!(reason.contains("writing back failed"), "{context}");
    assert_eq!(outcome["retryable"], false, "{context}");
    assert_eq!(outcome["workspace"]["committed"], false, "{context}");
    let write_back = &outcome["workspace"]["write_back"];
    assert_eq!(write_back["written"], serde_json::json!([]), "{context}");
    let aborted = write_back["aborted"].as_str().unwrap_or("");
    assert!(aborted.contains("No space left on device"), "{context}");
    assert!(aborted.contains("nothing was written back"), "{context}");
    assert!(ran.stderr.contains("keep=original"), "{context}");
    assert!(ran.stderr.contains("entries=keep.txt \n"), "{context}");
}

/// The cgroup hierarchy cannot be written: a profile that needs cgroups refuses with 125
/// naming the cgroup directory, before anything runs.
#[test]
fn an_unwritable_cgroup_hierarchy_refuses_naming_it() {
    let Some(ran) = in_own_mounts(
        r#"
# Every cgroup filesystem (v1 controllers or the v2 unified tree), read-only in this namespace.
awk '$0 ~ / - cgroup2? / { print $5 }' /proc/self/mountinfo | while read -r dir; do
    mount -o remount,bind,ro "$dir"
done
ws=$(mktemp -d /tmp/sandbox-ro-cg.XXXXXX)
chmod 0777 "$ws"
code=0
"$SANDBOX" exec --backend native --profile strict --workspace "$ws" -- touch "$ws/ran" || code=$?
echo "exit=$code"
test -e "$ws/ran" && echo "the job ran"
rm -rf "$ws"
"#,
    ) else {
        return;
    };
    let context = format!(
        "exit {}\nstdout {}\nstderr {}",
        ran.code, ran.stdout, ran.stderr
    );
    assert!(ran.stdout.contains("exit=125"), "{context}");
    assert!(!ran.stdout.contains("the job ran"), "{context}");
    assert!(ran.stderr.contains("cgroup"), "{context}");
    assert!(ran.stderr.contains("/sys/fs/cgroup"), "{context}");
    assert!(ran.stderr.contains("read-only"), "{context}");
}
