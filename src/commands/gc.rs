//! `sandbox gc`: removes what a crashed `sandbox` left behind.

use super::{print_json, print_text};
use crate::cli::OutputFormat;

pub fn run(output: OutputFormat) -> anyhow::Result<u8> {
    let report = sandbox_runtime::gc::gc();
    match output {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => {
            let mut text: String = report
                .removed
                .iter()
                .map(|what| format!("removed {what}\n"))
                .collect();
            if report.removed.is_empty() {
                text.push_str("nothing left behind\n");
            }
            text.extend(report.notes.iter().map(|note| format!("note: {note}\n")));
            print_text(&text)?;
        }
    }
    Ok(0)
}
