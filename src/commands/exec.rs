//! `sandbox exec`: profile + flags -> JobSpec -> Outcome -> exit code.

use std::sync::Arc;

use anyhow::Context;
use sandbox_runtime::audit;
use sandbox_runtime::profile::{
    BackendChoice, CommitPolicy, Lookup, NetworkMode, ResolvedProfile, WorkspaceMode,
};
use sandbox_runtime::secrets::Secret;
use sandbox_runtime::spec::Bind;
use sandbox_runtime::trust::Trust;
use sandbox_runtime::{JobSpec, Outcome, OutputMode, Overrides, SandboxError, Status};

use super::print_json;
use super::watch::Watcher;
use crate::cli::{BackendArg, CommitArg, ExecArgs, NetworkArg, OutputFormat, WorkspaceModeArg};

pub fn run(args: ExecArgs) -> anyhow::Result<u8> {
    let (resolved, overrides, _) = profile_and_overrides(&args)?;
    let format = args.output.unwrap_or(OutputFormat::Text);
    let output = match format {
        OutputFormat::Text => OutputMode::Stream,
        OutputFormat::Json => OutputMode::Capture,
    };
    let mut spec = JobSpec::new(&resolved, overrides, args.command, output)?;
    if args.events {
        spec.observe(Arc::new(Watcher::Events));
    }
    // Checked before the job runs: a job whose record cannot be written must not run at all.
    let audit_log = match args.audit {
        Some(path) => path,
        None => audit::default_path()?,
    };
    audit::check_writable(&audit_log)?;
    let outcome = match sandbox_runtime::run(&spec) {
        Ok(outcome) => outcome,
        Err(error) => {
            // A refused or failed job is an event worth a record too.
            let error = redacted(&spec, error);
            let code = i32::from(super::exit_code_for(&error));
            let failed = Outcome::failed(&spec, format!("{error:#}"), code);
            let _ = audit::append(&audit_log, &audit::record_for(&failed));
            return Err(error);
        }
    };
    if let Some(path) = &args.result {
        write_result(path, &outcome)?;
    }
    audit::append(&audit_log, &audit::record_for(&outcome))?;
    match format {
        OutputFormat::Json => print_json(&outcome)?,
        OutputFormat::Text => explain(&outcome),
    }
    Ok(outcome.exit_code.clamp(0, 255) as u8)
}

/// The profile, looked up with the project's trust (DESIGN §12), and the flags on top of it.
pub(super) fn profile_and_overrides(
    args: &ExecArgs,
) -> anyhow::Result<(ResolvedProfile, Overrides, Trust)> {
    let workspace = sandbox_runtime::spec::workspace_dir(args.workspace.as_deref())?;
    let trust = super::decide_trust(&workspace, &args.trust)?;
    let resolved = Lookup::for_project(&trust).load(&args.profile)?;
    let mut overrides = overrides(args)?;
    overrides.allow_protected = trust.allow_protected.clone();
    Ok((resolved, overrides, trust))
}

fn overrides(args: &ExecArgs) -> anyhow::Result<Overrides> {
    let flag = flag_error;
    let env = args
        .env
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| flag("env", format!("`{pair}` is not NAME=VALUE")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Overrides {
        backend: args.backend.map(|backend| match backend {
            BackendArg::Native => BackendChoice::Native,
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Docker => BackendChoice::Docker,
        }),
        workspace: args.workspace.clone(),
        workspace_mode: args.workspace_mode.map(|mode| match mode {
            WorkspaceModeArg::Ro => WorkspaceMode::Ro,
            WorkspaceModeArg::Rw => WorkspaceMode::Rw,
            WorkspaceModeArg::Scratch => WorkspaceMode::Scratch,
        }),
        timeout: args
            .timeout
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| flag("timeout", e))?,
        memory: args
            .memory
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| flag("memory", e))?,
        cpus: args.cpus,
        pids: args.pids,
        env,
        network: args.network.map(|mode| match mode {
            NetworkArg::None => NetworkMode::None,
            NetworkArg::Allowlist => NetworkMode::Allowlist,
            NetworkArg::Host => NetworkMode::Host,
        }),
        allow: args.allow.clone(),
        secrets: args
            .secret
            .iter()
            .map(|flag| Secret::from_flag(flag).map_err(|e| flag_error("secret", e.to_string())))
            .collect::<Result<_, _>>()?,
        commit: args.commit.map(|commit| match commit {
            CommitArg::Always => CommitPolicy::Always,
            CommitArg::OnSuccess => CommitPolicy::OnSuccess,
            CommitArg::Never => CommitPolicy::Never,
        }),
        diff: args.diff.clone(),
        binds: binds(args)?,
        allow_protected: Vec::new(),
    })
}

/// An error that quotes a secret's value (a path, a command) says `[REDACTED:NAME]` instead.
pub(super) fn redacted(spec: &JobSpec, error: SandboxError) -> anyhow::Error {
    let text = error.with_causes();
    match spec.redactor.redact_str(&text) {
        (_, 0) => error.into(),
        (clean, _) => anyhow::anyhow!(clean),
    }
}

fn binds(args: &ExecArgs) -> Result<Vec<Bind>, SandboxError> {
    let rw = args.bind.iter().map(|flag| ("bind", flag, true));
    let ro = args.ro_bind.iter().map(|flag| ("ro-bind", flag, false));
    rw.chain(ro)
        .map(|(name, flag, writable)| {
            let (source, target) = flag
                .split_once(':')
                .ok_or_else(|| flag_error(name, format!("`{flag}` is not SRC:DEST")))?;
            Ok(Bind {
                source: source.into(),
                target: target.into(),
                writable,
            })
        })
        .collect()
}

fn flag_error(name: &str, message: String) -> SandboxError {
    SandboxError::InvalidSpec(format!("--{name}: {message}"))
}

/// Writes the Outcome next to its destination first, so a reader never sees half a document.
fn write_result(path: &std::path::Path, outcome: &Outcome) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(outcome)?;
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming onto {}", path.display()))
}

/// In text mode the job's output was streamed; say why it ended when that was not its choice.
fn explain(outcome: &Outcome) {
    if outcome.status != Status::Exited || !outcome.limits_hit.is_empty() {
        let status = serde_json::to_value(outcome.status).unwrap_or_default();
        eprintln!(
            "sandbox: {} (exit {}){}",
            status.as_str().unwrap_or("ended"),
            outcome.exit_code,
            outcome
                .notes
                .iter()
                .map(|note| format!("; {note}"))
                .collect::<String>()
        );
    }
}
