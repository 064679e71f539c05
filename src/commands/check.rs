//! `sandbox check`: the job in a scratch workspace, the gates on the view it left, and its
//! changes written back only when the job and every gate passed.

use std::sync::Arc;
use std::time::Instant;

use sandbox_gates::baseline;
use sandbox_gates::config::ProjectConfig;
use sandbox_gates::report::{self, Context};
use sandbox_gates::runner::Selection;
use sandbox_gates::{Verdict, VerdictStatus};
use sandbox_runtime::profile::WorkspaceMode;
use sandbox_runtime::{audit, JobSpec, Outcome, OutputMode, Status};

use super::exec::{profile_and_overrides, redacted};
use super::gate::{self, refuse, CONFIG_ERROR, INFRASTRUCTURE_ERROR};
use super::watch::Watcher;
use crate::cli::{CheckArgs, GateSelection};

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
    let audit_log = match &exec.audit {
        Some(path) => path.clone(),
        None => audit::default_path()?,
    };
    audit::check_writable(&audit_log)?;

    // The job first, while this process has one thread (the native backend forks).
    let (mut outcome, held) = match sandbox_runtime::run_holding(&spec) {
        Ok(ran) => ran,
        Err(error) => {
            let error = redacted(&spec, error);
            return Ok(refuse(INFRASTRUCTURE_ERROR, &format!("{error:#}")));
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
        held.settle(&mut outcome, veto)?;
    }
    let appended = audit::append(&audit_log, &audit::record_for(&outcome))?;
    if !job_passed {
        verdict.status = VerdictStatus::Fail;
    }
    verdict.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    verdict.job = Some(serde_json::to_value(&outcome)?);
    let context = Context {
        // The findings are on the job's view; once it is gone, the project has those lines
        // only if the changes were written back.
        workspace: outcome.workspace.committed.then(|| spec.workspace.clone()),
        tools,
        colour: false,
        redactor: spec.redactor.clone(),
    };
    if let Some(dir) = &bundle {
        let record = audit::read(&audit_log)?
            .into_iter()
            .filter_map(|entry| entry.record.ok())
            .find(|record| record["hash"] == appended.hash.as_str());
        let contents = sandbox_gates::bundle::Contents {
            verdict: &verdict,
            summary_markdown: &report::render(report::Format::Markdown, &verdict, &context)?,
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
