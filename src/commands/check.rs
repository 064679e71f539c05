//! `sandbox check`: the job in a scratch workspace, the gates on the view it left, and its
//! changes written back only when the job and every gate passed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sandbox_gates::baseline;
use sandbox_gates::config::ProjectConfig;
use sandbox_gates::report::{self, Context, Tool};
use sandbox_gates::runner::Selection;
use sandbox_gates::{GateResult, Verdict, VerdictStatus};
use sandbox_runtime::profile::WorkspaceMode;
use sandbox_runtime::{audit, JobSpec, Outcome, OutputMode, Status};

use super::exec::{
    flag_redactor, profile_and_overrides, recorded_failure, writable_audit_log, Refusal,
};
use super::gate::{self, refuse, CONFIG_ERROR, INFRASTRUCTURE_ERROR};
use super::watch::Watcher;
use crate::cli::{CheckArgs, GateSelection, OutputFormat, ReportArgs};

/// `sandbox check`. A job the sandbox could not run still gets a Verdict (DESIGN section 12):
/// status `error`, exit 3, its `job` the Outcome saying why and whether a retry may help.
pub fn run_reporting(args: CheckArgs) -> anyhow::Result<u8> {
    let refused = Refused {
        report: args.report.clone(),
        output: args.exec.output,
        result: args.exec.result.clone(),
        started: Instant::now(),
    };
    let profile = args.exec.profile.clone();
    let command = args.exec.command.clone();
    let workspace = args.exec.workspace.clone();
    let redactor = flag_redactor(&args.exec);
    Ok(run(args).unwrap_or_else(|error| {
        refused.verdict(
            Outcome::unresolved(&profile, command, workspace.as_deref()),
            Refusal::new(error, Some(&redactor)),
            Vec::new(),
            BTreeMap::new(),
        )
    }))
}

/// How `check` reports a job it could not run, known before anything can fail.
struct Refused {
    report: ReportArgs,
    output: Option<OutputFormat>,
    result: Option<PathBuf>,
    started: Instant,
}

impl Refused {
    /// Says why on stderr as ever, and reports the Verdict: status `error`, the gates as given
    /// (skipped, or none when the project was not read yet), `job` the refused Outcome.
    fn verdict(
        &self,
        mut job: Outcome,
        refusal: Refusal,
        gates: Vec<GateResult>,
        tools: BTreeMap<String, Tool>,
    ) -> u8 {
        eprintln!("sandbox: {}", refusal.message);
        refusal.mark(&mut job);
        let elapsed = self.started.elapsed().as_secs_f64() * 1000.0;
        // An Outcome always serialises: it has no maps with non-string keys.
        let mut verdict = Verdict::new(gates, elapsed, serde_json::to_value(&job).ok());
        verdict.status = VerdictStatus::Error;
        let context = Context {
            workspace: None,
            tools,
            colour: false,
            redactor: Default::default(),
        };
        gate::report(
            &verdict,
            context,
            &self.report,
            self.output,
            self.result.as_deref(),
        )
        .unwrap_or_else(unreported)
    }
}

/// A Verdict that could not be printed or written: exit 3, the reason on stderr.
fn unreported(error: anyhow::Error) -> u8 {
    refuse(INFRASTRUCTURE_ERROR, &format!("{error:#}"))
}

/// Fails only before the job runs; from there on a refusal is reported with the spec's Outcome.
pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let CheckArgs {
        gates,
        report,
        exec,
        bundle,
        note,
    } = args;
    if let Err(message) = gate::report_dirs(&report) {
        return Ok(refuse(CONFIG_ERROR, &message));
    }
    let GateSelection {
        config,
        only,
        skip,
        no_cache,
        jobs,
    } = gates;
    let (resolved, mut overrides, trust) = profile_and_overrides(&exec)?;
    if overrides
        .workspace_mode
        .is_some_and(|mode| mode != WorkspaceMode::Scratch)
    {
        return Ok(refuse(
            CONFIG_ERROR,
            "sandbox check runs the job in a scratch workspace; drop --workspace-mode",
        ));
    }
    overrides.workspace_mode = Some(WorkspaceMode::Scratch);
    if let Some(dir) = &bundle {
        if let Err(error) = sandbox_gates::bundle::prepare(dir) {
            return Ok(refuse(CONFIG_ERROR, &error.to_string()));
        }
        if let Some(note) = note.as_deref().filter(|note| !note.is_file()) {
            return Ok(refuse(
                CONFIG_ERROR,
                &format!("--note {}: no such file", note.display()),
            ));
        }
        // The job writes its patch straight into the bundle unless --diff puts it elsewhere.
        if overrides.diff.is_none() {
            overrides.diff = Some(dir.join(sandbox_gates::bundle::PATCH));
        }
    }
    let mut spec = JobSpec::new(
        &resolved,
        overrides,
        exec.command.clone(),
        OutputMode::Capture,
    )?;
    let (project, trust_report) = match gate::load(&spec.workspace, config.as_deref(), &trust) {
        Ok(loaded) => loaded,
        Err(message) => return Ok(refuse(CONFIG_ERROR, &message)),
    };
    let selection = Selection { only, skip };
    let watcher = Arc::new(Watcher::for_gates(exec.events, &project, &selection));
    spec.observe(watcher.clone());
    let refused = Refused {
        report: report.clone(),
        output: exec.output,
        result: exec.result.clone(),
        started,
    };
    let skipped = || {
        project
            .gates
            .iter()
            .map(|gate| sandbox_gates::runner::skipped(gate, "the job could not run"))
            .collect()
    };
    let refusal = |error: anyhow::Error| Refusal::new(error, Some(&spec.redactor));
    let audit_log = match writable_audit_log(exec.audit.clone()) {
        Ok(path) => path,
        Err(error) => {
            let tools = report::tools(&project, None);
            return Ok(refused.verdict(Outcome::failed(&spec), refusal(error), skipped(), tools));
        }
    };

    // The job first, while this process has one thread (the native backend forks).
    let (mut outcome, held) = match sandbox_runtime::run_holding(&spec) {
        Ok(ran) => ran,
        Err(error) => {
            let (failed, refusal) = recorded_failure(&spec, &audit_log, error);
            let tools = report::tools(&project, None);
            return Ok(refused.verdict(failed, refusal, skipped(), tools));
        }
    };
    let job_passed = outcome.status == Status::Exited && outcome.exit_code == 0;
    let (gates, tools) = match (&held, job_passed) {
        (Some(held), true) => {
            let judging = match judge_with_base(&spec, &outcome, &project, held.view()) {
                Ok(judging) => judging,
                Err(message) => return Ok(refuse(INFRASTRUCTURE_ERROR, &message)),
            };
            // Results are cached in the project, not in the view that is about to go.
            let runner = match gate::runner(
                held.view().to_owned(),
                gate::project_cache(&spec.workspace, no_cache),
                jobs.or(project.defaults.jobs),
                gate::backend_name(exec.backend),
                exec.audit.clone(),
                trust.clone(),
                spec.redactor.clone(),
            ) {
                Ok(runner) => runner,
                Err(message) => return Ok(refuse(INFRASTRUCTURE_ERROR, &message)),
            };
            let mut gates = runner.run(&project, &selection, watcher.as_ref()).gates;
            if !judging.is_empty() {
                gates.insert(0, baseline::findings_gate(&judging));
            }
            (gates, report::tools(&project, runner.cache.as_ref()))
        }
        _ => (
            project
                .gates
                .iter()
                .map(|gate| sandbox_gates::runner::skipped(gate, "the job did not succeed"))
                .collect(),
            report::tools(&project, None),
        ),
    };
    let mut verdict = Verdict::new(gates, 0.0, None);
    verdict.trust = trust_report;
    let veto = if !job_passed {
        Some("the job did not succeed")
    } else if verdict.status != VerdictStatus::Pass {
        Some("a gate did not pass")
    } else {
        None
    };
    if let Some(held) = held {
        if let Err(error) = held.settle(&mut outcome, veto) {
            // What the job did and what the gates found stay in the Verdict.
            let refusal = refusal(error.into());
            refusal.mark(&mut outcome);
            let _ = audit::append(&audit_log, &audit::record_for(&outcome));
            return Ok(refused.verdict(outcome, refusal, verdict.gates, tools));
        }
    }
    let appended = match audit::append(&audit_log, &audit::record_for(&outcome)) {
        Ok(appended) => appended,
        Err(error) => {
            return Ok(refused.verdict(outcome, refusal(error.into()), verdict.gates, tools))
        }
    };
    if !job_passed {
        verdict.status = VerdictStatus::Fail;
    }
    verdict.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Past this point the job ran and its changes are settled: a failure to report is exit 3,
    // never a refusal of the job.
    match serde_json::to_value(&outcome) {
        Ok(job) => verdict.job = Some(job),
        Err(error) => return Ok(unreported(error.into())),
    }
    let context = Context {
        // The findings are on the job's view; once it is gone, the project has those lines
        // only if the changes were written back.
        workspace: outcome.workspace.committed.then(|| spec.workspace.clone()),
        tools,
        colour: false,
        redactor: spec.redactor.clone(),
    };
    if let Some(dir) = &bundle {
        let record = match audit::read(&audit_log) {
            Ok(entries) => entries
                .into_iter()
                .filter_map(|entry| entry.record.ok())
                .find(|record| record["hash"] == appended.hash.as_str()),
            Err(error) => return Ok(unreported(error.into())),
        };
        let summary = match report::render(report::Format::Markdown, &verdict, &context) {
            Ok(summary) => summary,
            Err(error) => return Ok(unreported(error.into())),
        };
        let contents = sandbox_gates::bundle::Contents {
            verdict: &verdict,
            summary_markdown: &summary,
            patch_elsewhere: exec.diff.as_deref(),
            audit_record: record,
            audit_log: Some(&audit_log),
            note: note.as_deref(),
        };
        if let Err(error) = sandbox_gates::bundle::write(dir, &contents) {
            return Ok(refuse(INFRASTRUCTURE_ERROR, &error.to_string()));
        }
    }
    watcher.verdict(&verdict);
    gate::report(
        &verdict,
        context,
        &report,
        exec.output,
        exec.result.as_deref(),
    )
    .or_else(|error| Ok(unreported(error)))
}

/// Puts the configuration the gates read back to the base tree's in the job's view (DESIGN
/// §12), with what the job did inside `.git`; returns the paths the job may not change, each a
/// finding that fails the verdict.
fn judge_with_base(
    spec: &JobSpec,
    outcome: &Outcome,
    project: &ProjectConfig,
    view: &std::path::Path,
) -> Result<Vec<String>, String> {
    let report = &outcome.workspace;
    let changed: Vec<String> = [
        &report.added,
        &report.modified,
        &report.deleted,
        &report.mode_changed,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let judging = baseline::judging_changes(
        project,
        &spec.workspace,
        &changed,
        &report.protected,
        &spec.protected,
    );
    let mut restore = judging.clone();
    if !report.dropped.is_empty() {
        restore.push(".git".to_owned());
    }
    if restore.is_empty() {
        return Ok(judging);
    }
    let restored = sandbox_runtime::workspace::restore(&spec.workspace, view, &restore)
        .map_err(|error| format!("putting the base configuration back in the view: {error}"))?;
    if let Some(failure) = restored.failed.first() {
        return Err(format!(
            "putting the base configuration back in the view: {}: {}",
            failure.path, failure.error
        ));
    }
    if let Some(why) = restored.aborted {
        return Err(format!(
            "putting the base configuration back in the view: {why}"
        ));
    }
    Ok(judging)
}
