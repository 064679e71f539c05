//! Rendering a change set as a git patch, for review, for gates and for `git apply`.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

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
}

/// One side of a file's diff.
enum Content {
    Text(String),
    Binary,
}

impl ChangeSet {
    /// Renders the change set as a git-style patch: old content is read from `original`, new
    /// content from `view`. Directories produce no text (git has none); a mode change git
    /// cannot express (anything but the owner's execute bit) shows only if the content changed
    /// too; binary files show as `Binary files a/P and b/P differ`.
    pub fn patch(&self, original: &Path, view: &Path) -> Result<Patch, WorkspaceError> {
        let original = Root::open(original)?;
        let view = Root::open(view)?;
        let mut patch = Patch::default();
        for change in &self.entries {
            if change.file_type != FileType::Dir {
                render(&mut patch, change, &original, &view)?;
            }
        }
        Ok(patch)
    }
}

fn render(
    patch: &mut Patch,
    change: &Change,
    original: &Root,
    view: &Root,
) -> Result<(), WorkspaceError> {
    let a = quote("a/", &change.path);
    let b = quote("b/", &change.path);
    let old_mode = change.old_mode.map(|mode| git_mode(change.file_type, mode));
    let new_mode = change.new_mode.map(|mode| git_mode(change.file_type, mode));
    let mut header = format!("diff --git {a} {b}\n");
    let (old_label, new_label, old, new) = match change.kind {
        ChangeKind::Added => {
            let _ = writeln!(header, "new file mode {:o}", new_mode.unwrap_or(0o100644));
            let new = content(view, change)?;
            ("/dev/null", b.as_str(), Content::Text(String::new()), new)
        }
        ChangeKind::Deleted => {
            let _ = writeln!(
                header,
                "deleted file mode {:o}",
                old_mode.unwrap_or(0o100644)
            );
            let old = content(original, change)?;
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
            let old = content(original, change)?;
            let new = content(view, change)?;
            (a.as_str(), b.as_str(), old, new)
        }
    };
    patch.text.push_str(&header);
    match (old, new) {
        (Content::Text(old), Content::Text(new)) => {
            if old != new {
                hunks(patch, old_label, new_label, &old, &new);
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

fn hunks(patch: &mut Patch, old_label: &str, new_label: &str, old: &str, new: &str) {
    // A pathological pair of files degrades to a larger but still correct diff after 5 s.
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(Duration::from_secs(5))
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
/// as git shows it), or a file's bytes, opened without following symlinks.
fn content(root: &Root, change: &Change) -> Result<Content, WorkspaceError> {
    let path = &change.path;
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
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|error| WorkspaceError::read("read", root.path().join(path), error))?;
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
