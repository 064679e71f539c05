//! Attack tests: one per isolation promise of DESIGN.md §3, each named for the attack. Every
//! test runs the attack inside a real jail and asserts both that it failed and that the Outcome
//! says so (status, exit code, `limits_hit`, the isolation actually applied).

// clippy's allow-expect-in-tests covers `#[test]` functions only, not the helpers and the
// functions `conformance!` wraps; a broken fixture should fail the test loudly.
#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MIB: usize = 1 << 20;

/// A token no other process on the host has in its command line, for finding leftovers.
fn token(name: &str) -> String {
    format!("{name}-{}-{:03}", std::process::id(), next_serial())
}

/// A number `sleep` accepts that is unique to this call, so that a `sleep` the job leaves
/// behind can be found by its command line.
fn unique_sleep(base: u32) -> String {
    format!("{base}.{}{:03}", std::process::id(), next_serial())
}

/// The same test runs on every backend at once in this process: a marker must be unique per
/// call, not per process, or one backend's job is taken for the other's leftover.
fn next_serial() -> u32 {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000
}

/// Host processes whose command line contains `needle`. Run after `sandbox` returned: by then
/// the jail (whose init is a clone of `sandbox`, with its argv) must be gone too.
fn host_processes_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| {
            let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmdline
                .contains(needle)
                .then(|| format!("{}: {cmdline}", entry.file_name().to_string_lossy()))
        })
        .collect()
}

/// The command `exec_json` runs, for the tests that change how the `sandbox` process itself is
/// started (its environment) or reaped (its resource usage).
fn exec_json_command(
    backend: Backend,
    workspace: &Workspace,
    extra: &[&str],
    command: &[&str],
) -> Command {
    let mut sandbox = Command::new(SANDBOX);
    sandbox
        .arg("exec")
        .args(["--backend", backend.name()])
        .arg("--workspace")
        .arg(workspace.path())
        .args(extra)
        .args(["--output", "json", "--"])
        .args(command)
        .stdin(Stdio::null());
    sandbox
}

fn run_from(code: i32, stdout: &[u8], stderr: &[u8]) -> Run {
    Run {
        code,
        outcome: common::outcome_from(stdout),
        stderr: String::from_utf8_lossy(stderr).into_owned(),
    }
}

fn sh(backend: Backend, workspace: &Workspace, extra: &[&str], script: &str) -> Run {
    exec_json(backend, workspace, extra, &["sh", "-c", script])
}

/// `python3 -c SCRIPT` under the strict profile.
fn strict_python(backend: Backend, workspace: &Workspace, extra: &[&str], script: &str) -> Run {
    let mut args = vec!["--profile", "strict"];
    args.extend_from_slice(extra);
    exec_json(backend, workspace, &args, &["python3", "-c", script])
}

fn assert_exited(run: &Run, code: i32) {
    assert_eq!(run.code, code, "{run:?}");
    assert_eq!(run.outcome["exit_code"], code, "{run:?}");
    assert_eq!(run.status(), "exited", "{run:?}");
    assert!(run.limits_hit().is_empty(), "{run:?}");
}

fn lines(run: &Run) -> Vec<&str> {
    run.stdout().lines().collect()
}

/// The job's stdout lines that start with `prefix`.
fn report<'a>(run: &'a Run, prefix: &str) -> Vec<&'a str> {
    run.stdout()
        .lines()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

// 1. The root is read-only: bind mounts with MS_RDONLY, applied recursively.
fn blocks_write_to_root(backend: Backend) {
    let ws = Workspace::new();
    let name = token("sandbox-attack-root");
    let targets = [format!("/etc/{name}"), format!("/usr/{name}")];
    let script = targets
        .iter()
        .map(|path| format!("if echo x > {path}; then echo WROTE {path}; fi"))
        .collect::<Vec<_>>()
        .join("; ");
    let run = strict_sh(backend, &ws, &script);
    assert_exited(&run, 0);
    assert!(report(&run, "WROTE").is_empty(), "{run:?}");
    assert_eq!(
        run.job_stderr().matches("Read-only file system").count(),
        2,
        "{run:?}"
    );
    assert_eq!(run.isolation("readonly_root"), true, "{run:?}");
    for path in &targets {
        assert!(!Path::new(path).exists(), "{path} appeared on the host");
    }
}

// 2. Writable: the tmpfs mounts and (in `rw` mode) the workspace; nothing else.
fn blocks_write_outside_workspace(backend: Backend) {
    let ws = Workspace::new();
    let name = token("sandbox-attack-outside");
    let outside = [format!("/var/tmp/{name}"), format!("/opt/{name}")];
    let script = format!(
        "for p in {} {}; do if echo x > $p; then echo WROTE $p; fi; done; \
         echo tmp > /tmp/t && cat /tmp/t && echo ws > /workspace/written && echo WS-OK",
        outside[0], outside[1]
    );
    let run = sh(
        backend,
        &ws,
        &["--profile", "standard", "--workspace-mode", "rw"],
        &script,
    );
    assert_exited(&run, 0);
    assert_eq!(lines(&run), ["tmp", "WS-OK"], "{run:?}");
    assert_eq!(
        run.job_stderr().matches("Read-only file system").count(),
        2,
        "{run:?}"
    );
    for path in &outside {
        assert!(!Path::new(path).exists(), "{path} appeared on the host");
    }
    let written = std::fs::read_to_string(ws.file("written")).unwrap_or_default();
    assert_eq!(
        written, "ws\n",
        "the workspace write did not reach the host: {run:?}"
    );
}

fn blocks_write_to_read_only_workspace(backend: Backend) {
    let ws = Workspace::new();
    let run = sh(
        backend,
        &ws,
        &["--profile", "strict", "--workspace-mode", "ro"],
        "if echo x > /workspace/evil; then echo WROTE; fi",
    );
    assert_exited(&run, 0);
    assert!(report(&run, "WROTE").is_empty(), "{run:?}");
    assert!(
        run.job_stderr().contains("Read-only file system"),
        "{run:?}"
    );
    assert_eq!(run.outcome["workspace"]["mode"], "ro", "{run:?}");
    assert!(!ws.file("evil").exists(), "the write reached the host");
}

// 3. Secrets of the host's users: /etc/shadow is root's alone, /root and /home are masked.
// With a PATH that points into no home: a toolchain under one would be shown (tests/view.rs).
fn blocks_reading_host_secrets(backend: Backend) {
    let ws = Workspace::new();
    let run = sh(
        backend,
        &ws,
        &[
            "--profile",
            "strict",
            "--env",
            "PATH=/usr/local/bin:/usr/bin:/bin",
        ],
        "cat /etc/shadow; echo shadow=$?; \
         echo root:; ls -A /root; echo home:; ls -A /home; echo end; \
         touch /home/sandbox-attack 2>/dev/null; echo home_write=$?; \
         mkdir /root/sandbox-attack 2>/dev/null; echo root_mkdir=$?",
    );
    assert_exited(&run, 0);
    let out = lines(&run);
    assert!(out.contains(&"shadow=1"), "{run:?}");
    assert!(
        !run.stdout().contains("root:*") && !run.stdout().contains("root:$"),
        "{run:?}"
    );
    // Not one password hash of the host's shadow file reached the job.
    let host_shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    for hash in host_shadow
        .lines()
        .filter_map(|line| line.split(':').nth(1))
        .filter(|hash| hash.len() > 2)
    {
        assert!(!run.stdout().contains(hash), "a host hash leaked\n{run:?}");
    }
    match backend {
        // The jail shows the host's /etc, where shadow is root's alone.
        Backend::Native => assert!(
            run.job_stderr().contains("/etc/shadow: Permission denied"),
            "{run:?}"
        ),
        // The image's /etc is a copy without secrets: shadow may be root's, or absent.
        Backend::Docker => assert!(
            run.job_stderr().contains("/etc/shadow: Permission denied")
                || run
                    .job_stderr()
                    .contains("/etc/shadow: No such file or directory"),
            "{run:?}"
        ),
    }
    // Nothing between the markers: both directories are empty in the jail, and read-only.
    assert_eq!(
        out[1..],
        ["root:", "home:", "end", "home_write=1", "root_mkdir=1"],
        "{run:?}"
    );
    assert!(
        !Path::new("/home/sandbox-attack").exists(),
        "the write reached the host"
    );
    assert!(
        !Path::new("/root/sandbox-attack").exists(),
        "the mkdir reached the host"
    );
}

// 4. The host's loopback services are never reachable (an empty network namespace, and
// landlock denies TCP connect where the ABI has it).
fn blocks_connect_to_host_loopback(backend: Backend) {
    let ws = Workspace::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a host listener");
    let port = listener.local_addr().expect("listener address").port();
    let script = format!(
        "import errno, socket\n\
         try:\n\
         \x20   socket.create_connection(('127.0.0.1', {port}), timeout=5)\n\
         \x20   print('CONNECTED')\n\
         except OSError as error:\n\
         \x20   print('refused', errno.errorcode.get(error.errno, error.errno))\n"
    );
    let run = strict_python(backend, &ws, &[], &script);
    assert_exited(&run, 0);
    assert_eq!(report(&run, "refused").len(), 1, "{run:?}");
    assert!(report(&run, "CONNECTED").is_empty(), "{run:?}");
    assert_eq!(run.isolation("net"), "none", "{run:?}");
    // A connect that had reached the listener would wait in its backlog, accepted or not.
    listener
        .set_nonblocking(true)
        .expect("make the listener non-blocking");
    match listener.accept() {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host listener got a connection from the jail: {other:?}\n{run:?}"),
    }
}

// 5. No interface but the jail's own loopback.
fn sees_only_loopback_interface(backend: Backend) {
    let ws = Workspace::new();
    let run = strict_sh(
        backend,
        &ws,
        "ls /sys/class/net; echo ---; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    );
    assert_exited(&run, 0);
    assert_eq!(lines(&run), ["lo", "---", "lo"], "{run:?}");
    assert_eq!(run.isolation("net"), "none", "{run:?}");
}

// 6. A container engine's socket is root on the host; it must not be reachable.
fn hides_docker_socket(backend: Backend) {
    let ws = Workspace::new();
    let run = strict_sh(
        backend,
        &ws,
        "for p in /run/docker.sock /var/run/docker.sock; do \
         if test -e $p; then echo VISIBLE $p; fi; done; echo run:; ls -A /run; echo end",
    );
    assert_exited(&run, 0);
    assert_eq!(lines(&run), ["run:", "end"], "{run:?}");
}

// 7. The host's environment never leaks into a job except what `env.pass` names.
fn blocks_host_environment_leak(backend: Backend) {
    let ws = Workspace::new();
    let canary = token("canary-value");
    // The jail's init is a clone of `sandbox` and still holds the host's environment: the job
    // must not be able to read it through /proc either.
    let script = "env; echo ---; \
                  for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done 2>/dev/null; true";
    let output = exec_json_command(
        backend,
        &ws,
        &["--profile", "strict", "--env", "FOO=bar"],
        &["sh", "-c", script],
    )
    .env("SECRET_CANARY", &canary)
    .output()
    .expect("run sandbox");
    let run = run_from(
        output.status.code().unwrap_or(-1),
        &output.stdout,
        &output.stderr,
    );
    assert_exited(&run, 0);
    assert!(!run.stdout().contains("SECRET_CANARY"), "{run:?}");
    assert!(!run.stdout().contains(&canary), "{run:?}");
    let env: Vec<&str> = run.stdout().lines().take_while(|l| *l != "---").collect();
    assert!(env.contains(&"FOO=bar"), "{run:?}");
}

// 8. A fork bomb meets the pids limit; the host is untouched and nothing is left behind.
// Every process forks until fork fails; the original then reports and exits 0 while its
// descendants sleep on, so the job ends on its own, deterministically, at the limit.
fn contains_fork_bomb(backend: Backend) {
    let ws = Workspace::new();
    let marker = token("fork-bomb");
    let script = format!(
        "import os, time  # {marker}\n\
         original = os.getpid()\n\
         while True:\n\
         \x20   try:\n\
         \x20       os.fork()\n\
         \x20   except OSError as error:\n\
         \x20       if os.getpid() == original:\n\
         \x20           print('fork failed', error.errno)\n\
         \x20           raise SystemExit(0)\n\
         \x20       time.sleep(1000)\n"
    );
    let run = strict_python(backend, &ws, &["--pids", "64", "--timeout", "20s"], &script);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.status(), "exited", "{run:?}");
    assert_eq!(
        lines(&run),
        [format!("fork failed {}", libc::EAGAIN)],
        "{run:?}"
    );
    assert_eq!(run.limits_hit(), ["pids"], "{run:?}");
    let left = host_processes_with(&marker);
    assert!(left.is_empty(), "left behind: {left:?}\n{run:?}");
}

// 9. Filling memory ends in the cgroup's OOM kill, reported as such.
fn contains_memory_hog(backend: Backend) {
    let ws = Workspace::new();
    let run = strict_python(
        backend,
        &ws,
        &["--memory", "64M"],
        "b = bytearray(512 * 1024 * 1024)\nprint('ALLOCATED', len(b))",
    );
    assert_eq!(run.code, 137, "{run:?}");
    assert_eq!(run.outcome["exit_code"], 137, "{run:?}");
    assert_eq!(run.status(), "oom_killed", "{run:?}");
    assert_eq!(run.outcome["signal"], 9, "{run:?}");
    assert!(run.limits_hit().contains(&"memory".to_owned()), "{run:?}");
    assert!(report(&run, "ALLOCATED").is_empty(), "{run:?}");
}

// 10. Wall time: the job is killed at the limit, exit 124.
fn enforces_wall_time(backend: Backend) {
    let ws = Workspace::new();
    let started = Instant::now();
    let run = exec_json(
        backend,
        &ws,
        &["--profile", "strict", "--timeout", "1s"],
        &["sleep", "30"],
    );
    let elapsed = started.elapsed();
    assert_eq!(run.code, 124, "{run:?}");
    assert_eq!(run.outcome["exit_code"], 124, "{run:?}");
    assert_eq!(run.status(), "timed_out", "{run:?}");
    assert_eq!(run.limits_hit(), ["wall_time"], "{run:?}");
    assert!(
        elapsed < Duration::from_secs(20),
        "took {elapsed:?}\n{run:?}"
    );
}

// 11. A background child must not outlive the job (the pid namespace's init kills the rest).
fn kills_background_child_outliving_job(backend: Backend) {
    let ws = Workspace::new();
    let plain = unique_sleep(4242);
    let detached = unique_sleep(4243);
    let run = strict_sh(
        backend,
        &ws,
        &format!(
            "sleep {plain} & \
             setsid sh -c 'sleep {detached}' </dev/null >/dev/null 2>&1 & \
             echo started"
        ),
    );
    assert_exited(&run, 0);
    assert_eq!(lines(&run), ["started"], "{run:?}");
    for needle in [&plain, &detached] {
        let left = host_processes_with(&format!("sleep {needle}"));
        assert!(left.is_empty(), "left behind: {left:?}\n{run:?}");
    }
}

// 12. A pid namespace of its own: the host's processes are invisible.
fn hides_host_processes(backend: Backend) {
    let ws = Workspace::new();
    let host_init = std::fs::read("/proc/1/cmdline")
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default();
    let own = std::process::id();
    // The glob is expanded by the shell itself, which forks nothing.
    let run = strict_sh(
        backend,
        &ws,
        &format!(
            "echo pid=$$; set -- /proc/[0-9]*; echo count=$#; \
             if test -e /proc/{own}; then echo SEES-HOST; fi; \
             if test -e /proc/1/cmdline; then echo SEES-INIT; fi; \
             echo init=$(tr '\\0' ' ' < /proc/1/cmdline)"
        ),
    );
    assert_exited(&run, 0);
    let pid: u32 = report(&run, "pid=")
        .first()
        .and_then(|line| line["pid=".len()..].parse().ok())
        .unwrap_or(u32::MAX);
    let count: u32 = report(&run, "count=")
        .first()
        .and_then(|line| line["count=".len()..].parse().ok())
        .unwrap_or(u32::MAX);
    assert!(pid < 10, "the job is pid {pid}\n{run:?}");
    assert!(count < 5, "the jail sees {count} processes\n{run:?}");
    assert!(report(&run, "SEES-HOST").is_empty(), "{run:?}");
    // The jail's init is a copy of the supervisor (its argv names host paths): hidden by
    // hidepid, since the job may not trace it. A container's init is docker-init, which holds
    // nothing of the host, and the job sees it like any process of its own uid.
    if backend == Backend::Native {
        assert!(report(&run, "SEES-INIT").is_empty(), "{run:?}");
    }
    let init = report(&run, "init=");
    assert_eq!(init.len(), 1, "{run:?}");
    assert_ne!(
        init[0]["init=".len()..].trim(),
        host_init.trim(),
        "pid 1 in the jail is the host's init\n{run:?}"
    );
}

// 13. The seccomp deny list: mounts, new user namespaces, ptrace, bpf.
fn blocks_escape_syscalls(backend: Backend) {
    let ws = Workspace::new();
    let run = strict_sh(
        backend,
        &ws,
        "mkdir /tmp/x; mount -t tmpfs none /tmp/x; echo mount=$?; \
         unshare -U true; echo unshare=$?",
    );
    assert_exited(&run, 0);
    let out = lines(&run);
    assert!(
        out.len() == 2 && out[0].starts_with("mount=") && out[0] != "mount=0",
        "{run:?}"
    );
    assert_eq!(out[1], "unshare=1", "{run:?}");
    assert!(
        run.job_stderr()
            .contains("unshare failed: Operation not permitted"),
        "{run:?}"
    );
    assert_eq!(run.isolation("seccomp"), true, "{run:?}");

    // The same calls made directly, so that no tool's own uid check hides what the kernel says.
    // The ptrace target is our own child, which even Yama's mode 1 lets a parent trace.
    let script = "\
import ctypes, errno, platform, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.ptrace.restype = ctypes.c_long
def show(name, result):
    print(name, result, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
child = subprocess.Popen(['sleep', '100'])
show('ptrace', libc.ptrace(16, child.pid, None, None))
child.kill()
child.wait()
bpf = {'x86_64': 321, 'aarch64': 280}[platform.machine()]
show('bpf', libc.syscall(bpf, 0, None, 0))
show('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))
show('unshare', libc.unshare(0x10000000))
";
    let run = strict_python(backend, &ws, &[], script);
    assert_exited(&run, 0);
    assert_eq!(
        lines(&run),
        [
            "ptrace -1 EPERM",
            "bpf -1 EPERM",
            "mount -1 EPERM",
            "unshare -1 EPERM"
        ],
        "{run:?}"
    );
    assert_eq!(run.isolation("seccomp"), true, "{run:?}");
}

// 14. Symlinks planted in the workspace resolve inside the jail, never on the host: through
// them a job reaches only the jail's own (read-only) view of the target.
fn blocks_symlink_escape(backend: Backend) {
    let ws = Workspace::new();
    let name = token("sandbox-attack-symlink");
    std::os::unix::fs::symlink("/etc", ws.file("link")).expect("plant link -> /etc");
    std::os::unix::fs::symlink("/etc/passwd", ws.file("f")).expect("plant f -> /etc/passwd");
    // /var/tmp is world-writable on the host: only the jail's mounts stand in the way.
    std::os::unix::fs::symlink("/var/tmp", ws.file("vartmp")).expect("plant vartmp -> /var/tmp");
    let passwd = std::fs::read("/etc/passwd").expect("read the host's /etc/passwd");
    let run = sh(
        backend,
        &ws,
        &["--profile", "standard", "--workspace-mode", "rw"],
        &format!(
            "if echo x > /workspace/link/{name}; then echo WROTE link; fi; \
             if echo x >> /workspace/f; then echo WROTE f; fi; \
             if echo x > /workspace/vartmp/{name}; then echo WROTE vartmp; fi"
        ),
    );
    assert_exited(&run, 0);
    assert!(report(&run, "WROTE").is_empty(), "{run:?}");
    let stderr = run.job_stderr();
    assert!(
        stderr.contains(&format!("/workspace/link/{name}: Read-only file system")),
        "{run:?}"
    );
    assert!(
        stderr.contains(&format!("/workspace/vartmp/{name}: Read-only file system")),
        "{run:?}"
    );
    // /etc/passwd is root's: the job's uid is refused before the read-only mount is reached.
    assert!(
        stderr.contains("/workspace/f: Permission denied")
            || stderr.contains("/workspace/f: Read-only file system"),
        "{run:?}"
    );
    for dir in ["/etc", "/var/tmp"] {
        let path = Path::new(dir).join(&name);
        assert!(!path.exists(), "{} appeared on the host", path.display());
    }
    assert_eq!(
        std::fs::read("/etc/passwd").expect("read the host's /etc/passwd"),
        passwd,
        "/etc/passwd changed on the host"
    );
}

// 15. Kernel knobs: /proc/sys and /sys are read-only.
fn blocks_write_to_proc_sys_and_sys(backend: Backend) {
    let ws = Workspace::new();
    let hostname = std::fs::read("/proc/sys/kernel/hostname").unwrap_or_default();
    let script = "\
import errno
for path in ['/proc/sys/kernel/hostname', '/proc/sys/vm/drop_caches', '/sys/x',
             '/proc/sysrq-trigger', '/sys/kernel/mm/transparent_hugepage/enabled']:
    try:
        with open(path, 'w') as f:
            f.write('1')
        print('WROTE', path)
    except OSError as error:
        print(path, errno.errorcode.get(error.errno, error.errno))
";
    let run = strict_python(backend, &ws, &[], script);
    assert_exited(&run, 0);
    assert!(report(&run, "WROTE").is_empty(), "{run:?}");
    for path in [
        "/proc/sys/kernel/hostname",
        "/proc/sys/vm/drop_caches",
        "/sys/x",
    ] {
        assert!(
            lines(&run).contains(&format!("{path} EROFS").as_str()),
            "{path}: {run:?}"
        );
    }
    assert_eq!(
        std::fs::read("/proc/sys/kernel/hostname").unwrap_or_default(),
        hostname,
        "the host's hostname changed"
    );
}

// 16. The job runs as nobody, with no capability in any set and no way to gain one.
fn runs_unprivileged(backend: Backend) {
    let ws = Workspace::new();
    let run = strict_sh(
        backend,
        &ws,
        "id -u; grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|CapInh|NoNewPrivs):' /proc/self/status",
    );
    assert_exited(&run, 0);
    let out = lines(&run);
    // Unprivileged, a container runs as the caller (it has no user namespace of ours to map
    // 65534 onto the caller, as the native jail does); as root, as nobody.
    let uid = match backend {
        Backend::Docker if !nix::unistd::geteuid().is_root() => nix::unistd::geteuid().as_raw(),
        _ => 65534,
    };
    assert_eq!(out.first(), Some(&uid.to_string().as_str()), "{run:?}");
    let field = |name: &str| {
        out.iter()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(str::trim)
    };
    for cap in ["CapPrm", "CapEff", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(field(cap), Some("0000000000000000"), "{cap}: {run:?}");
    }
    assert_eq!(field("NoNewPrivs"), Some("1"), "{run:?}");
    assert_eq!(run.isolation("uid"), uid, "{run:?}");
    assert_eq!(run.isolation("capabilities_dropped"), true, "{run:?}");
    assert_eq!(run.isolation("no_new_privs"), true, "{run:?}");
}

// 17. A flood of output is truncated at `limits.output`; the job is not killed, and the
// supervisor drains the rest without holding it (NUL bytes: the costliest to encode as JSON).
fn bounds_output_flood(backend: Backend) {
    let ws = Workspace::new();
    let sandbox = exec_json_command(
        backend,
        &ws,
        &["--profile", "strict", "--timeout", "120s"],
        &["head", "-c", "1073741824", "/dev/zero"],
    );
    // The supervisor's peak comes from GNU time, which forks it from a small process. Our own
    // wait4 would not do: a child spawned from this test process starts with the test's memory
    // mapped, and the kernel keeps that high-water mark across exec, so the test's own growth
    // (the other tests' captures) would be counted as the supervisor's.
    let peak = tempfile::NamedTempFile::new().expect("tempfile");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(peak.path())
        .arg(sandbox.get_program())
        .args(sandbox.get_args());
    for (name, value) in sandbox.get_envs() {
        match value {
            Some(value) => timed.env(name, value),
            None => timed.env_remove(name),
        };
    }
    if let Some(dir) = sandbox.get_current_dir() {
        timed.current_dir(dir);
    }
    let mut child = timed
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start /usr/bin/time sandbox (scripts/setup installs `time`)");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = child.wait().expect("wait for sandbox");
    let mut run = run_from(
        status.code().unwrap_or(-1),
        &stdout.join().unwrap_or_default(),
        &stderr.join().unwrap_or_default(),
    );
    let captured = run.stdout().len();
    // Printing 16 MiB of NULs on failure helps nobody.
    run.outcome["stdout"] = format!("<{captured} bytes>").into();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.outcome["exit_code"], 0, "{run:?}");
    assert_eq!(run.status(), "exited", "{run:?}");
    assert_eq!(run.outcome["stdout_truncated"], true, "{run:?}");
    assert_eq!(run.limits_hit(), ["output"], "{run:?}");
    assert!(captured > 0 && captured <= 16 * MIB, "{run:?}");
    // Holding the flood would be over 1 GiB; the supervisor peaks near 56 MiB.
    let max_rss_mib = std::fs::read_to_string(peak.path())
        .ok()
        .and_then(|text| text.lines().last()?.trim().parse::<u64>().ok())
        .expect("GNU time's %M")
        / 1024;
    assert!(
        max_rss_mib < 128,
        "the supervisor grew to {max_rss_mib} MiB\n{run:?}"
    );
}

// Every layer the strict profile requires is reported as applied.
fn applies_landlock_and_cgroup(backend: Backend) {
    let ws = Workspace::new();
    let run = strict_sh(backend, &ws, "true");
    assert_exited(&run, 0);
    match backend {
        Backend::Native => {
            let abi = run.isolation("landlock_abi").as_i64().unwrap_or(0);
            assert!(abi >= 1, "{run:?}");
        }
        // A container gets no landlock; the Outcome says so instead of claiming it.
        Backend::Docker => {
            assert!(run.isolation("landlock_abi").is_null(), "{run:?}");
            let notes = run.outcome["notes"].to_string();
            assert!(notes.contains("landlock"), "{run:?}");
        }
    }
    let cgroup = run.isolation("cgroup").as_str().unwrap_or("<null>");
    assert!(cgroup == "v1" || cgroup == "v2", "{run:?}");
}

conformance!(
    blocks_write_to_root,
    blocks_write_outside_workspace,
    blocks_write_to_read_only_workspace,
    blocks_reading_host_secrets,
    blocks_connect_to_host_loopback,
    sees_only_loopback_interface,
    hides_docker_socket,
    blocks_host_environment_leak,
    contains_fork_bomb,
    contains_memory_hog,
    enforces_wall_time,
    kills_background_child_outliving_job,
    hides_host_processes,
    blocks_escape_syscalls,
    blocks_symlink_escape,
    blocks_write_to_proc_sys_and_sys,
    runs_unprivileged,
    bounds_output_flood,
    applies_landlock_and_cgroup,
);
