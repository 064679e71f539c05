//! Built-in gates that need no external tool: `policy` (banned imports and calls read from the
//! syntax tree, banned patterns, rules on what a change touches, Rego policies) and
//! `secret-scan`. Each is a plain function from its config table and a workspace to the same
//! `Parsed` a tool's parser returns, so the runner treats them like any other gate.

mod changes;
mod policy;
mod rego;
mod secret_rules;
mod secret_scan;
mod syntax;
mod walk;

use std::cell::Cell;
use std::path::Path;

pub use changes::{ChangeKind, ChangedFile, Changes, ChangesError};
pub use policy::{policy, BannedPattern, PolicyConfig};
pub use secret_scan::{secret_scan, Baseline, SecretScanConfig};

use crate::finding::Finding;

/// What a built-in gate looks at.
#[derive(Debug, Clone, Copy)]
pub struct Workspace<'a> {
    /// The workspace on the host; findings carry paths relative to it.
    pub root: &'a Path,
    /// What changed against the base, when the runner already knows (`--changed-since`,
    /// `--staged`). Takes precedence over the gate's own `base`.
    pub changes: Option<&'a Changes>,
    /// The gate's `paths` globs (relative to `root`); empty means every file.
    pub paths: &'a [String],
    /// Findings of the gates that ran before, for Rego policies (`input.findings`).
    pub findings: &'a [Finding],
    /// The job's outcome as JSON, for Rego policies (`input.outcome`).
    pub outcome: Option<&'a serde_json::Value>,
}

impl<'a> Workspace<'a> {
    /// The whole of `root`, with no changes, earlier findings or outcome.
    pub fn new(root: &'a Path) -> Self {
        Workspace {
            root,
            changes: None,
            paths: &[],
            findings: &[],
            outcome: None,
        }
    }

    pub fn with_changes(mut self, changes: &'a Changes) -> Self {
        self.changes = Some(changes);
        self
    }

    pub fn with_paths(mut self, paths: &'a [String]) -> Self {
        self.paths = paths;
        self
    }
}

/// Byte offsets in a text as 1-based lines and columns (columns in characters, as editors
/// count them).
pub(crate) struct Lines<'t> {
    starts: Vec<usize>,
    columns: Columns<'t>,
}

impl<'t> Lines<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Lines {
            starts,
            columns: Columns::new(text.as_bytes()),
        }
    }

    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&start| start <= offset).max(1) - 1;
        let column = self.columns.column(self.starts[line], offset);
        (line as u32 + 1, column)
    }
}

/// 1-based character columns. The last count is kept, so the many positions asked for on
/// one long line (minified code) cost one pass over it rather than one pass each.
pub(crate) struct Columns<'t> {
    text: &'t [u8],
    /// Line start, offset, characters between them.
    last: Cell<(usize, usize, u32)>,
}

impl<'t> Columns<'t> {
    pub(crate) fn new(text: &'t [u8]) -> Self {
        Columns {
            text,
            last: Cell::new((0, 0, 0)),
        }
    }

    pub(crate) fn column(&self, line_start: usize, offset: usize) -> u32 {
        let (start, at, chars) = self.last.get();
        let (from, before) = if start == line_start && at <= offset {
            (at, chars)
        } else {
            (line_start, 0)
        };
        // Counting the bytes that do not continue a UTF-8 sequence counts characters.
        let more = self
            .text
            .get(from..offset)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count() as u32;
        self.last.set((line_start, offset, before + more));
        before + more + 1
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn positions_count_lines_and_characters() {
        let lines = Lines::new("ab\nçd x\n\nlast");
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(3), (2, 1));
        assert_eq!(lines.position(6), (2, 3));
        assert_eq!(lines.position(10), (4, 1));
        assert_eq!(lines.position(5), (2, 2));
    }
}
