//! Rendering a change set as a git patch, for review, for gates and for `git apply`.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use similar::{Algorithm, ChangeTag, TextDiff};

use super::changes::{Change, ChangeKind, ChangeSet, FileType};
use super::sys::Root;
use super::walk::BINARY_PROBE;
use super::WorkspaceError;

/// A change set as a git patch (`git apply -p1` accepts it for text changes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Patch {
    pub text: String,
    /// `+` lines over all hunks (a symlink's target is one line); binary files count 0.
    pub lines_added: u64,
    pub lines_removed: u64,
    /// Changed entries whose contents were not compared because the budget ran out: their
    /// lines are not counted, and the text marks each with [`NOT_DIFFED`] after its header.
    pub not_diffed: Vec<String>,
    /// Bytes of content read from both trees.
    pub bytes_read: u64,
}

/// What the supervisor may spend rendering one job's patch. It runs after the job, outside the
/// job's wall time and cgroup, so the budget is per job, not per file: a job that leaves many
/// large files must not keep `sandbox` busy for seconds per file (issue 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffBudget {
    pub time: Duration,
    /// Bytes of old and new content read, over all files.
    pub bytes: u64,
}

impl Default for DiffBudget {
    fn default() -> Self {
        DiffBudget {
            time: Duration::from_secs(5),
            bytes: 64 << 20,
        }
    }
}

/// The line that stands for the hunks of a file the budget left out. No hunk and no `Binary
/// files` line follows, so `git apply` refuses the whole patch rather than apply part of it.
pub const NOT_DIFFED: &str = "# not diffed: the diff budget ran out";

/// One side of a file's diff.
enum Content {
    Text(String),
    Binary,
    /// Not read: the budget would not cover it.
    OverBudget,
}

/// What is left of the budget while the patch renders.
struct Spending {
    deadline: Instant,
    bytes_left: u64,
    bytes_read: u64,
}

impl ChangeSet {
    /// Renders the change set as a git-style patch: old content is read from `original`, new
    /// content from `view`. Directories produce no text (git has none); a mode change git
    /// cannot express (anything but the owner's execute bit) shows only if the content changed
    /// too; binary files show as `Binary files a/P and b/P differ`.
    ///
    /// Files past `budget` (by time, or by the bytes of both sides read so far) are listed in
    /// `not_diffed` and marked in the text; a file larger than what is left is skipped unread,
    /// and smaller ones after it may still fit. A diff still running at the deadline finishes
    /// with a larger but correct result.
    pub fn patch(
        &self,
        original: &Path,
        view: &Path,
        budget: DiffBudget,
    ) -> Result<Patch, WorkspaceError> {
        let original = Root::open(original)?;
        let view = Root::open(view)?;
        let mut spending = Spending {
            deadline: Instant::now() + budget.time,
            bytes_left: budget.bytes,
            bytes_read: 0,
        };
        let mut patch = Patch::default();
        for change in &self.entries {
            if change.file_type != FileType::Dir {
                render(&mut patch, change, &original, &view, &mut spending)?;
            }
        }
        patch.bytes_read = spending.bytes_read;
        Ok(patch)
    }
}

fn render(
    patch: &mut Patch,
    change: &Change,
    original: &Root,
    view: &Root,
    spending: &mut Spending,
) -> Result<(), WorkspaceError> {
    let a = quote("a/", &change.path);
    let b = quote("b/", &change.path);
    let old_mode = change.old_mode.map(|mode| git_mode(change.file_type, mode));
    let new_mode = change.new_mode.map(|mode| git_mode(change.file_type, mode));
    let mut header = format!("diff --git {a} {b}\n");
    let (old_label, new_label, old, new) = match change.kind {
        ChangeKind::Added => {
            let _ = writeln!(header, "new file mode {:o}", new_mode.unwrap_or(0o100644));
            let new = content(view, change, spending)?;
            ("/dev/null", b.as_str(), Content::Text(String::new()), new)
        }
        ChangeKind::Deleted => {
            let _ = writeln!(
                header,
                "deleted file mode {:o}",
                old_mode.unwrap_or(0o100644)
            );
            let old = content(original, change, spending)?;
            (a.as_str(), "/dev/null", old, Content::Text(String::new()))
        }
        ChangeKind::Modified => {
            if let (Some(old_mode), Some(new_mode)) = (old_mode, new_mode) {
                if old_mode != new_mode {
                    let _ = write!(header, "old mode {old_mode:o}\nnew mode {new_mode:o}\n");
                }
            }
            let content_changed =
                change.file_type == FileType::Symlink || change.content_hash.is_some();
            if !content_changed {
                // Nothing git can show: the mode change is not the execute bit.
                if header.contains("\nold mode ") {
                    patch.text.push_str(&header);
                }
                return Ok(());
            }
            let old = content(original, change, spending)?;
            let new = match old {
                Content::OverBudget => Content::OverBudget,
                _ => content(view, change, spending)?,
            };
            (a.as_str(), b.as_str(), old, new)
        }
    };
    patch.text.push_str(&header);
    match (old, new) {
        (Content::OverBudget, _) | (_, Content::OverBudget) => {
            let _ = writeln!(patch.text, "{NOT_DIFFED}");
            patch.not_diffed.push(change.path.clone());
        }
        (Content::Text(old), Content::Text(new)) => {
            if old != new {
                hunks(patch, old_label, new_label, &old, &new, spending.deadline);
            }
        }
        _ => {
            let _ = writeln!(
                patch.text,
                "Binary files {old_label} and {new_label} differ"
            );
        }
    }
    Ok(())
}

fn hunks(
    patch: &mut Patch,
    old_label: &str,
    new_label: &str,
    old: &str,
    new: &str,
    deadline: Instant,
) {
    // A pathological pair of files degrades to a larger but still correct diff at the deadline.
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(deadline)
        .diff_lines(old, new);
    let _ = writeln!(patch.text, "--- {}", label(old_label));
    let _ = writeln!(patch.text, "+++ {}", label(new_label));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        for line in hunk.iter_changes() {
            match line.tag() {
                ChangeTag::Insert => patch.lines_added += 1,
                ChangeTag::Delete => patch.lines_removed += 1,
                ChangeTag::Equal => {}
            }
        }
        // The hunk renders its `@@` header, the lines, and `\ No newline at end of file`.
        let _ = write!(patch.text, "{hunk}");
    }
}

/// The content of the entry's path under `root`: a symlink's target (one line, no newline,
/// as git shows it), or a file's bytes, opened without following symlinks. `OverBudget`, unread,
/// past the deadline or when the file is larger than the bytes left.
fn content(
    root: &Root,
    change: &Change,
    spending: &mut Spending,
) -> Result<Content, WorkspaceError> {
    let path = &change.path;
    if Instant::now() >= spending.deadline {
        return Ok(Content::OverBudget);
    }
    if change.file_type == FileType::Symlink {
        let (dir, name) = root.parent(path)?;
        let target = nix::fcntl::readlinkat(&dir, name)
            .map_err(|errno| WorkspaceError::sys("readlinkat", root.path().join(path), errno))?;
        return Ok(match target.into_string() {
            Ok(target) => Content::Text(target),
            Err(_) => Content::Binary,
        });
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = root.open_beneath(path, flags, Mode::empty())?;
    let file = std::fs::File::from(fd);
    let read_error = |error| WorkspaceError::read("read", root.path().join(path), error);
    let size = file.metadata().map_err(read_error)?.len();
    if size > spending.bytes_left {
        return Ok(Content::OverBudget);
    }
    // One byte more than is left tells a file that grew since it was measured from one that
    // fits exactly.
    let mut bytes = Vec::new();
    file.take(spending.bytes_left.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let read = bytes.len() as u64;
    spending.bytes_read += read;
    if read > spending.bytes_left {
        spending.bytes_left = 0;
        return Ok(Content::OverBudget);
    }
    spending.bytes_left -= read;
    let probe = bytes.len().min(BINARY_PROBE as usize);
    if bytes[..probe].contains(&0) {
        return Ok(Content::Binary);
    }
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Content::Text(text),
        Err(_) => Content::Binary,
    })
}

/// git records only the owner's execute bit of a file.
fn git_mode(file_type: FileType, mode: u32) -> u32 {
    match file_type {
        FileType::Symlink => 0o120000,
        FileType::Dir => 0o040000,
        FileType::File if mode & 0o100 != 0 => 0o100755,
        FileType::File => 0o100644,
    }
}

/// A `---`/`+++` label: git ends one that holds a space with a tab, so that `git apply` knows
/// where the name stops.
fn label(name: &str) -> String {
    if name.contains(' ') {
        format!("{name}\t")
    } else {
        name.to_string()
    }
}

/// `prefix` + `path`, C-quoted the way git quotes it (`core.quotePath` on) when the path has
/// control characters, `"`, `\` or non-ASCII bytes.
pub(super) fn quote(prefix: &str, path: &str) -> String {
    let needs_quotes = path
        .bytes()
        .any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\' || byte >= 0x7f);
    if !needs_quotes {
        return format!("{prefix}{path}");
    }
    let mut quoted = format!("\"{prefix}");
    for byte in path.bytes() {
        match byte {
            0x07 => quoted.push_str("\\a"),
            0x08 => quoted.push_str("\\b"),
            b'\t' => quoted.push_str("\\t"),
            b'\n' => quoted.push_str("\\n"),
            0x0b => quoted.push_str("\\v"),
            0x0c => quoted.push_str("\\f"),
            b'\r' => quoted.push_str("\\r"),
            b'"' => quoted.push_str("\\\""),
            b'\\' => quoted.push_str("\\\\"),
            byte if !(0x20..0x7f).contains(&byte) => {
                let _ = write!(quoted, "\\{byte:03o}");
            }
            byte => quoted.push(char::from(byte)),
        }
    }
    quoted.push('"');
    quoted
}
