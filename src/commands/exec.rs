//! `sandbox exec`: profile + flags -> JobSpec -> Outcome -> exit code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sandbox_runtime::audit;
use sandbox_runtime::profile::{
    BackendChoice, CommitPolicy, Lookup, NetworkMode, ResolvedProfile, WorkspaceMode,
};
use sandbox_runtime::secrets::{Redactor, Secret};
use sandbox_runtime::spec::Bind;
use sandbox_runtime::trust::Trust;
use sandbox_runtime::{JobSpec, Outcome, OutputMode, Overrides, SandboxError, Status};

use super::print_json;
use super::watch::Watcher;
use crate::cli::{BackendArg, CommitArg, ExecArgs, NetworkArg, OutputFormat, WorkspaceModeArg};

/// `sandbox exec`. Every refusal, however early, still leaves an Outcome (DESIGN section 12):
/// one that failed before a spec existed (a profile that does not load, a bad flag) says what
/// the command line did.
pub fn run_reporting(args: ExecArgs) -> u8 {
    let delivery = Delivery::of(&args);
    let profile = args.profile.clone();
    let command = args.command.clone();
    let workspace = args.workspace.clone();
    let redactor = flag_redactor(&args);
    run(args).unwrap_or_else(|error| {
        let outcome = Outcome::unresolved(&profile, command, workspace.as_deref());
        delivery.refuse(outcome, Refusal::new(error, Some(&redactor)))
    })
}

/// The `--secret` values that can be read, for redacting a refusal that came before the spec:
/// every message we print passes the redactor (DESIGN §12), a profile's parse error included.
pub(super) fn flag_redactor(args: &ExecArgs) -> Redactor {
    let secrets: Vec<Secret> = args
        .secret
        .iter()
        .filter_map(|flag| Secret::from_flag(flag).ok())
        .collect();
    Redactor::new(&secrets)
}

/// Fails only before the JobSpec exists; from there on a refusal is reported with the spec's
/// Outcome.
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
    let delivery = Delivery {
        format,
        result: args.result,
    };
    let refusal = |error: anyhow::Error| Refusal::new(error, Some(&spec.redactor));
    // Checked before the job runs: a job whose record cannot be written must not run at all.
    let audit_log = match writable_audit_log(args.audit) {
        Ok(path) => path,
        Err(error) => return Ok(delivery.refuse(Outcome::failed(&spec), refusal(error))),
    };
    let outcome = match sandbox_runtime::run(&spec) {
        Ok(outcome) => outcome,
        Err(error) => {
            let (failed, refusal) = recorded_failure(&spec, &audit_log, error);
            return Ok(delivery.refuse(failed, refusal));
        }
    };
    // The record first: a job that ran unaudited is reported as the sandbox's failure.
    if let Err(error) = audit::append(&audit_log, &audit::record_for(&outcome)) {
        return Ok(delivery.refuse(outcome, refusal(error.into())));
    }
    if let Some(path) = &delivery.result {
        if let Err(error) = write_result(path, &outcome) {
            return Ok(delivery.refuse(outcome, refusal(error)));
        }
    }
    match delivery.format {
        OutputFormat::Json => {
            if let Err(error) = print_json(&outcome) {
                eprintln!("sandbox: {error:#}");
                return Ok(super::exit_code_for(&error));
            }
        }
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

/// `--audit PATH` or the default, once it is known that a record can be appended to it.
pub(super) fn writable_audit_log(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match flag {
        Some(path) => path,
        None => audit::default_path()?,
    };
    audit::check_writable(&path)?;
    Ok(path)
}

/// The Outcome of a job the runtime could not run, with its refusal, appended to the audit log:
/// a refused or failed job is an event worth a record too.
pub(super) fn recorded_failure(
    spec: &JobSpec,
    audit_log: &Path,
    error: SandboxError,
) -> (Outcome, Refusal) {
    let refusal = Refusal::new(error.into(), Some(&spec.redactor));
    let mut failed = Outcome::failed(spec);
    refusal.mark(&mut failed);
    let _ = audit::append(audit_log, &audit::record_for(&failed));
    (failed, refusal)
}

/// Why the sandbox did not run a job, or could not deliver what it did: the message (redacted
/// when there is a spec to redact with), the exit code and whether a retry may help, decided
/// from the typed error before redaction can turn it into text.
pub(super) struct Refusal {
    pub(super) message: String,
    pub(super) exit_code: u8,
    pub(super) retryable: bool,
}

impl Refusal {
    pub(super) fn new(error: anyhow::Error, redactor: Option<&Redactor>) -> Refusal {
        let message = format!("{error:#}");
        Refusal {
            message: match redactor {
                Some(redactor) => redactor.redact_str(&message).0,
                None => message,
            },
            exit_code: super::exit_code_for(&error),
            retryable: super::retryable(&error),
        }
    }

    /// Makes `outcome` say this refusal.
    pub(super) fn mark(&self, outcome: &mut Outcome) {
        outcome.refuse(
            self.message.clone(),
            i32::from(self.exit_code),
            self.retryable,
        );
    }
}

/// Where `sandbox exec` delivers its Outcome: stdout with `--output json`, and `--result`.
struct Delivery {
    format: OutputFormat,
    result: Option<PathBuf>,
}

impl Delivery {
    fn of(args: &ExecArgs) -> Delivery {
        Delivery {
            format: args.output.unwrap_or(OutputFormat::Text),
            result: args.result.clone(),
        }
    }

    /// Says why on stderr as ever, and delivers `outcome` marked `sandbox_error`, so that a
    /// caller reading the document can tell the sandbox's failure from the job's (issue 15).
    fn refuse(&self, mut outcome: Outcome, refusal: Refusal) -> u8 {
        eprintln!("sandbox: {}", refusal.message);
        refusal.mark(&mut outcome);
        if let Some(path) = &self.result {
            if let Err(error) = write_result(path, &outcome) {
                eprintln!("sandbox: {error:#}");
            }
        }
        if self.format == OutputFormat::Json {
            if let Err(error) = print_json(&outcome) {
                eprintln!("sandbox: {error:#}");
            }
        }
        refusal.exit_code
    }
}

pub(super) fn overrides(args: &ExecArgs) -> anyhow::Result<Overrides> {
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
