//! One file per subcommand; each is a short chain of calls into `sandbox-runtime`.

mod audit;
mod check;
mod doctor;
mod exec;
mod gate;
mod gc;
mod hook;
mod image;
mod profile;
mod watch;

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use sandbox_runtime::SandboxError;

use crate::cli::{Cli, Command, SchemaName};

/// Runs a subcommand; the `u8` is the process's exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Exec(args) => Ok(exec::run_reporting(*args)),
        Command::Profile(command) => profile::run(command),
        Command::Doctor { output } => doctor::run(output),
        Command::Schema { name } => {
            print_json(&schema(name))?;
            Ok(0)
        }
        Command::Image(command) => image::run(command),
        Command::Gc { output } => gc::run(output),
        Command::Gate(args) => gate::run(*args),
        Command::Check(args) => check::run_reporting(*args),
        Command::Init { workspace, force } => gate::init(workspace, force),
        Command::GateBuiltin { name, options } => gate::builtin(&name, &options),
        Command::GateChanges { base } => gate::changes(&base),
        Command::EgressForward { port, socket } => {
            sandbox_runtime::network::forwarder::serve(port, &socket)
                .with_context(|| format!("forwarding 127.0.0.1:{port} to {}", socket.display()))?;
            Ok(0)
        }
        Command::Audit(command) => audit::run(command),
        Command::Hook(command) => hook::run(command),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sandbox", &mut script);
            print_text(&String::from_utf8_lossy(&script))?;
            Ok(0)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            print_text(&String::from_utf8_lossy(&page))?;
            Ok(0)
        }
    }
}

/// Each schema comes from the type it describes; `schemas/NAME.schema.json` holds the same.
fn schema(name: SchemaName) -> serde_json::Value {
    match name {
        SchemaName::Outcome => sandbox_runtime::outcome::outcome_json_schema(),
        SchemaName::Verdict => sandbox_gates::verdict::verdict_json_schema(),
        SchemaName::Profile => sandbox_runtime::profile::profile_json_schema(),
        SchemaName::SandboxToml => sandbox_gates::config_schema::config_json_schema(),
        SchemaName::Events => sandbox_gates::events::events_json_schema(),
    }
}

/// 125 for anything the sandbox itself could not do (DESIGN section 7); a signal that
/// interrupted `sandbox` gives 128+N like the shell.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<SandboxError>() {
        Some(error) => error.exit_code().clamp(0, 255) as u8,
        None => 125,
    }
}

/// The trust decision for `workspace` (DESIGN §12): the flags and the operator configuration.
pub fn decide_trust(
    workspace: &std::path::Path,
    args: &crate::cli::TrustArgs,
) -> anyhow::Result<sandbox_runtime::trust::Trust> {
    let flags = sandbox_runtime::trust::TrustFlags {
        trust_project: args.trust_project,
        allow_protected: args.allow_protected.clone(),
    };
    Ok(sandbox_runtime::trust::Trust::decide(workspace, &flags)?)
}

/// Whether the same job may run when tried again (the Outcome's `retryable`), from the error's
/// type: only the runtime's own errors can say they are transient.
pub fn retryable(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<SandboxError>()
        .is_some_and(SandboxError::retryable)
}

/// Prints one JSON document; a closed stdout (`| head`) is not an error. Streamed rather than
/// built as a string first: an Outcome holding 16 MiB of captured NULs is ~100 MiB of JSON.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

pub fn print_text(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
