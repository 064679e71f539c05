//! The gate cache is sound and the operator's (issue 15, item 5; DESIGN §12): a cached result
//! always equals a fresh run, and nothing the judged tree or a job can write makes a pass.
//! Each attack test asserts that the attack failed and that the Verdict says why.
#![allow(clippy::expect_used, reason = "a test fails loudly on broken set-up")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{run, sandbox_command, Ran, Workspace};
use proptest::prelude::*;
use serde_json::Value;

/// An operator's cache home (`XDG_CACHE_HOME`), outside every workspace.
struct CacheHome(tempfile::TempDir);

impl CacheHome {
    fn new() -> CacheHome {
        CacheHome(
            tempfile::Builder::new()
                .prefix("sandbox-cache-")
                .tempdir()
                .expect("tempdir"),
        )
    }

    /// In `/var/tmp`, which the operator's gate profile shows to gate jobs (see `show`).
    fn visible_to_jobs() -> CacheHome {
        let cache = CacheHome(
            tempfile::Builder::new()
                .prefix("sandbox-cache-")
                .tempdir_in("/var/tmp")
                .expect("tempdir"),
        );
        cache.show(cache.path());
        cache
    }

    /// The operator shows `dir` to gate jobs: a `gate` profile of theirs naming it read-only
    /// (the allowlisted root shows nothing of the host but /usr and /etc otherwise), in the
    /// `XDG_CONFIG_HOME` that `gate_on` passes along.
    fn show(&self, dir: &Path) {
        let profiles = self.config_home().join("sandbox/profiles");
        std::fs::create_dir_all(&profiles).expect("mkdir operator profiles");
        std::fs::write(
            profiles.join("gate.toml"),
            format!(
                "extends = \"gate\"\n[filesystem]\nread_only = [\"{}\"]\n",
                dir.display()
            ),
        )
        .expect("write the operator's gate profile");
    }

    fn config_home(&self) -> PathBuf {
        self.path().join("config")
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// The files of every project's entries (not the remembered tool versions).
    fn entries(&self) -> Vec<PathBuf> {
        let gates = self.path().join("sandbox/gates");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&gates)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|project| std::fs::read_dir(project.path()).into_iter().flatten())
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| !name.starts_with("version-") && !name.starts_with('.'))
            })
            .collect();
        entries.sort();
        entries
    }

    /// The entry that holds a result of status `status`; there must be exactly one.
    fn entry_with(&self, status: &str) -> PathBuf {
        let needle = format!("\"status\":\"{status}\"");
        let found: Vec<PathBuf> = self
            .entries()
            .into_iter()
            .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains(&needle)))
            .collect();
        assert_eq!(found.len(), 1, "entries with {needle}: {found:?}");
        found.into_iter().next().expect("one entry")
    }
}

/// A run of `sandbox gate` and the Verdict it printed (checked against its schema).
struct Judged {
    ran: Ran,
    verdict: Value,
}

impl std::fmt::Debug for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstderr: {}\nstdout: {}",
            self.ran.code, self.ran.stderr, self.ran.stdout
        )
    }
}

impl Judged {
    fn gate(&self, name: &str) -> &Value {
        common::verdict_gate(&self.verdict, name)
    }

    fn cached(&self, name: &str) -> bool {
        self.gate(name)["cached"] == true
    }

    fn status(&self, name: &str) -> &str {
        self.gate(name)["status"].as_str().unwrap_or("")
    }

    fn reason(&self, name: &str) -> &str {
        self.gate(name)["reason"].as_str().unwrap_or("")
    }

    /// Each gate's status and how many findings it has, by name.
    fn summary(&self) -> Vec<(String, String, usize)> {
        self.verdict["gates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|gate| {
                (
                    gate["name"].as_str().unwrap_or("").to_owned(),
                    gate["status"].as_str().unwrap_or("").to_owned(),
                    gate["findings"].as_array().map_or(0, Vec::len),
                )
            })
            .collect()
    }
}

/// `sandbox gate --backend BACKEND` on `workspace` with the cache in `cache`.
fn gate_on(backend: &str, cache: &Path, workspace: &Path, extra: &[&str]) -> Judged {
    let ran = run(
        sandbox_command(&["gate", "--backend", backend, "--output", "json"])
            .arg("--workspace")
            .arg(workspace)
            .args(extra)
            .env("XDG_CACHE_HOME", cache)
            .env("XDG_CONFIG_HOME", cache.join("config")),
    );
    let verdict = common::verdict_from(ran.stdout.as_bytes());
    assert!(!verdict.is_null(), "no Verdict: {ran:?}");
    Judged { ran, verdict }
}

fn gate(cache: &Path, workspace: &Path, extra: &[&str]) -> Judged {
    gate_on("native", cache, workspace, extra)
}

fn project(config: &str) -> Workspace {
    let workspace = Workspace::new();
    workspace.write("sandbox.toml", config);
    workspace
}

/// Writes `text` at `name` below `root`, creating directories, readable by the job's uid.
fn put(root: &Path, name: &str, text: &str) {
    let path = root.join(name);
    let dir = path.parent().expect("parent");
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(&path, text).expect("write");
}

/// Passes while `state.txt` says `ok`.
const STATEFUL: &str = r#"
[[gate]]
name = "state"
command = ["sh", "-c", "grep -q '^ok$' state.txt || { echo 'state.txt:1: not ok' >&2; exit 1; }"]
"#;

/// Finds `eval(` in every Python file, wherever it is: what a linter with no exclusions does.
const EVAL_GREP: &str = r#"
[[gate]]
name = "eval"
command = ["grep", "-rn", "--include=*.py", "eval(", "."]
parser = "regex"
pattern = '^\./(?P<path>[^:]+):(?P<line>\d+):(?P<message>.*)$'
"#;

/// The attack: a failing gate's stored entry edited to say `pass`. It fails its MAC: the gate
/// runs and fails, and the bad entry is replaced by the real result.
#[test]
fn a_forged_entry_is_a_miss_and_the_gate_really_fails() {
    let cache = CacheHome::new();
    let workspace = project(STATEFUL);
    workspace.write("state.txt", "broken\n");
    let first = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(
        (first.status("state"), first.cached("state")),
        ("fail", false),
        "{first:?}"
    );
    let entry = cache.entry_with("fail");
    let text = std::fs::read_to_string(&entry).expect("read the entry");
    std::fs::write(
        &entry,
        text.replace("\"status\":\"fail\"", "\"status\":\"pass\""),
    )
    .expect("forge the entry");

    let forged = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(
        forged.ran.code, 1,
        "the forged pass was believed: {forged:?}"
    );
    assert_eq!(forged.status("state"), "fail", "{forged:?}");
    assert!(
        !forged.cached("state"),
        "a forged entry is not a hit: {forged:?}"
    );
    let replaced = std::fs::read_to_string(cache.entry_with("fail")).expect("read the entry");
    assert!(!replaced.contains("\"status\":\"pass\""), "{replaced}");
    let again = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(
        (again.status("state"), again.cached("state")),
        ("fail", true),
        "{again:?}"
    );
}

/// The attack: another user's cache (another key) holds a pass for this project; their entries
/// are copied in, under their names and under ours. Neither is believed.
#[test]
fn an_entry_copied_from_another_users_cache_is_a_miss() {
    let (theirs, ours) = (CacheHome::new(), CacheHome::new());
    let workspace = project(STATEFUL);
    workspace.write("state.txt", "ok\n");
    for cache in [&theirs, &ours] {
        let ran = gate(cache.path(), workspace.path(), &[]);
        assert_eq!(
            (ran.status("state"), ran.cached("state")),
            ("pass", false),
            "{ran:?}"
        );
    }
    let names = |cache: &CacheHome| -> Vec<_> {
        cache
            .entries()
            .iter()
            .map(|p| p.file_name().map(ToOwned::to_owned))
            .collect()
    };
    let their_names = names(&theirs);
    assert!(
        names(&ours).iter().all(|name| !their_names.contains(name)),
        "the same result is named alike under two keys: {their_names:?}"
    );
    workspace.write("state.txt", "broken\n");
    let failed = gate(ours.path(), workspace.path(), &[]);
    assert_eq!(failed.status("state"), "fail", "{failed:?}");
    let our_fail = ours.entry_with("fail");
    let their_pass = theirs.entry_with("pass");
    std::fs::copy(&their_pass, &our_fail).expect("copy their entry over ours");
    let dir = our_fail.parent().expect("project dir");
    std::fs::copy(&their_pass, dir.join(their_pass.file_name().expect("name")))
        .expect("copy their entry under its name");

    let copied = gate(ours.path(), workspace.path(), &[]);
    assert_eq!(copied.ran.code, 1, "a copied pass was believed: {copied:?}");
    assert_eq!(
        (copied.status("state"), copied.cached("state")),
        ("fail", false),
        "{copied:?}"
    );
}

/// The cache is never in the judged tree; pointed into it, it is refused, nothing is cached,
/// and every gate's reason says why.
#[test]
fn the_cache_is_never_inside_the_workspace() {
    let cache = CacheHome::new();
    let workspace = project(STATEFUL);
    workspace.write("state.txt", "ok\n");
    let ran = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(ran.status("state"), "pass", "{ran:?}");
    assert!(
        !workspace.file(".sandbox").exists(),
        "a cache in the workspace: {ran:?}"
    );
    assert_eq!(cache.entries().len(), 1, "{ran:?}");
    let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&cache.path().join("sandbox/cache.key")), 0o600);
    assert_eq!(mode(&cache.path().join("sandbox")), 0o700);

    let inside = workspace.file(".cache");
    for _ in 0..2 {
        let refused = gate(&inside, workspace.path(), &[]);
        assert_eq!(refused.status("state"), "pass", "{refused:?}");
        assert!(!refused.cached("state"), "{refused:?}");
        assert!(
            refused.reason("state").contains("inside the workspace"),
            "the Verdict does not say why nothing was cached: {refused:?}"
        );
        assert!(!inside.exists(), "the cache was made inside the workspace");
    }
}

/// A key file anyone else could read (or that someone else chose) is refused, not used.
#[test]
fn a_key_file_others_can_read_is_refused() {
    let cache = CacheHome::new();
    let workspace = project(STATEFUL);
    workspace.write("state.txt", "ok\n");
    gate(cache.path(), workspace.path(), &[]);
    let key = cache.path().join("sandbox/cache.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    for _ in 0..2 {
        let ran = gate(cache.path(), workspace.path(), &[]);
        assert!(
            !ran.cached("state"),
            "an exposed key still vouched: {ran:?}"
        );
        assert!(ran.reason("state").contains("mode 644"), "{ran:?}");
    }
}

/// The attack from issue 15: bad code under a nested `target/` (or `node_modules/`, `.venv/`,
/// `__pycache__/`, `.sandbox/`) after a cached pass. Every such file is in the key: the gate
/// runs again and fails.
#[test]
fn bad_code_under_a_nested_build_directory_fails_after_a_cached_pass() {
    let cache = CacheHome::new();
    let workspace = project(EVAL_GREP);
    put(workspace.path(), "pkg/a.py", "print(1)\n");
    let clean = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(clean.status("eval"), "pass", "{clean:?}");
    assert!(gate(cache.path(), workspace.path(), &[]).cached("eval"));
    let dirs = ["target", "node_modules", ".venv", "__pycache__", ".sandbox"];
    for (found, dir) in dirs.iter().enumerate() {
        put(
            workspace.path(),
            &format!("pkg/{dir}/x.py"),
            "eval(input())\n",
        );
        let ran = gate(cache.path(), workspace.path(), &[]);
        assert_eq!(ran.ran.code, 1, "pkg/{dir}/x.py got a cached pass: {ran:?}");
        assert_eq!(
            (ran.status("eval"), ran.cached("eval")),
            ("fail", false),
            "{ran:?}"
        );
        assert_eq!(ran.summary()[0].2, found + 1, "{ran:?}");
    }
}

/// A gate's own program changed: one in the workspace, and one outside it rewritten in place
/// (an upgrade). Either way the gate runs again and says what the new tool says.
#[test]
fn a_changed_custom_tool_reruns_the_gate() {
    let cache = CacheHome::new();
    let tools = tempfile::Builder::new()
        .prefix("sandbox-tool-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    std::fs::set_permissions(tools.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    cache.show(tools.path());
    let outside = tools.path().join("lint");
    let workspace = project(&format!(
        "[[gate]]\nname = \"inside\"\ncommand = [\"./lint\"]\n\
         [[gate]]\nname = \"outside\"\ncommand = [\"{}\"]\n",
        outside.display()
    ));
    let tool = |path: &Path, exit: u8| {
        std::fs::write(
            path,
            format!("#!/bin/sh\necho 'x.py:1: said so' >&2\nexit {exit}\n"),
        )
        .expect("write the tool");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    tool(&workspace.file("lint"), 0);
    tool(&outside, 0);
    let first = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(first.ran.code, 0, "{first:?}");
    let second = gate(cache.path(), workspace.path(), &[]);
    assert!(
        second.cached("inside") && second.cached("outside"),
        "{second:?}"
    );
    // Upgraded in place, outside the tree: only the tool's bytes say so.
    tool(&outside, 1);
    let upgraded = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(
        upgraded.status("outside"),
        "fail",
        "the old tool's pass was kept: {upgraded:?}"
    );
    assert!(!upgraded.cached("outside"), "{upgraded:?}");
    assert!(upgraded.cached("inside"), "{upgraded:?}");
    tool(&workspace.file("lint"), 1);
    let changed = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(
        changed.status("inside"),
        "fail",
        "the old tool's pass was kept: {changed:?}"
    );
    assert!(!changed.cached("inside"), "{changed:?}");
}

/// A config file only the gate's arguments name (`bandit -c conf/bandit.yml`), outside every
/// preset's list of config files: changing it changes bandit's answer, and the gate reruns.
#[test]
fn a_config_file_named_in_args_is_part_of_the_key() {
    if !Path::new("/opt/sandbox-tools/bin/bandit").exists() {
        common::skip("bandit is missing: run scripts/setup");
        return;
    }
    let cache = CacheHome::new();
    let workspace = project(
        "[[gate]]\nname = \"security\"\nuses = \"bandit\"\nargs = [\"-c\", \"conf/bandit.yml\", \".\"]\n",
    );
    put(workspace.path(), "app.py", "x = eval(input())\n");
    put(workspace.path(), "conf/bandit.yml", "skips: ['B307']\n");
    let skipped = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(skipped.status("security"), "pass", "{skipped:?}");
    assert!(gate(cache.path(), workspace.path(), &[]).cached("security"));
    put(workspace.path(), "conf/bandit.yml", "skips: []\n");
    let checked = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(
        checked.status("security"),
        "fail",
        "bandit's old answer was kept: {checked:?}"
    );
    assert!(!checked.cached("security"), "{checked:?}");
}

/// The attack on timing: a file changes while its gate runs (an editor saving, a second
/// process). The result was judged on the new content, so it is not kept under the old tree's
/// key: put back, the old content is judged afresh, never handed the new content's pass.
#[test]
fn a_tree_changed_while_the_gates_ran_is_not_cached() {
    use std::io::BufRead;
    let cache = CacheHome::new();
    let signals = tempfile::Builder::new()
        .prefix("sandbox-go-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    std::fs::set_permissions(signals.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    cache.show(signals.path());
    let go = signals.path().join("go");
    // Waits, outside the tree (the operator shows the job that directory), until the test has
    // changed the tree.
    let workspace = project(&format!(
        "[[gate]]\nname = \"state\"\ncommand = [\"sh\", \"-c\", \"while [ ! -e {} ]; do sleep 0.05; done; \
         grep -q '^ok$' state.txt || {{ echo 'state.txt:1: not ok' >&2; exit 1; }}\"]\n",
        go.display()
    ));
    workspace.write("state.txt", "broken\n");
    let mut child = sandbox_command(&[
        "gate",
        "--backend",
        "native",
        "--output",
        "json",
        "--events",
    ])
    .arg("--workspace")
    .arg(workspace.path())
    .env("XDG_CACHE_HOME", cache.path())
    .env("XDG_CONFIG_HOME", cache.config_home())
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn sandbox gate");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = stderr.lines();
    // `gate_started` comes after the tree was read for the keys.
    for line in lines.by_ref() {
        if line.expect("read stderr").contains("\"gate_started\"") {
            break;
        }
    }
    workspace.write("state.txt", "ok\n");
    std::fs::write(&go, "").expect("signal the gate");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().expect("wait for sandbox gate");
    let verdict = common::verdict_from(&output.stdout);
    let raced = Judged {
        ran: Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: rest.join("\n"),
        },
        verdict,
    };
    assert_eq!(raced.status("state"), "pass", "{raced:?}");
    assert!(
        raced
            .reason("state")
            .contains("changed while the gates ran"),
        "the Verdict does not say why it was not cached: {raced:?}"
    );
    workspace.write("state.txt", "broken\n");
    let back = gate(cache.path(), workspace.path(), &[]);
    assert_eq!(
        back.ran.code, 1,
        "the old tree was handed the new one's pass: {back:?}"
    );
    assert_eq!(
        (back.status("state"), back.cached("state")),
        ("fail", false),
        "{back:?}"
    );
}

/// The key holds the backend and the image: a native result is not the docker job's answer.
#[test]
fn a_result_from_the_other_backend_is_not_reused() {
    if let Some(reason) = common::Backend::Docker.unavailable() {
        common::skip(&reason);
        return;
    }
    let cache = CacheHome::new();
    let workspace = project(STATEFUL);
    workspace.write("state.txt", "ok\n");
    let native = gate_on("native", cache.path(), workspace.path(), &[]);
    assert!(!native.cached("state"), "{native:?}");
    let docker = gate_on("docker", cache.path(), workspace.path(), &[]);
    assert!(
        !docker.cached("state"),
        "docker was handed native's result: {docker:?}"
    );
    assert_eq!(
        docker.gate("state")["outcome"]["backend"],
        "docker",
        "{docker:?}"
    );
    for backend in ["docker", "native"] {
        let again = gate_on(backend, cache.path(), workspace.path(), &[]);
        assert!(again.cached("state"), "{backend}: {again:?}");
    }
}

/// A job (the judged code runs in gate and `check` jobs) cannot read the cache's key nor plant
/// an entry, even with the cache somewhere jobs can see.
#[test]
fn a_job_cannot_read_the_key_or_write_the_cache() {
    let cache = CacheHome::visible_to_jobs();
    let workspace = project(STATEFUL);
    workspace.write("state.txt", "ok\n");
    gate(cache.path(), workspace.path(), &[]);
    let dir = cache.path().join("sandbox");
    let script = format!(
        "cat {0}/cache.key | od -An -tx1; ls {0}/gates; touch {0}/gates/planted {0}/planted",
        dir.display()
    );
    let ran = run(
        sandbox_command(&["exec", "--backend", "native", "--profile", "gate"])
            .arg("--workspace")
            .arg(workspace.path())
            .args(["--output", "json", "--", "sh", "-c", &script])
            .env("XDG_CONFIG_HOME", cache.config_home()),
    );
    let outcome = ran.outcome();
    assert_ne!(outcome["exit_code"], 0, "{ran:?}");
    let key = std::fs::read(dir.join("cache.key")).expect("the key");
    let hex: String = key.iter().map(|b| format!(" {b:02x}")).collect();
    let printed: String = outcome["stdout"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert!(
        !printed.contains(&hex.replace(' ', "")),
        "the job read the key: {ran:?}"
    );
    assert!(!dir.join("gates/planted").exists() && !dir.join("planted").exists());
    let stderr = outcome["stderr"].as_str().unwrap_or("");
    assert!(stderr.contains("Permission denied"), "{ran:?}");
}

/// One random edit of the fixture project, from a small set of contents per file: states
/// recur, so the cache is hit, and every kind of file that can change a result is edited.
#[derive(Debug, Clone)]
struct Edit {
    file: &'static str,
    /// `None`: the file is removed.
    text: Option<&'static str>,
}

/// The files of the fixture and what each may hold.
const EDITABLE: [(&str, &[&str]); 10] = [
    ("pkg/a.py", &["print(1)\n", "import os\n", "eval('1')\n"]),
    ("pkg/target/x.py", &["import sys\n", "eval('2')\n"]),
    ("web/node_modules/m.py", &["import json\n", "x = 1\n"]),
    ("pkg/__pycache__/c.py", &["eval('3')\n"]),
    // ruff reads the base through `extend`: a change there is a change in what ruff does.
    (
        "ruff.toml",
        &[
            "extend = \"base.toml\"\n",
            "extend = \"base.toml\"\n[lint]\nignore = [\"F401\"]\n",
        ],
    ),
    (
        "base.toml",
        &[
            "[lint]\nselect = [\"F\"]\n",
            "[lint]\nselect = [\"E\", \"F\", \"S\"]\n",
            "[lint]\nignore = [\"F401\"]\n",
        ],
    ),
    (
        "pyproject.toml",
        &[
            "[tool.ruff.lint]\nselect = [\"F\"]\n",
            "[project]\nname = \"p\"\n",
        ],
    ),
    (".gitignore", &["pkg/target/\n", "*.py\n", "web/\n"]),
    // Named in the grep gate's arguments.
    ("patterns.txt", &["eval(\n", "import \n"]),
    (
        "conf/keys.env",
        &[
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9ZqT2kLm\n",
            "AWS_REGION=eu-west-1\n",
        ],
    ),
];

fn edit() -> impl Strategy<Value = Edit> {
    (0..EDITABLE.len(), 0usize..4).prop_map(|(file, choice)| {
        let (name, texts) = EDITABLE[file];
        Edit {
            file: name,
            text: texts.get(choice).copied(),
        }
    })
}

/// The fixture's gates: two built-ins, a grep reading a pattern file named in its arguments
/// and every Python file, and ruff when it is installed.
fn differential_config() -> String {
    let mut config = String::from(
        r#"
[[gate]]
name = "policy"
uses = "policy"
banned_patterns = [{ glob = "**/*.py", regex = "eval\\(" }]

[[gate]]
name = "secrets"
uses = "secret-scan"

[[gate]]
name = "grep"
command = ["grep", "-rn", "--include=*.py", "-f", "patterns.txt", "."]
parser = "regex"
pattern = '^\./(?P<path>[^:]+):(?P<line>\d+):(?P<message>.*)$'
"#,
    );
    if Path::new("/opt/sandbox-tools/bin/ruff").exists() {
        config.push_str("\n[[gate]]\nname = \"lint\"\nuses = \"ruff\"\n");
    } else {
        common::skip("ruff is missing (run scripts/setup): the differential runs without it");
    }
    config
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Whatever is edited, the Verdict from the cache is the Verdict of a fresh run, gate by
    /// gate (status and number of findings). Each case ends on a run that must be all hits, so
    /// the cache was used, not just bypassed.
    #[test]
    fn a_cached_verdict_equals_a_fresh_one(
        steps in prop::collection::vec(prop::collection::vec(edit(), 0..4), 2)
    ) {
        let cache = CacheHome::new();
        let workspace = project(&differential_config());
        for (name, texts) in EDITABLE {
            put(workspace.path(), name, texts[0]);
        }
        gate(cache.path(), workspace.path(), &[]);
        let mut fresh = None;
        for edits in steps {
            for Edit { file, text } in &edits {
                match text {
                    Some(text) => put(workspace.path(), file, text),
                    None => {
                        let _ = std::fs::remove_file(workspace.file(file));
                    }
                }
            }
            let cached = gate(cache.path(), workspace.path(), &[]);
            let ran = gate(cache.path(), workspace.path(), &["--no-cache"]);
            prop_assert_eq!(
                cached.summary(), ran.summary(),
                "after {:?}:\ncached {:?}\nfresh {:?}", edits, cached, ran
            );
            fresh = Some(ran);
        }
        let fresh = fresh.expect("two steps");
        let hit = gate(cache.path(), workspace.path(), &[]);
        for (name, status, _) in hit.summary() {
            // Errors are never cached.
            prop_assert!(hit.cached(&name) || status == "error", "{} was not cached: {:?}", name, hit);
        }
        prop_assert_eq!(hit.summary(), fresh.summary());
    }
}
