//! Everyday work runs in the sandbox (issue 16): a job reaches servers it starts on its own
//! loopback, has a private `/dev/shm` charged to its memory limit, and a small corpus of what
//! agents and test suites do all day (a multiprocessing pool, a unittest suite with a local HTTP
//! server, a named pipe, git, a JVM, node, a parallel make) runs in `strict` and `standard` on
//! both backends. Device nodes stay refused.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use common::{exec_json, Backend, OperatorProfile, Workspace};

/// The profiles everyday work must run in.
const PROFILES: [&str; 2] = ["strict", "standard"];

/// A job that serves a fixed body over HTTP on its own 127.0.0.1:PORT from a thread and fetches
/// it with urllib, the way a test suite does (the proxy variables are set under the allowlist;
/// NO_PROXY keeps loopback direct). Prints `status=200 body=...` or the error.
const LOOPBACK_SERVER: &str = r#"
import http.server, sys, threading, urllib.request
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"served-by-the-job"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
try:
    with urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=10) as r:
        print("status=%d body=%s" % (r.status, r.read().decode()))
except Exception as e:
    print("error=%r" % e)
    sys.exit(3)
"#;

/// A job connects to an HTTP server it started on its own loopback, in every profile and in
/// both private network modes: natively landlock used to refuse the connect (EACCES) outside
/// the proxy's port. The allowlist still governs what leaves (tests/network.rs).
fn reaches_a_server_on_its_own_loopback(backend: Backend) {
    let ws = Workspace::new();
    for profile in PROFILES {
        for network in ["none", "allowlist"] {
            let run = exec_json(
                backend,
                &ws,
                &["--profile", profile, "--network", network],
                &["python3", "-c", LOOPBACK_SERVER, "8080"],
            );
            assert_eq!(
                (run.code, run.stdout()),
                (0, "status=200 body=served-by-the-job\n"),
                "{profile}, network {network}: {run:?}"
            );
            assert_eq!(run.outcome["network"]["mode"], network, "{run:?}");
        }
    }
}

/// `/dev/shm` is a tmpfs of the job's own: writable, nosuid and nodev, 64M by default, sized
/// by `filesystem.shm` and refusing to grow beyond it, and empty at the start of every job.
fn dev_shm_is_private_writable_and_sized(backend: Backend) {
    let ws = Workspace::new();
    let script = "set -e; test -z \"$(ls -A /dev/shm)\"; \
                  awk '$2 == \"/dev/shm\" {print $3; print $4}' /proc/mounts | tr ',' '\\n' | grep -xE 'tmpfs|nosuid|nodev|size=[0-9]+k' | tr '\\n' ' '; \
                  echo; echo left-behind > /dev/shm/mark; cat /dev/shm/mark";
    for profile in PROFILES {
        let run = exec_json(backend, &ws, &["--profile", profile], &["sh", "-c", script]);
        assert_eq!(run.code, 0, "{profile}: {run:?}");
        assert_eq!(
            run.stdout(),
            "tmpfs nosuid nodev size=65536k \nleft-behind\n",
            "{profile}: a private 64M tmpfs, empty at the start (the last job's mark is gone)\n{run:?}"
        );
    }
    let small = OperatorProfile::new(
        "small-shm.toml",
        "extends = \"standard\"\n[filesystem]\nshm = \"4M\"\n",
    );
    let path = small.path.to_str().expect("utf-8");
    let run = exec_json(
        backend,
        &ws,
        &["--profile", path],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>&1; ls -l /dev/shm/fill | awk '{print $5}'",
        ],
    );
    assert!(
        run.stdout().contains("No space left on device"),
        "writing 8M into a 4M /dev/shm: {run:?}"
    );
    assert!(
        run.stdout().ends_with("4194304\n"),
        "it stops at its size: {run:?}"
    );
}

/// Pages a job puts in `/dev/shm` are charged to its memory limit: filling a /dev/shm bigger
/// than the limit ends at the limit, not in the host's memory.
fn dev_shm_is_charged_to_the_memory_limit(backend: Backend) {
    let ws = Workspace::new();
    let profile = OperatorProfile::new(
        "shm-over-memory.toml",
        "extends = \"standard\"\n[filesystem]\nshm = \"192M\"\n[limits]\nmemory = \"48M\"\ndisk = \"192M\"\n",
    );
    let path = profile.path.to_str().expect("utf-8");
    let run = exec_json(
        backend,
        &ws,
        &["--profile", path],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=128 2>&1; echo dd-exit=$?",
        ],
    );
    assert!(
        run.limits_hit().contains(&"memory".to_owned()),
        "128M into /dev/shm under a 48M memory limit must hit the limit: {run:?}"
    );
    assert_eq!(
        run.outcome["limits_unenforced"],
        serde_json::json!([]),
        "{run:?}"
    );
    assert!(
        !run.stdout().contains("dd-exit=0"),
        "dd must not have written it all: {run:?}"
    );
}

/// One case of the everyday corpus: a shell script, the exit code it must end with and a line
/// its stdout must hold.
struct Case {
    name: &'static str,
    script: &'static str,
    code: i32,
    stdout_has: &'static str,
}

/// A unittest suite that starts http.server in a thread and tests against it.
const UNITTEST_SUITE: &str = r#"import http.server, threading, unittest, urllib.request

class LocalServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def test_serves_the_workspace(self):
        url = "http://127.0.0.1:%d/test_local_server.py" % self.server.server_address[1]
        with urllib.request.urlopen(url, timeout=10) as response:
            self.assertEqual(response.status, 200)
            self.assertIn(b"LocalServer", response.read())

    def test_missing_is_404(self):
        url = "http://127.0.0.1:%d/nope" % self.server.server_address[1]
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url, timeout=10)
        self.assertEqual(caught.exception.code, 404)
"#;

/// Four targets that each wait (up to 10 s) until all four have started: only a parallel make
/// gets every one to say `together`; a serial one makes the first give up and say `alone`.
const MAKEFILE: &str = "all: a b c d\n\t@echo all-built\n\
a b c d:\n\t@touch /tmp/started-$@; i=0; \
while [ $$(ls /tmp/started-* | wc -l) -lt 4 ] && [ $$i -lt 100 ]; do sleep 0.1; i=$$((i+1)); done; \
if [ $$(ls /tmp/started-* | wc -l) -ge 4 ]; then echo together; else echo alone; fi > /tmp/out-$@\n";

fn corpus() -> Vec<Case> {
    vec![
        Case {
            name: "multiprocessing pool",
            script: "python3 -c 'import multiprocessing as m\n\
                     with m.Pool(3) as pool: print(\"pool\", pool.map(abs, [-1, -4, -9]))'",
            code: 0,
            stdout_has: "pool [1, 4, 9]",
        },
        Case {
            name: "unittest with a local HTTP server",
            script: "python3 -m unittest -v test_local_server 2>&1",
            code: 0,
            stdout_has: "Ran 2 tests",
        },
        Case {
            name: "named pipe in /tmp",
            script: "mkfifo /tmp/pipe && (echo through-the-fifo > /tmp/pipe &) && cat /tmp/pipe",
            code: 0,
            stdout_has: "through-the-fifo",
        },
        Case {
            name: "git init/add/commit/status",
            script: "set -e; cd /tmp; git init -q repo; cd repo; \
                     git config user.email job@sandbox; git config user.name job; \
                     echo one > f; git add f; git commit -qm first-commit; echo two >> f; \
                     git status --porcelain; git log --format=%s",
            code: 0,
            stdout_has: " M f\nfirst-commit",
        },
        Case {
            name: "JVM: java -version and a compiled class",
            script: "set -e; java -version 2>&1 | head -1; mkdir /tmp/j; \
                     printf 'public class Hello { public static void main(String[] a) { \
                     System.out.println(\"hello from \" + Runtime.version().feature()); } }' \
                     > /tmp/j/Hello.java; javac -d /tmp/j /tmp/j/Hello.java; java -cp /tmp/j Hello",
            code: 0,
            stdout_has: "hello from ",
        },
        Case {
            name: "node",
            script: "node -e 'console.log(\"node\", [1, 2, 3].map(x => x * 2).join(\",\"))'",
            code: 0,
            stdout_has: "node 2,4,6",
        },
        Case {
            name: "make -j4",
            script: "make -s -j4 -f Makefile && cat /tmp/out-a /tmp/out-b /tmp/out-c /tmp/out-d",
            code: 0,
            stdout_has: "all-built\ntogether\ntogether\ntogether\ntogether",
        },
        Case {
            name: "a character device stays refused",
            script: "mknod /tmp/mem c 1 1 2>&1; echo mknod-exit=$?; test -e /tmp/mem && echo made",
            code: 1,
            stdout_has: "Operation not permitted\nmknod-exit=1",
        },
    ]
}

/// The corpus in `strict` and `standard`. Every case runs and the failures are listed together,
/// so that one broken case does not hide another.
fn everyday_work_runs(backend: Backend) {
    let ws = Workspace::new();
    ws.write("test_local_server.py", UNITTEST_SUITE);
    ws.write("Makefile", MAKEFILE);
    let mut failures = Vec::new();
    for profile in PROFILES {
        for case in corpus() {
            let run = exec_json(
                backend,
                &ws,
                &["--profile", profile],
                &["sh", "-c", case.script],
            );
            if run.code != case.code || !run.stdout().contains(case.stdout_has) {
                failures.push(format!(
                    "{profile}: {}: want exit {} and stdout holding {:?}\n{run:?}",
                    case.name, case.code, case.stdout_has
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// With a cgroup (as root, or unprivileged in a delegated one) a memory limit is enforced on both
/// backends, and the Outcome says nothing was left unenforced (tests/cli.rs covers the side
/// where it cannot be).
fn memory_limit_is_enforced_and_nothing_is_unenforced(backend: Backend) {
    if !nix::unistd::geteuid().is_root() && !doctor_enforces("memory") {
        common::skip("not root and no cgroup delegated to this user: memory cannot be enforced");
        return;
    }
    let ws = Workspace::new();
    let run = exec_json(
        backend,
        &ws,
        &["--profile", "standard", "--memory", "100M"],
        &[
            "python3",
            "-c",
            "b = bytearray(200 << 20); print('allocated')",
        ],
    );
    assert!(
        run.limits_hit().contains(&"memory".to_owned()),
        "200 MB under a 100M limit: {run:?}"
    );
    assert!(!run.stdout().contains("allocated"), "{run:?}");
    assert_eq!(
        run.outcome["limits_unenforced"],
        serde_json::json!([]),
        "{run:?}"
    );
}

/// Whether `sandbox doctor` says this user can enforce `limit` natively.
fn doctor_enforces(limit: &str) -> bool {
    let doctor = common::sandbox(&["doctor", "--output", "json"]).json();
    doctor["limits"]["enforced"]
        .as_array()
        .is_some_and(|enforced| enforced.iter().any(|l| l == limit))
}

conformance!(
    reaches_a_server_on_its_own_loopback,
    dev_shm_is_private_writable_and_sized,
    dev_shm_is_charged_to_the_memory_limit,
    everyday_work_runs,
    memory_limit_is_enforced_and_nothing_is_unenforced,
);
