//! The gate cache: a gate's result, kept under a key made of everything the result depends on,
//! so that a cached result always equals a fresh run (DESIGN §12, issue 15).
//!
//! The key covers the whole tree the gate reads (every file but the top-level `.git`, whose
//! state is keyed separately, by content, with modes and symlink targets, never mtimes), the
//! gate's whole spec, the tool (the program the job would run, by content, and what its
//! `version` command says), the installed tools, our own binary, the profile as it resolves
//! now with the host variables it passes, and the backend and image the job would run on.
//!
//! The cache is the operator's, never the project's: it lives in `$XDG_CACHE_HOME/sandbox`
//! (never inside the workspace, which is what is being judged and what a `check` job may
//! write), and every entry carries a MAC under a per-user secret key, so an entry that was
//! forged, edited or copied from another user is a miss, never a pass.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use sandbox_runtime::profile::{BackendChoice, HumanDuration, Lookup};
use sandbox_runtime::trust::Trust;

use crate::config::GateSpec;
use crate::verdict::GateResult;

/// The operator's cache directory, below `$XDG_CACHE_HOME` (or `~/.cache`).
const CACHE_DIR: &str = "sandbox";
/// The secret the entries are authenticated with, in the cache directory.
const KEY_FILE: &str = "cache.key";
/// A cached gate result is never this big; a bigger file is not ours.
const ENTRY_LIMIT: u64 = 256 << 20;
/// Launchers whose own bytes say nothing about the tool they run (cargo is rustup's proxy):
/// their version is asked every run, never remembered.
const LAUNCHERS: [&str; 4] = ["cargo", "env", "sh", "bash"];

pub struct Cache {
    /// Where entries are kept, or why nothing is cached.
    store: Result<Store, String>,
    /// `--no-cache`: every gate runs, and its result replaces what was stored.
    refresh: bool,
    /// `version` command line -> what it printed, asked once per run.
    versions: Mutex<HashMap<Vec<String>, Result<String, String>>>,
    /// Content hashes of executables, by what their inode says now (within this run only).
    programs: Mutex<HashMap<FileId, blake3::Hash>>,
    /// The installed tools' fingerprint, taken once per run.
    tools: OnceLock<String>,
    /// Image -> the backend an `auto` or `docker` job runs on, asked once per run.
    engines: Mutex<HashMap<String, Result<String, String>>>,
    /// Key -> the backend it assumed the job runs on: the runtime asks the engine again, and
    /// a result from the other backend is not kept under this key.
    backends: Mutex<HashMap<String, &'static str>>,
}

/// What the runner knows about one gate job, beyond the gate itself.
pub struct Job<'a> {
    pub gate: &'a GateSpec,
    /// The profile the job runs with (the gate's or the default).
    pub profile: &'a str,
    /// How long the tool may take (the gate's or the default): a shorter one can turn a pass
    /// into an error.
    pub timeout: HumanDuration,
    /// `--backend`, when given.
    pub backend: Option<&'a str>,
    /// Our own binary: it runs every job and is the tool of a built-in gate.
    pub sandbox: &'a Path,
    /// Anything else the result depends on (the changes a built-in gate judges).
    pub extra: &'a [u8],
    /// How far the project is trusted: the same tree judged with `--trust-project` may run a
    /// profile that an untrusted run refuses.
    pub trust: &'a Trust,
}

/// The content of a tree at one moment: compare two to know it did not change in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree(blake3::Hash);

/// An authenticated store of small files under the operator's cache directory.
struct Store {
    /// This project's entries.
    dir: PathBuf,
    /// Derived from the secret: entry names, so a name says nothing without the secret.
    names: [u8; 32],
    /// Derived from the secret: the MAC of each entry.
    macs: [u8; 32],
}

/// An inode as it is now: a rewrite or a replacement changes one of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileId {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Cache {
    /// The cache of the project at `workspace` (canonical), in the operator's cache directory;
    /// with `refresh` (`--no-cache`) written but not read. When there is no usable cache
    /// directory every gate runs, and its result says why it was not cached.
    pub fn for_project(workspace: &Path, refresh: bool) -> Cache {
        let store = operator_dir().and_then(|base| Store::open(&base, workspace));
        Cache {
            store,
            refresh,
            versions: Mutex::new(HashMap::new()),
            programs: Mutex::new(HashMap::new()),
            tools: OnceLock::new(),
            engines: Mutex::new(HashMap::new()),
            backends: Mutex::new(HashMap::new()),
        }
    }

    /// What `workspace` holds now. Asked once before the gates run and once after: results are
    /// kept only when the two agree (a file saved mid-run would otherwise be cached as judged).
    pub fn tree(&self, workspace: &Path) -> Result<Tree, String> {
        // No cache, no reason to read the whole tree.
        self.store.as_ref()?;
        let mut hasher = blake3::Hasher::new();
        hash_tree(&mut hasher, workspace, top_level_git)?;
        hash_git(&mut hasher, workspace)?;
        Ok(Tree(hasher.finalize()))
    }

    /// The key of `job` on `tree`, or why there is none (the gate then runs uncached).
    pub fn key(&self, job: &Job<'_>, tree: &Tree) -> Result<String, String> {
        let store = self.store.as_ref()?;
        let gate = job.gate;
        let mut key = Key::new();
        key.part(b"sandbox-gates-cache/2");
        key.part(env!("CARGO_PKG_VERSION").as_bytes());
        key.part(tree.0.as_bytes());
        key.part(&serde_json::to_vec(gate).map_err(|e| e.to_string())?);
        key.part(job.extra);
        key.part(self.program(job.sandbox)?.as_bytes());
        key.part(job.timeout.to_string().as_bytes());
        key.part(job.profile.as_bytes());
        key.part(
            job.trust
                .trusted
                .as_deref()
                .unwrap_or("untrusted")
                .as_bytes(),
        );
        let profile = Lookup::for_project(job.trust).load(job.profile);
        match &profile {
            Ok(profile) => {
                key.part(&serde_json::to_vec(profile).map_err(|e| e.to_string())?);
                // The host variables the profile passes through reach the tool.
                for name in &profile.profile.process.env.pass {
                    key.part(name.as_bytes());
                    key.part(
                        std::env::var_os(name)
                            .unwrap_or_default()
                            .as_encoded_bytes(),
                    );
                }
            }
            Err(error) => key.part(error.to_string().as_bytes()),
        }
        let backend = if gate.builtin().is_some() {
            // Built-in gates always run natively (runner::run_in_job); our binary is the tool,
            // and it asks the host's git for changes and ignore rules.
            key.part(b"native");
            for identity in self.programs_of(&["git".to_owned()], &host_path())? {
                key.part(identity.as_bytes());
            }
            "native"
        } else {
            let image = profile
                .as_ref()
                .ok()
                .map(|p| p.profile.backend.image.as_str());
            let choice = match job.backend {
                Some(backend) => backend.to_owned(),
                None => profile
                    .as_ref()
                    .map(|p| backend_name(p.profile.backend.prefer))
                    .unwrap_or("auto")
                    .to_owned(),
            };
            let backend = self.backend(&choice, image.unwrap_or_default())?;
            key.part(backend.as_bytes());
            key.part(self.tools().as_bytes());
            for identity in self.programs_of(&gate.command, &job_path(&gate.command))? {
                key.part(identity.as_bytes());
            }
            if backend.starts_with("docker") {
                "docker"
            } else {
                "native"
            }
        };
        if !gate.version.is_empty() {
            key.part(self.version(&gate.version, store)?.as_bytes());
        }
        let name = key.name(store);
        if let Ok(mut backends) = self.backends.lock() {
            backends.insert(name.clone(), backend);
        }
        Ok(name)
    }

    pub fn get(&self, key: &str) -> Option<GateResult> {
        if self.refresh {
            return None;
        }
        let bytes = self.store.as_ref().ok()?.read(key)?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores `result` under `key`, replacing what was there, if its job ran on the backend
    /// the key says.
    pub fn put(&self, key: &str, result: &GateResult) -> Result<(), String> {
        let store = self.store.as_ref()?;
        let keyed = self.backends.lock().ok().and_then(|b| b.get(key).copied());
        let ran = result.outcome.as_ref().map(|outcome| &outcome["backend"]);
        match (keyed, ran) {
            (Some(keyed), Some(ran)) if ran == keyed => {}
            (keyed, ran) => {
                return Err(format!(
                    "the job ran on {}, the key assumed {}",
                    ran.and_then(|r| r.as_str()).unwrap_or("no backend"),
                    keyed.unwrap_or("none")
                ))
            }
        }
        let bytes = serde_json::to_vec(result).map_err(|e| e.to_string())?;
        store.write(key, &bytes)
    }

    /// What the `version` command printed, if a gate asked it during this run; never runs it.
    pub fn known_version(&self, command: &[String]) -> Option<String> {
        let versions = self.versions.lock().ok()?;
        versions.get(command)?.clone().ok()
    }

    /// What the tool says its version is. The tools are the host's own, installed by us, and
    /// asked outside the workspace: the project's files have no say in this.
    fn version(&self, command: &[String], store: &Store) -> Result<String, String> {
        let mut versions = self.versions.lock().map_err(|_| "version cache poisoned")?;
        versions
            .entry(command.to_vec())
            .or_insert_with(|| self.remembered_version(command, store))
            .clone()
    }

    /// A tool's version, remembered across runs under what it is (the bytes of the programs the
    /// command names and the installed tools' fingerprint): asking five Python tools costs most
    /// of a second, which a warm run otherwise spends on nothing else.
    fn remembered_version(&self, command: &[String], store: &Store) -> Result<String, String> {
        let launched = command
            .first()
            .is_some_and(|program| LAUNCHERS.contains(&program.as_str()))
            && !is_shell_script(command);
        let programs = self.programs_of(command, &host_path())?;
        if launched || programs.is_empty() {
            return ask_version(command);
        }
        let mut key = Key::new();
        key.part(b"version");
        key.part(command.join("\0").as_bytes());
        key.part(self.tools().as_bytes());
        for identity in &programs {
            key.part(identity.as_bytes());
        }
        let name = format!("version-{}", key.name(store));
        if let Some(text) = store.read(&name) {
            return String::from_utf8(text).map_err(|e| e.to_string());
        }
        let answer = ask_version(command)?;
        // Not remembering only costs the next run the question again.
        let _ = store.write(&name, answer.as_bytes());
        Ok(answer)
    }

    /// The path and content hash of each program `command` runs, looked up in `dirs`: the
    /// program itself, what an `sh -c` script names, and the interpreter of a `#!` script. A
    /// relative path is the workspace's, which the tree already covers.
    fn programs_of(&self, command: &[String], dirs: &[PathBuf]) -> Result<Vec<String>, String> {
        let mut names: Vec<&str> = command.first().map(String::as_str).into_iter().collect();
        if let [_, _, script] = command {
            if is_shell_script(command) {
                names.extend(
                    script
                        .split(|c: char| c.is_whitespace() || "&;|()`$<>'\"".contains(c))
                        .filter(|word| !word.is_empty() && !word.starts_with('-')),
                );
            }
        }
        let mut found = Vec::new();
        for name in names {
            let Some(path) = resolve(name, dirs) else {
                continue;
            };
            found.push(format!("{}\0{}", path.display(), self.program(&path)?));
            if let Some(interpreter) = interpreter(&path, dirs) {
                found.push(format!(
                    "{}\0{}",
                    interpreter.display(),
                    self.program(&interpreter)?
                ));
            }
        }
        Ok(found)
    }

    /// The content hash of the executable at `path`, hashed once per run.
    fn program(&self, path: &Path) -> Result<blake3::Hash, String> {
        let meta = fs_err::metadata(path).map_err(|e| e.to_string())?;
        let id = FileId {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        };
        if let Some(hash) = self.programs.lock().ok().and_then(|m| m.get(&id).copied()) {
            return Ok(hash);
        }
        let mut hasher = blake3::Hasher::new();
        let file = fs_err::File::open(path).map_err(|e| e.to_string())?;
        hasher.update_reader(file).map_err(|e| e.to_string())?;
        let hash = hasher.finalize();
        if let Ok(mut programs) = self.programs.lock() {
            programs.insert(id, hash);
        }
        Ok(hash)
    }

    /// Every file of the installed tools (`/opt/sandbox-tools`: their virtualenv and node
    /// modules) by inode, size and times: upgrading a package in place changes code that no
    /// program's own bytes show. Operator-owned and out of the project's reach, so inode data
    /// is a fair identity here, where the project's own files are hashed by content.
    fn tools(&self) -> &str {
        self.tools.get_or_init(|| {
            let mut hasher = blake3::Hasher::new();
            let walker = ignore::WalkBuilder::new(crate::runner::TOOLS_DIR)
                .standard_filters(false)
                .hidden(false)
                .follow_links(false)
                .sort_by_file_name(|a, b| a.cmp(b))
                .build();
            for entry in walker {
                let Ok(entry) = entry else {
                    part(&mut hasher, b"unreadable");
                    continue;
                };
                let Ok(meta) = entry.path().symlink_metadata() else {
                    continue;
                };
                part(&mut hasher, entry.path().as_os_str().as_encoded_bytes());
                for number in [
                    meta.ino(),
                    meta.size(),
                    meta.mode().into(),
                    meta.mtime() as u64,
                    meta.mtime_nsec() as u64,
                    meta.ctime() as u64,
                    meta.ctime_nsec() as u64,
                ] {
                    hasher.update(&number.to_le_bytes());
                }
            }
            hasher.finalize().to_hex().to_string()
        })
    }

    /// The backend a tool gate's job runs on, as the runtime will choose it, with the image's
    /// id when that is docker: a result from the other backend, or from another build of the
    /// image under the same tag, is not this job's.
    fn backend(&self, choice: &str, image: &str) -> Result<String, String> {
        if choice == "native" {
            return Ok("native".into());
        }
        let mut engines = self.engines.lock().map_err(|_| "engine answers poisoned")?;
        let answer = engines
            .entry(format!("{choice}\0{image}"))
            .or_insert_with(|| {
                let asked = sandbox_runtime::docker::engine_info(
                    image,
                    sandbox_runtime::AUTO_ENGINE_TIMEOUT,
                );
                match (choice, asked) {
                    (_, Ok(engine)) if engine.image_id.is_some() => Ok(format!(
                        "docker {image} {}",
                        engine.image_id.unwrap_or_default()
                    )),
                    // `auto` falls back to native, as the runtime does.
                    ("auto", _) => Ok("native".into()),
                    // Which build of the image would run is unknown.
                    (_, Ok(_)) => Err(format!("the docker engine has no image {image}")),
                    (_, Err(why)) => Err(why),
                }
            })
            .clone();
        answer
    }
}

impl Store {
    /// The cache directory of the project at `workspace`, created `0700`, and the secret,
    /// created on first use. Refused when it is inside the workspace: the tree being judged
    /// (or a job writing into it) would hold the cache that vouches for it.
    fn open(base: &Path, workspace: &Path) -> Result<Store, String> {
        let inside = |dir: &Path| {
            let workspace = fs_err::canonicalize(workspace).unwrap_or_else(|_| workspace.into());
            within(&existing_prefix(dir), &workspace).then(|| {
                format!(
                    "the cache directory {} is inside the workspace {}, which is what is judged",
                    dir.display(),
                    workspace.display()
                )
            })
        };
        if let Some(why) = inside(base) {
            return Err(why);
        }
        let project = blake3::hash(workspace.as_os_str().as_encoded_bytes()).to_hex();
        let dir = base.join("gates").join(&project.as_str()[..32]);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // A symlink on the way could have led out of where we looked.
        if let Some(why) = inside(&dir) {
            return Err(why);
        }
        let secret = secret(&base.join(KEY_FILE))?;
        Ok(Store {
            dir,
            names: blake3::derive_key("sandbox gate cache 2 entry name", &secret),
            macs: blake3::derive_key("sandbox gate cache 2 entry mac", &secret),
        })
    }

    /// The entry `name` if it is one we wrote: its MAC matches. An entry that does not is
    /// removed (the run stores a fresh one) and is a miss.
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.dir.join(name);
        let bytes = read_regular(&path, ENTRY_LIMIT).ok()?;
        let (mac, body) = bytes.split_at_checked(blake3::OUT_LEN * 2)?;
        let body = body.strip_prefix(b"\n")?;
        let mac = blake3::Hash::from_hex(mac).ok()?;
        // `Hash` compares in constant time.
        if mac == self.mac(name, body) {
            return Some(body.to_vec());
        }
        let _ = std::fs::remove_file(&path);
        None
    }

    /// Writes entry `name` atomically (a reader never sees half a file), `0600`.
    fn write(&self, name: &str, body: &[u8]) -> Result<(), String> {
        let path = self.dir.join(name);
        let mut partial = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&self.dir)
            .map_err(|e| format!("writing in {}: {e}", self.dir.display()))?;
        partial
            .write_all(format!("{}\n", self.mac(name, body).to_hex()).as_bytes())
            .and_then(|()| partial.write_all(body))
            .map_err(|e| format!("writing {}: {e}", partial.path().display()))?;
        partial
            .persist(&path)
            .map_err(|e| format!("writing {}: {}", path.display(), e.error))?;
        Ok(())
    }

    fn mac(&self, name: &str, body: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.macs);
        part(&mut hasher, name.as_bytes());
        hasher.update(body);
        hasher.finalize()
    }
}

/// Length-prefixed parts, so that no two different lists of parts hash alike.
struct Key(blake3::Hasher);

/// Adds one length-prefixed part to `hasher`.
fn part(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

impl Key {
    fn new() -> Key {
        Key(blake3::Hasher::new())
    }

    fn part(&mut self, bytes: &[u8]) {
        part(&mut self.0, bytes);
    }

    /// The entry's name: keyed by the secret, so that a name cannot be computed, and a copied
    /// cache directory's names mean nothing, without it.
    fn name(&self, store: &Store) -> String {
        blake3::keyed_hash(&store.names, self.0.finalize().as_bytes())
            .to_hex()
            .to_string()
    }
}

/// `$XDG_CACHE_HOME/sandbox`, or `~/.cache/sandbox`. A relative `XDG_CACHE_HOME` is ignored, as
/// the XDG base directory specification says.
fn operator_dir() -> Result<PathBuf, String> {
    let from_xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    let from_home = || {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
            .map(|home| home.join(".cache"))
    };
    from_xdg
        .or_else(from_home)
        .map(|dir| dir.join(CACHE_DIR))
        .ok_or_else(|| "neither XDG_CACHE_HOME nor HOME is set to an absolute path".into())
}

/// The secret at `path`: 32 random bytes, created `0600` on first use. Another process may
/// create it at the same moment: the file is linked into place, and whoever comes second reads
/// the first one's. A key file that is not a `0600` regular file of ours is refused: someone
/// else could read it, or chose it.
fn secret(path: &Path) -> Result<[u8; 32], String> {
    match read_secret(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        other => return other.map_err(|e| format!("the cache key {}: {e}", path.display())),
    }
    let mut bytes = [0u8; 32];
    fs_err::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|e| e.to_string())?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut partial = tempfile::Builder::new()
        .prefix(".key-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| format!("creating the cache key in {}: {e}", dir.display()))?;
    partial
        .write_all(&bytes)
        .and_then(|()| partial.as_file().sync_all())
        .map_err(|e| format!("writing {}: {e}", partial.path().display()))?;
    match partial.persist_noclobber(path) {
        Ok(_) => Ok(bytes),
        Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {
            read_secret(path).map_err(|e| format!("the cache key {}: {e}", path.display()))
        }
        Err(error) => Err(format!("creating {}: {}", path.display(), error.error)),
    }
}

fn read_secret(path: &Path) -> std::io::Result<[u8; 32]> {
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(refuse(format!("owned by uid {}, not us", meta.uid())));
    }
    if meta.mode() & 0o777 != 0o600 {
        return Err(refuse(format!(
            "mode {:o}, not 600 (run: rm {})",
            meta.mode() & 0o777,
            path.display()
        )));
    }
    let mut bytes = [0u8; 32];
    let mut file = file;
    file.read_exact(&mut bytes)?;
    if file.read(&mut [0u8; 1])? != 0 {
        return Err(refuse("longer than 32 bytes".into()));
    }
    Ok(bytes)
}

/// A regular file's bytes, without following a symlink, refused above `limit` bytes.
fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > limit {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `dir` with its longest existing ancestor resolved (symlinks followed) and the rest as
/// written: where `dir` is, or would be once created.
fn existing_prefix(dir: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = dir;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |path, part| path.join(part));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                at = parent;
            }
            _ => return dir.to_owned(),
        }
    }
}

/// Whether `path` is `dir` or below it, `..` resolved lexically.
fn within(path: &Path, dir: &Path) -> bool {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal.starts_with(dir)
}

/// Hashes every entry below `root` (sorted, symlinks not followed) but those `skip` names
/// (by their path relative to `root`): its path, its kind and mode, and a file's content or a
/// symlink's target. Every directory counts, `target/` and `node_modules/` too: a tool decides
/// what it reads, and new code under a nested `target/` is code.
fn hash_tree(
    hasher: &mut blake3::Hasher,
    root: &Path,
    skip: fn(&Path) -> bool,
) -> Result<(), String> {
    let base = root.to_owned();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            entry
                .path()
                .strip_prefix(&base)
                .map_or(true, |relative| !skip(relative))
        })
        .build();
    // The root itself is where the tree is, not what it holds (a scratch view's root differs).
    for entry in walker.skip(1) {
        let entry = entry.map_err(|e| format!("reading the workspace: {e}"))?;
        let path = entry.path();
        let meta = path
            .symlink_metadata()
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let name = path.strip_prefix(root).map_err(|e| e.to_string())?;
        part(hasher, name.as_os_str().as_encoded_bytes());
        part(hasher, &(meta.mode() & 0o170_777).to_le_bytes());
        if meta.is_file() {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let mut content = blake3::Hasher::new();
            content
                .update_reader(file)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            part(hasher, content.finalize().as_bytes());
        } else if meta.is_symlink() {
            let target =
                std::fs::read_link(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            part(hasher, target.as_os_str().as_encoded_bytes());
        }
    }
    Ok(())
}

/// The workspace's own `.git`, keyed apart (`hash_git`).
fn top_level_git(relative: &Path) -> bool {
    relative == Path::new(".git")
}

/// Nothing below a tree is left out.
fn nothing(_: &Path) -> bool {
    false
}

/// The repository's state, for gates that ask git (a policy's `base`, untracked files, ignore
/// rules in `.git/info/exclude` and `.git/config`). A `.git` file (a linked worktree) is
/// followed to its git directory and the common one, but only to a directory with a `HEAD`:
/// the project wrote that file, and `gitdir: /proc` must not make us read `/proc`.
fn hash_git(hasher: &mut blake3::Hasher, workspace: &Path) -> Result<(), String> {
    let dot_git = workspace.join(".git");
    let Ok(meta) = dot_git.symlink_metadata() else {
        part(hasher, b"no .git");
        return Ok(());
    };
    if meta.is_dir() {
        return hash_git_dir(hasher, &dot_git);
    }
    if !meta.is_file() {
        let target = std::fs::read_link(&dot_git).unwrap_or_default();
        part(hasher, target.as_os_str().as_encoded_bytes());
        return Ok(());
    }
    let text =
        read_regular(&dot_git, 4096).map_err(|e| format!("reading {}: {e}", dot_git.display()))?;
    part(hasher, &text);
    let text = String::from_utf8_lossy(&text);
    let Some(git_dir) = text.trim().strip_prefix("gitdir:") else {
        return Ok(());
    };
    let Some(git_dir) = git_directory(&workspace.join(git_dir.trim())) else {
        return Ok(());
    };
    hash_git_dir(hasher, &git_dir)?;
    let common = read_regular(&git_dir.join("commondir"), 4096).ok();
    let common = common
        .map(|text| git_dir.join(String::from_utf8_lossy(&text).trim()))
        .and_then(|dir| git_directory(&dir));
    if let Some(common) = common {
        hash_git_dir(hasher, &common)?;
    }
    Ok(())
}

/// `dir`, resolved, if it looks like a git directory (a regular `HEAD` in it).
fn git_directory(dir: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let head = dir.join("HEAD").symlink_metadata().ok()?;
    head.is_file().then_some(dir)
}

/// What of a git directory can change git's answers: its own files (`HEAD`, `config`, `index`,
/// `packed-refs`, `shallow`, `FETCH_HEAD`, ...) and its `refs/` and `info/` (excludes, grafts).
/// Not its objects, which are named by their content and so say nothing a ref does not, nor
/// logs, hooks, LFS objects, submodules' or other worktrees' directories.
fn hash_git_dir(hasher: &mut blake3::Hasher, dir: &Path) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let (name, path) = (entry.file_name(), entry.path());
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if meta.is_file() {
            part(hasher, name.as_encoded_bytes());
            let bytes = read_regular(&path, u64::MAX)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            part(hasher, blake3::hash(&bytes).as_bytes());
        } else if meta.is_dir() && (name == "refs" || name == "info") {
            part(hasher, name.as_encoded_bytes());
            hash_tree(hasher, &path, nothing)?;
        }
    }
    Ok(())
}

/// `sh -c SCRIPT`: the programs that matter are the ones the script names.
fn is_shell_script(command: &[String]) -> bool {
    matches!(command, [shell, flag, _] if ["sh", "bash"].contains(&shell.as_str()) && flag == "-c")
}

/// The job's `PATH` as host directories: the directories the job's binds put there (the
/// tools, a Rust toolchain) mapped back to their host sources, the rest the host's own.
fn job_path(command: &[String]) -> Vec<PathBuf> {
    let (binds, env) = crate::runner::tool_access(command);
    let path = env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| {
            binds
                .iter()
                .find_map(|bind| {
                    let rest = dir.strip_prefix(&bind.target).ok()?;
                    Some(bind.source.join(rest))
                })
                .unwrap_or(dir)
        })
        .collect()
}

/// The tools directory, then the host's `PATH`: where `ask_version` finds the tool.
fn host_path() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(Path::new(crate::runner::TOOLS_DIR).join("bin"))
        .chain(std::env::split_paths(&path))
        .collect()
}

/// Where `name` is found: an absolute path as it is, a bare name in `dirs`, symlinks followed.
fn resolve(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let found = if name.starts_with('/') {
        Some(PathBuf::from(name))
    } else if name.contains('/') {
        None
    } else {
        dirs.iter().map(|dir| dir.join(name)).find(|p| p.is_file())
    };
    found
        .filter(|path| path.is_file())
        .and_then(|path| std::fs::canonicalize(path).ok())
}

/// The interpreter a `#!` script names (through `env`, the program `env` runs).
fn interpreter(script: &Path, dirs: &[PathBuf]) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let read = std::fs::File::open(script)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let line = head[..read].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let program = words.next()?;
    match (program.rsplit('/').next(), words.next()) {
        (Some("env"), Some(name)) => resolve(name, dirs),
        _ => resolve(program, dirs),
    }
}

/// A profile's backend as `--backend` spells it.
fn backend_name(choice: BackendChoice) -> &'static str {
    match choice {
        BackendChoice::Auto => "auto",
        BackendChoice::Native => "native",
        BackendChoice::Docker => "docker",
    }
}

/// Runs a tool's version command with the tools directory first on `PATH`.
pub fn ask_version(command: &[String]) -> Result<String, String> {
    let (program, args) = command.split_first().ok_or("an empty version command")?;
    let path = std::env::join_paths(host_path()).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(dir: &Path) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        hash_tree(&mut hasher, dir, top_level_git).unwrap();
        hash_git(&mut hasher, dir).unwrap();
        hasher.finalize()
    }

    /// Content, modes, symlink targets and nested build directories count; mtimes and the
    /// top-level `.git/objects` do not.
    #[test]
    fn the_tree_key_sees_what_can_change_a_result() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("pkg/target")).unwrap();
        std::fs::create_dir_all(root.join(".git/objects/ab")).unwrap();
        std::fs::write(root.join("pkg/a.py"), "x = 1\n").unwrap();
        let mut seen = vec![tree_of(root)];
        let changed = |what: &str, seen: &mut Vec<blake3::Hash>| {
            let now = tree_of(root);
            assert!(!seen.contains(&now), "{what} did not change the key");
            seen.push(now);
        };
        std::fs::write(root.join("pkg/target/x.py"), "eval(1)\n").unwrap();
        changed("a file under a nested target/", &mut seen);
        std::fs::set_permissions(
            root.join("pkg/a.py"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        changed("the exec bit", &mut seen);
        std::os::unix::fs::symlink("a.py", root.join("pkg/link")).unwrap();
        changed("a new symlink", &mut seen);
        std::fs::remove_file(root.join("pkg/link")).unwrap();
        std::os::unix::fs::symlink("target/x.py", root.join("pkg/link")).unwrap();
        changed("a symlink's target", &mut seen);
        std::fs::create_dir(root.join("empty")).unwrap();
        changed("an empty directory", &mut seen);
        std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        changed("git's HEAD", &mut seen);
        std::fs::create_dir_all(root.join(".git/info")).unwrap();
        std::fs::write(root.join(".git/info/exclude"), "*.py\n").unwrap();
        changed("git's excludes", &mut seen);
        let last = tree_of(root);
        std::fs::write(root.join("pkg/a.py"), "x = 1\n").unwrap();
        std::fs::write(root.join(".git/objects/ab/cdef"), "blob").unwrap();
        std::fs::create_dir_all(root.join(".git/logs")).unwrap();
        std::fs::write(root.join(".git/logs/HEAD"), "moved").unwrap();
        assert_eq!(
            tree_of(root),
            last,
            "same bytes, new mtime, an object, a reflog"
        );
    }

    /// A linked worktree's `.git` file is followed to its git directory, but one the project
    /// points at `/proc` or `/` is not read (it has no `HEAD`).
    #[test]
    fn a_git_file_is_followed_only_to_a_git_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (root, repo) = (dir.path().join("wt"), dir.path().join("repo.git"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(repo.join("refs/heads")).unwrap();
        std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(root.join(".git"), format!("gitdir: {}\n", repo.display())).unwrap();
        let before = tree_of(&root);
        std::fs::write(repo.join("refs/heads/main"), "0123\n").unwrap();
        assert_ne!(tree_of(&root), before, "a ref of the linked repository");
        for elsewhere in ["/proc/self", "/", "/dev"] {
            std::fs::write(root.join(".git"), format!("gitdir: {elsewhere}\n")).unwrap();
            // /proc/self changes from one read to the next: equal keys mean it was not read.
            assert_eq!(tree_of(&root), tree_of(&root), "{elsewhere} was read");
        }
    }

    #[test]
    fn a_path_below_the_workspace_is_inside_it_however_it_is_spelt() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(workspace.join("real")).unwrap();
        std::os::unix::fs::symlink(workspace.join("real"), workspace.join("link")).unwrap();
        for inside in ["link/not-yet/sandbox", ".cache/sandbox", "real/../x"] {
            let path = existing_prefix(&workspace.join(inside));
            assert!(within(&path, &workspace), "{inside}: {}", path.display());
        }
        let outside = existing_prefix(&workspace.join("../elsewhere/sandbox"));
        assert!(!within(&outside, &workspace), "{}", outside.display());
    }

    /// Only a 0600 regular file of ours, of 32 bytes, is a key; a new one is made 0600.
    #[test]
    fn the_secret_is_made_private_and_a_shared_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(KEY_FILE);
        let made = secret(&key).unwrap();
        assert_eq!(secret(&key).unwrap(), made);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(secret(&key).unwrap_err().contains("mode 640"));
        let elsewhere = dir.path().join("chosen");
        std::fs::rename(&key, &elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
        assert!(secret(&key).is_err(), "a symlinked key was followed");
    }

    /// An entry edited, or written under another secret, reads as nothing and is removed.
    #[test]
    fn an_entry_that_fails_its_mac_is_a_miss_and_removed() {
        let (base, workspace) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = Store::open(base.path(), workspace.path()).unwrap();
        store.write("entry", b"{\"status\":\"fail\"}").unwrap();
        assert_eq!(store.read("entry").unwrap(), b"{\"status\":\"fail\"}");
        let path = store.dir.join("entry");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("fail", "pass")).unwrap();
        assert_eq!(store.read("entry"), None);
        assert!(!path.exists(), "the bad entry was kept");
        let other = tempfile::tempdir().unwrap();
        let theirs = Store::open(other.path(), workspace.path()).unwrap();
        theirs.write("entry", b"{\"status\":\"pass\"}").unwrap();
        std::fs::copy(theirs.dir.join("entry"), &path).unwrap();
        assert_eq!(
            store.read("entry"),
            None,
            "another key's entry was believed"
        );
    }
}
