//! `--fix`: each gate's fix command runs in a scratch workspace, the gate runs again on what it
//! left, and the fix is written back only if the gate then passes. One gate at a time: two
//! fixers rewriting the same files at once would race.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use sandbox_runtime::profile::{BackendChoice, CommitPolicy, Lookup, WorkspaceMode};
use sandbox_runtime::{JobSpec, OutputMode, Overrides};

use crate::config::{GateSpec, ProjectConfig};
use crate::events::Unobserved;
use crate::runner::{tool_access, Runner, Selection};
use crate::verdict::GateStatus;

/// What `--fix` did for one gate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FixResult {
    pub gate: String,
    /// Whether the fixed files were written back (the gate passed on them).
    pub committed: bool,
    /// Files the fix changed (written back or not).
    pub changed: Vec<String>,
    pub reason: Option<String>,
}

/// Runs the fix of every selected gate that has one. Must be called while the process has a
/// single thread (the native backend forks): before the gates run, as `sandbox gate` does.
pub fn fix(runner: &Runner, config: &ProjectConfig, selection: &Selection) -> Vec<FixResult> {
    config
        .gates
        .iter()
        .filter(|gate| gate.fix.is_some())
        .filter(|gate| selection.picks(&gate.name))
        .map(|gate| {
            fix_one(runner, config, gate).unwrap_or_else(|why| FixResult {
                gate: gate.name.clone(),
                committed: false,
                changed: Vec::new(),
                reason: Some(why),
            })
        })
        .collect()
}

fn fix_one(runner: &Runner, config: &ProjectConfig, gate: &GateSpec) -> Result<FixResult, String> {
    let command = gate.fix.clone().unwrap_or_default();
    let profile_name = gate.profile.as_deref().unwrap_or(&config.defaults.profile);
    let resolved = Lookup::for_project(&runner.trust)
        .load(profile_name)
        .map_err(|e| e.to_string())?;
    let (binds, mut env) = tool_access(&command);
    env.extend(gate.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let backend = match runner.backend.as_deref() {
        Some("docker") => Some(BackendChoice::Docker),
        Some("auto") => Some(BackendChoice::Auto),
        Some(_) => Some(BackendChoice::Native),
        None => None,
    };
    let overrides = Overrides {
        backend,
        workspace: Some(runner.workspace.clone()),
        workspace_mode: Some(WorkspaceMode::Scratch),
        commit: Some(CommitPolicy::Always),
        timeout: Some(gate.timeout.unwrap_or(config.defaults.timeout)),
        env,
        binds,
        allow_protected: runner.trust.allow_protected.clone(),
        ..Overrides::default()
    };
    let spec = JobSpec::new(&resolved, overrides, command, OutputMode::Capture)
        .map_err(|e| e.to_string())?;
    let (mut outcome, held) = sandbox_runtime::run_holding(&spec).map_err(|e| e.with_causes())?;
    let held = held.ok_or("the fix did not run in a scratch workspace")?;
    let changed: Vec<String> = [
        &outcome.workspace.added,
        &outcome.workspace.modified,
        &outcome.workspace.deleted,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let on_fixed = Runner {
        sandbox: runner.sandbox.clone(),
        workspace: held.view().to_owned(),
        cache: None,
        jobs: 1,
        backend: runner.backend.clone(),
        audit: runner.audit.clone(),
        changes: None,
        trust: runner.trust.clone(),
        redactor: runner.redactor.clone(),
    };
    let verdict = on_fixed.run(
        config,
        &Selection {
            only: vec![gate.name.clone()],
            skip: Vec::new(),
        },
        &Unobserved,
    );
    let status = verdict
        .gates
        .iter()
        .find(|result| result.name == gate.name)
        .map(|result| (result.status, result.reason.clone()));
    let (veto, reason) = match status {
        Some((GateStatus::Pass, _)) => (None, None),
        Some((_, why)) => (
            Some("the gate does not pass after the fix"),
            Some(format!(
                "not written back: the gate does not pass after the fix ({})",
                why.unwrap_or_default()
            )),
        ),
        None => (
            Some("the gate did not run"),
            Some("the gate did not run".into()),
        ),
    };
    held.settle(&mut outcome, veto)
        .map_err(|e| e.with_causes())?;
    let committed = outcome.workspace.committed && veto.is_none();
    // Write-back refused on its own grounds (a protected path, a secret, a cap): say which.
    let reason = reason.or_else(|| {
        (!committed).then(|| {
            let protected = &outcome.workspace.protected;
            if protected.is_empty() {
                format!("not written back: {}", outcome.notes.join("; "))
            } else {
                format!(
                    "not written back: the fix changed protected paths ({}); pass \
                     --allow-protected GLOB to let it",
                    protected.join(", ")
                )
            }
        })
    });
    Ok(FixResult {
        gate: gate.name.clone(),
        committed,
        changed,
        reason,
    })
}
