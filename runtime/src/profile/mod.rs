//! Profiles: lookup, `extends`, and errors that point at the file, line and column.

mod schema;
mod units;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use schema::*;
pub use units::{ByteSize, HumanDuration};

/// The built-in profiles, embedded so that the binary needs no files beside it.
pub const BUILTINS: [(&str, &str); 5] = [
    ("strict", include_str!("../../../profiles/strict.toml")),
    ("standard", include_str!("../../../profiles/standard.toml")),
    (
        "networked",
        include_str!("../../../profiles/networked.toml"),
    ),
    ("gate", include_str!("../../../profiles/gate.toml")),
    (
        "permissive",
        include_str!("../../../profiles/permissive.toml"),
    ),
];

/// Where one layer of a profile came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "at")]
pub enum ProfileSource {
    Builtin(String),
    File(PathBuf),
}

impl std::fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileSource::Builtin(name) => write!(f, "<builtin>/{name}.toml"),
            ProfileSource::File(path) => path.display().fmt(f),
        }
    }
}

/// A profile after `extends` was followed and merged.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedProfile {
    pub name: String,
    /// The layers, the profile itself first, then what it extends.
    pub sources: Vec<ProfileSource>,
    #[serde(flatten)]
    pub profile: Profile,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "profile `{name}` not found: looked in {searched} and the built-ins ({builtins}); \
         give a path or create one of those files",
        searched = .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        builtins = BUILTINS.map(|(name, _)| name).join(", ")
    )]
    NotFound {
        name: String,
        searched: Vec<PathBuf>,
    },
    #[error("cannot read profile {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax error, an unknown key or a bad value, with the position in the file.
    #[error("{source_name}:{line}:{column}: {message}\n{snippet}")]
    Invalid {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
    },
    /// `extends` names a profile that cannot be loaded; points at the `extends` line.
    #[error("{source_name}:{line}:{column}: extends = \"{reference}\"")]
    BadExtends {
        source_name: String,
        line: usize,
        column: usize,
        reference: String,
        #[source]
        error: Box<ProfileError>,
    },
    #[error("profile `{0}` extends itself through {1}")]
    Cycle(String, String),
}

/// The JSON Schema of a profile file (its TOML as data), as committed in
/// `schemas/profile.schema.json`.
pub fn profile_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Profile)).unwrap_or_default()
}

/// The directories searched for `NAME.toml`, in order, before the built-ins.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".sandbox/profiles")];
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")));
    if let Some(config_home) = config_home {
        dirs.push(config_home.join("sandbox/profiles"));
    }
    dirs.push(PathBuf::from("/etc/sandbox/profiles"));
    dirs
}

/// Loads a profile by name or path, following `extends`.
pub fn load(name_or_path: &str) -> Result<ResolvedProfile, ProfileError> {
    load_with_search_path(name_or_path, &search_path())
}

pub fn load_with_search_path(
    name_or_path: &str,
    search_path: &[PathBuf],
) -> Result<ResolvedProfile, ProfileError> {
    let mut layers: Vec<(ProfileSource, toml::Table)> = Vec::new();
    let mut next = Some((name_or_path.to_owned(), None::<(ProfileSource, String)>));
    while let Some((reference, referrer)) = next.take() {
        let located = locate(
            &reference,
            referrer.as_ref().map(|(source, _)| source),
            search_path,
        );
        let (source, text) = match (located, referrer) {
            (Ok(found), _) => found,
            (Err(error), None) => return Err(error),
            (Err(error), Some((from, from_text))) => {
                return Err(bad_extends(&from, &from_text, reference, error))
            }
        };
        if layers.iter().any(|(seen, _)| *seen == source) {
            let chain: Vec<String> = layers.iter().map(|(s, _)| s.to_string()).collect();
            return Err(ProfileError::Cycle(reference, chain.join(" -> ")));
        }
        let (profile, table) = parse_layer(&source, &text)?;
        next = profile
            .extends
            .map(|parent| (parent, Some((source.clone(), text.clone()))));
        layers.push((source, table));
    }

    let mut merged = toml::Table::new();
    for (_, table) in layers.iter().rev() {
        merge_tables(&mut merged, table.clone());
    }
    merged.remove("extends");
    let (top_source, _) = &layers[0];
    let profile: Profile = toml::Value::Table(merged)
        .try_into()
        .map_err(|error: toml::de::Error| invalid(top_source, "", &error))?;
    Ok(ResolvedProfile {
        name: profile_name(name_or_path),
        sources: layers.into_iter().map(|(source, _)| source).collect(),
        profile,
    })
}

fn profile_name(name_or_path: &str) -> String {
    if is_path(name_or_path) {
        Path::new(name_or_path)
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| name_or_path.to_owned())
    } else {
        name_or_path.to_owned()
    }
}

fn is_path(reference: &str) -> bool {
    reference.contains('/') || reference.ends_with(".toml")
}

/// Finds the text of a profile. A file that extends its own name (`.sandbox/profiles/strict.toml`
/// with `extends = "strict"`) continues the search after itself, so users can tweak a built-in.
fn locate(
    reference: &str,
    referrer: Option<&ProfileSource>,
    search_path: &[PathBuf],
) -> Result<(ProfileSource, String), ProfileError> {
    if is_path(reference) {
        let path = match referrer {
            Some(ProfileSource::File(from)) if Path::new(reference).is_relative() => from
                .parent()
                .map(|dir| dir.join(reference))
                .unwrap_or_else(|| reference.into()),
            _ => PathBuf::from(reference),
        };
        // Canonical, so that a cycle written with different spellings of one path is caught.
        let path = std::fs::canonicalize(&path).unwrap_or_else(|_| path.components().collect());
        return read(&path).map(|text| (ProfileSource::File(path), text));
    }
    let file_name = format!("{reference}.toml");
    let mut skip_until_after = referrer.and_then(|source| match source {
        ProfileSource::File(path) if path.file_name() == Some(file_name.as_ref()) => Some(path),
        _ => None,
    });
    for dir in search_path {
        let candidate = dir.join(&file_name);
        if let Some(referrer) = skip_until_after {
            if &candidate == referrer {
                skip_until_after = None;
            }
            continue;
        }
        if candidate.is_file() {
            return read(&candidate).map(|text| (ProfileSource::File(candidate), text));
        }
    }
    BUILTINS
        .iter()
        .find(|(name, _)| *name == reference)
        .map(|(name, text)| {
            (
                ProfileSource::Builtin((*name).to_owned()),
                (*text).to_owned(),
            )
        })
        .ok_or_else(|| ProfileError::NotFound {
            name: reference.to_owned(),
            searched: search_path.iter().map(|dir| dir.join(&file_name)).collect(),
        })
}

fn read(path: &Path) -> Result<String, ProfileError> {
    std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses one file twice over: as a table (for merging) and as a `Profile` (so that an unknown
/// key or a bad value is reported against this file, with its position).
fn parse_layer(source: &ProfileSource, text: &str) -> Result<(Profile, toml::Table), ProfileError> {
    let profile: Profile = toml::from_str(text).map_err(|error| invalid(source, text, &error))?;
    let table: toml::Table = toml::from_str(text).map_err(|error| invalid(source, text, &error))?;
    Ok((profile, table))
}

fn invalid(source: &ProfileSource, text: &str, error: &toml::de::Error) -> ProfileError {
    let at = Position::of(text, error.span());
    ProfileError::Invalid {
        source_name: source.to_string(),
        line: at.line,
        column: at.column,
        message: error.message().to_owned(),
        snippet: at.snippet,
    }
}

/// Where a span of a TOML text is, for an error message: 1-based line and column, and the line
/// with carets under the span. Shared by every TOML file sandbox reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub snippet: String,
}

impl Position {
    pub fn of(text: &str, span: Option<std::ops::Range<usize>>) -> Position {
        let offset = span
            .as_ref()
            .map(|span| span.start)
            .unwrap_or(0)
            .min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        let line_text = text[line_start..].lines().next().unwrap_or("");
        let width = span
            .map(|span| {
                text[span.start.min(text.len())..span.end.min(text.len())]
                    .chars()
                    .count()
            })
            .unwrap_or(1)
            .clamp(
                1,
                line_text.chars().count().saturating_sub(column - 1).max(1),
            );
        let snippet = if text.is_empty() {
            String::new()
        } else {
            format!(
                "    |\n{line:>3} | {line_text}\n    | {pad}{carets}",
                pad = " ".repeat(column - 1),
                carets = "^".repeat(width)
            )
        };
        Position {
            line,
            column,
            snippet,
        }
    }
}

fn bad_extends(
    from: &ProfileSource,
    text: &str,
    reference: String,
    error: ProfileError,
) -> ProfileError {
    let (line, column) = text
        .lines()
        .enumerate()
        .find_map(|(index, line)| {
            let rest = line.trim_start().strip_prefix("extends")?;
            let value = rest.trim_start().strip_prefix('=')?;
            let column = line.len() - value.trim_start().len() + 1;
            Some((index + 1, column))
        })
        .unwrap_or((1, 1));
    ProfileError::BadExtends {
        source_name: from.to_string(),
        line,
        column,
        reference,
        error: Box::new(error),
    }
}

/// Child values replace parent values; tables are merged key by key, so `[limits] memory = "2G"`
/// in a child keeps the parent's other limits.
fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge_tables(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn every_builtin_parses_and_has_a_description() {
        for (name, _) in BUILTINS {
            let resolved = load_with_search_path(name, &[]).unwrap();
            assert!(!resolved.profile.description.is_empty(), "{name}");
        }
    }

    #[test]
    fn extends_overrides_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "mine.toml",
            "extends = \"strict\"\n[limits]\nmemory = \"3G\"\n",
        );
        let strict = load_with_search_path("strict", &[]).unwrap().profile;
        let mine = load_with_search_path(path.to_str().unwrap(), &[]).unwrap();
        assert_eq!(mine.profile.limits.memory, ByteSize(3 << 30));
        assert_eq!(mine.profile.limits.pids, strict.limits.pids);
        assert_eq!(mine.profile.filesystem.hide, strict.filesystem.hide);
        assert_eq!(mine.sources.len(), 2);
    }

    #[test]
    fn a_user_profile_can_extend_the_builtin_of_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "strict.toml",
            "extends = \"strict\"\n[limits]\npids = 7\n",
        );
        let resolved = load_with_search_path("strict", &[dir.path().to_owned()]).unwrap();
        assert_eq!(resolved.profile.limits.pids, 7);
        assert_eq!(resolved.sources[1], ProfileSource::Builtin("strict".into()));
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bad.toml",
            "[limits]\nmemory = \"1G\"\nmemroy = \"2G\"\n",
        );
        let error = load_with_search_path(path.to_str().unwrap(), &[]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("{}:3:1:", path.display())),
            "{text}"
        );
        assert!(text.contains("memroy"), "{text}");
    }

    #[test]
    fn bad_value_points_at_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.toml", "[limits]\nmemory = \"12Q\"\n");
        let text = load_with_search_path(path.to_str().unwrap(), &[])
            .unwrap_err()
            .to_string();
        assert!(text.contains("bad.toml:2:10:"), "{text}");
        assert!(text.contains("not a size"), "{text}");
    }

    #[test]
    fn cycles_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "extends = \"b\"\n");
        write(dir.path(), "b.toml", "extends = \"a\"\n");
        let error = load_with_search_path("a", &[dir.path().to_owned()]).unwrap_err();
        assert!(matches!(error, ProfileError::Cycle(..)), "{error}");
    }
}
