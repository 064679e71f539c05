//! Profiles: lookup, `extends`, and errors that point at the file, line and column.
//!
//! A project's own profiles (`.sandbox/profiles/` in the workspace) are looked up first but
//! trusted least (DESIGN §12): unless the operator trusts the project, the resolved profile
//! must narrow the operator profile it stands in for, field by field.

mod schema;
mod units;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use schema::*;
pub use units::{ByteSize, HumanDuration};

use crate::trust::{TrustLevel, TrustReport};

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
    /// An operator's file: named on the command line, or in an operator directory.
    File(PathBuf),
    /// A file of the project (untrusted), by its path on the host.
    Project(PathBuf),
}

impl std::fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileSource::Builtin(name) => write!(f, "<builtin>/{name}.toml"),
            ProfileSource::File(path) | ProfileSource::Project(path) => path.display().fmt(f),
        }
    }
}

/// A profile after `extends` was followed and merged.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedProfile {
    pub name: String,
    /// The layers, the profile itself first, then what it extends.
    pub sources: Vec<ProfileSource>,
    /// The text of each layer, as read.
    #[serde(skip)]
    pub texts: Vec<String>,

    #[serde(flatten)]
    pub profile: Profile,
    /// Which trust applied: the project files among `sources`, and what they were held to.
    #[serde(skip)]
    pub trust: TrustReport,
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
    /// A project profile reaches further than the operator profile it stands in for.
    #[error("{0}")]
    Widens(Box<Widens>),
    /// A project file names something outside the project, or cannot be read safely.
    #[error("{0}")]
    Project(String),
}

/// Where and how a project profile widens its operator ceiling.
#[derive(Debug)]
pub struct Widens {
    pub source_name: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub detail: String,
    /// The other widenings, named briefly.
    pub others: Vec<String>,
    pub ceiling: String,
    pub snippet: String,
}

impl std::fmt::Display for Widens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Widens {
            source_name,
            line,
            column,
            field,
            detail,
            others,
            ceiling,
            snippet,
        } = self;
        write!(
            f,
            "{source_name}:{line}:{column}: `{field}` widens the operator's `{ceiling}` profile: \
             {detail}"
        )?;
        if !others.is_empty() {
            write!(f, " (and {})", others.join("; "))?;
        }
        write!(
            f,
            "\n{snippet}\na project's profile may only narrow the operator's; to let this \
             project widen its own sandbox, pass --trust-project or list it under [trust] \
             projects in $XDG_CONFIG_HOME/sandbox/config.toml"
        )
    }
}

/// The JSON Schema of a profile file (its TOML as data), as committed in
/// `schemas/profile.schema.json`.
pub fn profile_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Profile)).unwrap_or_default()
}

/// The operator's directories searched for `NAME.toml`, in order, before the built-ins.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = crate::trust::operator_dirs()
        .into_iter()
        .rev()
        .map(|dir| dir.join("profiles"))
        .collect();
    dirs.dedup();
    dirs
}

/// Where the project's own profiles live, relative to its workspace.
pub const PROJECT_PROFILES: &str = ".sandbox/profiles";

/// The profile `sandbox exec` runs with when none is named; also the ceiling of a project
/// profile whose name the operator has no profile of.
pub const DEFAULT_PROFILE: &str = "standard";

/// Where profiles are looked up: the project's (untrusted unless the operator says otherwise),
/// then the operator's directories, then the built-ins.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub operator_dirs: Vec<PathBuf>,
    pub project: Option<ProjectProfiles>,
}

/// A project whose `.sandbox/profiles/` is searched first.
#[derive(Debug, Clone)]
pub struct ProjectProfiles {
    /// The workspace (canonical).
    pub root: PathBuf,
    /// Why the operator trusts it, if it does: then its profiles may also widen.
    pub trusted: Option<String>,
    /// The operator profiles a profile only the project defines may narrow: the default one,
    /// and the operator's gate profiles (a project's own gate profile narrows `gate`).
    pub ceilings: Vec<String>,
}

impl Lookup {
    /// The operator's directories and the built-ins, no project.
    pub fn operator() -> Lookup {
        Lookup {
            operator_dirs: search_path(),
            project: None,
        }
    }

    /// The operator's lookup, with `trust`'s workspace as the project.
    pub fn for_project(trust: &crate::trust::Trust) -> Lookup {
        Lookup {
            project: Some(ProjectProfiles {
                root: trust.workspace.clone(),
                trusted: trust.trusted.clone(),
                ceilings: std::iter::once(DEFAULT_PROFILE.to_owned())
                    .chain(trust.gate_profiles.iter().cloned())
                    .collect(),
            }),
            ..Lookup::operator()
        }
    }

    /// Loads a profile by name or path, following `extends`; a profile that came from the
    /// project is checked to only narrow its operator ceiling.
    pub fn load(&self, name_or_path: &str) -> Result<ResolvedProfile, ProfileError> {
        let mut resolved = self.resolve(name_or_path)?;
        let Some(project) = &self.project else {
            return Ok(resolved);
        };
        if let Some(why) = &project.trusted {
            resolved.trust.project = TrustLevel::Trusted;
            resolved.trust.reason = Some(why.clone());
        }
        resolved.trust.project_files = resolved
            .sources
            .iter()
            .filter_map(|source| match source {
                ProfileSource::Project(path) => Some(
                    path.strip_prefix(&project.root)
                        .unwrap_or(path)
                        .display()
                        .to_string(),
                ),
                _ => None,
            })
            .collect();
        if resolved.trust.project_files.is_empty() || project.trusted.is_some() {
            return Ok(resolved);
        }
        let operator = Lookup {
            project: None,
            ..self.clone()
        };
        let mut refused = None;
        for ceiling_name in self.ceilings_of(name_or_path, project) {
            let ceiling = operator.resolve(&ceiling_name)?;
            let widenings = crate::trust::widenings(&resolved.profile, &ceiling.profile);
            if widenings.is_empty() {
                resolved.trust.ceiling = Some(ceiling_name);
                return Ok(resolved);
            }
            refused.get_or_insert((ceiling_name, widenings));
        }
        match refused {
            Some((name, widenings)) if !widenings.is_empty() => {
                Err(self.widens(&resolved, &name, &widenings[0], &widenings[1..]))
            }
            _ => Err(ProfileError::Project(format!(
                "{}: no operator profile to hold it to",
                resolved.sources[0]
            ))),
        }
    }

    /// The operator profiles a project profile may narrow: the operator's profile of the name
    /// the caller asked for, else those a project-only profile may narrow. Never what the
    /// project's own `extends` names: a pull request can change that line.
    fn ceilings_of(&self, asked: &str, project: &ProjectProfiles) -> Vec<String> {
        if !is_path(asked) && self.operator_has(asked) {
            vec![asked.to_owned()]
        } else {
            project.ceilings.clone()
        }
    }

    fn operator_has(&self, name: &str) -> bool {
        let file_name = format!("{name}.toml");
        self.operator_dirs
            .iter()
            .any(|dir| dir.join(&file_name).is_file())
            || BUILTINS.iter().any(|(builtin, _)| *builtin == name)
    }

    /// Points at the first project file (top layer first) that sets `widening.field`, or else
    /// at the `extends` line through which the wider value came in.
    fn widens(
        &self,
        resolved: &ResolvedProfile,
        ceiling: &str,
        widening: &crate::trust::Widening,
        others: &[crate::trust::Widening],
    ) -> ProfileError {
        const NAMED: usize = 3;
        let others_all = others;
        let mut others: Vec<String> = others_all
            .iter()
            .take(NAMED)
            .map(|other| format!("`{}`: {}", other.field, other.detail))
            .collect();
        if others_all.len() > NAMED {
            others.push(format!("{} more", others_all.len() - NAMED));
        }

        let project_texts: Vec<(&ProfileSource, &String)> = resolved
            .sources
            .iter()
            .zip(&resolved.texts)
            .filter(|(source, _)| matches!(source, ProfileSource::Project(_)))
            .collect();
        let setting = project_texts.iter().find_map(|(source, text)| {
            let span = field_span(text, &widening.field)?;
            Some((*source, *text, span))
        });
        let (source, text, span) = match setting {
            Some(found) => found,
            None => {
                let (source, text) = project_texts[project_texts.len() - 1];
                (source, text, field_span(text, "extends").unwrap_or(0..0))
            }
        };
        let at = Position::of(text, Some(span));
        ProfileError::Widens(Box::new(Widens {
            source_name: source.to_string(),
            line: at.line,
            column: at.column,
            field: widening.field.clone(),
            detail: widening.detail.clone(),
            others,
            ceiling: ceiling.to_owned(),
            snippet: at.snippet,
        }))
    }

    fn resolve(&self, name_or_path: &str) -> Result<ResolvedProfile, ProfileError> {
        let mut layers: Vec<(ProfileSource, toml::Table, String)> = Vec::new();
        let mut next = Some((name_or_path.to_owned(), None::<(ProfileSource, String)>));
        while let Some((reference, referrer)) = next.take() {
            let located = self.locate(&reference, referrer.as_ref().map(|(source, _)| source));
            let (source, text) = match (located, referrer) {
                (Ok(found), _) => found,
                (Err(error), None) => return Err(error),
                (Err(error), Some((from, from_text))) => {
                    return Err(bad_extends(&from, &from_text, reference, error))
                }
            };
            if layers.iter().any(|(seen, _, _)| *seen == source) {
                let chain: Vec<String> = layers.iter().map(|(s, _, _)| s.to_string()).collect();
                return Err(ProfileError::Cycle(reference, chain.join(" -> ")));
            }
            let (profile, table) = parse_layer(&source, &text)?;
            next = profile
                .extends
                .map(|parent| (parent, Some((source.clone(), text.clone()))));
            layers.push((source, table, text));
        }

        let mut merged = toml::Table::new();
        for (_, table, _) in layers.iter().rev() {
            merge_tables(&mut merged, table.clone());
        }
        merged.remove("extends");
        let (top_source, _, _) = &layers[0];
        let profile: Profile = toml::Value::Table(merged)
            .try_into()
            .map_err(|error: toml::de::Error| invalid(top_source, "", &error))?;
        let (sources, texts) = layers
            .into_iter()
            .map(|(source, _, text)| (source, text))
            .unzip();
        Ok(ResolvedProfile {
            name: profile_name(name_or_path),
            sources,
            texts,
            profile,
            trust: TrustReport::default(),
        })
    }

    /// Finds the text of a profile `referrer` (if any) extends. A file
    /// that extends its own name (`.sandbox/profiles/strict.toml` with `extends = "strict"`)
    /// continues the search after itself, so users can tweak a built-in.
    fn locate(
        &self,
        reference: &str,
        referrer: Option<&ProfileSource>,
    ) -> Result<(ProfileSource, String), ProfileError> {
        if is_path(reference) {
            return self.locate_path(reference, referrer);
        }
        let file_name = format!("{reference}.toml");
        if let Some(project) = &self.project {
            let candidate = project.root.join(PROJECT_PROFILES).join(&file_name);
            // A project file extending its own name means the operator's profile of that name
            // (a built-in, tightened).
            if referrer != Some(&ProfileSource::Project(candidate.clone())) {
                if let Some(text) = read_project(&project.root, &candidate)? {
                    return Ok((ProfileSource::Project(candidate), text));
                }
            }
        }
        let mut skip_until_after = referrer.and_then(|source| match source {
            ProfileSource::File(path) if path.file_name() == Some(file_name.as_ref()) => Some(path),
            _ => None,
        });
        for dir in &self.operator_dirs {
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
                searched: self
                    .project
                    .iter()
                    .map(|project| project.root.join(PROJECT_PROFILES))
                    .chain(self.operator_dirs.iter().cloned())
                    .map(|dir| dir.join(&file_name))
                    .collect(),
            })
    }

    /// A profile named by its path. One inside the project is project configuration however it
    /// was named (a CI step's `--profile .sandbox/ci.toml` reads what the pull request wrote),
    /// and a project file may name only files of its project.
    fn locate_path(
        &self,
        reference: &str,
        referrer: Option<&ProfileSource>,
    ) -> Result<(ProfileSource, String), ProfileError> {
        let path = match referrer {
            Some(ProfileSource::File(from) | ProfileSource::Project(from))
                if Path::new(reference).is_relative() =>
            {
                from.parent()
                    .map(|dir| dir.join(reference))
                    .unwrap_or_else(|| reference.into())
            }
            _ => std::path::absolute(reference).unwrap_or_else(|_| reference.into()),
        };
        let lexical = normalize(&path);
        if let Some(project) = &self.project {
            if lexical.starts_with(&project.root) {
                return match read_project(&project.root, &lexical)? {
                    Some(text) => Ok((ProfileSource::Project(lexical), text)),
                    None => Err(ProfileError::Read {
                        path: lexical,
                        source: std::io::ErrorKind::NotFound.into(),
                    }),
                };
            }
        }
        if let Some(ProfileSource::Project(from)) = referrer {
            return Err(ProfileError::Project(format!(
                "{}: extends = \"{reference}\" leaves the project; a project profile may extend \
                 only the project's own files or a profile by name",
                from.display()
            )));
        }
        // Canonical, so that a cycle written with different spellings of one path is caught.
        let path = std::fs::canonicalize(&lexical).unwrap_or(lexical);
        read(&path).map(|text| (ProfileSource::File(path), text))
    }
}

/// Loads a profile by name or path from the operator's directories and the built-ins.
pub fn load(name_or_path: &str) -> Result<ResolvedProfile, ProfileError> {
    Lookup::operator().load(name_or_path)
}

pub fn load_with_search_path(
    name_or_path: &str,
    search_path: &[PathBuf],
) -> Result<ResolvedProfile, ProfileError> {
    Lookup {
        operator_dirs: search_path.to_vec(),
        project: None,
    }
    .load(name_or_path)
}

/// `..` and `.` resolved by the text alone: whether a path is inside the project is decided
/// before anything on disk (a symlink) can say otherwise.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn read_project(root: &Path, path: &Path) -> Result<Option<String>, ProfileError> {
    let rel = path.strip_prefix(root).map_err(|_| {
        ProfileError::Project(format!("{} is not in {}", path.display(), root.display()))
    })?;
    crate::trust::read_project_text(root, &rel.to_string_lossy())
        .map_err(|error| ProfileError::Project(error.to_string()))
}

/// The span of a dotted `field` (`network.mode`, `secrets.TOKEN`) in a profile's text, however
/// it was written: a table header, a dotted key or an inline table.
pub fn field_span(text: &str, field: &str) -> Option<std::ops::Range<usize>> {
    let parsed = toml::de::DeTable::parse(text).ok()?;
    let mut parts = field.split('.');
    let mut value = parsed.get_ref().get(parts.next()?)?;
    for part in parts {
        value = value.get_ref().get(part)?;
    }
    Some(value.span())
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

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Lookup) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for (rel, text) in files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let lookup = Lookup {
            operator_dirs: Vec::new(),
            project: Some(ProjectProfiles {
                root,
                trusted: None,
                ceilings: vec![DEFAULT_PROFILE.to_owned()],
            }),
        };
        (dir, lookup)
    }

    #[test]
    fn a_project_profile_may_narrow_its_namesake() {
        let (_dir, lookup) = project(&[(
            ".sandbox/profiles/strict.toml",
            "extends = \"strict\"\n[limits]\npids = 7\n",
        )]);
        let resolved = lookup.load("strict").unwrap();
        assert_eq!(resolved.profile.limits.pids, 7);
        assert_eq!(resolved.trust.ceiling.as_deref(), Some("strict"));
        assert_eq!(
            resolved.trust.project_files,
            vec![".sandbox/profiles/strict.toml".to_owned()]
        );
    }

    #[test]
    fn a_project_profile_cannot_widen_its_namesake() {
        let (_dir, lookup) = project(&[(
            ".sandbox/profiles/gate.toml",
            "extends = \"gate\"\n\n[process]\nuser = \"0:0\"\nseccomp = \"off\"\n",
        )]);
        let error = lookup.load("gate").unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, ProfileError::Widens(_)), "{text}");
        assert!(text.contains("gate.toml:4:8: `process.user`"), "{text}");
        assert!(
            text.contains("process.seccomp"),
            "every widening is named: {text}"
        );
    }

    #[test]
    fn a_widening_through_extends_points_at_extends() {
        // The wider values come from the built-in it extends, not from a line of its own.
        let (_dir, lookup) = project(&[(
            ".sandbox/profiles/strict.toml",
            "# tweaks\nextends = \"permissive\"\n",
        )]);
        let text = lookup.load("strict").unwrap_err().to_string();
        assert!(text.contains("strict.toml:2:11: `process."), "{text}");
    }

    #[test]
    fn a_widening_in_an_inline_table_or_a_middle_layer_is_found() {
        let (_dir, lookup) = project(&[
            (".sandbox/profiles/mine.toml", "extends = \"base\"\n"),
            (
                ".sandbox/profiles/base.toml",
                "extends = \"standard\"\nprocess = { env = { pass = [\"PATH\"] }, user = \"0:0\" }\n",
            ),
        ]);
        let text = lookup.load("mine").unwrap_err().to_string();
        assert!(text.contains("base.toml:2:"), "{text}");
        assert!(text.contains("`process.user`"), "{text}");
    }

    #[test]
    fn a_project_only_profile_is_held_to_the_default_whatever_it_extends() {
        // Without `extends` a profile has the schema's defaults: nothing hidden.
        let (_dir, lookup) = project(&[(".sandbox/profiles/mine.toml", "[limits]\npids = 1\n")]);
        let text = lookup.load("mine").unwrap_err().to_string();
        assert!(text.contains("mine.toml:1:1: `process.require`"), "{text}");
        assert!(text.contains("operator's `standard` profile"), "{text}");
        let (_dir, lookup) =
            project(&[(".sandbox/profiles/mine.toml", "extends = \"permissive\"\n")]);
        let text = lookup.load("mine").unwrap_err().to_string();
        assert!(text.contains("mine.toml:1:11: `process.require`"), "{text}");
        let (_dir, lookup) = project(&[(
            ".sandbox/profiles/mine.toml",
            "extends = \"strict\"\n[limits]\npids = 9\n",
        )]);
        assert_eq!(lookup.load("mine").unwrap().profile.limits.pids, 9);
    }

    #[test]
    fn a_project_profile_cannot_extend_a_file_outside_the_project() {
        let (_dir, lookup) = project(&[(
            ".sandbox/profiles/strict.toml",
            "extends = \"/etc/sandbox/profiles/wide.toml\"\n",
        )]);
        let error = lookup.load("strict").unwrap_err();
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause
                .as_deref()
                .is_some_and(|cause| cause.contains("leaves the project")),
            "{error}: {cause:?}"
        );
        let (_dir, lookup) = project(&[(
            ".sandbox/profiles/strict.toml",
            "extends = \"../../../../../etc/passwd.toml\"\n",
        )]);
        assert!(lookup.load("strict").is_err());
    }

    #[test]
    fn a_path_into_the_project_is_project_configuration() {
        let (_dir, lookup) = project(&[("ci/wide.toml", "extends = \"permissive\"\n")]);
        let path = lookup
            .project
            .as_ref()
            .unwrap()
            .root
            .join("ci/../ci/wide.toml");
        let error = lookup.load(path.to_str().unwrap()).unwrap_err();
        assert!(matches!(error, ProfileError::Widens(_)), "{error}");
    }

    #[test]
    fn a_symlinked_profile_directory_is_refused() {
        let (dir, lookup) = project(&[("elsewhere/strict.toml", "extends = \"strict\"\n")]);
        std::os::unix::fs::symlink("../elsewhere", dir.path().join(".sandbox")).unwrap_or_else(
            |_| {
                std::fs::create_dir(dir.path().join(".sandbox")).unwrap();
                std::os::unix::fs::symlink("../elsewhere", dir.path().join(".sandbox/profiles"))
                    .unwrap();
            },
        );
        let text = lookup.load("strict").unwrap_err().to_string();
        assert!(text.contains("symlink"), "{text}");
    }

    #[test]
    fn a_trusted_project_may_widen() {
        let (_dir, mut lookup) = project(&[(
            ".sandbox/profiles/strict.toml",
            "extends = \"permissive\"\n",
        )]);
        lookup.project.as_mut().unwrap().trusted = Some("--trust-project".into());
        let resolved = lookup.load("strict").unwrap();
        assert_eq!(resolved.profile.network.mode, NetworkMode::Host);
        assert_eq!(resolved.trust.project, TrustLevel::Trusted);
    }
}
