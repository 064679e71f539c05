//! After a scratch job: what it changed, whether that stays within the caps, whether it holds a
//! secret, and whether it is written back (`commit = always | on-success | never`). Anything
//! over a cap, any change holding a secret's value (in its content, its name or its symlink
//! target), and any change to a protected path is never written back; changes inside `.git`
//! are dropped from the change set altogether (DESIGN §12).

use std::path::Path;
use std::time::Instant;

use crate::error::SandboxError;
use crate::outcome::{LimitKind, Outcome, SecretInFile, Status, SymlinkReport};
use crate::profile::CommitPolicy;
use crate::scratch::Scratch;
use crate::signals::BlockedTerminating;
use crate::spec::JobSpec;
use crate::trust::is_git_path;
use crate::workspace::{commit, ChangeSet, DiffBudget, FileType};

/// What a scratch job left, measured, before anything is written back.
pub struct Assessment {
    changes: ChangeSet,
    /// Why nothing may be written back whatever the policy says (a cap, a secret).
    refused: Option<&'static str>,
}

/// Reads the change set into the Outcome, checks the caps and the secrets, writes `--diff`.
pub fn assess(
    spec: &JobSpec,
    scratch: &Scratch,
    outcome: &mut Outcome,
) -> Result<Assessment, SandboxError> {
    let mut changes = scratch.changes(&spec.workspace)?;
    outcome.notes.extend(scratch.notes.iter().cloned());
    drop_git(&mut changes, outcome);
    report_changes(&changes, scratch, spec, outcome);

    let patch = if spec.diff.is_some() || spec.limits.changed_lines.is_some() {
        let (budget, started) = (DiffBudget::default(), Instant::now());
        let patch = changes
            .patch(&spec.workspace, scratch.view(), budget)
            .map_err(|error| SandboxError::Setup(format!("rendering the patch: {error}")))?;
        outcome.record_patch(&patch, budget, started.elapsed());
        Some(patch)
    } else {
        None
    };

    let caps = caps_exceeded(spec, scratch, &changes, outcome);
    outcome.exceeded(&caps);

    if !spec.secrets.is_empty() {
        outcome.workspace.secret_files = files_with_secrets(spec, scratch.view(), &changes);
        for found in &outcome.workspace.secret_files {
            outcome.notes.push(format!(
                "{} holds the value of {}: the changes are not written back",
                found.path,
                found.secrets.join(", ")
            ));
        }
    }

    if let (Some(path), Some(patch)) = (&spec.diff, &patch) {
        // The patch shows file contents: a secret in a changed file is redacted here too.
        let (text, redactions) = spec.redactor.redact_str(&patch.text);
        outcome.redactions += redactions;
        write_atomically(path, text.as_bytes())?;
    }

    outcome.workspace.protected = changes
        .entries
        .iter()
        .filter(|change| spec.protected.refuses(&change.path))
        .map(|change| change.path.clone())
        .collect();
    if !outcome.workspace.protected.is_empty() {
        outcome.notes.push(format!(
            "the job changed protected paths ({}): they configure the judge or run on the host \
             later, so nothing is written back; an operator who wants them can pass \
             --allow-protected GLOB",
            outcome.workspace.protected.join(", ")
        ));
    }

    let refused = if !caps.is_empty() {
        Some("a limit was exceeded")
    } else if !outcome.workspace.secret_files.is_empty() {
        Some("a changed file holds a secret")
    } else if !outcome.workspace.protected.is_empty() {
        Some("a change touches a protected path")
    } else {
        None
    };
    Ok(Assessment { changes, refused })
}

/// Writes the changes back per the commit policy, unless the assessment refused it or the
/// caller vetoes it (`sandbox check`: a gate failed). Says in the Outcome what happened.
pub fn settle(
    spec: &JobSpec,
    scratch: &Scratch,
    outcome: &mut Outcome,
    assessment: Assessment,
    veto: Option<&'static str>,
) -> Result<(), SandboxError> {
    let Assessment { changes, refused } = assessment;
    let refused = refused.or(veto);
    let succeeded = outcome.status == Status::Exited && outcome.exit_code == 0;
    let wanted = match spec.commit {
        CommitPolicy::Always => true,
        CommitPolicy::OnSuccess => succeeded,
        CommitPolicy::Never => false,
    };
    match (wanted, refused) {
        (false, _) => outcome.notes.push(format!(
            "scratch: nothing written back (commit = {}{})",
            spec.commit,
            if succeeded {
                ""
            } else {
                ", and the job did not succeed"
            }
        )),
        (true, Some(why)) => outcome
            .notes
            .push(format!("scratch: nothing written back: {why}")),
        (true, None) if changes.entries.is_empty() => outcome.workspace.committed = true,
        (true, None) => {
            // A signal now would leave the workspace half written: it waits until we are done.
            let blocked = BlockedTerminating::block()?;
            let report = commit(&changes, scratch.view(), &spec.workspace);
            drop(blocked);
            outcome.workspace.committed =
                report.failed.is_empty() && report.not_attempted.is_empty();
            if !outcome.workspace.committed {
                let note = format!(
                    "scratch: writing back failed for {} of {} changes; see workspace.write_back",
                    report.failed.len() + report.not_attempted.len(),
                    changes.entries.len()
                );
                // The job did its part, the sandbox could not deliver it (a full disk, a
                // workspace changed meanwhile): 0 would tell the caller the work landed.
                if outcome.exit_code == 0 {
                    outcome.refuse(note.clone(), 125, false);
                }
                outcome.notes.push(note);
            }
            outcome.workspace.write_back = Some(report);
        }
    }
    Ok(())
}

/// Takes every change inside a `.git` directory out of the change set: see
/// [`crate::trust::is_git_path`] for why they are dropped instead of refusing the rest.
fn drop_git(changes: &mut ChangeSet, outcome: &mut Outcome) {
    let mut dropped = Vec::new();
    changes.entries.retain(|change| {
        let git = is_git_path(&change.path);
        if git {
            dropped.push(change.path.clone());
        }
        !git
    });
    if !dropped.is_empty() {
        outcome.notes.push(format!(
            "{} changes inside .git are never written back (hooks and config there would run \
             on the host); the job's other changes are unaffected",
            dropped.len()
        ));
    }
    outcome.workspace.dropped = dropped;
}

fn report_changes(changes: &ChangeSet, scratch: &Scratch, spec: &JobSpec, outcome: &mut Outcome) {
    let report = &mut outcome.workspace;
    report.view = Some(scratch.kind());
    report.commit = Some(spec.commit);
    report.added = changes.added();
    report.modified = changes.modified();
    report.deleted = changes.deleted();
    report.mode_changed = changes.mode_changed();
    report.symlinks = changes
        .entries
        .iter()
        .filter_map(|change| {
            Some(SymlinkReport {
                path: change.path.clone(),
                target: change.symlink_target.clone()?,
            })
        })
        .collect();
    report.skipped = changes.skipped.clone();
    report.bytes_added = changes.bytes_added();
    report.files_created = changes.files_created();
    report.change_hash = Some(changes.hash());
}

fn caps_exceeded(
    spec: &JobSpec,
    scratch: &Scratch,
    changes: &ChangeSet,
    outcome: &mut Outcome,
) -> Vec<LimitKind> {
    let limits = &spec.limits;
    let (no_bytes_left, no_inodes_left) = scratch.exhausted();
    let mut caps = Vec::new();
    let mut over = |kind: LimitKind, note: String| {
        caps.push(kind);
        outcome.notes.push(note);
    };
    if no_bytes_left || changes.bytes_added() > limits.disk.0 {
        over(
            LimitKind::Disk,
            format!(
                "the job added {} bytes to its scratch workspace{}; limits.disk is {}",
                changes.bytes_added(),
                if no_bytes_left { " and filled it" } else { "" },
                limits.disk
            ),
        );
    }
    if no_inodes_left || changes.files_created() > limits.files {
        over(
            LimitKind::Files,
            format!(
                "the job created {} files in its scratch workspace{}; limits.files is {}",
                changes.files_created(),
                if no_inodes_left {
                    " and ran out of inodes"
                } else {
                    ""
                },
                limits.files
            ),
        );
    }
    if let Some(cap) = limits.changed_files {
        if changes.changed_files() > cap {
            over(
                LimitKind::ChangedFiles,
                format!(
                    "the job changed {} files; limits.changed_files is {cap}",
                    changes.changed_files()
                ),
            );
        }
    }
    if let Some(cap) = limits.changed_lines {
        let lines = outcome.workspace.lines_added.unwrap_or_default()
            + outcome.workspace.lines_removed.unwrap_or_default();
        let uncounted = outcome.workspace.not_diffed.len();
        if lines > cap {
            over(
                LimitKind::ChangedLines,
                format!("the job changed {lines} lines; limits.changed_lines is {cap}"),
            );
        } else if uncounted > 0 {
            // Fail closed: the lines of a file that was not diffed are unknown.
            over(
                LimitKind::ChangedLines,
                format!(
                    "{uncounted} changed file(s) not diffed, so the changed lines cannot be \
                     held to limits.changed_lines ({cap})"
                ),
            );
        }
    }
    caps
}

/// Changed entries (in the view) that hold a secret's value or an encoded form of it: in their
/// content, their path (a name is content too: a job can leak through `mkdir "$TOKEN"`, also
/// split across directories as `ab/cd`), or a symlink's target.
fn files_with_secrets(spec: &JobSpec, view: &Path, changes: &ChangeSet) -> Vec<SecretInFile> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    changes
        .entries
        .iter()
        .filter_map(|change| {
            let mut bytes = Vec::new();
            if change.file_type == FileType::File && change.bytes > 0 {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(view.join(&change.path))
                    .and_then(|mut file| file.read_to_end(&mut bytes))
                    .ok()?;
            }
            for name in [
                Some(change.path.clone()),
                Some(change.path.replace('/', "")),
                change.symlink_target.clone(),
            ]
            .into_iter()
            .flatten()
            {
                bytes.push(b'\n');
                bytes.extend_from_slice(name.as_bytes());
            }
            let secrets = spec.redactor.find(&bytes);
            (!secrets.is_empty()).then(|| SecretInFile {
                path: change.path.clone(),
                secrets,
            })
        })
        .collect()
}

/// Writes `bytes` to `path` through a temporary file beside it, so a reader never sees half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let io = |what: &str, path: &Path| {
        let (what, path) = (what.to_owned(), path.to_owned());
        move |source| SandboxError::Io { what, path, source }
    };
    std::fs::write(&partial, bytes).map_err(io("write", &partial))?;
    std::fs::rename(&partial, path).map_err(io("rename onto", path))
}
