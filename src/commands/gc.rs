//! `sandbox gc`: removes what a crashed `sandbox` left behind.

use super::{print_json, print_text};
use crate::cli::OutputFormat;

#[derive(serde::Serialize)]
struct Report {
    /// Names of the containers removed.
    removed: Vec<String>,
}

pub fn run(output: OutputFormat) -> anyhow::Result<u8> {
    let removed = sandbox_runtime::docker::gc()?;
    match output {
        OutputFormat::Json => print_json(&Report { removed })?,
        OutputFormat::Text if removed.is_empty() => print_text("nothing left behind\n")?,
        OutputFormat::Text => {
            let lines: String = removed
                .iter()
                .map(|name| format!("removed leftover container {name}\n"))
                .collect();
            print_text(&lines)?;
        }
    }
    Ok(0)
}
