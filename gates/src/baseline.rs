//! `sandbox check` judges a change with the configuration its base tree had (DESIGN §12): the
//! job's own edits to the tools' configs and ignore files (an exclude in `.bandit`, the changed
//! file appended to `.gitignore`, a `[lints]` table that allows everything) would otherwise
//! decide its own verdict. Such edits are put back to the base version in the job's view before
//! the gates run, and each is a finding that fails the verdict unless the operator allows it.

use std::path::Path;

use sandbox_runtime::trust::Protected;

use crate::config::ProjectConfig;
use crate::finding::{Finding, Severity};
use crate::presets::GateKind;
use crate::verdict::{GateResult, GateStatus, Threshold};

/// The gate that carries the findings.
pub const GATE: &str = "trust";

/// Ignore and attribute files: they decide which files every tool reads.
const IGNORE_FILES: [&str; 3] = [".gitignore", ".ignore", ".gitattributes"];

/// Of the `changed` paths, those that configure the judge and that the operator does not allow:
/// the protected paths the job's Outcome already lists, every config file a gate reads (by
/// name, at any depth, as tools find them), ignore files, and files a gate names in its
/// command line (`bandit -c bandit.yml`) as they exist in `base`.
pub fn judging_changes(
    config: &ProjectConfig,
    base: &Path,
    changed: &[String],
    protected_changes: &[String],
    protected: &Protected,
) -> Vec<String> {
    let mut names: Vec<&str> = IGNORE_FILES.to_vec();
    let mut named_in_args: Vec<&str> = Vec::new();
    for gate in &config.gates {
        names.extend(
            gate.config_files
                .iter()
                .map(|file| file.rsplit('/').next().unwrap_or(file)),
        );
        named_in_args.extend(
            gate.command
                .iter()
                .map(|arg| arg.rsplit_once('=').map(|(_, value)| value).unwrap_or(arg))
                .filter(|arg| !arg.starts_with('-') && !arg.is_empty())
                .filter(|arg| base.join(arg).is_file()),
        );
    }
    let mut found: Vec<String> = changed
        .iter()
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or(path);
            names.contains(&name) || named_in_args.contains(&path.as_str())
        })
        .filter(|path| !protected.allows(path))
        .chain(protected_changes)
        .cloned()
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A failing gate with one finding per path the job may not change.
pub fn findings_gate(paths: &[String]) -> GateResult {
    let findings: Vec<Finding> = paths
        .iter()
        .map(|path| {
            let mut finding = Finding::new(
                "config-changed",
                Severity::Error,
                format!(
                    "the job changed {path}, which configures how the change is judged or runs \
                     on the host later; the gates used the base version, and nothing is \
                     written back (an operator can allow it: --allow-protected '{path}')"
                ),
            )
            .at(path.clone(), None, None);
            finding.seal(GATE);
            finding
        })
        .collect();
    GateResult {
        name: GATE.into(),
        kind: GateKind::Policy,
        status: GateStatus::Fail,
        cached: false,
        duration_ms: 0.0,
        metrics: Default::default(),
        threshold: Threshold {
            min: Default::default(),
            max: Default::default(),
        },
        reason: Some(format!(
            "the job changed {} protected or judging configuration path(s)",
            findings.len()
        )),
        findings,
        coverage: Vec::new(),
        outcome: None,
    }
}
