//! What a change touches: the files and the added lines of a unified diff against a base, read
//! from `git diff` or from a patch someone handed us.

use std::path::Path;
use std::process::Command;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` failed ({status}): {stderr}")]
    Git {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("`{0}` is not a usable base revision (it would be read as an option)")]
    BadRef(String),
    #[error("`{0}` names no commit in this repository (a remote branch not fetched yet?)")]
    UnknownBase(String),
    #[error("patch line {line}: {why}")]
    Patch { line: usize, why: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One file a change touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangedFile {
    /// Workspace-relative, '/'-separated; for a deleted file, the path it had.
    pub path: String,
    /// Where a renamed file came from (only patches carry renames: `from_git` asks git for
    /// none, so a rename is a deletion plus an addition and both paths are seen).
    pub old_path: Option<String>,
    pub kind: ChangeKind,
    /// 1-based line numbers, in the new file, of the lines the change added or rewrote.
    pub added_lines: Vec<u32>,
    /// How many lines of the old file the change removed or rewrote.
    pub removed_lines: u32,
}

impl ChangedFile {
    fn new(path: String) -> Self {
        ChangedFile {
            path,
            old_path: None,
            kind: ChangeKind::Modified,
            added_lines: Vec::new(),
            removed_lines: 0,
        }
    }

    /// Added plus removed lines, as `git diff --stat` counts them.
    pub fn lines_changed(&self) -> u64 {
        self.added_lines.len() as u64 + u64::from(self.removed_lines)
    }
}

/// The files a change touches, in the order the diff lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Changes {
    pub files: Vec<ChangedFile>,
}

impl Changes {
    /// The working tree of the repository at `root` against `base_ref`: tracked files from
    /// `git diff --unified=0 BASE --`, plus untracked files that are not ignored, which count
    /// as wholly added (otherwise a new, never-staged file would slip past every change rule).
    pub fn from_git(root: &Path, base_ref: &str) -> Result<Changes, ChangesError> {
        if base_ref.starts_with('-') {
            return Err(ChangesError::BadRef(base_ref.to_owned()));
        }
        // Resolve first so a typo in `base` reads as such, not as a diff failure.
        let commit = format!("{base_ref}^{{commit}}");
        git(root, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|e| match e {
            ChangesError::Git { .. } => ChangesError::UnknownBase(base_ref.to_owned()),
            other => other,
        })?;
        // Pin everything a user's git config could change about the output: prefixes
        // (diff.noprefix), renames (diff.renames), external diff drivers, colour, quoting.
        let diff = git(
            root,
            &[
                "-c",
                "core.quotePath=false",
                "diff",
                "--unified=0",
                // A workspace below the repository's top sees its own paths, and only them.
                "--relative",
                "--no-renames",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                base_ref,
                "--",
            ],
        )?;
        let mut changes = Changes::from_patch(&diff)?;
        let untracked = git(
            root,
            &["ls-files", "--others", "--exclude-standard", "-z", "--"],
        )?;
        for path in untracked.split('\0').filter(|p| !p.is_empty()) {
            changes.files.push(untracked_file(root, path)?);
        }
        Ok(changes)
    }

    /// Reads a unified diff: `git diff` output (any context size) or plain `diff -u`.
    pub fn from_patch(text: &str) -> Result<Changes, ChangesError> {
        PatchReader::default().read(text)
    }

    /// Added plus removed lines over all files.
    pub fn lines_changed(&self) -> u64 {
        self.files.iter().map(ChangedFile::lines_changed).sum()
    }
}

/// Runs git in `root`. The repository's own config is the workspace's, so whoever wrote the
/// workspace chose it: an fsmonitor hook there would run a command of theirs on every diff,
/// and is turned off. (Clean filters named in `.gitattributes` still run; built-in gates run
/// inside their sandboxed job for that reason.)
fn git(root: &Path, args: &[&str]) -> Result<String, ChangesError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "core.fsmonitor=false"])
        .args(args)
        .output()
        .map_err(ChangesError::Spawn)?;
    if !output.status.success() {
        return Err(ChangesError::Git {
            args: args.join(" "),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn untracked_file(root: &Path, path: &str) -> Result<ChangedFile, ChangesError> {
    let mut file = ChangedFile::new(path.to_owned());
    file.kind = ChangeKind::Added;
    let full = root.join(path);
    // A symlink is one line (its target) and is never followed out of the tree; a nested
    // repository (listed as `dir/`) is one entry with no lines of its own.
    let meta = fs_err::symlink_metadata(&full)?;
    if meta.file_type().is_symlink() {
        file.added_lines = vec![1];
    } else if meta.is_file() {
        file.added_lines = (1..=text_lines(&full)?).collect();
    }
    Ok(file)
}

/// How many lines a new file adds: none for a binary file (a NUL byte, as git decides), and
/// counted in chunks so a large data file is not read into memory whole.
fn text_lines(path: &Path) -> Result<u32, ChangesError> {
    use std::io::Read;
    let mut reader = fs_err::File::open(path)?;
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut breaks, mut last) = (0u32, b'\n');
    loop {
        let read = reader.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        let bytes = &chunk[..read];
        if bytes.contains(&0) {
            return Ok(0);
        }
        breaks = breaks.saturating_add(bytes.iter().filter(|&&b| b == b'\n').count() as u32);
        last = bytes[read - 1];
    }
    Ok(breaks + u32::from(last != b'\n'))
}

#[derive(Default)]
struct PatchReader {
    files: Vec<ChangedFile>,
    current: Option<ChangedFile>,
    /// Set once the current file's `---` line is read: a second one starts a new file in
    /// patches without `diff --git` headers.
    seen_old_header: bool,
    old_left: u32,
    new_left: u32,
    next_new_line: u32,
}

impl PatchReader {
    fn read(mut self, text: &str) -> Result<Changes, ChangesError> {
        for (index, line) in text.lines().enumerate() {
            self.line(line).map_err(|why| ChangesError::Patch {
                line: index + 1,
                why,
            })?;
        }
        if self.old_left > 0 || self.new_left > 0 {
            return Err(ChangesError::Patch {
                line: text.lines().count(),
                why: "the patch ends inside a hunk".to_owned(),
            });
        }
        self.finish_file();
        Ok(Changes { files: self.files })
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        // Inside a hunk the header's counts say which lines are content, so a content line
        // that happens to start with `--- ` or `diff ` is never taken for a header.
        if self.old_left > 0 || self.new_left > 0 {
            return self.hunk_line(line);
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            self.finish_file();
            self.current = Some(ChangedFile::new(path_from_git_header(rest)));
        } else if line.starts_with("new file mode") {
            self.file()?.kind = ChangeKind::Added;
        } else if line.starts_with("deleted file mode") {
            self.file()?.kind = ChangeKind::Deleted;
        } else if let Some(from) = line.strip_prefix("rename from ") {
            self.file()?.old_path = Some(unquote(from));
        } else if let Some(to) = line.strip_prefix("rename to ") {
            self.file()?.path = unquote(to);
        } else if let Some(old) = line.strip_prefix("--- ") {
            if self.seen_old_header || self.current.is_none() {
                self.finish_file();
                self.current = Some(ChangedFile::new(String::new()));
            }
            self.seen_old_header = true;
            let file = self.file()?;
            match header_path(old) {
                Some(path) => file.path = path,
                None => file.kind = ChangeKind::Added,
            }
        } else if let Some(new) = line.strip_prefix("+++ ") {
            let file = self.file()?;
            match header_path(new) {
                Some(path) => file.path = path,
                None => file.kind = ChangeKind::Deleted,
            }
        } else if let Some(header) = line.strip_prefix("@@ ") {
            self.hunk_header(header)?;
        }
        // Anything else (index lines, mode changes, "Binary files ... differ", a mail's
        // preamble) says nothing about paths or lines.
        Ok(())
    }

    fn file(&mut self) -> Result<&mut ChangedFile, String> {
        self.current
            .as_mut()
            .ok_or_else(|| "a file header before any `diff --git` or `---` line".to_owned())
    }

    fn finish_file(&mut self) {
        if let Some(file) = self.current.take() {
            if !file.path.is_empty() {
                self.files.push(file);
            }
        }
        self.seen_old_header = false;
    }

    fn hunk_header(&mut self, header: &str) -> Result<(), String> {
        let bad = || format!("not a hunk header: `@@ {header}`");
        let mut ranges = header.split_whitespace();
        let old = ranges
            .next()
            .and_then(|r| r.strip_prefix('-'))
            .ok_or_else(bad)?;
        let new = ranges
            .next()
            .and_then(|r| r.strip_prefix('+'))
            .ok_or_else(bad)?;
        let (_, old_count) = parse_range(old).ok_or_else(bad)?;
        let (new_start, new_count) = parse_range(new).ok_or_else(bad)?;
        self.file()?;
        self.old_left = old_count;
        self.new_left = new_count;
        self.next_new_line = new_start;
        Ok(())
    }

    fn hunk_line(&mut self, line: &str) -> Result<(), String> {
        let file = self
            .current
            .as_mut()
            .ok_or_else(|| "hunk without a file".to_owned())?;
        match line.as_bytes().first() {
            Some(b'+') if self.new_left > 0 => {
                file.added_lines.push(self.next_new_line);
                self.next_new_line += 1;
                self.new_left -= 1;
            }
            Some(b'-') if self.old_left > 0 => {
                file.removed_lines += 1;
                self.old_left -= 1;
            }
            Some(b' ') | None if self.old_left > 0 && self.new_left > 0 => {
                self.next_new_line += 1;
                self.old_left -= 1;
                self.new_left -= 1;
            }
            Some(b'\\') => {}
            _ => return Err(format!("hunk line does not fit the hunk header: `{line}`")),
        }
        Ok(())
    }
}

/// `12,3` is (12, 3); a range without a count has one line.
fn parse_range(range: &str) -> Option<(u32, u32)> {
    match range.split_once(',') {
        Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
        None => Some((range.parse().ok()?, 1)),
    }
}

/// The path of a `---`/`+++` line: `None` for `/dev/null`; without the `a/`/`b/` prefix and
/// the timestamp plain `diff -u` appends after a tab.
fn header_path(raw: &str) -> Option<String> {
    let raw = raw.split('\t').next().unwrap_or(raw);
    if raw == "/dev/null" {
        return None;
    }
    let path = unquote(raw);
    let path = path
        .strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(&path);
    Some(path.to_owned())
}

/// The new path of `diff --git a/P b/P`, only used until a `---`/`+++` or `rename` line says
/// better (a pure mode change or a binary file has neither).
fn path_from_git_header(rest: &str) -> String {
    if rest.starts_with('"') {
        if let Some(end) = closing_quote(rest) {
            return header_path(rest[end + 1..].trim_start()).unwrap_or_default();
        }
    }
    // Both halves are the same path unless the file was renamed, which `from_git` turns off.
    let half = rest.len().saturating_sub(1) / 2;
    if let (Some(old), Some(new)) = (rest.get(..half), rest.get(half + 1..)) {
        if old
            .strip_prefix("a/")
            .is_some_and(|o| Some(o) == new.strip_prefix("b/"))
        {
            return new["b/".len()..].to_owned();
        }
    }
    match rest.rfind(" b/") {
        Some(at) => rest[at + " b/".len()..].to_owned(),
        None => rest.to_owned(),
    }
}

fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in text.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(at),
            _ => escaped = false,
        }
    }
    None
}

/// Git quotes a path with unusual bytes C-style (`"a/t\303\251st"`); anything else is as is.
fn unquote(raw: &str) -> String {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_owned();
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.bytes().peekable();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match chars.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(b'r') => bytes.push(b'\r'),
            Some(d @ b'0'..=b'7') => {
                let mut value = u32::from(d - b'0');
                for _ in 0..2 {
                    match chars.peek() {
                        Some(&o @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(o - b'0');
                            chars.next();
                        }
                        _ => break,
                    }
                }
                bytes.push(value as u8);
            }
            Some(other) => bytes.push(other),
            None => bytes.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "\
diff --git a/src/lib.rs b/src/lib.rs
index 1111111..2222222 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -3 +3,2 @@ fn main() {
-    old();
+    new();
+--- not a header
@@ -10,0 +12 @@
+    more();
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 3333333..0000000
--- a/gone.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-a
-b
diff --git a/new.txt b/new.txt
new file mode 100644
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello
\\ No newline at end of file
diff --git a/logo.png b/logo.png
index 4444444..5555555 100644
Binary files a/logo.png and b/logo.png differ
";

    #[test]
    fn reads_added_lines_removals_and_kinds() {
        let changes = Changes::from_patch(PATCH).unwrap();
        let summary: Vec<_> = changes
            .files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    f.kind,
                    f.added_lines.clone(),
                    f.removed_lines,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("src/lib.rs", ChangeKind::Modified, vec![3, 4, 12], 1),
                ("gone.txt", ChangeKind::Deleted, vec![], 2),
                ("new.txt", ChangeKind::Added, vec![1], 0),
                ("logo.png", ChangeKind::Modified, vec![], 0),
            ]
        );
        assert_eq!(changes.lines_changed(), 7);
    }

    #[test]
    fn reads_context_hunks_and_plain_diff_u() {
        let patch = "\
--- old/a.py\t2024-01-01 00:00:00
+++ new/a.py\t2024-01-02 00:00:00
@@ -1,3 +1,3 @@
 keep
-gone
+added
 keep
--- b.py
+++ b.py
@@ -5 +5 @@
-x
+y
";
        let changes = Changes::from_patch(patch).unwrap();
        assert_eq!(changes.files.len(), 2);
        assert_eq!(changes.files[0].path, "new/a.py");
        assert_eq!(changes.files[0].added_lines, vec![2]);
        assert_eq!(changes.files[1].path, "b.py");
        assert_eq!(changes.files[1].added_lines, vec![5]);
    }

    #[test]
    fn reads_renames_and_quoted_paths() {
        let patch = "\
diff --git a/.github/workflows/ci.yml b/ci.yml
similarity index 100%
rename from .github/workflows/ci.yml
rename to ci.yml
diff --git \"a/t\\303\\251st file\" \"b/t\\303\\251st file\"
new file mode 100644
--- /dev/null
+++ \"b/t\\303\\251st file\"
@@ -0,0 +1 @@
+x
";
        let changes = Changes::from_patch(patch).unwrap();
        assert_eq!(changes.files[0].path, "ci.yml");
        assert_eq!(
            changes.files[0].old_path.as_deref(),
            Some(".github/workflows/ci.yml")
        );
        assert_eq!(changes.files[1].path, "t\u{e9}st file");
    }

    #[test]
    fn a_truncated_hunk_is_an_error() {
        let patch = "--- a/x\n+++ b/x\n@@ -1 +1,3 @@\n+only one\n";
        let err = Changes::from_patch(patch).unwrap_err();
        assert!(err.to_string().contains("ends inside a hunk"), "{err}");
    }

    #[test]
    fn a_garbled_hunk_header_is_an_error() {
        let err = Changes::from_patch("--- a/x\n+++ b/x\n@@ -x +1 @@\n").unwrap_err();
        assert!(matches!(err, ChangesError::Patch { line: 3, .. }), "{err}");
    }

    #[test]
    fn new_files_count_their_lines_and_binaries_none() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &[u8], u32); 4] = [
            ("empty", b"", 0),
            ("two", b"a\nb\n", 2),
            ("unterminated", b"a\nb", 2),
            ("binary", b"a\0\nb\n", 0),
        ];
        for (name, bytes, lines) in cases {
            std::fs::write(dir.path().join(name), bytes).unwrap();
            assert_eq!(text_lines(&dir.path().join(name)).unwrap(), lines, "{name}");
        }
    }

    #[test]
    fn an_option_as_base_is_refused() {
        let err = Changes::from_git(Path::new("."), "--output=/tmp/x").unwrap_err();
        assert!(matches!(err, ChangesError::BadRef(_)));
    }
}
