//! The `sandbox` binary: parses arguments, calls into `sandbox-runtime`, prints. Exit codes are
//! decided in `exit_code_for` and nowhere else.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A container whose network namespace we cannot enter runs this binary as its forwarder.
    if let Ok(program) = std::env::current_exe() {
        sandbox_runtime::network::forwarder::register_program(program);
    }
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(cli::usage_exit_code(&error));
        }
    };
    match commands::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("sandbox: {error:#}");
            ExitCode::from(commands::exit_code_for(&error))
        }
    }
}
