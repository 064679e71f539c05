//! `sandbox.toml`: the project's gates. Every error names the file, the line and the column of
//! the key at fault, like profile errors do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sandbox_runtime::profile::{HumanDuration, Lookup, Position};
use sandbox_runtime::trust::Trust;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::parsers::ParserKind;
use crate::presets::{self, GateKind};

pub const CONFIG_FILE: &str = "sandbox.toml";
/// Gates that are part of sandbox itself; their extra keys are their options.
pub const BUILTINS: [&str; 2] = ["policy", "secret-scan"];
/// A hung tool is an error after this long, not a hang.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectConfig {
    pub defaults: Defaults,
    pub gates: Vec<GateSpec>,
}

impl ProjectConfig {
    /// What the project must do before the gates `selection` picks can run at all, when a gate
    /// job could not do it itself: cargo runs `--locked --offline`, so without a `Cargo.lock`
    /// every cargo gate would fail as a tool error (exit 3, "retry"), where no retry helps.
    pub fn unready(
        &self,
        workspace: &Path,
        selection: &crate::runner::Selection,
    ) -> Option<String> {
        let locked: Vec<&str> = self
            .gates
            .iter()
            .filter(|gate| selection.picks(&gate.name))
            .filter(|gate| gate.command.first().is_some_and(|c| c == "cargo"))
            .filter(|gate| gate.command.iter().any(|arg| arg == "--locked"))
            .map(|gate| gate.name.as_str())
            .collect();
        let lock_file = workspace.join("Cargo.lock");
        if locked.is_empty() || lock_file.exists() {
            return None;
        }
        Some(format!(
            "gate(s) {} run cargo --locked --offline (gate jobs have no network), and {} does \
             not exist: run `cargo generate-lockfile && cargo fetch` in the project first, or \
             skip them (--skip)",
            locked.join(", "),
            lock_file.display()
        ))
    }
}

/// `[defaults]`: what every gate gets unless it says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// The profile each gate job runs with.
    pub profile: String,
    /// After this long a gate's tool is an error, not a hang.
    pub timeout: HumanDuration,
    /// Gates run at once (default: the number of cores).
    pub jobs: Option<usize>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            profile: "gate".into(),
            timeout: HumanDuration(DEFAULT_TIMEOUT),
            jobs: None,
        }
    }
}

/// One `[[gate]]`, resolved against its preset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateSpec {
    pub name: String,
    pub kind: GateKind,
    /// The preset or built-in it uses, if any.
    pub uses: Option<String>,
    /// The whole command line (preset command plus args), empty for built-ins.
    pub command: Vec<String>,
    pub parser: Option<ParserKind>,
    /// Globs of the files the gate reads (what a built-in gate walks); empty: every file.
    pub inputs: Vec<String>,
    pub config_files: Vec<String>,
    pub version: Vec<String>,
    pub fix: Option<Vec<String>>,
    pub min: BTreeMap<String, f64>,
    pub max: BTreeMap<String, f64>,
    pub profile: Option<String>,
    pub timeout: Option<HumanDuration>,
    pub env: BTreeMap<String, String>,
    pub pattern: Option<String>,
    /// A built-in gate's own keys, handed to it as they are.
    pub options: toml::Table,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The project's `sandbox.toml` could not be read safely (a symlink, not a regular file).
    #[error(transparent)]
    Unsafe(#[from] sandbox_runtime::trust::TrustError),
    #[error("{file}:{line}:{column}: {message}\n{snippet}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    gate: Vec<toml::Table>,
}

/// Reads `sandbox.toml` at `path`.
pub fn load(path: &Path) -> Result<ProjectConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

/// The project's gates: `given` (`--config`), else `sandbox.toml` in `workspace`, else `None`
/// (the caller detects them). A file inside the workspace is project configuration (DESIGN
/// §12): read without following symlinks, and unless `trust` says otherwise every profile it
/// picks for a gate must narrow one of the operator's gate profiles. Also returns the file's
/// path relative to the workspace when it was the project's.
pub fn load_project(
    workspace: &Path,
    given: Option<&Path>,
    trust: &Trust,
) -> Result<Option<(ProjectConfig, Option<String>)>, ConfigError> {
    let path = given
        .map(|given| std::path::absolute(given).unwrap_or_else(|_| given.to_owned()))
        .unwrap_or_else(|| workspace.join(CONFIG_FILE));
    let rel = path
        .strip_prefix(workspace)
        .ok()
        .map(|rel| rel.to_string_lossy().into_owned());
    let text = match &rel {
        Some(rel) => sandbox_runtime::trust::read_project_text(workspace, rel)?,
        None => Some(
            std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?,
        ),
    };
    let Some(text) = text else {
        return match given {
            Some(_) => Err(ConfigError::Read {
                path,
                source: std::io::ErrorKind::NotFound.into(),
            }),
            None => Ok(None),
        };
    };
    let file = path.display().to_string();
    let config = parse(&file, &text)?;
    if rel.is_some() && !trust.is_trusted() {
        check_gate_profiles(&file, &text, &config, trust)?;
    }
    Ok(Some((config, rel)))
}

/// Refuses a profile choice in `sandbox.toml` that reaches beyond every profile in the
/// operator's `[trust] gate_profiles` (default: `gate`): a project that could pick `permissive`
/// for its own gates would judge itself with the host's network and a writable workspace.
pub fn check_gate_profiles(
    file: &str,
    text: &str,
    config: &ProjectConfig,
    trust: &Trust,
) -> Result<(), ConfigError> {
    let chosen = std::iter::once((
        config.defaults.profile.as_str(),
        sandbox_runtime::profile::field_span(text, "defaults.profile"),
        "[defaults] profile".to_owned(),
    ))
    .chain(config.gates.iter().enumerate().filter_map(|(index, gate)| {
        let profile = gate.profile.as_deref()?;
        Some((
            profile,
            span_of(text, index, Some("profile")),
            format!("[[gate]] #{} ({})", index + 1, gate.name),
        ))
    }));
    let project = Lookup::for_project(trust);
    for (name, span, at) in chosen {
        let refuse = |message: String| {
            let at_position = Position::of(text, span.clone());
            ConfigError::Invalid {
                file: file.to_owned(),
                line: at_position.line,
                column: at_position.column,
                message,
                snippet: at_position.snippet,
            }
        };
        let resolved = project
            .load(name)
            .map_err(|error| refuse(format!("{at}: profile `{name}`: {error}")))?;
        let mut reasons = Vec::new();
        for ceiling in &trust.gate_profiles {
            let ceiling_profile = Lookup::operator().load(ceiling).map_err(|error| {
                refuse(format!("the operator's gate profile `{ceiling}`: {error}"))
            })?;
            match sandbox_runtime::trust::widenings(&resolved.profile, &ceiling_profile.profile)
                .first()
            {
                None => {
                    reasons.clear();
                    break;
                }
                Some(widening) => reasons.push(format!(
                    "`{}` reaches further than `{ceiling}` ({})",
                    widening.field, widening.detail
                )),
            }
        }
        if !reasons.is_empty() {
            return Err(refuse(format!(
                "{at}: profile `{name}` is wider than the profiles the operator allows gates \
                 ({}): {}; a project may only narrow them — pass --trust-project, or add the \
                 profile to [trust] gate_profiles in the operator configuration",
                trust.gate_profiles.join(", "),
                reasons.join("; ")
            )));
        }
    }
    Ok(())
}

pub fn parse(file: &str, text: &str) -> Result<ProjectConfig, ConfigError> {
    let invalid = |span: Option<std::ops::Range<usize>>, message: String| {
        let at = Position::of(text, span);
        ConfigError::Invalid {
            file: file.to_owned(),
            line: at.line,
            column: at.column,
            message,
            snippet: at.snippet,
        }
    };
    let raw: RawConfig =
        toml::from_str(text).map_err(|error| invalid(error.span(), error.message().to_owned()))?;
    let mut gates = Vec::new();
    for (index, table) in raw.gate.into_iter().enumerate() {
        let gate = GateSpec::from_table(table).map_err(|(key, message)| {
            invalid(
                span_of(text, index, key.as_deref()),
                format!("[[gate]] #{}: {message}", index + 1),
            )
        })?;
        if gates.iter().any(|g: &GateSpec| g.name == gate.name) {
            return Err(invalid(
                span_of(text, index, Some("name")),
                format!("two gates are named `{}`", gate.name),
            ));
        }
        gates.push(gate);
    }
    Ok(ProjectConfig {
        defaults: raw.defaults,
        gates,
    })
}

/// The key at fault: `None` for the gate as a whole.
type GateError = (Option<String>, String);

impl GateSpec {
    fn from_table(mut table: toml::Table) -> Result<GateSpec, GateError> {
        let name: String = take(&mut table, "name")?
            .ok_or_else(|| (None, "every gate needs a `name`".to_owned()))?;
        let uses: Option<String> = take(&mut table, "uses")?;
        let command: Option<Vec<String>> = take(&mut table, "command")?;
        let parser: Option<ParserKind> = take(&mut table, "parser")?;
        let args: Option<Vec<String>> = take(&mut table, "args")?;
        let paths: Option<Vec<String>> = take(&mut table, "paths")?;
        let kind: Option<GateKind> = take(&mut table, "kind")?;
        let mut gate = GateSpec {
            name,
            kind: kind.unwrap_or(GateKind::Custom),
            uses: uses.clone(),
            command: Vec::new(),
            parser,
            inputs: paths.clone().unwrap_or_default(),
            config_files: Vec::new(),
            version: Vec::new(),
            fix: take(&mut table, "fix")?,
            min: take(&mut table, "min")?.unwrap_or_default(),
            max: take(&mut table, "max")?.unwrap_or_default(),
            profile: take(&mut table, "profile")?,
            timeout: take(&mut table, "timeout")?,
            env: take(&mut table, "env")?.unwrap_or_default(),
            pattern: take(&mut table, "pattern")?,
            options: toml::Table::new(),
        };
        let key = |k: &str| Some(k.to_owned());
        match (uses.as_deref(), command) {
            (Some(builtin), None) if BUILTINS.contains(&builtin) => {
                gate.kind = kind.unwrap_or(if builtin == "policy" {
                    GateKind::Policy
                } else {
                    GateKind::Secrets
                });
                gate.options = std::mem::take(&mut table);
                check_builtin_options(builtin, &gate.options)
                    .map_err(|message| (key("uses"), message))?;
                if args.is_some() || gate.parser.is_some() {
                    return Err((
                        key("uses"),
                        format!("`{builtin}` is built in: it takes no `args` or `parser`"),
                    ));
                }
            }
            (Some(name), None) => {
                let preset = presets::find(name).ok_or_else(|| {
                    let known: Vec<&str> = presets::all().map(|p| p.name).chain(BUILTINS).collect();
                    (
                        key("uses"),
                        format!("no preset `{name}`; presets: {}", known.join(", ")),
                    )
                })?;
                let targets = args.unwrap_or_else(|| strings(preset.default_args));
                gate.command = strings(preset.command).into_iter().chain(targets).collect();
                gate.kind = kind.unwrap_or(preset.kind);
                gate.parser = gate.parser.or(Some(preset.parser));
                if paths.is_none() {
                    gate.inputs = strings(preset.inputs);
                }
                gate.config_files = strings(preset.config_files);
                gate.version = strings(preset.version);
                gate.fix = gate.fix.or_else(|| preset.fix.map(strings));
            }
            (Some(_), Some(_)) => {
                return Err((key("command"), "give `uses` or `command`, not both".into()))
            }
            (None, Some(command)) => {
                if command.is_empty() {
                    return Err((key("command"), "`command` is empty".into()));
                }
                gate.command = command
                    .into_iter()
                    .chain(args.unwrap_or_default())
                    .collect();
                gate.parser = Some(gate.parser.unwrap_or(ParserKind::ExitCode));
            }
            (None, None) => {
                return Err((
                    None,
                    format!("gate `{}` needs `uses` (a preset) or `command`", gate.name),
                ))
            }
        }
        if gate.parser == Some(ParserKind::Regex) && gate.pattern.is_none() {
            return Err((key("parser"), "the `regex` parser needs a `pattern`".into()));
        }
        if let Some(unknown) = table.keys().next() {
            return Err((
                Some(unknown.clone()),
                format!("unknown key `{unknown}` in gate `{}`", gate.name),
            ));
        }
        Ok(gate)
    }

    /// Whether sandbox itself runs this gate (no external tool).
    pub fn builtin(&self) -> Option<&str> {
        self.uses.as_deref().filter(|uses| BUILTINS.contains(uses))
    }
}

/// A built-in gate's own keys, read now so that a typo or a bad regex is a configuration error
/// and not a gate error later.
fn check_builtin_options(builtin: &str, options: &toml::Table) -> Result<(), String> {
    use crate::builtin::{PolicyConfig, SecretScanConfig};
    let value = toml::Value::Table(options.clone());
    let problem = |e: &dyn std::fmt::Display| format!("`{builtin}` options: {e}");
    match builtin {
        "policy" => {
            let config: PolicyConfig = value.try_into().map_err(|e| problem(&e))?;
            config.validate().map_err(|e| problem(&e))
        }
        _ => value
            .try_into::<SecretScanConfig>()
            .map(|_| ())
            .map_err(|e| problem(&e)),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// Removes `key` from `table` and reads it as a `T`, naming the key when it is not one.
fn take<T: serde::de::DeserializeOwned>(
    table: &mut toml::Table,
    key: &str,
) -> Result<Option<T>, GateError> {
    table
        .remove(key)
        .map(|value| {
            value.try_into().map_err(|error: toml::de::Error| {
                (
                    Some(key.to_owned()),
                    format!("`{key}`: {}", error.message()),
                )
            })
        })
        .transpose()
}

/// The span of `key` (its value) in the `index`-th `[[gate]]`, or of the gate itself.
fn span_of(text: &str, index: usize, key: Option<&str>) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let (_, gates) = document
        .get_ref()
        .iter()
        .find(|(name, _)| name.get_ref() == "gate")?;
    let DeValue::Array(gates) = gates.get_ref() else {
        return None;
    };
    let gate = gates.get(index)?;
    let Some(key) = key else {
        return Some(gate.span());
    };
    let DeValue::Table(table) = gate.get_ref() else {
        return Some(gate.span());
    };
    table
        .iter()
        .find(|(name, _)| name.get_ref() == key)
        .map(|(name, _)| name.span())
        .or(Some(gate.span()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse("sandbox.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_custom_command_defaults_to_the_exit_code_parser() {
        let config = parse(
            "sandbox.toml",
            "[defaults]\ntimeout = \"90s\"\n[[gate]]\nname = \"unit\"\ncommand = [\"make\", \"test\"]\n",
        )
        .unwrap();
        assert_eq!(config.defaults.timeout.0.as_secs(), 90);
        assert_eq!(config.gates[0].command, ["make", "test"]);
        assert_eq!(config.gates[0].parser, Some(ParserKind::ExitCode));
    }

    #[test]
    fn builtin_gates_keep_their_own_keys() {
        let config = parse(
            "sandbox.toml",
            "[[gate]]\nname = \"policy\"\nuses = \"policy\"\nbanned_imports = [\"subprocess\"]\n",
        )
        .unwrap();
        assert_eq!(config.gates[0].builtin(), Some("policy"));
        assert!(config.gates[0].options.contains_key("banned_imports"));
    }

    #[test]
    fn errors_name_file_line_and_column_of_the_key() {
        let text = "[[gate]]\nname = \"a\"\ncommand = [\"true\"]\n\n[[gate]]\nname = \"b\"\ncommand = [\"true\"]\nmni = { line_percent = 3 }\n";
        let message = error(text);
        assert!(
            message.starts_with("sandbox.toml:8:1: [[gate]] #2: unknown key `mni`"),
            "{message}"
        );
        assert!(message.contains("^^^"), "{message}");
        let message = error("[[gate]]\nname = \"a\"\nuses = \"rufff\"\n");
        assert!(message.starts_with("sandbox.toml:3:1:"), "{message}");
        assert!(message.contains("no preset `rufff`"), "{message}");
        let message = error("[defaults]\nprofle = \"gate\"\n");
        assert!(message.starts_with("sandbox.toml:2:1:"), "{message}");
        let message = error("[[gate]]\nname = \"a\"\ncommand = [\"x\"]\ntimeout = \"soon\"\n");
        assert!(
            message.starts_with("sandbox.toml:4:1:") && message.contains("`timeout`"),
            "{message}"
        );
        let message = error(
            "[[gate]]\nname = \"a\"\ncommand = \"x\"\n[[gate]]\nname = \"a\"\ncommand = [\"x\"]\n",
        );
        assert!(message.contains("`command`"), "{message}");
    }
}
