//! Presets: a known tool's command, parser, fix command and inputs, so that a gate can say
//! `uses = "ruff"`. Each family's table lives in its own file.

mod python;
mod rust_js;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::parsers::ParserKind;

/// What a gate checks; the Verdict groups by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateKind {
    Lint,
    Types,
    Security,
    Test,
    Coverage,
    Format,
    Policy,
    Secrets,
    Custom,
}

impl GateKind {
    /// The word the Verdict's JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::Lint => "lint",
            GateKind::Types => "types",
            GateKind::Security => "security",
            GateKind::Test => "test",
            GateKind::Coverage => "coverage",
            GateKind::Format => "format",
            GateKind::Policy => "policy",
            GateKind::Secrets => "secrets",
            GateKind::Custom => "custom",
        }
    }
}

/// A tool as a gate. Commands run in the workspace (read-only) with `/out` writable for
/// reports; `PATH` starts with the tools directory (`/opt/sandbox-tools/bin`).
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub kind: GateKind,
    /// The command without its targets.
    pub command: &'static [&'static str],
    /// Targets used when the gate gives no `args` (`args` replaces them).
    pub default_args: &'static [&'static str],
    pub parser: ParserKind,
    /// Rewrites files to fix what it can; run by `--fix` in a scratch workspace.
    pub fix: Option<&'static [&'static str]>,
    /// Prints the tool's version: part of the cache key.
    pub version: &'static [&'static str],
    /// Globs of the files the tool reads. Not what keys the cache: that is the whole tree,
    /// since a config file (an `extend`, a `-c FILE`) can make a tool read anything.
    pub inputs: &'static [&'static str],
    /// The tool's config files.
    pub config_files: &'static [&'static str],
    /// Project files that make `sandbox gate` (no sandbox.toml) propose this preset.
    pub detect: &'static [&'static str],
}

/// Every preset, Python's then Rust's and JavaScript's.
pub fn all() -> impl Iterator<Item = &'static Preset> {
    python::PRESETS.iter().chain(rust_js::PRESETS.iter())
}

pub fn find(name: &str) -> Option<&'static Preset> {
    all().find(|preset| preset.name == name)
}

/// Whether a preset's tool answers here, and with which version (`sandbox doctor`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ToolReport {
    pub preset: &'static str,
    pub present: bool,
    /// The first line the version command printed, or why it could not be asked.
    pub detail: String,
}

/// Asks every preset's tool for its version, the way the gate cache does.
pub fn tools() -> Vec<ToolReport> {
    all()
        .map(|preset| {
            let command: Vec<String> = preset.version.iter().map(|s| (*s).to_owned()).collect();
            let answer = crate::cache::ask_version(&command);
            ToolReport {
                preset: preset.name,
                present: answer.is_ok(),
                detail: match answer {
                    Ok(text) => text.lines().next().unwrap_or("").trim().to_owned(),
                    Err(why) => why,
                },
            }
        })
        .collect()
}
