//! `.sandbox/cache`: a gate's result, kept under a key made of everything the result depends
//! on — the gate's spec, sandbox's version, the tool's version, the tool's config files and the
//! content (never the mtime) of the files the gate reads. Change any of them and the gate runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::config::GateSpec;
use crate::verdict::GateResult;

/// Directories no gate input comes from: VCS metadata, our own state, build outputs.
const NOT_INPUTS: [&str; 6] = [
    ".git",
    ".sandbox",
    "target",
    "node_modules",
    ".venv",
    "__pycache__",
];

pub struct Cache {
    dir: PathBuf,
    /// `--no-cache`: every gate runs, and its result replaces what was stored.
    refresh: bool,
    /// `version` command line -> what it printed, asked once per run.
    versions: Mutex<HashMap<Vec<String>, Result<String, String>>>,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache {
            dir,
            refresh: false,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// A cache that is written but never read: `--no-cache` still leaves fresh results.
    pub fn refreshing(dir: PathBuf) -> Cache {
        Cache {
            refresh: true,
            ..Cache::new(dir)
        }
    }

    /// The key of `gate` on `workspace` now, or why there is none (the tool's version could not
    /// be asked: the gate then runs uncached).
    /// `extra`: anything else the result depends on (the changes a built-in gate judges).
    pub fn key(&self, gate: &GateSpec, workspace: &Path, extra: &[u8]) -> Result<String, String> {
        let mut hasher = blake3::Hasher::new();
        let mut part = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        part(b"sandbox-gates-cache/1");
        part(env!("CARGO_PKG_VERSION").as_bytes());
        part(&serde_json::to_vec(gate).map_err(|e| e.to_string())?);
        part(extra);
        if !gate.version.is_empty() {
            part(self.version(&gate.version)?.as_bytes());
        }
        // Tools read their config files at any depth (a nested ruff.toml), and ignore files
        // change what they read: both are inputs wherever they are.
        let mut always: Vec<&str> = gate
            .config_files
            .iter()
            .map(|name| name.rsplit('/').next().unwrap_or(name))
            .collect();
        always.extend([".gitignore", ".ignore"]);
        match std::fs::read(workspace.join(".git/info/exclude")) {
            Ok(bytes) => part(blake3::hash(&bytes).as_bytes()),
            Err(_) => part(b"no exclude"),
        }
        for (path, hash) in input_hashes(workspace, &gate.inputs, &always)? {
            part(path.as_bytes());
            part(hash.as_bytes());
        }
        Ok(hasher.finalize().to_hex().to_string())
    }

    pub fn get(&self, key: &str) -> Option<GateResult> {
        if self.refresh {
            return None;
        }
        let bytes = std::fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores `result` atomically (a reader never sees half a file).
    pub fn put(&self, key: &str, result: &GateResult) -> Result<(), String> {
        self.create()
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let bytes = serde_json::to_vec(result).map_err(|e| e.to_string())?;
        let partial = self.dir.join(format!("{key}.json.{}", std::process::id()));
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, self.dir.join(format!("{key}.json"))))
            .map_err(|e| format!("writing {}: {e}", self.dir.display()))
    }

    /// The cache directory, with a `.gitignore` of `*` as ruff and pytest leave in theirs: the
    /// cache is never something to commit, and `git status` should not offer it.
    fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(ignore, "# Created by sandbox: the gate cache.\n*\n")?;
        }
        Ok(())
    }

    /// What the `version` command printed, if a gate asked it during this run; never runs it.
    pub fn known_version(&self, command: &[String]) -> Option<String> {
        let versions = self.versions.lock().ok()?;
        versions.get(command)?.clone().ok()
    }

    /// What the tool says its version is. The tools are the host's own, installed by us, and
    /// asked outside the workspace: the project's files have no say in this.
    fn version(&self, command: &[String]) -> Result<String, String> {
        let mut versions = self.versions.lock().map_err(|_| "version cache poisoned")?;
        versions
            .entry(command.to_vec())
            .or_insert_with(|| self.remembered_version(command))
            .clone()
    }

    /// A tool's version, remembered across runs under the identity of its executable (path,
    /// size, mtime, inode): asking five Python tools costs most of a second, which a warm run
    /// otherwise spends on nothing else. Tools reached through a launcher that picks the real
    /// program later (cargo's rustup proxy) are asked every time.
    fn remembered_version(&self, command: &[String]) -> Result<String, String> {
        let identity = match command {
            // `sh -c 'a --version && b --version'`: what the script names.
            [shell, flag, script] if shell == "sh" && flag == "-c" => {
                let found: Vec<String> = script
                    .split(|c: char| c.is_whitespace() || c == '&' || c == ';')
                    .filter(|word| !word.is_empty() && !word.starts_with('-'))
                    .filter_map(executable_identity)
                    .collect();
                (!found.is_empty()).then(|| found.join("\0"))
            }
            [program, ..] if !["cargo", "env", "sh", "bash"].contains(&program.as_str()) => {
                executable_identity(program)
            }
            _ => None,
        };
        let Some(identity) = identity else {
            return ask_version(command);
        };
        let key = blake3::hash(format!("{}\0{identity}", command.join("\0")).as_bytes())
            .to_hex()
            .to_string();
        let file = self.dir.join("versions").join(&key);
        if let Ok(text) = std::fs::read_to_string(&file) {
            return Ok(text);
        }
        let answer = ask_version(command)?;
        if self
            .create()
            .and_then(|()| std::fs::create_dir_all(self.dir.join("versions")))
            .is_ok()
        {
            let partial = file.with_extension(std::process::id().to_string());
            if std::fs::write(&partial, &answer).is_ok() {
                let _ = std::fs::rename(&partial, &file);
            }
        }
        Ok(answer)
    }
}

/// Where `program` resolves (tools directory first, then `PATH`, symlinks followed) and what
/// it is now: a reinstall changes it.
fn executable_identity(program: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let tools = Path::new(crate::runner::TOOLS_DIR).join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::iter::once(tools)
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())?;
    let real = std::fs::canonicalize(found).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    Some(format!(
        "{}\0{}\0{}\0{}",
        real.display(),
        meta.len(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
        meta.ino()
    ))
}

/// Runs a tool's version command with the tools directory first on `PATH`.
pub fn ask_version(command: &[String]) -> Result<String, String> {
    let (program, args) = command.split_first().ok_or("an empty version command")?;
    let tools = Path::new(crate::runner::TOOLS_DIR).join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(tools).chain(std::env::split_paths(&path)))
        .map_err(|e| e.to_string())?;
    let output = Command::new(program)
        .args(args)
        .env("PATH", path)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{}`: {e}", command.join(" ")))?;
    if !output.status.success() {
        return Err(format!("`{}` failed", command.join(" ")));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `(relative path, blake3)` of every file below `workspace` that matches `globs` (all files
/// when there are none) or is named one of `always`, sorted, symlinks not followed.
fn input_hashes(
    workspace: &Path,
    globs: &[String],
    always: &[&str],
) -> Result<Vec<(String, String)>, String> {
    let mut set = globset::GlobSetBuilder::new();
    for glob in globs {
        set.add(globset::Glob::new(glob).map_err(|e| format!("input glob `{glob}`: {e}"))?);
    }
    let set = set.build().map_err(|e| e.to_string())?;
    let walker = ignore::WalkBuilder::new(workspace)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .filter_entry(|entry| !NOT_INPUTS.iter().any(|name| entry.file_name() == *name))
        .build();
    let mut hashes = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| e.to_string())?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(workspace)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let named = always.iter().any(|name| entry.file_name() == *name);
        if !globs.is_empty() && !set.is_match(&relative) && !named {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .map_err(|e| format!("reading {}: {e}", entry.path().display()))?;
        hashes.push((relative, blake3::hash(&bytes).to_hex().to_string()));
    }
    hashes.sort();
    Ok(hashes)
}
