//! `sandbox image build|list`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sandbox_images::{BuiltImage, ImageSummary, Source};

use super::{print_json, print_text};
use crate::cli::{ImageCommand, OutputFormat};

pub fn run(command: ImageCommand) -> anyhow::Result<u8> {
    match command {
        ImageCommand::Build { from, tag, output } => {
            let source = Source::from_arg(&from);
            let started = Instant::now();
            let built = sandbox_images::build(&source, tag.as_deref())?;
            match output {
                OutputFormat::Json => print_json(&built)?,
                OutputFormat::Text => print_text(&build_text(&built, started.elapsed()))?,
            }
            Ok(0)
        }
        ImageCommand::List { output } => {
            let images = sandbox_images::list()?;
            match output {
                OutputFormat::Json => print_json(&images)?,
                OutputFormat::Text => print_text(&list_text(&images))?,
            }
            Ok(0)
        }
    }
}

fn build_text(built: &BuiltImage, elapsed: std::time::Duration) -> String {
    let mut text = format!(
        "built {} ({}, {} entries, {}) from {} in {:.1}s\n",
        built.tag,
        short_id(&built.id),
        built.entries,
        human_bytes(built.size),
        built.source,
        elapsed.as_secs_f64()
    );
    if !built.mirror.is_empty() {
        text.push_str(&format!(
            "  the docker backend binds {} from the host read-only\n",
            built.mirror.join(", ")
        ));
    }
    for omitted in &built.excluded {
        text.push_str(&format!(
            "  left out {}: {}\n",
            omitted.path.display(),
            omitted.reason
        ));
    }
    for omitted in &built.skipped {
        text.push_str(&format!(
            "  skipped {}: {}\n",
            omitted.path.display(),
            omitted.reason
        ));
    }
    if let Some(old) = &built.replaced {
        text.push_str(&format!(
            "  removed the image it replaced ({})\n",
            short_id(old)
        ));
    }
    text
}

fn list_text(images: &[ImageSummary]) -> String {
    if images.is_empty() {
        return "no images built by sandbox; run `sandbox image build`\n".into();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let rows: Vec<[String; 5]> = images
        .iter()
        .map(|image| {
            [
                image
                    .tags
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "<untagged>".into()),
                short_id(&image.id).to_owned(),
                image.source.clone(),
                human_bytes(image.size),
                age(now - image.created),
            ]
        })
        .collect();
    let header = ["TAG", "ID", "SOURCE", "SIZE", "CREATED"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `sha256:0123456789ab…` as docker shows it: the first 12 hex digits.
fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// Decimal units, as docker prints image sizes.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn age(seconds: i64) -> String {
    match seconds {
        ..=59 => "just now".into(),
        60..=3599 => format!("{} minutes ago", seconds / 60),
        3600..=86_399 => format!("{} hours ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}
