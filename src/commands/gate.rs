//! `sandbox gate`, `sandbox init` and the hidden `sandbox gate-builtin`: a config (or the
//! detected one) -> the runner -> one Verdict, printed, with exit codes 0 pass, 1 fail,
//! 2 configuration error, 3 the gates could not run.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use sandbox_gates::builtin::Changes;
use sandbox_gates::cache::Cache;
use sandbox_gates::config::{self, ProjectConfig};
use sandbox_gates::report::{self, Context, Format};
use sandbox_gates::runner::{Runner, Selection};
use sandbox_gates::Verdict;
use sandbox_runtime::secrets::{Redactor, Secret};
use sandbox_runtime::trust::{Trust, TrustLevel, TrustReport};

use super::watch::Watcher;
use super::{print_json, print_text};
use crate::cli::{BackendArg, GateArgs, OutputFormat, ReportArgs};

pub(super) const CONFIG_ERROR: u8 = 2;
pub(super) const INFRASTRUCTURE_ERROR: u8 = 3;

pub fn run(args: GateArgs) -> anyhow::Result<u8> {
    let workspace = match workspace(args.workspace.as_deref()) {
        Ok(workspace) => workspace,
        Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
    };
    if let Err(message) = report_dirs(&args.report) {
        return Ok(refuse(CONFIG_ERROR, &message));
    }
    let secrets: Result<Vec<Secret>, _> =
        args.secret.iter().map(|f| Secret::from_flag(f)).collect();
    let redactor = match secrets {
        Ok(secrets) => Redactor::new(&secrets),
        Err(error) => return Ok(refuse(CONFIG_ERROR, &error.to_string())),
    };
    let trust = super::decide_trust(&workspace, &args.trust)?;
    let (config, trust_report) = match load(&workspace, args.gates.config.as_deref(), &trust) {
        Ok(loaded) => loaded,
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
    let selection = Selection {
        only: args.gates.only,
        skip: args.gates.skip,
    };
    if let Some(missing) = config.unready(&workspace, &selection) {
        return Ok(refuse(CONFIG_ERROR, &missing));
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
    // The project's entries, also when the gates read an export of its index.
    let cache = project_cache(&workspace, args.gates.no_cache);
    let mut runner = match runner(tree, cache, jobs, backend, args.audit, trust, redactor) {
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
    verdict.trust = trust_report;
    let context = Context {
        workspace: Some(runner.workspace.clone()),
        tools: report::tools(&config, runner.cache.as_ref()),
        colour: false,
        redactor: runner.redactor.clone(),
    };
    watcher.verdict(&verdict);
    report(
        &verdict,
        context,
        &args.report,
        args.output,
        args.result.as_deref(),
    )
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
/// with our own binary, caching in `cache` (the project's), redacting `redactor`'s secrets.
pub(super) fn runner(
    workspace: PathBuf,
    cache: Cache,
    jobs: Option<usize>,
    backend: Option<String>,
    audit: Option<PathBuf>,
    trust: Trust,
    redactor: Redactor,
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
        trust,
        redactor,
    })
}

/// The operator's cache of a project's gate results (never in the project: it is what is
/// judged); with `--no-cache` written but not read.
pub(super) fn project_cache(workspace: &Path, no_cache: bool) -> Cache {
    Cache::for_project(workspace, no_cache)
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
        trust: runner.trust.clone(),
        redactor: runner.redactor.clone(),
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

/// Writes `--result` and every `--report` file, appends the GitHub step summary for
/// `--format github`, and prints the Verdict in `--format` (or the older `--output`); the exit
/// code, 3 when a report could not be written (the caller asked for a file it does not have).
pub(super) fn report(
    verdict: &Verdict,
    mut context: Context,
    args: &ReportArgs,
    output: Option<OutputFormat>,
    result: Option<&Path>,
) -> anyhow::Result<u8> {
    let terminal = std::io::stdout().is_terminal();
    let format = args
        .format
        .or(output.map(|output| match output {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        }))
        .unwrap_or(if terminal { Format::Text } else { Format::Json });
    let files = result
        .map(|path| (Format::Json, path))
        .into_iter()
        .chain(args.reports.iter().map(|r| (r.format, r.path.as_path())));
    let mut failed = Vec::new();
    for (format, path) in files {
        let written = report::render(format, verdict, &context)
            .and_then(|text| report::write_file(path, &text));
        if let Err(error) = written {
            failed.push(format!(
                "the {format} report: {:#}",
                anyhow::Error::from(error)
            ));
        }
    }
    if format == Format::Github {
        if let Err(message) = append_step_summary(verdict, &context) {
            failed.push(message);
        }
    }
    // https://no-color.org: set and not empty means no colour.
    context.colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    print_text(&report::render(format, verdict, &context)?)?;
    if failed.is_empty() {
        Ok(verdict.exit_code())
    } else {
        Ok(refuse(INFRASTRUCTURE_ERROR, &failed.join("\nsandbox: ")))
    }
}

/// Appends the Markdown summary to the file GitHub Actions names in $GITHUB_STEP_SUMMARY
/// (other steps' summaries are in it too: never truncated).
fn append_step_summary(verdict: &Verdict, context: &Context) -> Result<(), String> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) else {
        return Ok(());
    };
    let text = report::render(Format::Markdown, verdict, context).map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("\n{text}").as_bytes()))
        .map_err(|error| {
            format!(
                "appending the step summary to $GITHUB_STEP_SUMMARY ({}): {error}",
                Path::new(&path).display()
            )
        })
}

/// Each `--report` file's directory must exist before the gates run, not after minutes of them.
pub(super) fn report_dirs(args: &ReportArgs) -> Result<(), String> {
    for file in &args.reports {
        let dir = match file.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(format!(
                "--report {}={}: there is no directory {}",
                file.format,
                file.path.display(),
                dir.display()
            ));
        }
        if file.path.is_dir() {
            return Err(format!(
                "--report {}={}: that is a directory",
                file.format,
                file.path.display()
            ));
        }
    }
    Ok(())
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

/// The project's gates (`--config`, `sandbox.toml`, or detected) read as project
/// configuration, and which trust that was.
pub(super) fn load(
    workspace: &Path,
    given: Option<&Path>,
    trust: &Trust,
) -> Result<(ProjectConfig, TrustReport), String> {
    let mut report = TrustReport {
        project: match trust.trusted {
            Some(_) => TrustLevel::Trusted,
            None => TrustLevel::Untrusted,
        },
        reason: trust.trusted.clone(),
        ..TrustReport::default()
    };
    match config::load_project(workspace, given, trust) {
        Ok(Some((config, project_file))) => {
            report.project_files.extend(project_file);
            Ok((config, report))
        }
        Ok(None) => {
            let detected = sandbox_gates::detect::detect(workspace);
            if !trust.is_trusted() {
                config::check_gate_profiles("(the detected gates)", "", &detected, trust)
                    .map_err(|error| error.to_string())?;
            }
            Ok((detected, report))
        }
        Err(error) => Err(format!("{:#}", anyhow::Error::from(error))),
    }
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
