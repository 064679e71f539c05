//! The command line end to end: profile errors and lookup, `profile list|show`, refusals of
//! requirements the host cannot meet, rootless runs, exit codes, the Outcome document and
//! `--result`, `doctor`, the Outcome against its schema, completions and the manual page.
//! Everything drives the real binary.

// clippy's `allow-expect-in-tests` covers `#[test]` functions, not the helpers they share; a
// failed expectation in a test helper is a test failure, which is what it should be.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{exec_json, run_within, sandbox_command, Backend, Ran, Workspace, SANDBOX};
use serde_json::Value;

const BUILTINS: [&str; 5] = ["strict", "standard", "networked", "gate", "permissive"];

/// What `sandbox exec` exits with when the sandbox itself failed (DESIGN section 7).
const SANDBOX_FAILED: i32 = 125;

/// The uid the jobs (and our unprivileged runs of the binary) use.
const NOBODY: u32 = 65534;

/// Commands that only read profiles finish in milliseconds; a hang is a bug, not slowness.
const PROFILE_TIME: Duration = Duration::from_secs(20);
const JOB_TIME: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Helpers

/// `common::sandbox`, but a run past JOB_TIME fails the test.
fn sandbox(args: &[&str]) -> Ran {
    run_within(&mut sandbox_command(args), JOB_TIME)
}

/// `sandbox exec --backend B --workspace WS [extra...] -- command...` in the default (text,
/// streaming) output mode.
fn exec_text(backend: Backend, ws: &Workspace, extra: &[&str], command: &[&str]) -> Command {
    let mut exec = Command::new(SANDBOX);
    exec.arg("exec")
        .args(["--backend", backend.name()])
        .arg("--workspace")
        .arg(ws.path())
        .args(extra)
        .arg("--")
        .args(command);
    exec
}

/// A project directory with its own `.sandbox/profiles`, an `XDG_CONFIG_HOME` and a `HOME`, so
/// that profile lookups see only what a test put there.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("sandbox-project-")
            .tempdir()
            .expect("tempdir");
        for sub in [".sandbox/profiles", "xdg/sandbox/profiles", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create project dirs");
        }
        Project { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn xdg(&self) -> PathBuf {
        self.root().join("xdg")
    }

    /// Writes `relative` under the project and returns its absolute path.
    fn file(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.root().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, text).expect("write profile");
        path
    }

    /// `./.sandbox/profiles/NAME.toml`
    fn local_profile(&self, name: &str, text: &str) -> PathBuf {
        self.file(&format!(".sandbox/profiles/{name}.toml"), text)
    }

    /// `$XDG_CONFIG_HOME/sandbox/profiles/NAME.toml`
    fn xdg_profile(&self, name: &str, text: &str) -> PathBuf {
        self.file(&format!("xdg/sandbox/profiles/{name}.toml"), text)
    }

    /// Runs the binary from the project directory.
    fn sandbox(&self, args: &[&str]) -> Ran {
        run_within(
            sandbox_command(args)
                .current_dir(self.root())
                .env("XDG_CONFIG_HOME", self.xdg())
                .env("HOME", self.root().join("home")),
            PROFILE_TIME,
        )
    }

    /// `sandbox exec --profile PROFILE -- true`, which must fail before running anything. The
    /// workspace is a directory of its own, so that a profile file of the test is the
    /// operator's (one inside the workspace would be the project's: see tests/trust.rs).
    fn exec_refused(&self, profile: &Path) -> Ran {
        let profile = profile.to_str().expect("utf-8 path");
        let workspace = self.root().join("home");
        let workspace = workspace.to_str().expect("utf-8 path");
        let ran = self.sandbox(&[
            "exec",
            "--profile",
            profile,
            "--workspace",
            workspace,
            "--",
            "true",
        ]);
        assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
        ran
    }

    fn show_json(&self, name: &str) -> Value {
        let ran = self.sandbox(&["profile", "show", name, "--output", "json"]);
        assert_eq!(ran.code, 0, "{ran:?}");
        ran.json()
    }
}

/// Asserts that stderr names `path:line:column:`.
fn assert_position(ran: &Ran, path: &Path, line: usize, column: usize) {
    let position = format!("{}:{line}:{column}:", path.display());
    assert!(
        ran.stderr.contains(&position),
        "expected `{position}` in stderr\n{ran:?}"
    );
}

/// The effective uid of this test process (the owner of `/proc/self`), without `unsafe`.
fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .expect("stat /proc/self")
        .uid()
}

/// Whether a user other than the owner can reach and run `path`.
fn others_can_run(path: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.mode()).unwrap_or(0);
    mode(path) & 0o005 == 0o005 && path.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0)
}

/// Runs the binary as an unprivileged user: uid 65534 through `setpriv` when the tests run as
/// root (a copy of the binary is made when uid 65534 cannot reach the one under target/), or
/// this process's own uid otherwise.
struct Unprivileged {
    binary: PathBuf,
    uid: u32,
    via_setpriv: bool,
    _copy: Option<tempfile::TempDir>,
}

impl Unprivileged {
    fn new() -> Option<Unprivileged> {
        let original = PathBuf::from(SANDBOX);
        if euid() != 0 {
            return Some(Unprivileged {
                binary: original,
                uid: euid(),
                via_setpriv: false,
                _copy: None,
            });
        }
        let has_setpriv = Command::new("setpriv")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_setpriv {
            common::skip("setpriv (util-linux) is not installed: cannot run as uid 65534");
            return None;
        }
        if others_can_run(&original) {
            return Some(Unprivileged {
                binary: original,
                uid: NOBODY,
                via_setpriv: true,
                _copy: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("sandbox-bin-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).expect("chmod");
        let binary = dir.path().join("sandbox");
        std::fs::copy(&original, &binary).expect("copy the binary");
        std::fs::set_permissions(&binary, PermissionsExt::from_mode(0o755)).expect("chmod");
        assert!(
            others_can_run(&binary),
            "uid 65534 cannot reach {} either",
            binary.display()
        );
        Some(Unprivileged {
            binary,
            uid: NOBODY,
            via_setpriv: true,
            _copy: Some(dir),
        })
    }

    fn run(&self, args: &[&str], cwd: &Path) -> Ran {
        // A freshly copied binary can be briefly "busy" while another test thread's fork still
        // holds the copy's write descriptor; that is the test harness, not the sandbox.
        for _ in 0..10 {
            let mut command = if self.via_setpriv {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={NOBODY}"))
                    .arg(format!("--regid={NOBODY}"))
                    .arg("--clear-groups")
                    .arg(&self.binary);
                command
            } else {
                Command::new(&self.binary)
            };
            command
                .args(args)
                .current_dir(cwd)
                .env("HOME", cwd)
                .env_remove("XDG_CONFIG_HOME");
            let ran = run_within(&mut command, JOB_TIME);
            if !ran.stderr.contains("Text file busy") {
                return ran;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} stayed busy", self.binary.display());
    }

    /// A workspace of this user's own, as an unprivileged user's checkout is: 0700 and theirs.
    fn workspace(&self) -> Workspace {
        let ws = Workspace::new();
        ws.give_to(self.uid, self.uid);
        ws
    }

    /// `exec --backend native --profile standard --output json -- sh -c SCRIPT` on `workspace`,
    /// from `cwd`; `None` (a skip) when this host gives the user no user namespaces.
    fn standard_job(&self, workspace: &Path, script: &str, cwd: &Path) -> Option<Ran> {
        let workspace = workspace.to_str().expect("utf-8");
        let ran = self.run(
            &[
                "exec",
                "--backend",
                "native",
                "--profile",
                "standard",
                "--workspace",
                workspace,
                "--output",
                "json",
                "--",
                "sh",
                "-c",
                script,
            ],
            cwd,
        );
        if ran.code != 0 {
            let doctor = self.doctor(cwd);
            if doctor["user_namespaces"]["available"] == false {
                common::skip(&format!(
                    "user namespaces unavailable for uid {}: {}",
                    self.uid, doctor["user_namespaces"]["detail"]
                ));
                return None;
            }
            panic!(
                "a rootless job failed though user namespaces are available\n{ran:?}\n\
                 doctor: {doctor:#}"
            );
        }
        Some(ran)
    }

    /// Whether cgroups are delegated to this user here (the test, which needs them not to be,
    /// then skips saying `so WHY`).
    fn has_delegated_cgroup(&self, cwd: &Path, why: &str) -> bool {
        let delegated = self.doctor(cwd)["cgroup"]["available"] == true;
        if delegated {
            common::skip(&format!(
                "cgroups are delegated to uid {} here, so {why}",
                self.uid
            ));
        }
        delegated
    }

    fn doctor(&self, cwd: &Path) -> Value {
        let ran = self.run(&["doctor", "--output", "json"], cwd);
        assert_eq!(ran.code, 0, "{ran:?}");
        ran.json()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Profile errors name file:line:col, and `exec` exits 125

#[test]
fn unknown_key_names_the_file_line_and_column() {
    let project = Project::new();
    let path = project.file("bad.toml", "[limits]\nmemroy = \"1G\"\n");
    let ran = project.exec_refused(&path);
    assert_position(&ran, &path, 2, 1);
    assert!(ran.stderr.contains("memroy"), "{ran:?}");
}

#[test]
fn bad_size_points_at_the_value() {
    let project = Project::new();
    let path = project.file("bad.toml", "[limits]\nmemory = \"12Q\"\n");
    let ran = project.exec_refused(&path);
    assert_position(&ran, &path, 2, 10);
    assert!(ran.stderr.contains("not a size"), "{ran:?}");
    assert!(ran.stderr.contains("12Q"), "{ran:?}");
}

#[test]
fn bad_enum_value_names_the_value_and_the_choices() {
    let project = Project::new();
    let path = project.file("bad.toml", "[network]\nmode = \"sometimes\"\n");
    let ran = project.exec_refused(&path);
    assert_position(&ran, &path, 2, 8);
    assert!(ran.stderr.contains("sometimes"), "{ran:?}");
    assert!(
        ["none", "allowlist", "host"]
            .iter()
            .all(|mode| ran.stderr.contains(mode)),
        "{ran:?}"
    );
}

#[test]
fn toml_syntax_error_names_the_position() {
    let project = Project::new();
    let path = project.file(
        "bad.toml",
        "description = \"broken\"\n[limits\nmemory = \"1G\"\n",
    );
    let ran = project.exec_refused(&path);
    let on_line_2 = format!("{}:2:", path.display());
    assert!(ran.stderr.contains(&on_line_2), "{ran:?}");
}

#[test]
fn unknown_section_names_the_section() {
    let project = Project::new();
    let path = project.file(
        "bad.toml",
        "description = \"typo\"\n\n[limitz]\nmemory = \"1G\"\n",
    );
    let ran = project.exec_refused(&path);
    assert_position(&ran, &path, 3, 2);
    assert!(ran.stderr.contains("limitz"), "{ran:?}");
}

/// STYLE 5: "a caret under the bad value". The snippet's gutter is `NNN | ` on the source line,
/// so the caret line must be indented to match.
#[test]
fn caret_sits_under_the_bad_value() {
    let project = Project::new();
    let path = project.file("bad.toml", "[limits]\nmemory = \"12Q\"\n");
    let ran = project.exec_refused(&path);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    let source = lines
        .iter()
        .position(|line| line.ends_with("| memory = \"12Q\""))
        .unwrap_or_else(|| panic!("no snippet of the bad line\n{ran:?}"));
    let text_starts = lines[source].find("memory").expect("found above");
    let carets = lines.get(source + 1).copied().unwrap_or("");
    let caret_starts = carets.find('^');
    // Column 10 is the opening quote of "12Q".
    assert_eq!(
        caret_starts,
        Some(text_starts + 9),
        "the caret is not under the value\n{}\n{carets}",
        lines[source]
    );
    assert_eq!(carets.trim_start_matches(|c| c != '^'), "^^^^^", "{ran:?}");
}

#[test]
fn extends_of_a_missing_profile_says_where_it_looked() {
    let project = Project::new();
    let path = project.file("mine.toml", "extends = \"nosuch\"\n");
    let ran = project.exec_refused(&path);
    assert!(ran.stderr.contains("nosuch"), "{ran:?}");
    assert!(ran.stderr.contains("not found"), "{ran:?}");
    let xdg = project.xdg().join("sandbox/profiles/nosuch.toml");
    for looked in [
        ".sandbox/profiles/nosuch.toml",
        &xdg.display().to_string(),
        "/etc/sandbox/profiles/nosuch.toml",
    ] {
        assert!(
            ran.stderr.contains(looked),
            "did not name {looked}\n{ran:?}"
        );
    }
}

/// With a chain of profiles, "profile `nosuch` not found" alone does not say which file to fix.
#[test]
fn extends_of_a_missing_profile_names_the_file_that_extends() {
    let project = Project::new();
    let path = project.file("mine.toml", "description = \"x\"\nextends = \"nosuch\"\n");
    let ran = project.exec_refused(&path);
    assert!(
        ran.stderr.contains(&path.display().to_string()),
        "the error does not name the file whose `extends` is wrong\n{ran:?}"
    );
}

#[test]
fn extends_of_a_missing_path_names_the_path() {
    let project = Project::new();
    let path = project.file("mine.toml", "extends = \"/does/not/exist.toml\"\n");
    let ran = project.exec_refused(&path);
    assert!(ran.stderr.contains("/does/not/exist.toml"), "{ran:?}");
}

#[test]
fn extends_cycle_by_name_is_reported() {
    let project = Project::new();
    project.local_profile("a", "extends = \"b\"\n");
    project.local_profile("b", "extends = \"a\"\n");
    let ran = project.sandbox(&["exec", "--profile", "a", "--", "true"]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("extends itself"), "{ran:?}");
    assert!(ran.stderr.contains("a.toml"), "{ran:?}");
    assert!(ran.stderr.contains("b.toml"), "{ran:?}");
}

#[test]
fn extends_cycle_by_path_is_reported() {
    let project = Project::new();
    let a = project.file("a.toml", "extends = \"b.toml\"\n");
    project.file("b.toml", "extends = \"a.toml\"\n");
    let ran = project.exec_refused(&a);
    assert!(ran.stderr.contains("extends itself"), "{ran:?}");
}

/// `extends = "../dir/self.toml"` names the same file by a longer path each time round; the
/// cycle must still be seen (comparing paths as written never matches).
#[test]
fn extends_cycle_through_a_non_normalised_path_is_reported() {
    let project = Project::new();
    let path = project.file("dir/self.toml", "extends = \"../dir/self.toml\"\n");
    let ran = project.exec_refused(&path);
    assert!(ran.stderr.contains("extends itself"), "{ran:?}");
}

#[test]
fn project_profile_is_found_by_name() {
    let project = Project::new();
    project.local_profile(
        "mine",
        "description = \"project profile\"\nextends = \"standard\"\n[limits]\npids = 77\n",
    );
    let shown = project.show_json("mine");
    assert_eq!(shown["description"], "project profile", "{shown:#}");
    assert_eq!(shown["limits"]["pids"], 77, "{shown:#}");
    assert_eq!(shown["sources"][0]["kind"], "project", "{shown:#}");
    assert!(
        shown["sources"][0]["at"]
            .as_str()
            .is_some_and(|at| at.ends_with(".sandbox/profiles/mine.toml")),
        "{shown:#}"
    );
}

#[test]
fn project_profile_can_override_one_field_of_the_builtin_of_its_name() {
    let builtin = Project::new().show_json("strict");
    let project = Project::new();
    // Narrower, as a project's profile must be (a wider one is refused: tests/trust.rs).
    project.local_profile(
        "strict",
        "extends = \"strict\"\n[limits]\nmemory = \"512M\"\n",
    );
    let mut shown = project.show_json("strict");
    assert_eq!(shown["limits"]["memory"], "512M", "{shown:#}");
    assert_eq!(shown["sources"][1]["kind"], "builtin", "{shown:#}");
    // Everything else is the built-in's, field by field.
    shown["limits"]["memory"] = builtin["limits"]["memory"].clone();
    shown["sources"] = builtin["sources"].clone();
    assert_eq!(shown, builtin);
}

#[test]
fn xdg_config_home_profile_is_found_by_name() {
    let project = Project::new();
    let path = project.xdg_profile(
        "mine",
        "description = \"from xdg\"\nextends = \"standard\"\n[limits]\npids = 33\n",
    );
    let shown = project.show_json("mine");
    assert_eq!(shown["description"], "from xdg", "{shown:#}");
    assert_eq!(shown["limits"]["pids"], 33, "{shown:#}");
    assert_eq!(
        shown["sources"][0]["at"],
        path.display().to_string(),
        "{shown:#}"
    );
}

#[test]
fn project_profile_shadows_the_xdg_one() {
    let project = Project::new();
    project.xdg_profile("mine", "description = \"from xdg\"\n");
    project.local_profile("mine", "description = \"from the project\"\n");
    assert_eq!(project.show_json("mine")["description"], "from the project");
}

#[test]
fn a_bad_profile_found_by_name_names_its_file() {
    let project = Project::new();
    let path = project.local_profile("mine", "[limits]\nmemroy = \"1G\"\n");
    let ran = project.sandbox(&["exec", "--profile", "mine", "--", "true"]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    // Found through the relative `.sandbox/profiles`, so named relative to the project.
    let relative = path
        .strip_prefix(project.root())
        .expect("under the project");
    assert!(
        ran.stderr.contains(&format!("{}:2:1:", relative.display())),
        "{ran:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. `profile list` and `profile show`

fn builtin_description(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{name}.toml"));
    let text = std::fs::read_to_string(&path).expect("read built-in profile");
    let table: toml::Table = toml::from_str(&text).expect("built-in profile is TOML");
    table["description"]
        .as_str()
        .expect("description")
        .to_owned()
}

#[test]
fn profile_list_shows_the_five_builtins_with_descriptions() {
    let ran = Project::new().sandbox(&["profile", "list"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    for name in BUILTINS {
        let description = builtin_description(name);
        assert!(!description.is_empty(), "{name} has no description");
        assert!(
            ran.stdout.lines().any(|line| {
                line.split_whitespace().next() == Some(name) && line.contains(&description)
            }),
            "{name} is not listed with its description\n{ran:?}"
        );
        assert!(
            ran.stdout.contains(&format!("<builtin>/{name}.toml")),
            "{ran:?}"
        );
    }
}

#[test]
fn profile_show_json_is_the_resolved_profile() {
    let shown = Project::new().show_json("strict");
    assert_eq!(shown["name"], "strict");
    assert_eq!(shown["limits"]["memory"], "1G", "{shown:#}");
    assert_eq!(shown["network"]["mode"], "none", "{shown:#}");
    assert_eq!(shown["description"], builtin_description("strict"));
}

#[test]
fn profile_show_text_is_toml() {
    let ran = Project::new().sandbox(&["profile", "show", "strict"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("[limits]"), "{ran:?}");
    let table: toml::Table = toml::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("`profile show` is not TOML: {e}\n{ran:?}"));
    assert_eq!(table["limits"]["memory"].as_str(), Some("1G"), "{ran:?}");
}

#[test]
fn profile_show_of_an_unknown_name_fails() {
    let ran = Project::new().sandbox(&["profile", "show", "nosuch"]);
    assert_ne!(ran.code, 0, "{ran:?}");
    assert!(ran.stderr.contains("nosuch"), "{ran:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Requirements the host cannot meet refuse with 125, naming the feature

#[test]
fn refuses_strict_where_cgroups_are_not_delegated() {
    let Some(user) = Unprivileged::new() else {
        return;
    };
    let ws = user.workspace();
    if user.has_delegated_cgroup(ws.path(), "strict cannot be refused for them") {
        return;
    }
    let workspace = ws.path().to_str().expect("utf-8");
    let ran = user.run(
        &[
            "exec",
            "--profile",
            "strict",
            "--workspace",
            workspace,
            "--",
            "true",
        ],
        ws.path(),
    );
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("cgroup"), "{ran:?}");
    assert!(ran.stdout.is_empty(), "the job must not have run\n{ran:?}");
}

/// Unprivileged without a delegated cgroup, `--memory 100M` cannot be enforced. A profile that
/// does not require `cgroup` still runs, and the Outcome names the limit instead of staying
/// silent (issue 16: a 400 MB allocation used to exit 0 with no word).
#[test]
fn an_unenforceable_memory_limit_is_named_not_silent() {
    let Some(user) = Unprivileged::new() else {
        return;
    };
    let ws = user.workspace();
    if user.has_delegated_cgroup(ws.path(), "its memory limit is enforced") {
        return;
    }
    let ran = user.run(
        &[
            "exec",
            "--backend",
            "native",
            "--profile",
            "standard",
            "--memory",
            "100M",
            "--workspace",
            ws.path().to_str().expect("utf-8"),
            "--output",
            "json",
            "--",
            "python3",
            "-c",
            "b = bytearray(200 << 20); print('allocated', len(b) >> 20)",
        ],
        ws.path(),
    );
    if ran.code != 0 {
        let doctor = user.doctor(ws.path());
        if doctor["user_namespaces"]["available"] == false {
            common::skip(&format!(
                "user namespaces unavailable for uid {}: {}",
                user.uid, doctor["user_namespaces"]["detail"]
            ));
            return;
        }
    }
    let outcome = ran.outcome();
    assert_eq!(outcome["stdout"], "allocated 200\n", "{ran:?}");
    let unenforced = &outcome["limits_unenforced"];
    assert_eq!(
        *unenforced,
        serde_json::json!(["memory", "pids", "cpus"]),
        "{ran:?}"
    );
    let notes: Vec<&str> = outcome["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes
            .iter()
            .any(|note| note.contains("not enforced") && note.contains("limits.memory = 100M")),
        "a note names the memory limit: {ran:?}"
    );
}

/// Root's run of the same job: the limit is hit and nothing is left unenforced.
#[test]
fn as_root_the_same_memory_limit_is_enforced() {
    if euid() != 0 {
        common::skip("not root: the host may not delegate a cgroup to this user");
        return;
    }
    let ws = Workspace::new();
    let run = exec_json(
        Backend::Native,
        &ws,
        &["--profile", "standard", "--memory", "100M"],
        &[
            "python3",
            "-c",
            "b = bytearray(200 << 20); print('allocated', len(b) >> 20)",
        ],
    );
    assert_eq!(run.status(), "oom_killed", "{run:?}");
    assert_eq!(run.limits_hit(), ["memory"], "{run:?}");
    assert_eq!(
        run.outcome["limits_unenforced"],
        serde_json::json!([]),
        "{run:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Rootless

#[test]
fn rootless_job_runs_in_a_user_namespace() {
    let Some(user) = Unprivileged::new() else {
        return;
    };
    let ws = user.workspace();
    let Some(ran) = user.standard_job(ws.path(), "id -u; touch /workspace/made_by_job", ws.path())
    else {
        return;
    };
    let outcome = ran.outcome();
    assert_eq!(outcome["isolation"]["user_ns"], true, "{ran:?}");
    let namespaces = outcome["isolation"]["namespaces"]
        .as_array()
        .expect("namespaces");
    assert!(namespaces.contains(&Value::from("user")), "{ran:?}");
    assert_eq!(outcome["stdout"], "65534\n", "{ran:?}");
    let made = std::fs::metadata(ws.file("made_by_job"))
        .unwrap_or_else(|e| panic!("the job's file is not on the host ({e})\n{ran:?}"));
    assert_eq!(made.uid(), user.uid, "owner of the job's file on the host");
}

/// Without root nothing can be mounted on the host: a scratch view is a copy, said so in the
/// Outcome, and it still rolls back a failure and writes back a success.
#[test]
fn rootless_scratch_uses_a_copy_and_still_rolls_back() {
    let Some(user) = Unprivileged::new() else {
        return;
    };
    let ws = user.workspace();
    let kept = ws.write("kept", "original\n");
    std::os::unix::fs::chown(kept, Some(user.uid), Some(user.uid)).expect("chown");
    let run = |script: &str| {
        let ran = user.run(
            &[
                "exec",
                "--backend",
                "native",
                "--workspace-mode",
                "scratch",
                "--workspace",
                ws.path().to_str().expect("utf-8"),
                "--output",
                "json",
                "--",
                "sh",
                "-c",
                script,
            ],
            ws.path(),
        );
        (ran.code, ran.outcome())
    };
    let (code, failed) = run("rm -f kept; echo new > made; exit 4");
    assert_eq!(code, 4, "{failed:#}");
    assert_eq!(failed["workspace"]["view"], "copy", "{failed:#}");
    assert_eq!(failed["workspace"]["committed"], false, "{failed:#}");
    assert!(ws.file("kept").exists() && !ws.file("made").exists());
    let (code, done) = run("echo new > made");
    assert_eq!(code, 0, "{done:#}");
    assert_eq!(done["workspace"]["committed"], true, "{done:#}");
    assert_eq!(
        std::fs::read_to_string(ws.file("made")).ok().as_deref(),
        Some("new\n")
    );
}

/// Unprivileged, a tree of someone else's cannot be idmapped (that needs root): the job sees
/// the host's permissions, and the Outcome's notes say so rather than leave a puzzling EACCES.
#[test]
fn rootless_job_on_a_tree_it_does_not_own_says_so() {
    let Some(user) = Unprivileged::new() else {
        return;
    };
    if !user.via_setpriv {
        common::skip("needs a tree owned by someone else, which only root can make here");
        return;
    }
    let ws = Workspace::new();
    std::fs::set_permissions(ws.path(), PermissionsExt::from_mode(0o755)).expect("chmod");
    // The user's own directory to start from (it is their HOME, where the audit log goes).
    let home = user.workspace();
    let Some(ran) = user.standard_job(
        ws.path(),
        "ls >/dev/null && echo read; touch made || echo refused",
        home.path(),
    ) else {
        return;
    };
    let outcome = ran.outcome();
    assert_eq!(outcome["stdout"], "read\nrefused\n", "{ran:?}");
    let notes = outcome["notes"].to_string();
    assert!(
        notes.contains("ownership:") && notes.contains("needs root"),
        "{ran:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Exit codes, and usage errors of `exec`

fn missing_command_exits_127(backend: Backend) {
    let ws = Workspace::new();
    let run = exec_json(backend, &ws, &[], &["no-such-command-xyz"]);
    assert_eq!(run.code, 127, "{run:?}");
    assert_eq!(run.outcome["exit_code"], 127, "{run:?}");
    let stderr = run.job_stderr();
    match backend {
        Backend::Native => assert!(stderr.contains("command not found"), "{run:?}"),
        // The container's init (docker-init) runs the command and says it in its own words:
        // "exec no-such-command-xyz failed: No such file or directory".
        Backend::Docker => assert!(
            stderr.contains("no-such-command-xyz") && stderr.contains("No such file or directory"),
            "{run:?}"
        ),
    }
}

fn non_executable_file_exits_126(backend: Backend) {
    let ws = Workspace::new();
    let script = ws.write("script.sh", "#!/bin/sh\necho should not run\n");
    std::fs::set_permissions(&script, PermissionsExt::from_mode(0o644)).expect("chmod");
    let run = exec_json(backend, &ws, &[], &["/workspace/script.sh"]);
    assert_eq!(run.code, 126, "{run:?}");
    assert_eq!(run.outcome["exit_code"], 126, "{run:?}");
    assert_eq!(run.stdout(), "", "{run:?}");
}

fn killed_by_signal_exits_128_plus_n(backend: Backend) {
    let ws = Workspace::new();
    let run = exec_json(backend, &ws, &[], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(run.code, 143, "{run:?}");
    assert_eq!(run.status(), "signaled", "{run:?}");
    assert_eq!(run.outcome["signal"], 15, "{run:?}");
    assert_eq!(run.outcome["exit_code"], 143, "{run:?}");
}

fn exit_code_is_the_jobs_own(backend: Backend) {
    let ws = Workspace::new();
    let run = exec_json(backend, &ws, &[], &["sh", "-c", "exit 42"]);
    assert_eq!(run.code, 42, "{run:?}");
    assert_eq!(run.status(), "exited", "{run:?}");
    assert_eq!(run.outcome["exit_code"], 42, "{run:?}");
    assert_eq!(run.outcome["signal"], Value::Null, "{run:?}");
    let text = run_within(
        &mut exec_text(backend, &ws, &[], &["sh", "-c", "exit 42"]),
        JOB_TIME,
    );
    assert_eq!(text.code, 42, "text mode\n{text:?}");
}

#[test]
fn exec_without_a_command_fails_with_125() {
    let ws = Workspace::new();
    let workspace = ws.path().to_str().expect("utf-8");
    for args in [
        vec!["exec", "--workspace", workspace],
        vec!["exec", "--workspace", workspace, "--"],
    ] {
        let ran = sandbox(&args);
        assert_eq!(ran.code, SANDBOX_FAILED, "{args:?}\n{ran:?}");
        assert!(!ran.stderr.is_empty(), "{ran:?}");
    }
}

#[test]
fn bad_memory_flag_fails_with_125_naming_the_flag() {
    let ws = Workspace::new();
    let ran = sandbox(&[
        "exec",
        "--workspace",
        ws.path().to_str().expect("utf-8"),
        "--memory",
        "12Q",
        "--",
        "true",
    ]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("--memory"), "{ran:?}");
    assert!(ran.stderr.contains("12Q"), "{ran:?}");
}

#[test]
fn missing_workspace_fails_with_125_naming_the_path() {
    let ran = sandbox(&["exec", "--workspace", "/does/not/exist", "--", "true"]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("/does/not/exist"), "{ran:?}");
}

/// An error that carries its cause as `source` and also prints it in its own message shows the
/// cause twice under `{:#}` ("No such file ... (os error 2): No such file ... (os error 2)").
#[test]
fn errors_do_not_repeat_their_cause() {
    let project = Project::new();
    let missing_extends = project.file("mine.toml", "extends = \"/does/not/exist.toml\"\n");
    let cases = [
        sandbox(&["exec", "--workspace", "/does/not/exist", "--", "true"]),
        project.exec_refused(&missing_extends),
    ];
    for ran in cases {
        let cause = "(os error 2)";
        assert_eq!(
            ran.stderr.matches(cause).count(),
            1,
            "the cause is repeated\n{ran:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. `--result` and `--output json`

fn result_file_in_text_mode_holds_the_outcome(backend: Backend) {
    let ws = Workspace::new();
    let out = tempfile::tempdir().expect("tempdir");
    let result = out.path().join("outcome.json");
    let ran = run_within(
        &mut exec_text(
            backend,
            &ws,
            &["--result", result.to_str().expect("utf-8")],
            &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"],
        ),
        JOB_TIME,
    );
    assert_eq!(ran.code, 3, "{ran:?}");
    // Streamed, not captured: the job's output is sandbox's own.
    assert_eq!(ran.stdout, "to-stdout\n", "{ran:?}");
    assert!(ran.stderr.contains("to-stderr"), "{ran:?}");
    let text = std::fs::read_to_string(&result).expect("the result file was written");
    let outcome: Value = serde_json::from_str(&text).expect("the result file is JSON");
    common::assert_valid("outcome", &outcome);
    assert_eq!(outcome["schema"], "sandbox/outcome@1", "{outcome:#}");
    assert_eq!(outcome["status"], "exited", "{outcome:#}");
    assert_eq!(outcome["exit_code"], 3, "{outcome:#}");
    assert_eq!(outcome["backend"], backend.name(), "{outcome:#}");
    assert_eq!(
        outcome["command"],
        serde_json::json!(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .expect("read result dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers,
        ["outcome.json"],
        "only the result is left behind"
    );
}

fn result_file_matches_the_json_output(backend: Backend) {
    let ws = Workspace::new();
    let out = tempfile::tempdir().expect("tempdir");
    let result = out.path().join("outcome.json");
    let run = exec_json(
        backend,
        &ws,
        &["--result", result.to_str().expect("utf-8")],
        &["sh", "-c", "echo hi"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&result).expect("result written"))
            .expect("result is JSON");
    assert_eq!(written, run.outcome);
}

fn json_output_is_one_outcome_document(backend: Backend) {
    let ws = Workspace::new();
    let mut command = exec_text(backend, &ws, &["--output", "json"], &["echo", "hi"]);
    let ran = run_within(&mut command, JOB_TIME);
    assert_eq!(ran.code, 0, "{ran:?}");
    // `from_str` rejects anything after the first document but whitespace.
    let outcome = ran.outcome();
    assert_eq!(outcome["schema"], "sandbox/outcome@1", "{ran:?}");
    assert_eq!(outcome["stdout"], "hi\n", "{ran:?}");
    assert_eq!(outcome["stderr"], "", "{ran:?}");
    assert_eq!(outcome["profile"], "standard", "{ran:?}");
}

/// Text mode forwards output as it comes, not when the job ends: the job prints, then waits
/// for the test to answer what it printed.
fn text_mode_streams_output_live(backend: Backend) {
    struct Release<'a>(&'a Workspace);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.write("go", "");
        }
    }

    let ws = Workspace::new();
    let mut child = exec_text(
        backend,
        &ws,
        &["--timeout", "60s"],
        &[
            "sh",
            "-c",
            "echo first; while [ ! -e /workspace/go ]; do sleep 0.05; done; echo second",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("spawn sandbox");
    // Whatever happens below, the job is let go so that it ends.
    let release = Release(&ws);
    let stdout = child.stdout.take().expect("stdout piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let first = received.recv_timeout(Duration::from_secs(60));
    assert_eq!(
        first.as_deref(),
        Ok("first"),
        "the first line did not arrive while the job ran"
    );
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "sandbox ended before the job was released"
    );
    drop(release);
    assert_eq!(
        received.recv_timeout(Duration::from_secs(60)).as_deref(),
        Ok("second")
    );
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// 6b. Every refusal leaves an Outcome (DESIGN section 12): status `sandbox_error`, a reason, and
// whether a retry may help, on `--output json` and in `--result`, with the stderr line kept

/// `sandbox exec --output json --result RESULT ARGS...` run from `project`, with `env` set.
fn exec_refusal(project: &Project, result: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut command = sandbox_command(&["exec", "--output", "json", "--result"]);
    command
        .arg(result)
        .args(args)
        .current_dir(project.root())
        .env("XDG_CONFIG_HOME", project.xdg())
        .env("HOME", project.root().join("home"));
    for (name, value) in env {
        command.env(name, value);
    }
    run_within(&mut command, JOB_TIME)
}

/// Asserts the refusal: exit 125, the reason on stderr and in the one Outcome on stdout, which
/// says `retryable` and is, byte for byte once parsed, what `--result` holds.
fn assert_refusal(ran: &Ran, result: &Path, reason_names: &str, retryable: bool) -> Value {
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains(reason_names), "{ran:?}");
    let outcome = ran.outcome();
    assert_eq!(outcome["status"], "sandbox_error", "{ran:?}");
    assert_eq!(outcome["exit_code"], SANDBOX_FAILED, "{ran:?}");
    assert_eq!(outcome["retryable"], retryable, "{ran:?}");
    let reason = outcome["reason"].as_str().expect("a reason");
    assert!(reason.contains(reason_names), "{ran:?}");
    let text = std::fs::read_to_string(result).expect("--result was written");
    let written: Value = serde_json::from_str(&text).expect("--result is JSON");
    assert_eq!(written, outcome, "--result differs from stdout");
    outcome
}

#[test]
fn a_profile_that_does_not_load_leaves_an_outcome() {
    let project = Project::new();
    let path = project.file("bad.toml", "description = \"x\"\nbogus = 1\n");
    let result = project.root().join("outcome.json");
    let profile = path.to_str().expect("utf-8");
    let ran = exec_refusal(
        &project,
        &result,
        &["--profile", profile, "--", "true"],
        &[],
    );
    let outcome = assert_refusal(&ran, &result, "bogus", false);
    // What the command line said is all there is, and it is there.
    assert_eq!(outcome["profile"], profile, "{ran:?}");
    assert_eq!(outcome["command"], serde_json::json!(["true"]), "{ran:?}");
}

#[test]
fn a_bad_flag_value_leaves_an_outcome() {
    let project = Project::new();
    let ws = Workspace::new();
    let result = project.root().join("outcome.json");
    let workspace = ws.path().to_str().expect("utf-8");
    let args = [
        "--workspace",
        workspace,
        "--memory",
        "12Q",
        "--",
        "echo",
        "hi",
    ];
    let ran = exec_refusal(&project, &result, &args, &[]);
    let outcome = assert_refusal(&ran, &result, "--memory", false);
    assert_eq!(outcome["profile"], "standard", "{ran:?}");
    assert_eq!(
        outcome["command"],
        serde_json::json!(["echo", "hi"]),
        "{ran:?}"
    );
    assert_eq!(outcome["workspace"]["path"], workspace, "{ran:?}");
}

#[test]
fn a_requirement_the_job_cannot_have_leaves_an_outcome() {
    let project = Project::new();
    let path = project.file(
        "hostnet.toml",
        "description = \"contradiction\"\n[process]\nrequire = [\"netns\"]\n[network]\nmode = \"host\"\n",
    );
    let ws = Workspace::new();
    let result = project.root().join("outcome.json");
    let args = [
        "--backend",
        "native",
        "--profile",
        path.to_str().expect("utf-8"),
        "--workspace",
        ws.path().to_str().expect("utf-8"),
        "--",
        "touch",
        "/workspace/ran",
    ];
    let ran = exec_refusal(&project, &result, &args, &[]);
    let outcome = assert_refusal(&ran, &result, "netns", false);
    assert_eq!(outcome["backend"], "native", "{ran:?}");
    assert!(!ws.file("ran").exists(), "the job ran anyway");
}

#[test]
fn an_unwritable_audit_log_leaves_an_outcome() {
    let project = Project::new();
    let ws = Workspace::new();
    // Below a regular file: no directory can be made there, not even by root.
    let blocker = ws.write("blocker", "");
    let audit = blocker.join("audit.jsonl");
    let result = project.root().join("outcome.json");
    let args = [
        "--workspace",
        ws.path().to_str().expect("utf-8"),
        "--audit",
        audit.to_str().expect("utf-8"),
        "--",
        "touch",
        "/workspace/ran",
    ];
    let ran = exec_refusal(&project, &result, &args, &[]);
    assert_refusal(&ran, &result, "audit log", false);
    assert!(!ws.file("ran").exists(), "the job ran unaudited");
}

/// An engine that does not answer is the one refusal worth retrying unchanged; a DOCKER_HOST
/// the client cannot speak is not. Neither needs a running engine.
#[test]
fn an_engine_that_does_not_answer_is_retryable_a_bad_docker_host_is_not() {
    let project = Project::new();
    let ws = Workspace::new();
    let result = project.root().join("outcome.json");
    let args = [
        "--backend",
        "docker",
        "--workspace",
        ws.path().to_str().expect("utf-8"),
        "--",
        "true",
    ];
    let socket = project.root().join("no-engine.sock");
    let nowhere = format!("unix://{}", socket.display());
    let ran = exec_refusal(&project, &result, &args, &[("DOCKER_HOST", &nowhere)]);
    let outcome = assert_refusal(&ran, &result, "no Docker engine answered", true);
    assert_eq!(outcome["backend"], "docker", "{ran:?}");
    let ran = exec_refusal(&project, &result, &args, &[("DOCKER_HOST", "ftp://engine")]);
    assert_refusal(&ran, &result, "DOCKER_HOST=ftp://engine", false);
}

/// `check` that cannot run its job says so in its Verdict: status `error`, exit 3, and `job`
/// the refused Outcome, both before there is a spec and after.
#[test]
fn check_that_cannot_run_its_job_reports_the_refusal_in_its_verdict() {
    let project = Project::new();
    let ws = Workspace::new();
    let workspace = ws.path().to_str().expect("utf-8");
    let socket = project.root().join("no-engine.sock");
    let nowhere = format!("unix://{}", socket.display());
    let cases = [
        (vec!["--memory", "12Q"], "--memory", false),
        (
            vec!["--backend", "docker"],
            "no Docker engine answered",
            true,
        ),
    ];
    for (flags, reason_names, retryable) in cases {
        let result = project.root().join("verdict.json");
        let ran = run_within(
            sandbox_command(&["check", "--output", "json", "--workspace", workspace])
                .arg("--result")
                .arg(&result)
                .args(&flags)
                .args(["--", "touch", "/workspace/ran"])
                .current_dir(project.root())
                .env("DOCKER_HOST", &nowhere),
            JOB_TIME,
        );
        assert_eq!(ran.code, 3, "{flags:?}\n{ran:?}");
        assert!(ran.stderr.contains(reason_names), "{ran:?}");
        let verdict = common::verdict_from(ran.stdout.as_bytes());
        assert_eq!(verdict["status"], "error", "{ran:?}");
        let job = &verdict["job"];
        common::assert_valid("outcome", job);
        assert_eq!(job["status"], "sandbox_error", "{ran:?}");
        assert_eq!(job["exit_code"], SANDBOX_FAILED, "{ran:?}");
        assert_eq!(job["retryable"], retryable, "{ran:?}");
        assert!(
            job["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains(reason_names)),
            "{ran:?}"
        );
        let text = std::fs::read_to_string(&result).expect("--result was written");
        let written: Value = serde_json::from_str(&text).expect("--result is JSON");
        assert_eq!(written, verdict, "--result differs from stdout");
        assert!(!ws.file("ran").exists(), "the job ran anyway");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. doctor

#[test]
fn doctor_reports_host_features_and_builtin_readiness() {
    let ran = sandbox(&["doctor", "--output", "json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let report = ran.json();
    match &report["landlock_abi"] {
        Value::Number(abi) => assert!(abi.as_u64().is_some_and(|abi| abi >= 1), "{report:#}"),
        Value::Null => common::skip("this kernel has no landlock: landlock_abi is null"),
        other => panic!("landlock_abi is {other}\n{report:#}"),
    }
    assert_eq!(report["seccomp"], true, "{report:#}");
    let cgroup = &report["cgroup"];
    if cgroup["available"] == true {
        let detail = cgroup["detail"].as_str().expect("cgroup.detail");
        assert!(detail.contains("v1") || detail.contains("v2"), "{report:#}");
    } else if euid() == 0 {
        panic!("root but no cgroup\n{report:#}");
    } else {
        common::skip(&format!("no cgroup for this user: {}", cgroup["detail"]));
    }
    assert!(
        report["user_namespaces"]["available"].is_boolean(),
        "{report:#}"
    );
    let profiles = report["profiles"].as_array().expect("profiles array");
    for name in BUILTINS {
        let profile = profiles
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from doctor\n{report:#}"));
        let runnable = profile["runnable"]
            .as_bool()
            .unwrap_or_else(|| panic!("{name}: runnable is not a bool\n{report:#}"));
        let missing = profile["missing"].as_array().expect("missing array");
        assert_eq!(runnable, missing.is_empty(), "{name}\n{report:#}");
    }
}

/// The limits every user gets, whatever the host (rlimits, tmpfs sizes, the supervisor).
const ALWAYS_ENFORCED: [&str; 9] = [
    "wall_time",
    "cpu_time",
    "open_files",
    "file_size",
    "disk",
    "files",
    "changed_files",
    "changed_lines",
    "output",
];

fn limit_names(report: &Value, key: &str) -> Vec<String> {
    report["limits"][key]
        .as_array()
        .unwrap_or_else(|| panic!("limits.{key} is not a list\n{report:#}"))
        .iter()
        .map(|name| name.as_str().expect("a limit name").to_owned())
        .collect()
}

/// `doctor` says which limits this user can enforce: the cgroup's three where a cgroup is
/// there (root here), none of them for an unprivileged user without a delegated one.
#[test]
fn doctor_lists_the_limits_this_user_can_enforce() {
    let ran = sandbox(&["doctor", "--output", "json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let report = ran.json();
    let (enforced, unenforced) = (
        limit_names(&report, "enforced"),
        limit_names(&report, "unenforced"),
    );
    for name in ALWAYS_ENFORCED {
        assert!(enforced.iter().any(|n| n == name), "{name}\n{report:#}");
    }
    let cgroup = ["memory", "pids", "cpus"];
    if report["cgroup"]["available"] == true {
        assert!(unenforced.is_empty(), "{report:#}");
        for name in cgroup {
            assert!(enforced.iter().any(|n| n == name), "{name}\n{report:#}");
        }
    } else {
        assert_eq!(unenforced, cgroup, "{report:#}");
    }

    let Some(user) = Unprivileged::new() else {
        return;
    };
    let ws = Workspace::new();
    let theirs = user.doctor(ws.path());
    if theirs["cgroup"]["available"] == true {
        common::skip(&format!("cgroups are delegated to uid {}", user.uid));
        return;
    }
    assert_eq!(limit_names(&theirs, "unenforced"), cgroup, "{theirs:#}");
    let detail = theirs["limits"]["detail"].as_str().expect("limits.detail");
    assert!(detail.contains("limits_unenforced"), "{theirs:#}");
}

// ---------------------------------------------------------------------------------------------
// 8. schema

fn outcome_has_everything_the_schema_requires(backend: Backend) {
    let schema = sandbox(&["schema"]).json();
    assert!(
        schema["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("json-schema.org")),
        "{schema:#}"
    );
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("the schema has `required`")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(required.contains(&"exit_code"), "{schema:#}");

    let ws = Workspace::new();
    let run = exec_json(backend, &ws, &[], &["sh", "-c", "echo hi; exit 5"]);
    assert_eq!(run.code, 5, "{run:?}");
    let outcome = run.outcome.as_object().expect("an object");
    for key in &required {
        assert!(outcome.contains_key(*key), "`{key}` is missing\n{run:?}");
    }
    let properties = schema["properties"].as_object().expect("properties");
    for key in outcome.keys() {
        assert!(properties.contains_key(key), "`{key}` is not in the schema");
    }
    common::assert_valid("outcome", &run.outcome);
}

// ---------------------------------------------------------------------------------------------
// 9. Environment

fn env_flags_are_visible_inside(backend: Backend) {
    let ws = Workspace::new();
    let run = exec_json(
        backend,
        &ws,
        &["--env", "A=1", "--env", "B=two words", "--env", "EMPTY="],
        &["sh", "-c", "echo \"$A|$B|${EMPTY-unset}\""],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout(), "1|two words|\n", "{run:?}");
}

#[test]
fn env_without_equals_fails_with_125() {
    let ws = Workspace::new();
    let ran = sandbox(&[
        "exec",
        "--workspace",
        ws.path().to_str().expect("utf-8"),
        "--env",
        "NOEQUALS",
        "--",
        "sh",
        "-c",
        "touch /workspace/ran",
    ]);
    assert_eq!(ran.code, SANDBOX_FAILED, "{ran:?}");
    assert!(ran.stderr.contains("NOEQUALS"), "{ran:?}");
    assert!(ran.stderr.contains("--env"), "{ran:?}");
    assert!(!ws.file("ran").exists(), "the job ran anyway");
}

conformance!(
    missing_command_exits_127,
    non_executable_file_exits_126,
    killed_by_signal_exits_128_plus_n,
    exit_code_is_the_jobs_own,
    result_file_in_text_mode_holds_the_outcome,
    result_file_matches_the_json_output,
    json_output_is_one_outcome_document,
    text_mode_streams_output_live,
    outcome_has_everything_the_schema_requires,
    env_flags_are_visible_inside,
);

// ---------------------------------------------------------------------------------------------
// 10. Completions and the manual page

#[test]
fn completions_and_man_page_print_to_stdout() {
    let bash = sandbox(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{bash:?}");
    assert!(bash.stdout.contains("_sandbox()"), "{bash:?}");
    for subcommand in ["gate", "check", "hook", "schema"] {
        assert!(bash.stdout.contains(subcommand), "{subcommand}: {bash:?}");
    }
    let man = sandbox(&["man"]);
    assert_eq!(man.code, 0, "{man:?}");
    assert!(man.stdout.starts_with('.'), "not roff: {man:?}");
    assert!(
        man.stdout
            .lines()
            .any(|line| line.starts_with(".TH sandbox 1")),
        "{man:?}"
    );
    assert!(man.stdout.contains("gate"), "{man:?}");
    let unknown = sandbox(&["completions", "nosh"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
}
