//! `sandbox gate`, `sandbox init` and the hidden `sandbox gate-builtin`: a config (or the
//! detected one) -> the runner -> one Verdict, printed, with exit codes 0 pass, 1 fail,
//! 2 configuration error, 3 the gates could not run.

use std::path::{Path, PathBuf};

use sandbox_gates::builtin::Changes;
use sandbox_gates::cache::Cache;
use sandbox_gates::config::{self, ProjectConfig};
use sandbox_gates::runner::{Runner, Selection};
use sandbox_gates::{GateStatus, Verdict};

use super::watch::Watcher;
use super::{print_json, print_text};
use crate::cli::{BackendArg, GateArgs, OutputFormat};

pub(super) const CONFIG_ERROR: u8 = 2;
pub(super) const INFRASTRUCTURE_ERROR: u8 = 3;

pub fn run(args: GateArgs) -> anyhow::Result<u8> {
    let workspace = match workspace(args.workspace.as_deref()) {
        Ok(workspace) => workspace,
        Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
    };
    let config = match load(&workspace, args.gates.config.as_deref()) {
        Ok(config) => config,
        Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
    };
    for name in args.gates.only.iter().chain(&args.gates.skip) {
        if !config.gates.iter().any(|gate| gate.name == *name) {
            let names: Vec<&str> = config.gates.iter().map(|g| g.name.as_str()).collect();
            return Ok(refuse(
                CONFIG_ERROR,
                &format!(
                    "no gate named `{name}`; the gates are: {}",
                    names.join(", ")
                ),
            ));
        }
    }
    let backend = backend_name(args.backend);
    let jobs = args.gates.jobs.or(config.defaults.jobs);
    // --staged: the gates run on the index written out to a directory of its own.
    let staged = match args
        .staged
        .then(|| sandbox_gates::staged::export(&workspace))
        .transpose()
    {
        Ok(staged) => staged,
        Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
    };
    let tree = staged
        .as_ref()
        .map(|dir| dir.path().to_owned())
        .unwrap_or_else(|| workspace.clone());
    // The cache belongs to the project, also when the gates read an export of its index.
    let cache = project_cache(&workspace, args.gates.no_cache);
    let mut runner = match runner(tree, cache, jobs, backend, args.audit) {
        Ok(runner) => runner,
        Err(message) => return Ok(refuse(INFRASTRUCTURE_ERROR, &message)),
    };
    if let Some(base) = &args.changed_since {
        // Asked of the real repository: an exported index has no history.
        let asking = Runner {
            workspace: workspace.clone(),
            cache: None,
            ..runner_like(&runner)
        };
        match asking.changes_since(base) {
            Ok(changes) => runner.changes = Some(changes),
            Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
        }
    }
    let selection = Selection {
        only: args.gates.only,
        skip: args.gates.skip,
    };
    // Before any gate runs: the fixes run their jobs in this process, which must have one
    // thread then (the native backend forks).
    let fixes = if args.fix {
        sandbox_gates::fix::fix(&runner, &config, &selection)
    } else {
        Vec::new()
    };
    let watcher = Watcher::for_gates(args.events, &config, &selection);
    let mut verdict = runner.run(&config, &selection, &watcher);
    verdict.fixes = fixes;
    watcher.verdict(&verdict);
    report(&verdict, args.output, args.result.as_deref())
}

/// `--backend` as the runner passes it on to each gate job.
pub(super) fn backend_name(backend: Option<BackendArg>) -> Option<String> {
    backend.map(|backend| {
        match backend {
            BackendArg::Native => "native",
            BackendArg::Auto => "auto",
            BackendArg::Docker => "docker",
        }
        .to_owned()
    })
}

/// Runs the gates of `workspace` (a project, or a scratch job's view, or an exported index)
/// with our own binary, caching in `cache` (the project's).
pub(super) fn runner(
    workspace: PathBuf,
    cache: Cache,
    jobs: Option<usize>,
    backend: Option<String>,
    audit: Option<PathBuf>,
) -> Result<Runner, String> {
    let sandbox = std::env::current_exe()
        .map_err(|error| format!("cannot find our own binary to run the gates with: {error}"))?;
    Ok(Runner {
        sandbox,
        cache: Some(cache),
        jobs: jobs.unwrap_or_else(cores),
        backend,
        audit,
        workspace,
        changes: None,
    })
}

/// `.sandbox/cache` of a project; with `--no-cache` written but not read.
pub(super) fn project_cache(workspace: &Path, no_cache: bool) -> Cache {
    let dir = workspace.join(".sandbox/cache");
    if no_cache {
        Cache::refreshing(dir)
    } else {
        Cache::new(dir)
    }
}

/// A runner with `runner`'s binary, backend and audit log, for a one-off job.
fn runner_like(runner: &Runner) -> Runner {
    Runner {
        sandbox: runner.sandbox.clone(),
        workspace: runner.workspace.clone(),
        cache: None,
        jobs: 1,
        backend: runner.backend.clone(),
        audit: runner.audit.clone(),
        changes: None,
    }
}

/// Inside a gate job: the changes of the workspace since `base`, as JSON.
pub fn changes(base: &str) -> anyhow::Result<u8> {
    match Changes::from_git(Path::new("."), base) {
        Ok(changes) => {
            print_json(&changes)?;
            Ok(0)
        }
        Err(error) => Ok(refuse(INFRASTRUCTURE_ERROR, &error.to_string())),
    }
}

/// Prints the Verdict (and writes `--result`); its exit code.
pub(super) fn report(
    verdict: &Verdict,
    output: OutputFormat,
    result: Option<&Path>,
) -> anyhow::Result<u8> {
    if let Some(path) = result {
        let text = serde_json::to_string_pretty(verdict)?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)?;
    }
    match output {
        OutputFormat::Json => print_json(verdict)?,
        OutputFormat::Text => print_text(&summary(verdict))?,
    }
    Ok(verdict.exit_code())
}

pub fn init(workspace: Option<PathBuf>, force: bool) -> anyhow::Result<u8> {
    let workspace = match self::workspace(workspace.as_deref()) {
        Ok(workspace) => workspace,
        Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
    };
    let path = workspace.join(config::CONFIG_FILE);
    if path.exists() && !force {
        return Ok(refuse(
            CONFIG_ERROR,
            &format!("{} exists; pass --force to replace it", path.display()),
        ));
    }
    std::fs::write(&path, sandbox_gates::detect::init_text(&workspace))?;
    print_text(&format!("wrote {}\n", path.display()))?;
    Ok(0)
}

/// Inside a gate job: runs built-in gate `name` with the options the runner wrote, and prints
/// what it found as JSON for the runner to read.
pub fn builtin(name: &str, options: &Path) -> anyhow::Result<u8> {
    let input = serde_json::from_slice(&std::fs::read(options)?)?;
    match sandbox_gates::runner::run_builtin(name, input, Path::new(".")) {
        Ok(output) => {
            print_json(&output)?;
            Ok(0)
        }
        Err(why) => Ok(refuse(INFRASTRUCTURE_ERROR, &why)),
    }
}

pub(super) fn workspace(given: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match given {
        Some(dir) => dir.to_owned(),
        None => std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?,
    };
    std::fs::canonicalize(&dir).map_err(|e| format!("the workspace {}: {e}", dir.display()))
}

pub(super) fn load(workspace: &Path, given: Option<&Path>) -> Result<ProjectConfig, String> {
    let path = given
        .map(Path::to_owned)
        .unwrap_or_else(|| workspace.join(config::CONFIG_FILE));
    if given.is_none() && !path.exists() {
        return Ok(sandbox_gates::detect::detect(workspace));
    }
    config::load(&path).map_err(|error| error.to_string())
}

pub(super) fn refuse(code: u8, message: &str) -> u8 {
    eprintln!("sandbox: {message}");
    code
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// The terminal view: a table of gates, then the worst findings with file:line.
fn summary(verdict: &Verdict) -> String {
    let mut text = format!(
        "{:<16} {:<9} {:<8} {:>8} {:>9}\n",
        "gate", "kind", "status", "findings", "time"
    );
    for gate in &verdict.gates {
        let status = serde_json::to_value(gate.status).unwrap_or_default();
        let kind = serde_json::to_value(gate.kind).unwrap_or_default();
        text.push_str(&format!(
            "{:<16} {:<9} {:<8} {:>8} {:>8.1}s{}\n",
            gate.name,
            kind.as_str().unwrap_or(""),
            status.as_str().unwrap_or(""),
            gate.findings.len(),
            gate.duration_ms / 1000.0,
            if gate.cached { " (cached)" } else { "" }
        ));
    }
    for gate in verdict.gates.iter().filter(|g| g.reason.is_some()) {
        if gate.status != GateStatus::Pass {
            text.push_str(&format!(
                "\n{}: {}",
                gate.name,
                gate.reason.as_deref().unwrap_or("")
            ));
        }
    }
    let mut findings: Vec<_> = verdict.gates.iter().flat_map(|g| &g.findings).collect();
    findings.sort_by_key(|f| f.severity);
    if !findings.is_empty() {
        text.push_str("\n\nfindings (worst first):\n");
    }
    for finding in findings.iter().take(20) {
        let place = match (&finding.path, finding.line) {
            (Some(path), Some(line)) => format!("{path}:{line}"),
            (Some(path), None) => path.clone(),
            _ => String::new(),
        };
        text.push_str(&format!(
            "  {place} {} {} [{}]\n",
            finding.rule, finding.message, finding.gate
        ));
    }
    if findings.len() > 20 {
        text.push_str(&format!(
            "  ... and {} more (--output json)\n",
            findings.len() - 20
        ));
    }
    for fix in &verdict.fixes {
        text.push_str(&format!(
            "\nfix {}: {} ({} file(s) changed){}",
            fix.gate,
            if fix.committed {
                "written back"
            } else {
                "not written back"
            },
            fix.changed.len(),
            fix.reason
                .as_deref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        ));
    }
    if let Some(job) = &verdict.job {
        text.push_str(&format!(
            "\njob: {} (exit {}), changes written back: {}\n",
            job["status"].as_str().unwrap_or(""),
            job["exit_code"],
            job["workspace"]["committed"]
        ));
    }
    let status = serde_json::to_value(verdict.status).unwrap_or_default();
    text.push_str(&format!(
        "\nverdict: {} ({} passed, {} failed, {} errors, {} skipped)\n",
        status.as_str().unwrap_or(""),
        verdict.summary.passed,
        verdict.summary.failed,
        verdict.summary.errors,
        verdict.summary.skipped
    ));
    text
}
