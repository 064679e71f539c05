//! The `policy` gate: banned imports and calls (from the syntax tree), banned patterns by
//! glob, rules on what a change touches, and policies as Rego.

use globset::{GlobMatcher, GlobSet};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::changes::Changes;
use super::syntax::{segments, starts_with, Analyser, Lang, Reference, Syntax};
use super::walk::{self, WalkedFile};
use super::{rego, Lines, Workspace};
use crate::finding::{Finding, Severity};
use crate::parsers::{ParseError, Parsed};

/// Source files larger than this are not parsed: generated bundles, not code anyone wrote.
/// Each one is reported (`policy/unchecked`), so nothing is left unchecked unseen.
const MAX_PARSED_BYTES: u64 = 2 << 20;

/// The `policy` gate's table in `sandbox.toml` (less the keys every gate has).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Modules or items no file may import or use by their full path: `subprocess`,
    /// `os.system`, `child_process`, `std::process::Command`, `os/exec`. An entry matches
    /// itself and anything under it (`subprocess` matches `subprocess.run`).
    #[serde(default)]
    pub banned_imports: Vec<String>,
    /// Functions no code may call, resolved through the file's imports (`sp.run` after
    /// `import subprocess as sp` is `subprocess.run`): `eval`, `exec`, `subprocess.run`,
    /// `std::process::Command::new`. A call matches only the whole name.
    #[serde(default)]
    pub banned_calls: Vec<String>,
    /// Regexes no file matching the glob may contain.
    #[serde(default)]
    pub banned_patterns: Vec<BannedPattern>,
    /// Globs of paths a change may not touch (add, edit, delete or rename).
    #[serde(default)]
    pub forbidden_paths: Vec<String>,
    /// At most this many files changed.
    #[serde(default)]
    pub max_changed_files: Option<u64>,
    /// At most this many lines changed, added plus removed.
    #[serde(default)]
    pub max_changed_lines: Option<u64>,
    /// The git revision changes are measured against (`origin/main`), when the runner does
    /// not hand the gate its changes.
    #[serde(default)]
    pub base: Option<String>,
    /// Rego policy files (globs, relative to the workspace); each one's `deny` set is a list
    /// of findings, and `default allow := false` with `allow` false is one more.
    #[serde(default)]
    pub rego: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BannedPattern {
    /// Which files (relative to the workspace; `*` does not cross `/`, `**` does).
    pub glob: String,
    /// Rust `regex` syntax.
    pub regex: String,
    /// What a finding says; by default, the pattern.
    #[serde(default)]
    pub message: Option<String>,
}

impl PolicyConfig {
    /// Checks every glob and regex, so a bad one is found when `sandbox.toml` is read
    /// rather than when the gate first runs.
    pub fn validate(&self) -> Result<(), ParseError> {
        Rules::compile(self).map(|_| ())
    }

    fn uses_changes(&self) -> bool {
        !self.forbidden_paths.is_empty()
            || self.max_changed_files.is_some()
            || self.max_changed_lines.is_some()
    }
}

struct Rules {
    imports: Vec<(String, Vec<String>)>,
    calls: Vec<(String, Vec<String>)>,
    patterns: Vec<(GlobMatcher, Regex, String)>,
    forbidden: GlobSet,
}

impl Rules {
    fn compile(config: &PolicyConfig) -> Result<Rules, ParseError> {
        let names = |list: &[String]| -> Vec<(String, Vec<String>)> {
            list.iter()
                .map(|name| (name.clone(), segments(name)))
                .collect()
        };
        let mut patterns = Vec::new();
        for pattern in &config.banned_patterns {
            let glob = walk::glob(&pattern.glob, "banned_patterns")?.compile_matcher();
            let regex = Regex::new(&pattern.regex).map_err(|e| {
                ParseError::ToolFailed(format!(
                    "`banned_patterns`: bad regex `{}`: {e}",
                    pattern.regex
                ))
            })?;
            let message = pattern
                .message
                .clone()
                .unwrap_or_else(|| format!("matches the banned pattern `{}`", pattern.regex));
            patterns.push((glob, regex, message));
        }
        Ok(Rules {
            imports: names(&config.banned_imports),
            calls: names(&config.banned_calls),
            patterns,
            forbidden: walk::glob_set(&config.forbidden_paths, "forbidden_paths")?,
        })
    }
}

/// Runs the `policy` gate over `ws`.
pub fn policy(config: &PolicyConfig, ws: &Workspace<'_>) -> Result<Parsed, ParseError> {
    let rules = Rules::compile(config)?;
    let owned;
    let changes = match (ws.changes, &config.base) {
        (Some(changes), _) => Some(changes),
        (None, Some(base)) if config.uses_changes() || !config.rego.is_empty() => {
            owned = Changes::from_git(ws.root, base).map_err(|e| {
                ParseError::ToolFailed(format!("cannot measure changes against `{base}`: {e}"))
            })?;
            Some(&owned)
        }
        (None, None) if config.uses_changes() => {
            return Err(ParseError::ToolFailed(
                "`forbidden_paths`, `max_changed_files` and `max_changed_lines` judge what \
                 changed, and this run has no changes to judge: set `base = \"origin/main\"` \
                 (the revision to diff against) in the gate, or run with `--changed-since REF`"
                    .to_owned(),
            ));
        }
        _ => None,
    };

    let mut parsed = Parsed::default();
    if !(rules.imports.is_empty() && rules.calls.is_empty() && rules.patterns.is_empty()) {
        let files = walk::files(ws.root, ws.paths)?;
        parsed
            .metrics
            .insert("files_scanned".into(), files.len() as f64);
        let mut analyser = Analyser::default();
        for file in &files {
            scan_file(&rules, &mut analyser, file, &mut parsed.findings)?;
        }
    }
    if let Some(changes) = changes {
        change_rules(config, &rules, changes, &mut parsed.findings);
        parsed
            .metrics
            .insert("changed_files".into(), changes.files.len() as f64);
        parsed
            .metrics
            .insert("changed_lines".into(), changes.lines_changed() as f64);
    }
    if !config.rego.is_empty() {
        let mut seen: Vec<Finding> = ws.findings.to_vec();
        seen.extend(parsed.findings.iter().cloned());
        let input = serde_json::json!({
            "changes": changes.map(|c| &c.files),
            "findings": seen,
            "outcome": ws.outcome,
        });
        parsed
            .findings
            .extend(rego::evaluate(ws.root, &config.rego, &input)?);
    }
    Ok(parsed)
}

fn scan_file(
    rules: &Rules,
    analyser: &mut Analyser,
    file: &WalkedFile,
    findings: &mut Vec<Finding>,
) -> Result<(), ParseError> {
    let lang =
        Lang::of_path(&file.rel).filter(|_| !(rules.imports.is_empty() && rules.calls.is_empty()));
    let patterns: Vec<_> = rules
        .patterns
        .iter()
        .filter(|(glob, ..)| glob.is_match(&file.rel))
        .collect();
    if lang.is_none() && patterns.is_empty() {
        return Ok(());
    }
    let bytes = fs_err::read(&file.path).map_err(|e| ParseError::ToolFailed(e.to_string()))?;
    if let Some(lang) = lang {
        if file.size > MAX_PARSED_BYTES {
            let why = format!(
                "{} bytes is over the {MAX_PARSED_BYTES}-byte limit",
                file.size
            );
            findings.push(unchecked(&file.rel, &why));
        } else {
            match analyser.analyse(lang, &bytes) {
                Ok(syntax) => {
                    let mut found = Vec::new();
                    syntax_findings(rules, lang, &syntax, &file.rel, &mut found);
                    found.sort_by_key(|f| (f.line, f.column));
                    findings.append(&mut found);
                }
                Err(why) => findings.push(unchecked(&file.rel, &why)),
            }
        }
    }
    if !patterns.is_empty() {
        // A pattern is about text; bytes that are not UTF-8 are read as best we can rather
        // than skipped, so a stray Latin-1 byte cannot hide a match.
        let text = String::from_utf8_lossy(&bytes);
        let lines = Lines::new(&text);
        for (_, regex, message) in patterns {
            for found in regex.find_iter(&text) {
                let (line, column) = lines.position(found.start());
                findings.push(
                    Finding::new("policy/banned-pattern", Severity::Error, message.clone()).at(
                        &file.rel,
                        Some(line),
                        Some(column),
                    ),
                );
            }
        }
    }
    Ok(())
}

/// A file the gate could not check fails it: a file nobody read is not a file that passed.
fn unchecked(rel: &str, why: &str) -> Finding {
    Finding::new(
        "policy/unchecked",
        Severity::Warning,
        format!(
            "not checked for banned imports and calls: {why}; leave it out with the gate's \
             `paths` if it is generated"
        ),
    )
    .at(rel, None, None)
}

fn syntax_findings(rules: &Rules, lang: Lang, syntax: &Syntax, rel: &str, out: &mut Vec<Finding>) {
    let shown = |path: &[String]| -> String { path.join(lang.separator()) };
    let import_matches = |path: &[String], entry: &[String]| starts_with(path, entry);
    for (entry, entry_path) in &rules.imports {
        let mut reported_groups = Vec::new();
        for import in &syntax.imports {
            if import_matches(&import.path, entry_path) && !reported_groups.contains(&import.group)
            {
                reported_groups.push(import.group);
                out.push(
                    Finding::new(
                        "policy/banned-import",
                        Severity::Error,
                        format!(
                            "imports `{}` (banned import `{entry}`)",
                            shown(&import.path)
                        ),
                    )
                    .at(rel, Some(import.site.line), Some(import.site.column)),
                );
            }
        }
        // A full path in code (`std::process::Command::new`, or `os.system` after
        // `import os`) uses the banned item as surely as importing it does; a name whose
        // import was already reported is not reported again at every use.
        for reference in &syntax.references {
            let via_banned_import = reference
                .via_import
                .and_then(|i| syntax.imports.get(i))
                .is_some_and(|import| import_matches(&import.path, entry_path));
            let qualified = reference.via_import.is_some() || reference.path.len() > 1;
            if qualified && !via_banned_import && import_matches(&reference.path, entry_path) {
                out.push(
                    Finding::new(
                        "policy/banned-import",
                        Severity::Error,
                        format!(
                            "uses `{}` (banned import `{entry}`)",
                            resolved(lang, reference)
                        ),
                    )
                    .at(
                        rel,
                        Some(reference.site.line),
                        Some(reference.site.column),
                    ),
                );
            }
        }
    }
    for (entry, entry_path) in &rules.calls {
        // Exactly the function: `exec` bans `exec(...)`, not `exec::run()` in a module of
        // that name nor `cursor.exec()`.
        for reference in syntax.references.iter().filter(|r| r.called) {
            if reference.path == *entry_path {
                out.push(
                    Finding::new(
                        "policy/banned-call",
                        Severity::Error,
                        format!(
                            "calls `{}` (banned call `{entry}`)",
                            resolved(lang, reference)
                        ),
                    )
                    .at(
                        rel,
                        Some(reference.site.line),
                        Some(reference.site.column),
                    ),
                );
            }
        }
    }
}

/// `sp.run` as written, and what it resolved to when that differs: `sp.run` → `subprocess.run`.
fn resolved(lang: Lang, reference: &Reference) -> String {
    let full = reference.path.join(lang.separator());
    // A chain may be split over lines; the message shows it on one.
    let written: String = reference.written.split_whitespace().collect();
    if full == written {
        full
    } else {
        format!("{written}` → `{full}")
    }
}

fn change_rules(config: &PolicyConfig, rules: &Rules, changes: &Changes, out: &mut Vec<Finding>) {
    for file in &changes.files {
        let paths = std::iter::once(&file.path).chain(file.old_path.as_ref());
        for path in paths {
            let matched = rules.forbidden.matches(path);
            let Some(&first) = matched.first() else {
                continue;
            };
            let glob = &config.forbidden_paths[first];
            out.push(
                Finding::new(
                    "policy/forbidden-path",
                    Severity::Error,
                    format!("changes `{path}`, which `forbidden_paths` rules out (`{glob}`)"),
                )
                .at(path.as_str(), file.added_lines.first().copied(), None),
            );
        }
    }
    if let Some(max) = config.max_changed_files {
        let count = changes.files.len() as u64;
        if count > max {
            out.push(Finding::new(
                "policy/max-changed-files",
                Severity::Error,
                format!("{count} files changed; `max_changed_files` allows {max}"),
            ));
        }
    }
    if let Some(max) = config.max_changed_lines {
        let count = changes.lines_changed();
        if count > max {
            out.push(Finding::new(
                "policy/max-changed-lines",
                Severity::Error,
                format!(
                    "{count} lines changed (added plus removed); `max_changed_lines` allows {max}"
                ),
            ));
        }
    }
}
