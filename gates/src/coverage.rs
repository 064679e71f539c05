//! Coverage per file, as the coverage parsers read it from a report: which lines ran and which
//! did not. It feeds the per-file table of a report and diff coverage (`--changed-since`): of
//! the lines a change added that are code at all, how many the tests ran.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::{ChangeKind, Changes};

/// One file's executable lines, split into those that ran and those that did not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileCoverage {
    /// Workspace-relative, '/'-separated.
    pub path: String,
    /// 1-based, ascending.
    pub covered_lines: Vec<u32>,
    /// 1-based, ascending.
    pub missing_lines: Vec<u32>,
}

impl FileCoverage {
    /// Covered over executable lines, in percent (100 for a file with no code).
    pub fn percent(&self) -> f64 {
        percent(
            self.covered_lines.len() as f64,
            (self.covered_lines.len() + self.missing_lines.len()) as f64,
        )
    }
}

pub(crate) fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        // Nothing to cover is fully covered, as coverage.py reports it.
        100.0
    }
}

/// Collects line hits file by file; a report may name one file several times (LCOV records per
/// test, Cobertura classes per file), and a line that ran in any of them ran.
#[derive(Default)]
pub(crate) struct LineHits {
    files: BTreeMap<String, BTreeMap<u32, bool>>,
}

impl LineHits {
    pub fn hit(&mut self, path: &str, line: u32, ran: bool) {
        let ran_before = self
            .files
            .entry(path.to_owned())
            .or_default()
            .entry(line)
            .or_insert(false);
        *ran_before |= ran;
    }

    /// Makes sure `path` is listed, also when it has no executable line.
    pub fn file(&mut self, path: &str) {
        self.files.entry(path.to_owned()).or_default();
    }

    pub fn finish(self) -> Vec<FileCoverage> {
        self.files
            .into_iter()
            .map(|(path, lines)| {
                let (covered, missing): (Vec<_>, Vec<_>) =
                    lines.into_iter().partition(|(_, ran)| *ran);
                FileCoverage {
                    path,
                    covered_lines: covered.into_iter().map(|(line, _)| line).collect(),
                    missing_lines: missing.into_iter().map(|(line, _)| line).collect(),
                }
            })
            .collect()
    }
}

/// Diff coverage: of the lines `changes` added that the report counts as code, how many ran.
/// The metrics `diff_percent` (100 when the change added no code) and `diff_lines` (how many
/// changed lines are code), plus the changed lines that did not run, as `path:line`.
pub fn diff_coverage(
    files: &[FileCoverage],
    changes: &Changes,
) -> (BTreeMap<String, f64>, Vec<String>) {
    let by_path: BTreeMap<&str, &FileCoverage> = files
        .iter()
        .map(|file| (file.path.as_str(), file))
        .collect();
    let (mut code, mut ran) = (0usize, 0usize);
    let mut missed = Vec::new();
    for changed in changes
        .files
        .iter()
        .filter(|file| file.kind != ChangeKind::Deleted)
    {
        let Some(file) = by_path.get(changed.path.as_str()) else {
            continue;
        };
        let covered: BTreeSet<u32> = file.covered_lines.iter().copied().collect();
        let missing: BTreeSet<u32> = file.missing_lines.iter().copied().collect();
        for line in &changed.added_lines {
            if covered.contains(line) {
                code += 1;
                ran += 1;
            } else if missing.contains(line) {
                code += 1;
                missed.push(format!("{}:{line}", changed.path));
            }
        }
    }
    let metrics = BTreeMap::from([
        ("diff_percent".to_owned(), percent(ran as f64, code as f64)),
        ("diff_lines".to_owned(), code as f64),
    ]);
    (metrics, missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_ran_in_any_record_ran() {
        let mut hits = LineHits::default();
        hits.hit("a.py", 2, false);
        hits.hit("a.py", 1, true);
        hits.hit("a.py", 2, true);
        hits.hit("a.py", 3, false);
        hits.file("empty.py");
        let files = hits.finish();
        assert_eq!(files[0].covered_lines, [1, 2]);
        assert_eq!(files[0].missing_lines, [3]);
        assert!((files[0].percent() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(files[1].path, "empty.py");
        assert_eq!(files[1].percent(), 100.0);
    }

    #[test]
    fn diff_coverage_counts_only_changed_code() {
        let files = vec![FileCoverage {
            path: "a.py".into(),
            covered_lines: vec![1, 2, 5],
            missing_lines: vec![3, 4],
        }];
        let patch = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,0 +2,4 @@\n+x\n+y\n+z\n+# comment\n\
                     diff --git a/b.md b/b.md\n--- a/b.md\n+++ b/b.md\n@@ -1,0 +1 @@\n+text\n";
        let changes = Changes::from_patch(patch).unwrap_or_default();
        // Lines 2..=5 changed: 2 and 5 ran, 3 and 4 did not; b.md is not code.
        let (metrics, missed) = diff_coverage(&files, &changes);
        assert_eq!(metrics["diff_lines"], 4.0);
        assert_eq!(metrics["diff_percent"], 50.0);
        assert_eq!(missed, ["a.py:3", "a.py:4"]);
    }

    #[test]
    fn a_change_without_code_is_fully_covered() {
        let (metrics, missed) = diff_coverage(&[], &Changes::default());
        assert_eq!(metrics["diff_percent"], 100.0);
        assert_eq!(metrics["diff_lines"], 0.0);
        assert!(missed.is_empty());
    }
}
