//! Helpers for the end-to-end tests: they drive the real `sandbox` binary.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SANDBOX: &str = env!("CARGO_BIN_EXE_sandbox");

/// The backends the conformance suite runs on. A test is written once, taking a `Backend`,
/// and listed in `conformance!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Native,
    Docker,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Docker => "docker",
        }
    }

    /// Why this backend cannot run here, if it cannot: the docker backend needs an engine that
    /// answers and has the built-in profiles' image. Asked once per test binary.
    pub fn unavailable(self) -> Option<String> {
        match self {
            Backend::Native => None,
            Backend::Docker => docker_unavailable(),
        }
    }
}

/// The image the built-in profiles name (`backend.image`).
pub const DOCKER_IMAGE: &str = "sandbox/host:latest";

fn docker_unavailable() -> Option<String> {
    static ANSWER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let timeout = std::time::Duration::from_secs(5);
            match sandbox_runtime::docker::engine_info(DOCKER_IMAGE, timeout) {
                Ok(engine) if engine.image_present => None,
                Ok(engine) => Some(format!(
                    "docker {} at {} has no image {DOCKER_IMAGE}: run `sandbox image build`",
                    engine.version, engine.endpoint
                )),
                Err(why) => Some(why),
            }
        })
        .clone()
}

/// Generates, for each listed test function `fn name(Backend)`, one `#[test]` per backend and
/// per workspace owner: `native::own::name`, `native::foreign::name`, `docker::own::name`,
/// `docker::foreign::name`. `own` gives `Workspace::new()` a 0700 directory owned by the caller,
/// `foreign` one owned by `FOREIGN_OWNER` (files 0600): whoever owns the workspace, every job
/// must work the same (issue 16). A docker test skips (see `skip`) when no engine answers or
/// the image is missing; a foreign one when the tests cannot chown (not root).
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $crate::conformance!(@backend native, Native, $($name),*);
        $crate::conformance!(@backend docker, Docker, $($name),*);
    };
    (@backend $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            mod own {
                $(
                    #[test]
                    fn $name() {
                        $crate::common::conform(
                            $crate::common::Backend::$backend,
                            $crate::common::Ownership::Own,
                            super::super::$name,
                        )
                    }
                )*
            }
            mod foreign {
                $(
                    #[test]
                    fn $name() {
                        $crate::common::conform(
                            $crate::common::Backend::$backend,
                            $crate::common::Ownership::Foreign,
                            super::super::$name,
                        )
                    }
                )*
            }
        }
    };
}

/// Runs one conformance test on `backend` with workspaces owned as `ownership` says, or says
/// why it cannot run here.
pub fn conform(backend: Backend, ownership: Ownership, test: fn(Backend)) {
    if let Some(reason) = backend.unavailable() {
        skip(&reason);
        return;
    }
    if ownership == Ownership::Foreign && !is_root() {
        skip("a workspace owned by another user can only be made by root (chown)");
        return;
    }
    OWNERSHIP.with(|current| current.set(ownership));
    test(backend)
}

/// Who owns the workspaces `Workspace::new()` makes on this thread (each test has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The caller: a 0700 directory, as `mktemp -d` or a umask-077 checkout makes it.
    Own,
    /// Another user (`FOREIGN_OWNER`), 0700, with the files the test writes 0600: a root
    /// checkout seen from a CI job, or a colleague's tree.
    Foreign,
}

/// The uid:gid of a `Foreign` workspace: nobody on the host, and not the job's 65534.
pub const FOREIGN_OWNER: (u32, u32) = (4242, 4242);

thread_local! {
    static OWNERSHIP: std::cell::Cell<Ownership> = const { std::cell::Cell::new(Ownership::Own) };
}

/// The ownership `Workspace::new()` uses on this thread.
pub fn ownership() -> Ownership {
    OWNERSHIP.with(std::cell::Cell::get)
}

/// Makes the next workspaces of this thread owned as `ownership` says (for a test outside
/// `conformance!` that wants a foreign one).
pub fn set_ownership(ownership: Ownership) {
    OWNERSHIP.with(|current| current.set(ownership));
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A test that cannot run here says why; with SANDBOX_TEST_NO_SKIP=1 (set by scripts/test)
/// a skip is a failure, so nothing silently stops being tested in CI.
pub fn skip(reason: &str) {
    if std::env::var_os("SANDBOX_TEST_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("would skip, but SANDBOX_TEST_NO_SKIP=1: {reason}");
    }
    eprintln!("skipping: {reason}");
}

/// A temporary workspace directory, owned as `ownership()` says: mode 0700, the caller's or
/// `FOREIGN_OWNER`'s. Whoever owns it, the job sees it as its own (an idmapped mount).
pub struct Workspace {
    dir: tempfile::TempDir,
    ownership: Ownership,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("sandbox-ws-")
            .tempdir()
            .expect("tempdir");
        let workspace = Workspace {
            dir,
            ownership: ownership(),
        };
        workspace.own(workspace.path(), 0o700);
        workspace
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file of the workspace, 0600 and owned like the workspace.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.file(name);
        std::fs::write(&path, contents).expect("write workspace file");
        self.own(&path, 0o600);
        path
    }

    /// Gives `path` (in the workspace) the workspace's owner and `mode`.
    pub fn own(&self, path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .expect("chmod workspace entry");
        if self.ownership == Ownership::Foreign {
            let (uid, gid) = FOREIGN_OWNER;
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown workspace entry");
        }
    }

    /// Hands the whole tree to `uid:gid`: the checkout of the unprivileged user a test runs
    /// the binary as.
    pub fn give_to(&self, uid: u32, gid: u32) {
        let status = Command::new("chown")
            .args(["-hR", &format!("{uid}:{gid}")])
            .arg(self.path())
            .status()
            .expect("chown");
        assert!(
            status.success(),
            "chown -R {uid}:{gid} {}",
            self.path().display()
        );
    }

    /// The uid and gid that own the workspace on the host: what the job's new files must get.
    pub fn owner(&self) -> (u32, u32) {
        let meta = std::fs::metadata(self.path()).expect("stat workspace");
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta),
        )
    }
}

/// `chmod -R a+rX dir`: what the gate jobs' uid (65534) needs to read a tree we wrote as root.
pub fn open_to_jobs(dir: &Path) {
    let status = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status()
        .expect("chmod");
    assert!(status.success(), "chmod -R a+rX {}", dir.display());
}

/// The gate called `name` in a Verdict, or null.
pub fn verdict_gate<'a>(verdict: &'a Value, name: &str) -> &'a Value {
    verdict["gates"]
        .as_array()
        .and_then(|gates| gates.iter().find(|g| g["name"] == name))
        .unwrap_or(&Value::Null)
}

/// An operator's profile file: outside every workspace, in a directory of its own that lives as
/// long as the returned guard. A profile file inside the workspace would be the project's, held
/// to the operator's profiles (DESIGN §12).
pub struct OperatorProfile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl OperatorProfile {
    pub fn new(name: &str, text: &str) -> OperatorProfile {
        let dir = tempfile::Builder::new()
            .prefix("sandbox-operator-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write operator profile");
        OperatorProfile { _dir: dir, path }
    }
}

/// The JSON Schemas in `schemas/`, by the names `sandbox schema NAME` knows.
pub const SCHEMAS: [&str; 5] = ["outcome", "verdict", "profile", "sandbox-toml", "events"];

pub fn schema_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{name}.schema.json"))
}

/// What in `value` breaks the committed schema `name`, each with its JSON path; formats
/// (`date-time`) are checked too.
pub fn schema_errors(name: &str, value: &Value) -> Vec<String> {
    static VALIDATORS: std::sync::OnceLock<Vec<(&str, jsonschema::Validator)>> =
        std::sync::OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|name| {
                let path = schema_path(name);
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let schema: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("{} is no JSON Schema: {e}", path.display()));
                (*name, validator)
            })
            .collect()
    });
    let (_, validator) = validators
        .iter()
        .find(|(known, _)| *known == name)
        .unwrap_or_else(|| panic!("no schema `{name}`; the schemas are {SCHEMAS:?}"));
    validator
        .iter_errors(value)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

/// Fails the test when `value` does not match `schemas/NAME.schema.json`: what the binary
/// prints is what the schema promises callers.
pub fn assert_valid(name: &str, value: &Value) {
    let errors = schema_errors(name, value);
    assert!(
        errors.is_empty(),
        "not a valid {name} (schemas/{name}.schema.json):\n{}\n{value:#}",
        errors.join("\n")
    );
}

/// An Outcome the binary printed (or wrote), checked against its schema; `Null` when `bytes`
/// are no JSON at all (the sandbox refused before there was an Outcome).
pub fn outcome_from(bytes: &[u8]) -> Value {
    checked("outcome", bytes)
}

/// A Verdict the binary printed, checked against its schema; `Null` when `bytes` are no JSON.
pub fn verdict_from(bytes: &[u8]) -> Value {
    checked("verdict", bytes)
}

fn checked(name: &str, bytes: &[u8]) -> Value {
    let value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    if !value.is_null() {
        assert_valid(name, &value);
    }
    value
}

/// The result of one `sandbox exec --output json`.
pub struct Run {
    pub code: i32,
    pub outcome: Value,
    pub stderr: String,
}

impl Run {
    pub fn status(&self) -> &str {
        self.outcome["status"].as_str().unwrap_or("<none>")
    }
    pub fn stdout(&self) -> &str {
        self.outcome["stdout"].as_str().unwrap_or("")
    }
    pub fn job_stderr(&self) -> &str {
        self.outcome["stderr"].as_str().unwrap_or("")
    }
    pub fn limits_hit(&self) -> Vec<String> {
        self.outcome["limits_hit"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn isolation(&self, key: &str) -> &Value {
        &self.outcome["isolation"][key]
    }
}

impl From<Output> for Run {
    /// The Outcome on stdout is checked against its schema (`Null` when stdout is no JSON).
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            outcome: outcome_from(&output.stdout),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nsandbox stderr: {}\noutcome: {:#}",
            self.code, self.stderr, self.outcome
        )
    }
}

/// `sandbox exec --backend B --output json --workspace WS [extra...] -- cmd...`
pub fn exec_json(backend: Backend, workspace: &Workspace, extra: &[&str], command: &[&str]) -> Run {
    let output = exec_command(backend, workspace, extra, command)
        .arg("--output")
        .arg("json")
        .args(["--"].iter().chain(command))
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox");
    Run::from(output)
}

/// A shell script in the strict profile (the usual attack setting).
pub fn strict_sh(backend: Backend, workspace: &Workspace, script: &str) -> Run {
    exec_json(
        backend,
        workspace,
        &["--profile", "strict"],
        &["sh", "-c", script],
    )
}

fn exec_command(
    backend: Backend,
    workspace: &Workspace,
    extra: &[&str],
    _command: &[&str],
) -> Command {
    let mut command = Command::new(SANDBOX);
    command
        .arg("exec")
        .args(["--backend", backend.name()])
        .arg("--workspace")
        .arg(workspace.path())
        .args(extra);
    command
}

/// One finished run of the binary (or of any command): its exit code (-1 when a signal ended
/// it) and what it printed.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self:?}"))
    }

    /// stdout as one Outcome, checked against its schema.
    pub fn outcome(&self) -> Value {
        let outcome = self.json();
        assert_valid("outcome", &outcome);
        outcome
    }
}

impl From<Output> for Ran {
    fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            abridged(&self.stdout),
            abridged(&self.stderr)
        )
    }
}

/// Keeps a failure message readable when a run printed pages.
fn abridged(text: &str) -> String {
    const HEAD: usize = 2000;
    const TAIL: usize = 500;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= HEAD + TAIL {
        return text.to_owned();
    }
    let head: String = chars[..HEAD].iter().collect();
    let tail: String = chars[chars.len() - TAIL..].iter().collect();
    format!(
        "{head}[... {} characters left out ...]{tail}",
        chars.len() - HEAD - TAIL
    )
}

/// The binary with `args`, for a test to add more arguments, a working directory
/// (`current_dir`) or environment (`env`, `env_remove`) before `run` or `run_within`.
pub fn sandbox_command(args: &[&str]) -> Command {
    let mut command = Command::new(SANDBOX);
    command.args(args);
    command
}

/// Runs `command` to the end, however long that takes, with stdin from /dev/null.
pub fn run(command: &mut Command) -> Ran {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"))
        .into()
}

/// Runs `command` to the end, failing the test if it takes longer than `limit`.
pub fn run_within(command: &mut Command, limit: Duration) -> Ran {
    start(command).finish(limit)
}

/// Runs the binary with arbitrary arguments.
pub fn sandbox(args: &[&str]) -> Ran {
    run(&mut sandbox_command(args))
}

/// `sandbox SUBCOMMAND --workspace WS ARGS...`, where `args` starts with the subcommand.
pub fn sandbox_in(workspace: &Path, args: &[&str]) -> Ran {
    let (subcommand, rest) = args.split_first().expect("a subcommand");
    run(sandbox_command(&[subcommand])
        .arg("--workspace")
        .arg(workspace)
        .args(rest))
}

/// A command started by `start`, its stdout and stderr read as it goes, so that it never
/// blocks on a full pipe.
pub struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    what: String,
}

/// Starts `command` with stdin from /dev/null, for tests that run several at once; `finish`
/// waits for it.
pub fn start(command: &mut Command) -> Running {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    Running {
        child,
        stdout,
        stderr,
        what: format!("{command:?}"),
    }
}

impl Running {
    /// Waits for the end, killing the command and failing the test past `limit`.
    pub fn finish(mut self, limit: Duration) -> Ran {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the command") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {limit:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
