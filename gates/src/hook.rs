//! `sandbox hook install|uninstall`: a git pre-commit hook that runs `sandbox gate --staged`,
//! written where git will run it (`core.hooksPath`, else the repository's hooks directory) and
//! marked, so that we only ever replace or remove a hook we wrote ourselves.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The line that says a hook is ours.
pub const MARKER: &str = "# sandbox: pre-commit hook written by `sandbox hook install`";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{dir} is not in a git work tree: {message}")]
    NotARepository { dir: PathBuf, message: String },
    #[error("{path} exists and sandbox did not write it; pass --force to replace it")]
    Foreign { path: PathBuf },
    #[error("{path} was not written by sandbox: left alone")]
    NotOurs { path: PathBuf },
    #[error("could not {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes the pre-commit hook of the repository at `dir` (or above it), running `sandbox`;
/// returns where. A hook we did not write is replaced only with `force`.
pub fn install(dir: &Path, sandbox: &Path, force: bool) -> Result<PathBuf, HookError> {
    let path = hook_path(dir)?;
    if !force && exists(&path) && !ours(&path)? {
        return Err(HookError::Foreign { path });
    }
    let hooks = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(hooks).map_err(io("create", hooks))?;
    // Written beside it and renamed over it: git never runs half a hook.
    let partial = hooks.join("pre-commit.sandbox-partial");
    let mut file = std::fs::File::create(&partial).map_err(io("create", &partial))?;
    file.write_all(script(sandbox).as_bytes())
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o755)))
        .map_err(io("write", &partial))?;
    std::fs::rename(&partial, &path).map_err(io("replace", &path))?;
    Ok(path)
}

/// Removes the pre-commit hook of the repository at `dir` if we wrote it; `None` when there is
/// none.
pub fn uninstall(dir: &Path) -> Result<Option<PathBuf>, HookError> {
    let path = hook_path(dir)?;
    if !exists(&path) {
        return Ok(None);
    }
    if !ours(&path)? {
        return Err(HookError::NotOurs { path });
    }
    std::fs::remove_file(&path).map_err(io("remove", &path))?;
    Ok(Some(path))
}

/// The hook: our binary by its absolute path, or the `sandbox` on `PATH` once that is gone
/// (rebuilt elsewhere, uninstalled and reinstalled by a package manager).
pub fn script(sandbox: &Path) -> String {
    let binary = match sandbox.to_str() {
        Some(path) => format!("'{}'", path.replace('\'', r"'\''")),
        None => "sandbox".to_owned(),
    };
    format!(
        "#!/bin/sh\n\
         {MARKER}\n\
         # Runs the project's gates (sandbox.toml) on exactly what is staged; a gate that does not\n\
         # pass stops the commit (`git commit --no-verify` skips this). `sandbox hook uninstall`\n\
         # removes this file.\n\
         sandbox={binary}\n\
         [ -x \"$sandbox\" ] || sandbox=sandbox\n\
         exec \"$sandbox\" gate --staged\n"
    )
}

/// Where git runs the pre-commit hook of the repository at `dir`: under `core.hooksPath`
/// (relative to the top of the work tree, as git reads it) when set, else under
/// `git rev-parse --git-path hooks` (which knows linked work trees and `$GIT_DIR`).
pub fn hook_path(dir: &Path) -> Result<PathBuf, HookError> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?);
    let hooks = match git(&top, &["config", "--type=path", "--get", "core.hooksPath"]) {
        Ok(configured) if !configured.is_empty() => configured,
        _ => git(&top, &["rev-parse", "--git-path", "hooks"])?,
    };
    Ok(top.join(hooks).join("pre-commit"))
}

fn git(dir: &Path, args: &[&str]) -> Result<String, HookError> {
    let not_a_repository = |message: String| HookError::NotARepository {
        dir: dir.to_owned(),
        message,
    };
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| not_a_repository(format!("running git: {error}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(not_a_repository(format!(
            "git {}: {}",
            args.join(" "),
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether anything is at `path`, a dangling symlink included.
fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

fn ours(path: &Path) -> Result<bool, HookError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .any(|line| line == MARKER)),
        // A dangling symlink or a directory is not a hook we wrote.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) if error.kind() == std::io::ErrorKind::IsADirectory => Ok(false),
        Err(source) => Err(HookError::Io {
            what: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HookError {
    let path = path.to_owned();
    move |source| HookError::Io { what, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path with a quote in it stays one word for the shell.
    #[test]
    fn the_script_quotes_the_binary_and_falls_back_to_path() {
        let script = script(Path::new("/opt/it's here/sandbox"));
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.lines().any(|line| line == MARKER));
        let output = Command::new("sh")
            .arg("-c")
            .arg(script.replace("exec \"$sandbox\" gate --staged", "echo \"$sandbox\""))
            .output()
            .unwrap();
        // Not executable there, so the fallback.
        assert_eq!(String::from_utf8_lossy(&output.stdout), "sandbox\n");
        let assigned = script
            .lines()
            .find(|line| line.starts_with("sandbox="))
            .unwrap();
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("{assigned}; echo \"$sandbox\""))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "/opt/it's here/sandbox\n"
        );
    }
}
