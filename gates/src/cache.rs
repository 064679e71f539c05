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
    /// `version` command line -> what it printed, asked once per run.
    versions: Mutex<HashMap<Vec<String>, Result<String, String>>>,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache {
            dir,
            versions: Mutex::new(HashMap::new()),
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
        for name in &gate.config_files {
            part(name.as_bytes());
            match std::fs::read(workspace.join(name)) {
                Ok(bytes) => part(blake3::hash(&bytes).as_bytes()),
                Err(_) => part(b"absent"),
            }
        }
        for (path, hash) in input_hashes(workspace, &gate.inputs)? {
            part(path.as_bytes());
            part(hash.as_bytes());
        }
        Ok(hasher.finalize().to_hex().to_string())
    }

    pub fn get(&self, key: &str) -> Option<GateResult> {
        let bytes = std::fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores `result` atomically (a reader never sees half a file).
    pub fn put(&self, key: &str, result: &GateResult) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let bytes = serde_json::to_vec(result).map_err(|e| e.to_string())?;
        let partial = self.dir.join(format!("{key}.json.{}", std::process::id()));
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, self.dir.join(format!("{key}.json"))))
            .map_err(|e| format!("writing {}: {e}", self.dir.display()))
    }

    /// What the tool says its version is. The tools are the host's own, installed by us, and
    /// asked outside the workspace: the project's files have no say in this.
    fn version(&self, command: &[String]) -> Result<String, String> {
        let mut versions = self.versions.lock().map_err(|_| "version cache poisoned")?;
        versions
            .entry(command.to_vec())
            .or_insert_with(|| ask_version(command))
            .clone()
    }
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
/// when there are none), sorted, symlinks not followed.
fn input_hashes(workspace: &Path, globs: &[String]) -> Result<Vec<(String, String)>, String> {
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
        if !globs.is_empty() && !set.is_match(&relative) {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .map_err(|e| format!("reading {}: {e}", entry.path().display()))?;
        hashes.push((relative, blake3::hash(&bytes).to_hex().to_string()));
    }
    hashes.sort();
    Ok(hashes)
}
