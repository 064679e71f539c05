//! Runs the gates: each one a sandboxed job (`sandbox exec` with the gate's profile, the
//! workspace read-only, a report directory of its own at `/out`), up to `jobs` at once, each
//! result cached by what it depends on. Child processes rather than threads calling the
//! runtime: the native backend forks, which a multi-threaded process must not do.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use sandbox_runtime::profile::HumanDuration;
use sandbox_runtime::secrets::Redactor;
use sandbox_runtime::spec::Bind;
use sandbox_runtime::trust::Trust;

use crate::cache::{Cache, Tree};
use crate::config::{Defaults, GateSpec, ProjectConfig};
use crate::events::{Event, Observer};
use crate::finding::Finding;
use crate::parsers::{self, Parsed, ToolRun};
use crate::redact;
use crate::verdict::{judge, GateResult, GateStatus, Threshold, Verdict};

/// Where `scripts/setup` installs the pinned tools; bound read-only into every gate job.
pub const TOOLS_DIR: &str = "/opt/sandbox-tools";
/// Where a gate job finds our own binary, to run a built-in gate.
const SANDBOX_IN_JOB: &str = "/.sandbox/sandbox";
const RUST_IN_JOB: &str = "/.sandbox/rust";
const CARGO_HOME_IN_JOB: &str = "/.sandbox/cargo-home";
const JOB_PATH: &str =
    "/opt/sandbox-tools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Output kept in the Verdict of each gate job's stdout and stderr.
const OUTPUT_KEPT: usize = 4096;

pub struct Runner {
    /// The `sandbox` binary each gate job is run with.
    pub sandbox: PathBuf,
    /// The tree the gates check (canonical).
    pub workspace: PathBuf,
    pub cache: Option<Cache>,
    pub jobs: usize,
    /// `--backend` for every gate job, when given.
    pub backend: Option<String>,
    pub audit: Option<PathBuf>,
    /// `--changed-since`: findings are kept only on these changes' lines.
    pub changes: Option<crate::builtin::Changes>,
    /// How far the project's own configuration is trusted; each gate job is told the same.
    pub trust: Trust,
    /// The secrets a result may quote (`check`'s job wrote them into the tree the gates read),
    /// redacted from every result as it comes in.
    pub redactor: Redactor,
}

/// The reason of a gate that `--only` or `--skip` left out: the human reports leave such gates
/// out, the JSON keeps them.
pub const NOT_SELECTED: &str = "not selected (--only / --skip)";

/// Which gates run: `--only` and `--skip`.
#[derive(Debug, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

/// What a built-in gate prints (`sandbox gate-builtin`): the parser's result as JSON.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BuiltinOutput {
    pub findings: Vec<Finding>,
    pub metrics: BTreeMap<String, f64>,
}

impl Selection {
    /// Whether the gate named `name` runs.
    pub fn picks(&self, name: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|only| only == name))
            && !self.skip.iter().any(|skip| skip == name)
    }
}

impl Runner {
    /// Runs the selected gates, telling `observer` as each starts and finishes.
    pub fn run(
        &self,
        config: &ProjectConfig,
        selection: &Selection,
        observer: &dyn Observer,
    ) -> Verdict {
        let started = Instant::now();
        let mut results: Vec<Option<GateResult>> = vec![None; config.gates.len()];
        let mut fresh: Vec<(usize, Fresh)> = Vec::new();
        let jobs = self.jobs.max(1);
        // What the gates are about to read: every key is taken against this.
        let tree = self.cache.as_ref().map(|cache| cache.tree(&self.workspace));
        std::thread::scope(|scope| {
            let (done, finished) = std::sync::mpsc::channel();
            let mut told = |(index, (result, ran)): (usize, (GateResult, Option<Fresh>))| {
                observer.event(Event::gate_finished(&result));
                fresh.extend(ran.map(|ran| (index, ran)));
                (index, Some(result))
            };
            let mut running = 0;
            for (index, gate) in config.gates.iter().enumerate() {
                if !selection.picks(&gate.name) {
                    results[index] = Some(skipped(gate, NOT_SELECTED));
                    continue;
                }
                if running == jobs {
                    if let Ok(ended) = finished.recv() {
                        let (index, result) = told(ended);
                        results[index] = result;
                    }
                    running -= 1;
                }
                observer.event(Event::GateStarted {
                    name: gate.name.clone(),
                });
                let done = done.clone();
                let defaults = &config.defaults;
                let tree = tree.as_ref();
                scope.spawn(move || {
                    let _ = done.send((index, self.run_gate(gate, defaults, tree)));
                });
                running += 1;
            }
            drop(done);
            for (index, result) in finished.into_iter().map(told) {
                results[index] = result;
            }
        });
        if let (Some(cache), Some(Ok(before))) = (&self.cache, &tree) {
            self.keep(cache, before, fresh, &mut results);
        }
        let results = results.into_iter().flatten().collect();
        Verdict::new(results, elapsed_ms(started), None)
    }

    /// Caches the results of the gates that ran, if the tree is still what they read: a file
    /// saved while they ran could otherwise be cached as judged when it was not. A result that
    /// could not be kept says why.
    fn keep(
        &self,
        cache: &Cache,
        before: &Tree,
        fresh: Vec<(usize, Fresh)>,
        results: &mut [Option<GateResult>],
    ) {
        if fresh.is_empty() {
            return;
        }
        let after = cache.tree(&self.workspace);
        for (index, Fresh { key, result }) in fresh {
            let kept = match &after {
                Ok(after) if after == before => cache.put(&key, &result),
                Ok(_) => Err("the workspace changed while the gates ran".into()),
                Err(why) => Err(why.clone()),
            };
            if let (Err(why), Some(Some(result))) = (kept, results.get_mut(index)) {
                not_cached(result, &why);
            }
        }
    }

    fn run_gate(
        &self,
        gate: &GateSpec,
        defaults: &Defaults,
        tree: Option<&Result<Tree, String>>,
    ) -> (GateResult, Option<Fresh>) {
        let (result, fresh) = self.run_gate_cached(gate, defaults, tree);
        (self.narrow(result), fresh)
    }

    /// With `--changed-since`: only the findings on changed lines (a finding with no line counts
    /// when its file changed; one with no file always counts), diff coverage for a gate with
    /// per-file coverage, and the status judged again.
    fn narrow(&self, mut result: GateResult) -> GateResult {
        let Some(changes) = &self.changes else {
            return result;
        };
        if matches!(result.status, GateStatus::Error | GateStatus::Skipped) {
            return result;
        }
        let before = result.findings.len();
        result
            .findings
            .retain(|finding| on_changed_line(finding, changes));
        let mut missed = Vec::new();
        if !result.coverage.is_empty() {
            let (metrics, lines) = crate::coverage::diff_coverage(&result.coverage, changes);
            result.metrics.extend(metrics);
            missed = lines;
        }
        let (status, reason) = judge(&result.findings, &result.metrics, &result.threshold);
        result.status = status;
        result.reason = reason;
        if !missed.is_empty() {
            const SHOWN: usize = 10;
            let more = missed.len().saturating_sub(SHOWN);
            let mut note = format!(
                "changed lines the tests did not run: {}",
                missed[..missed.len().min(SHOWN)].join(", ")
            );
            if more > 0 {
                note.push_str(&format!(" and {more} more"));
            }
            result.reason = Some(match result.reason {
                Some(reason) => format!("{reason}; {note}"),
                None => note,
            });
        }
        let dropped = before - result.findings.len();
        if dropped > 0 {
            let note = format!("{dropped} finding(s) outside the changed lines left out");
            result.reason = Some(match result.reason {
                Some(reason) => format!("{reason}; {note}"),
                None => note,
            });
        }
        result
    }

    /// `result` without the secrets' values, and whether it held one. A result that redacting
    /// makes unreadable (a value of a few characters matched its words) becomes an error
    /// rather than a leak.
    fn redacted(&self, gate: &GateSpec, result: GateResult) -> (GateResult, bool) {
        match redact::redacted(&result, &self.redactor) {
            Ok(None) => (result, false),
            Ok(Some(clean)) => (clean, true),
            Err(error) => {
                let why = format!("the gate's result quoted a secret: {error}");
                (errored(gate, why, None), true)
            }
        }
    }

    /// The gate's cached result, or a fresh one with the key to keep it under.
    fn run_gate_cached(
        &self,
        gate: &GateSpec,
        defaults: &Defaults,
        tree: Option<&Result<Tree, String>>,
    ) -> (GateResult, Option<Fresh>) {
        let started = Instant::now();
        let extra = match (&self.changes, gate.builtin()) {
            (Some(changes), Some(_)) => serde_json::to_vec(changes).unwrap_or_default(),
            _ => Vec::new(),
        };
        let job = crate::cache::Job {
            gate,
            profile: gate.profile.as_deref().unwrap_or(&defaults.profile),
            timeout: gate.timeout.unwrap_or(defaults.timeout),
            backend: self.backend.as_deref(),
            sandbox: &self.sandbox,
            extra: &extra,
            trust: &self.trust,
        };
        let key = match (&self.cache, tree) {
            (Some(cache), Some(Ok(tree))) => Some(cache.key(&job, tree)),
            (Some(_), Some(Err(why))) => Some(Err(why.clone())),
            _ => None,
        };
        if let (Some(cache), Some(Ok(key))) = (&self.cache, &key) {
            if let Some(hit) = cache.get(key) {
                // Stored by a run that did not know the secret.
                let (mut hit, _) = self.redacted(gate, hit);
                hit.cached = true;
                hit.duration_ms = elapsed_ms(started);
                return (hit, None);
            }
        }
        let (mut result, quoted) = self.redacted(gate, self.run_job(gate, defaults));
        result.duration_ms = elapsed_ms(started);
        match key {
            // A redacted result is not what a run that does not know the secret gives, and no
            // copy of one may sit on disk.
            Some(Ok(_)) if quoted => {
                not_cached(&mut result, "it quoted a secret");
                (result, None)
            }
            // A tool that broke says nothing about the tree: never cached.
            Some(Ok(_)) if result.status == GateStatus::Error => (result, None),
            Some(Ok(key)) => {
                let fresh = Fresh {
                    key,
                    result: result.clone(),
                };
                (result, Some(fresh))
            }
            Some(Err(why)) => {
                not_cached(&mut result, &why);
                (result, None)
            }
            None => (result, None),
        }
    }

    fn run_job(&self, gate: &GateSpec, defaults: &Defaults) -> GateResult {
        let out = match report_dir() {
            Ok(out) => out,
            Err(why) => return errored(gate, why, None),
        };
        let command: Vec<String> = match gate.builtin() {
            Some(builtin) => {
                let input = BuiltinInput {
                    options: gate.options.clone(),
                    paths: gate.inputs.clone(),
                    changes: self.changes.clone(),
                };
                let input = serde_json::to_vec(&input).unwrap_or_default();
                if let Err(error) = std::fs::write(out.path().join("options.json"), input) {
                    return errored(gate, format!("writing the gate's options: {error}"), None);
                }
                [SANDBOX_IN_JOB, "gate-builtin", builtin, "/out/options.json"]
                    .map(str::to_owned)
                    .to_vec()
            }
            None => gate.command.clone(),
        };
        let ran = self.exec(gate, defaults, out.path(), &command);
        let (outcome, code) = match ran {
            Ok(ran) => ran,
            Err(why) => return errored(gate, why, None),
        };
        if let Some(why) = job_failure(&outcome, &command) {
            return errored(gate, why, Some(trimmed(outcome)));
        }
        let text = |key: &str| outcome[key].as_str().unwrap_or("").to_owned();
        let (stdout, stderr) = (text("stdout"), text("stderr"));
        let mount = outcome["workspace"]["mount"]
            .as_str()
            .unwrap_or("/workspace");
        let run = ToolRun {
            exit_code: Some(code),
            stdout: &stdout,
            stderr: &stderr,
            out_dir: out.path(),
            workspace: &self.workspace,
            mount: Path::new(mount),
            pattern: gate.pattern.as_deref(),
        };
        let parsed = match (gate.builtin(), gate.parser) {
            (Some(_), _) => serde_json::from_str::<BuiltinOutput>(&stdout)
                .map(|output| Parsed {
                    findings: output.findings,
                    metrics: output.metrics,
                    coverage: Vec::new(),
                })
                .map_err(|error| {
                    format!(
                        "the built-in gate's output: {error}; stderr: {}",
                        tail(&stderr)
                    )
                }),
            (None, Some(parser)) => parsers::parse(parser, &run)
                .map_err(|error| format!("{error}; stderr: {}", tail(&stderr))),
            (None, None) => Err("the gate has no parser".to_owned()),
        };
        let Parsed {
            mut findings,
            metrics,
            coverage,
        } = match parsed {
            Ok(parsed) => parsed,
            Err(why) => return errored(gate, why, Some(trimmed(outcome))),
        };
        for finding in &mut findings {
            finding.seal(&gate.name);
        }
        let threshold = Threshold {
            min: gate.min.clone(),
            max: gate.max.clone(),
        };
        let (status, reason) = judge(&findings, &metrics, &threshold);
        GateResult {
            name: gate.name.clone(),
            kind: gate.kind,
            status,
            cached: false,
            duration_ms: 0.0,
            metrics,
            threshold,
            findings,
            coverage,
            reason,
            outcome: Some(trimmed(outcome)),
        }
    }

    /// `sandbox exec` for one gate; the Outcome and the job's exit code.
    fn exec(
        &self,
        gate: &GateSpec,
        defaults: &Defaults,
        out: &Path,
        command: &[String],
    ) -> Result<(serde_json::Value, i32), String> {
        let job = Job {
            profile: gate.profile.as_deref().unwrap_or(&defaults.profile),
            timeout: gate.timeout.unwrap_or(defaults.timeout),
            out,
            own_binary: gate.builtin().is_some(),
            env: &gate.env,
        };
        self.run_in_job(&job, command)
    }

    /// What changed since `base` in the workspace, asked of git inside a gate job: git reads
    /// the repository's own config and attributes, which are the job's to control.
    pub fn changes_since(&self, base: &str) -> Result<crate::builtin::Changes, String> {
        let out = report_dir()?;
        let job = Job {
            profile: "gate",
            timeout: HumanDuration(std::time::Duration::from_secs(120)),
            out: out.path(),
            own_binary: true,
            env: &BTreeMap::new(),
        };
        let command = [SANDBOX_IN_JOB, "gate-changes", base].map(str::to_owned);
        let (outcome, code) = self.run_in_job(&job, &command)?;
        if code != 0 {
            return Err(format!(
                "reading the changes since `{base}`: {}",
                tail(outcome["stderr"].as_str().unwrap_or(""))
            ));
        }
        serde_json::from_str(outcome["stdout"].as_str().unwrap_or(""))
            .map_err(|error| format!("reading the changes since `{base}`: {error}"))
    }

    /// `sandbox exec` of `command` as `job`; the Outcome and the job's exit code.
    fn run_in_job(
        &self,
        job: &Job<'_>,
        command: &[String],
    ) -> Result<(serde_json::Value, i32), String> {
        let mut exec = Command::new(&self.sandbox);
        exec.arg("exec")
            .args([
                "--profile",
                job.profile,
                "--workspace-mode",
                "ro",
                "--output",
                "json",
            ])
            .arg("--workspace")
            .arg(&self.workspace)
            .arg("--timeout")
            .arg(job.timeout.to_string())
            .arg("--bind")
            .arg(format!("{}:/out", job.out.display()));
        let (binds, env) = tool_access(command);
        for bind in binds {
            let flag = if bind.writable { "--bind" } else { "--ro-bind" };
            exec.arg(flag).arg(format!(
                "{}:{}",
                bind.source.display(),
                bind.target.display()
            ));
        }
        for (name, value) in env {
            exec.arg("--env").arg(format!("{name}={value}"));
        }
        if job.own_binary {
            // The job's uid does not own the repository: git would refuse it ("dubious
            // ownership"), and the gate would error instead of reading the changes.
            for (name, value) in [
                ("GIT_CONFIG_COUNT", "1"),
                ("GIT_CONFIG_KEY_0", "safe.directory"),
                ("GIT_CONFIG_VALUE_0", "*"),
            ] {
                exec.arg("--env").arg(format!("{name}={value}"));
            }
            exec.arg("--ro-bind")
                .arg(format!("{}:{SANDBOX_IN_JOB}", self.sandbox.display()))
                // Built-in gates read git history and run our binary from the host: native.
                .args(["--backend", "native"]);
        } else if let Some(backend) = &self.backend {
            exec.args(["--backend", backend]);
        }
        if let Some(audit) = &self.audit {
            exec.arg("--audit").arg(audit);
        }
        if self.trust.trusted.is_some() {
            exec.arg("--trust-project");
        }
        for (name, value) in job.env {
            exec.arg("--env").arg(format!("{name}={value}"));
        }
        let output = exec
            .arg("--")
            .args(command)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("running {}: {error}", self.sandbox.display()))?;
        let code = output.status.code().unwrap_or(-1);
        let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| {
            format!(
                "the sandbox could not run the gate (exit {code}): {}",
                tail(&String::from_utf8_lossy(&output.stderr))
            )
        })?;
        Ok((outcome, code))
    }
}

fn on_changed_line(finding: &Finding, changes: &crate::builtin::Changes) -> bool {
    let Some(path) = &finding.path else {
        return true;
    };
    changes
        .files
        .iter()
        .filter(|file| file.kind != crate::builtin::ChangeKind::Deleted)
        .filter(|file| file.path == *path)
        .any(|file| match finding.line {
            Some(line) => file.added_lines.contains(&line),
            None => true,
        })
}

/// A result that ran, to be cached under `key` once every gate is done.
struct Fresh {
    key: String,
    result: GateResult,
}

/// Says in the result's reason why it was not cached.
fn not_cached(result: &mut GateResult, why: &str) {
    result.reason = Some(format!(
        "{}(not cached: {why})",
        result
            .reason
            .take()
            .map(|r| format!("{r}; "))
            .unwrap_or_default()
    ));
}

/// How one gate job is run.
struct Job<'a> {
    profile: &'a str,
    timeout: HumanDuration,
    out: &'a Path,
    /// Whether the job runs our own binary (a built-in gate, reading changes).
    own_binary: bool,
    env: &'a BTreeMap<String, String>,
}

/// What a built-in gate's job is handed: its own keys and the gate's `paths`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuiltinInput {
    pub options: toml::Table,
    pub paths: Vec<String>,
    /// `--changed-since`: the changes the policy judges instead of its own `base`.
    pub changes: Option<crate::builtin::Changes>,
}

/// Runs built-in gate `name` on the tree at `root` (inside its gate job).
pub fn run_builtin(name: &str, input: BuiltinInput, root: &Path) -> Result<BuiltinOutput, String> {
    use crate::builtin::{self, PolicyConfig, SecretScanConfig};
    let mut workspace = builtin::Workspace::new(root).with_paths(&input.paths);
    if let Some(changes) = &input.changes {
        workspace = workspace.with_changes(changes);
    }
    let options = toml::Value::Table(input.options);
    let parsed = match name {
        "policy" => {
            let config: PolicyConfig = options.try_into().map_err(|e| e.to_string())?;
            builtin::policy(&config, &workspace)
        }
        "secret-scan" => {
            let config: SecretScanConfig = options.try_into().map_err(|e| e.to_string())?;
            builtin::secret_scan(&config, &workspace)
        }
        other => return Err(format!("no built-in gate `{other}`")),
    };
    parsed
        .map(|parsed| BuiltinOutput {
            findings: parsed.findings,
            metrics: parsed.metrics,
        })
        .map_err(|error| error.to_string())
}

/// What every job of a gate that runs `command` gets: the pinned tools read-only and first on
/// `PATH`, and for cargo the host's toolchain and crate registry, read-only — the toolchain's
/// sysroot (cargo, rustc, clippy, rustfmt; not rustup's proxies, which would look for a
/// toolchain they cannot choose in the job) and `$CARGO_HOME/registry` for offline builds.
pub fn tool_access(command: &[String]) -> (Vec<Bind>, Vec<(String, String)>) {
    let read_only = |source: PathBuf, target: &str| Bind {
        source,
        target: target.into(),
        writable: false,
    };
    let mut binds = Vec::new();
    if Path::new(TOOLS_DIR).is_dir() {
        binds.push(read_only(TOOLS_DIR.into(), TOOLS_DIR));
    }
    if command.first().is_none_or(|program| program != "cargo") {
        return (binds, vec![("PATH".into(), JOB_PATH.into())]);
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(sysroot) = sysroot.filter(|dir| dir.is_dir()) {
        binds.push(read_only(sysroot, RUST_IN_JOB));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    for part in ["registry", "git"] {
        let dir = cargo_home.as_ref().map(|home| home.join(part));
        if let Some(dir) = dir.filter(|dir| dir.is_dir()) {
            binds.push(read_only(dir, &format!("{CARGO_HOME_IN_JOB}/{part}")));
        }
    }
    let env = vec![
        ("CARGO_HOME".into(), CARGO_HOME_IN_JOB.into()),
        ("PATH".into(), format!("{RUST_IN_JOB}/bin:{JOB_PATH}")),
    ];
    (binds, env)
}

/// Why a gate job's Outcome means the tool never gave an answer, if it does.
fn job_failure(outcome: &serde_json::Value, command: &[String]) -> Option<String> {
    let program = command.first().map(String::as_str).unwrap_or("");
    let notes = outcome["notes"].to_string();
    match (outcome["status"].as_str(), outcome["exit_code"].as_i64()) {
        (Some("exited"), Some(127)) => Some(format!(
            "`{program}` was not found in the gate's job (PATH {JOB_PATH}); install it \
             (scripts/setup installs the presets' tools) or fix the command"
        )),
        (Some("exited"), Some(126)) => Some(format!("`{program}` is not executable")),
        (Some("exited"), _) => None,
        (Some("timed_out"), _) => Some(format!("timed out: {notes}")),
        (Some(status), code) => Some(format!(
            "the tool ended with {status} (exit {}): {notes}",
            code.unwrap_or_default()
        )),
        (None, _) => Some("the gate's Outcome has no status".into()),
    }
}

/// A per-gate directory the job's uid can write, bound at `/out`.
fn report_dir() -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix("sandbox-gate-")
        .tempdir()
        .map_err(|error| format!("creating the gate's report directory: {error}"))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .map_err(|error| format!("opening the report directory to the job: {error}"))?;
    Ok(dir)
}

/// A gate that did not run, and why.
pub fn skipped(gate: &GateSpec, why: &str) -> GateResult {
    GateResult {
        status: GateStatus::Skipped,
        ..errored(gate, why.to_owned(), None)
    }
}

fn errored(gate: &GateSpec, why: String, outcome: Option<serde_json::Value>) -> GateResult {
    GateResult {
        name: gate.name.clone(),
        kind: gate.kind,
        status: GateStatus::Error,
        cached: false,
        duration_ms: 0.0,
        metrics: BTreeMap::new(),
        threshold: Threshold {
            min: gate.min.clone(),
            max: gate.max.clone(),
        },
        findings: Vec::new(),
        coverage: Vec::new(),
        reason: Some(why),
        outcome,
    }
}

/// The Outcome with its output cut to the last few KiB: the findings say what matters.
fn trimmed(mut outcome: serde_json::Value) -> serde_json::Value {
    for key in ["stdout", "stderr"] {
        if let Some(text) = outcome[key].as_str() {
            outcome[key] = tail(text).into();
        }
    }
    outcome
}

fn tail(text: &str) -> String {
    let start = text.len().saturating_sub(OUTPUT_KEPT);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].trim().to_owned()
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
