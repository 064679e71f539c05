//! Which files a built-in gate reads, and the globs that pick them.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::WalkBuilder;

use crate::parsers::ParseError;

/// Directories no gate reads: git's own store, build output and installed packages are not
/// the project's source, and are large.
const SKIPPED_DIRS: [&str; 3] = [".git", "target", "node_modules"];

pub(crate) struct WalkedFile {
    /// Workspace-relative, '/'-separated.
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
}

/// The regular files under `root` that git would not ignore, sorted, kept to `paths` when it
/// is not empty. Symlinks are not followed: one pointing out of the workspace is not its
/// content. A directory that cannot be read is an error, not a file nobody checked.
pub(crate) fn files(root: &Path, paths: &[String]) -> Result<Vec<WalkedFile>, ParseError> {
    let keep = if paths.is_empty() {
        None
    } else {
        Some(glob_set(paths, "paths")?)
    };
    let mut walker = WalkBuilder::new(root);
    walker
        // `.env` and friends are exactly where secrets hide.
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        // The user's global excludes would make a gate's result depend on whose machine ran
        // it; ignore files above the workspace are not the workspace's.
        .git_global(false)
        .parents(false)
        .ignore(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && entry.depth() > 0 && SKIPPED_DIRS.iter().any(|d| entry.file_name() == *d))
        });
    let mut files = Vec::new();
    for entry in walker.build() {
        let entry = entry
            .map_err(|e| ParseError::ToolFailed(format!("cannot walk {}: {e}", root.display())))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = relative(root, entry.path());
        if keep.as_ref().is_some_and(|set| !set.is_match(&rel)) {
            continue;
        }
        let size = entry
            .metadata()
            .map_err(|e| ParseError::ToolFailed(format!("cannot stat {rel}: {e}")))?
            .len();
        files.push(WalkedFile {
            rel,
            path: entry.into_path(),
            size,
        });
    }
    Ok(files)
}

/// Like [`files`], plus every file git tracks under `root` that an ignore file hides: a
/// change must not be able to hide a tracked file from the secret scan by appending it to
/// `.gitignore` (issue 15). Without git or a repository, just [`files`].
pub(crate) fn files_and_tracked(
    root: &Path,
    paths: &[String],
) -> Result<Vec<WalkedFile>, ParseError> {
    let mut files = files(root, paths)?;
    let keep = if paths.is_empty() {
        None
    } else {
        Some(glob_set(paths, "paths")?)
    };
    let listed = std::process::Command::new("git")
        .args(["-c", "safe.directory=*", "-c", "core.fsmonitor=false"])
        .args(["ls-files", "-z", "--cached", "--", "."])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let Some(listed) = listed.ok().filter(|output| output.status.success()) else {
        return Ok(files);
    };
    let mut added = false;
    for rel in listed.stdout.split(|byte| *byte == 0) {
        let Ok(rel) = std::str::from_utf8(rel) else {
            continue;
        };
        if rel.is_empty()
            || files.iter().any(|file| file.rel == rel)
            || keep.as_ref().is_some_and(|set| !set.is_match(rel))
        {
            continue;
        }
        let path = root.join(rel);
        // Not followed: a tracked symlink is not its target's content.
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_file() {
            files.push(WalkedFile {
                rel: rel.to_owned(),
                path,
                size: metadata.len(),
            });
            added = true;
        }
    }
    if added {
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
    }
    Ok(files)
}

pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.to_string_lossy().replace('\\', "/")
}

/// One glob as `sandbox.toml` means it: `*` stays within a directory, `**` crosses them.
pub(crate) fn glob(pattern: &str, key: &str) -> Result<Glob, ParseError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| ParseError::ToolFailed(format!("`{key}`: bad glob `{pattern}`: {e}")))
}

pub(crate) fn glob_set(patterns: &[String], key: &str) -> Result<GlobSet, ParseError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        set.add(glob(pattern, key)?);
    }
    set.build()
        .map_err(|e| ParseError::ToolFailed(format!("`{key}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_ignored_and_build_directories_but_reads_dotfiles() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            (".gitignore", "ignored.txt\n"),
            (".env", "X=1\n"),
            ("ignored.txt", ""),
            ("src/a.py", ""),
            ("target/debug/x.rs", ""),
            ("web/node_modules/m/index.js", ""),
            (".git/config", ""),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let all: Vec<_> = files(root, &[])
            .unwrap()
            .into_iter()
            .map(|f| f.rel)
            .collect();
        assert_eq!(all, [".env", ".gitignore", "src/a.py"]);
        let py: Vec<_> = files(root, &["**/*.py".to_owned()])
            .unwrap()
            .into_iter()
            .map(|f| f.rel)
            .collect();
        assert_eq!(py, ["src/a.py"]);
    }

    #[test]
    fn a_star_stays_within_a_directory() {
        let set = glob_set(
            &["*.lock".to_owned(), ".github/workflows/**".to_owned()],
            "k",
        )
        .unwrap();
        assert!(set.is_match("Cargo.lock"));
        assert!(!set.is_match("sub/Cargo.lock"));
        assert!(set.is_match(".github/workflows/ci.yml"));
    }
}
