//! `--staged`: exactly what `git commit` would record — the index, not the working tree —
//! written out to a directory for the gates to run on (what a pre-commit hook wants).
//!
//! Only `git ls-files --stage` and `git cat-file --batch` are run, with the repository's
//! fsmonitor off: neither runs filters, hooks or diff drivers, so the repository under test
//! gets no say in what runs on the host.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};
use std::process::{Command, Stdio};

/// The index of the repository at `repo`, written out to a fresh directory that gate jobs
/// (another uid) can read; removed when the returned value is dropped.
pub fn export(repo: &Path) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix("sandbox-staged-")
        .tempdir()
        .map_err(|e| format!("creating the directory for the index: {e}"))?;
    export_index(repo, dir.path())?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("opening {} to the gate jobs: {e}", dir.path().display()))?;
    Ok(dir)
}

/// Writes every staged file of the repository at `repo` below `into` (which must exist):
/// regular files with their executable bit, symlinks as symlinks. Submodules are left out.
pub fn export_index(repo: &Path, into: &Path) -> Result<usize, String> {
    let top = git(repo, &["rev-parse", "--show-toplevel"])?;
    let top = String::from_utf8_lossy(&top).trim().to_owned();
    let same = std::fs::canonicalize(&top).ok() == std::fs::canonicalize(repo).ok();
    if !same {
        return Err(format!(
            "--staged runs on a whole repository: give its top, {top}, as the workspace"
        ));
    }
    let listing = git(repo, &["ls-files", "--stage", "-z"])?;
    let mut entries = Vec::new();
    for record in listing.split(|byte| *byte == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        let (meta, path) = record
            .split_once('\t')
            .ok_or_else(|| format!("git ls-files printed `{record}`"))?;
        let mut fields = meta.split(' ');
        let (Some(mode), Some(object), Some(stage)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("git ls-files printed `{record}`"));
        };
        if stage != "0" {
            return Err(format!(
                "{path} has an unresolved merge conflict in the index"
            ));
        }
        if mode == "160000" {
            continue;
        }
        check_path(path)?;
        entries.push((mode.to_owned(), object.to_owned(), path.to_owned()));
    }
    let mut batch = Command::new("git")
        .args(["-c", "core.fsmonitor=false", "cat-file", "--batch"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("running git cat-file: {e}"))?;
    let mut input = batch.stdin.take().ok_or("git cat-file has no stdin")?;
    let objects: String = entries
        .iter()
        .map(|(_, object, _)| format!("{object}\n"))
        .collect();
    let writer = std::thread::spawn(move || input.write_all(objects.as_bytes()));
    let mut output = BufReader::new(batch.stdout.take().ok_or("git cat-file has no stdout")?);
    // Symlinks last: no file is ever written through one.
    let mut links = Vec::new();
    for (mode, object, path) in &entries {
        let mut header = String::new();
        output
            .read_line(&mut header)
            .map_err(|e| format!("reading git cat-file: {e}"))?;
        let size: usize = header
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|size| size.parse().ok())
            .ok_or_else(|| format!("git cat-file said `{}` for {object}", header.trim_end()))?;
        let mut content = vec![0; size + 1];
        output
            .read_exact(&mut content)
            .map_err(|e| format!("reading {path} from git cat-file: {e}"))?;
        content.truncate(size);
        if mode == "120000" {
            links.push((path, content));
        } else {
            write_entry(into, path, mode, &content)?;
        }
    }
    for (path, target) in links {
        write_entry(into, path, "120000", &target)?;
    }
    let _ = writer.join();
    let _ = batch.wait();
    Ok(entries.len())
}

fn write_entry(into: &Path, path: &str, mode: &str, content: &[u8]) -> Result<(), String> {
    let target = into.join(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let io = |e: std::io::Error| format!("writing {}: {e}", target.display());
    if mode == "120000" {
        let link = String::from_utf8_lossy(content).into_owned();
        return std::os::unix::fs::symlink(link, &target).map_err(io);
    }
    std::fs::write(&target, content).map_err(io)?;
    let bits = if mode == "100755" { 0o755 } else { 0o644 };
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(bits)).map_err(io)
}

/// An index path stays below the export directory: relative, no `..`.
fn check_path(path: &str) -> Result<(), String> {
    let fine = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "the index holds a path that leaves the tree: `{path}`"
        ))
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new("git")
        .args(["-c", "core.fsmonitor=false"])
        .args(args)
        .current_dir(repo)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running git: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`git {}` in {}: {}",
            args.join(" "),
            repo.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}
