//! `sandbox.toml` described for editors and validators (`schemas/sandbox-toml.schema.json`).
//!
//! The loader (`config::parse`) reads each `[[gate]]` as a raw table, so that an error can point
//! at the key's line and a preset can fill in what the table leaves out; these types exist only
//! to describe what it accepts. `tests/schemas.rs` holds the two to each other: the same tables
//! must be accepted, or refused, by both.

use std::collections::BTreeMap;

use schemars::JsonSchema;

use sandbox_runtime::profile::HumanDuration;

use crate::builtin::{PolicyConfig, SecretScanConfig};
use crate::config::Defaults;
use crate::parsers::ParserKind;
use crate::presets::{self, GateKind};

/// The project's quality gates, each run as a sandboxed job by `sandbox gate`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sandbox.toml")]
pub struct ConfigFile {
    #[serde(default)]
    pub defaults: Defaults,
    /// The gates, run in parallel up to the core count.
    #[serde(default)]
    pub gate: Vec<GateTable>,
}

/// One `[[gate]]`: a preset, a command of its own, or a built-in gate.
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum GateTable {
    Preset(PresetGate),
    Command(CommandGate),
    Policy(PolicyGate),
    SecretScan(SecretScanGate),
}

/// A known tool: its command, parser, fix command, inputs and config files come from the preset.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetGate {
    #[schemars(schema_with = "preset_names")]
    pub uses: String,
    /// Replaces the preset's default targets (e.g. `["src"]`).
    pub args: Option<Vec<String>>,
    /// Reads the tool's output with another parser than the preset's.
    pub parser: Option<ParserKind>,
    #[serde(flatten)]
    pub common: Common,
}

/// A command of the project's own; its exit code decides unless `parser` says otherwise.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandGate {
    /// The program and its arguments, run in the workspace (read-only) with `/out` writable.
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Appended to `command`.
    pub args: Option<Vec<String>>,
    /// How the output is read (default `exit-code`).
    pub parser: Option<ParserKind>,
    #[serde(flatten)]
    pub common: Common,
}

/// The built-in policy gate: rules from the syntax tree, the changes and Rego files.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyGate {
    pub uses: PolicyName,
    #[serde(flatten)]
    pub options: PolicyConfig,
    #[serde(flatten)]
    pub common: Common,
}

/// The built-in secret scan.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretScanGate {
    pub uses: SecretScanName,
    #[serde(flatten)]
    pub options: SecretScanConfig,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(JsonSchema)]
pub enum PolicyName {
    #[serde(rename = "policy")]
    Policy,
}

#[derive(JsonSchema)]
pub enum SecretScanName {
    #[serde(rename = "secret-scan")]
    SecretScan,
}

/// The keys every gate may have.
#[derive(JsonSchema)]
pub struct Common {
    /// Unique in the file; `--only` and `--skip` name it.
    pub name: String,
    /// What the gate checks (the preset's, or `custom`).
    pub kind: Option<GateKind>,
    /// Globs of the files the gate reads: a built-in gate walks only these (default: the
    /// preset's, or every file). The cache key covers the whole tree whatever they say.
    pub paths: Option<Vec<String>>,
    /// The command `--fix` runs in a scratch workspace (default: the preset's).
    pub fix: Option<Vec<String>>,
    /// Metrics the output must reach, e.g. `{ line_percent = 90 }`.
    pub min: Option<BTreeMap<String, f64>>,
    /// Metrics the output must not exceed.
    pub max: Option<BTreeMap<String, f64>>,
    /// The profile of the gate's job (default: `defaults.profile`).
    pub profile: Option<String>,
    /// After this long the tool is an error (default: `defaults.timeout`).
    pub timeout: Option<HumanDuration>,
    /// Variables set in the gate's job.
    pub env: Option<BTreeMap<String, String>>,
    /// The `regex` parser's pattern, with named groups path, line, column, rule, message,
    /// severity.
    pub pattern: Option<String>,
}

fn preset_names(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = presets::all().map(|preset| preset.name).collect();
    schemars::json_schema!({
        "description": "The preset: the tool whose command, parser and fix the gate uses.",
        "type": "string",
        "enum": names,
    })
}

/// The JSON Schema of `sandbox.toml` (its TOML as data), as committed in
/// `schemas/sandbox-toml.schema.json`.
pub fn config_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ConfigFile)).unwrap_or_default()
}
