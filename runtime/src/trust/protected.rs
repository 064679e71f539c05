//! Paths a job's changes never silently reach: what would let the judged change configure the
//! judge (`.sandbox/`, `sandbox.toml`), or run code on the host later (CI definitions, hook
//! configs). `.git` is stricter still: see [`is_git_path`].

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Protected unless the operator allows them (`--allow-protected GLOB`, `[trust]
/// allow_protected`). Globs relative to the workspace; `*` stays within a directory.
pub const DEFAULT_PROTECTED: &[&str] = &[
    ".sandbox",
    ".sandbox/**",
    "sandbox.toml",
    // CI definitions: they run with the repository's CI secrets on the next push.
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".gitlab/**",
    ".circleci/**",
    ".travis.yml",
    ".buildkite/**",
    "azure-pipelines.yml",
    "bitbucket-pipelines.yml",
    "Jenkinsfile",
    // Hooks that run on the developer's machine at the next commit or `cd`.
    ".pre-commit-config.yaml",
    ".pre-commit-hooks.yaml",
    ".husky/**",
    ".githooks/**",
    "lefthook.yml",
    ".lefthook.yml",
    ".envrc",
    ".gitmodules",
];

/// Whether `path` (relative, `/`-separated) is inside a `.git` directory at any depth, or is a
/// `.git` file. Such changes are never written back, not even when allowed: a job's
/// `.git/hooks/pre-commit` or `core.fsmonitor` would run as the host user at the next `git
/// status`. They are dropped rather than refusing the whole change set, because git itself
/// rewrites `.git/index` whenever a job merely runs `git status`.
pub fn is_git_path(path: &str) -> bool {
    path.split('/').any(|part| part == ".git")
}

/// The protected paths of one run: the defaults less what the operator allows.
#[derive(Debug, Clone)]
pub struct Protected {
    protected: GlobSet,
    allowed: GlobSet,
}

impl Protected {
    /// `allowed`: globs the operator lets jobs change; a bad glob is an error naming it.
    pub fn new(allowed: &[String]) -> Result<Protected, String> {
        Ok(Protected {
            protected: globs(DEFAULT_PROTECTED.iter().copied())?,
            allowed: globs(allowed.iter().map(String::as_str))?,
        })
    }

    /// Whether a change to `path` must not be written back.
    pub fn refuses(&self, path: &str) -> bool {
        self.protected.is_match(path) && !self.allowed.is_match(path)
    }

    /// Whether the operator lets jobs change `path` (protected by default or not).
    pub fn allows(&self, path: &str) -> bool {
        self.allowed.is_match(path)
    }
}

impl Default for Protected {
    fn default() -> Self {
        Protected {
            protected: globs(DEFAULT_PROTECTED.iter().copied())
                .unwrap_or_else(|_| GlobSet::empty()),
            allowed: GlobSet::empty(),
        }
    }
}

fn globs<'a>(patterns: impl Iterator<Item = &'a str>) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|error| format!("protected path glob `{pattern}`: {error}"))?;
        set.add(glob);
    }
    set.build().map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_judge_and_the_host_hooks_are_protected() {
        let protected = Protected::new(&[]).unwrap();
        for path in [
            ".sandbox",
            ".sandbox/profiles/strict.toml",
            "sandbox.toml",
            ".github/workflows/ci.yml",
            ".gitlab-ci.yml",
            ".pre-commit-config.yaml",
            ".husky/pre-commit",
        ] {
            assert!(protected.refuses(path), "{path}");
        }
        for path in [
            "src/sandbox.toml.rs",
            "docs/.github/workflows.md",
            "README.md",
        ] {
            assert!(!protected.refuses(path), "{path}");
        }
    }

    #[test]
    fn the_operator_can_allow_a_protected_path() {
        let protected = Protected::new(&[".github/workflows/*.yml".into()]).unwrap();
        assert!(!protected.refuses(".github/workflows/ci.yml"));
        assert!(protected.refuses(".github/workflows/sub/ci.yml"));
        assert!(protected.refuses("sandbox.toml"));
        assert!(Protected::new(&["[".into()]).is_err());
    }

    #[test]
    fn git_directories_at_any_depth() {
        for path in [".git", ".git/hooks/pre-commit", "vendor/lib/.git/config"] {
            assert!(is_git_path(path), "{path}");
        }
        for path in [".gitignore", "src/git/x", ".github/x", "a.git"] {
            assert!(!is_git_path(path), "{path}");
        }
    }
}
