//! Root filesystems as plain data: which entries, with which modes and owners, read from where.
//!
//! Planning only looks at the host (lstat, readdir, readlink); [`crate::tarball`] writes a plan
//! out. Unit tests inspect plans and their tarballs without an engine and without root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::ImageError;

/// The mtime of entries that do not come from a host file. Not 0: some tools mishandle
/// zero timestamps (rust-lang/cargo#9512); fixed, so that the same input gives the same layer.
pub const SYNTHETIC_MTIME: u64 = 1_153_704_088;

/// Everything one image's root filesystem consists of.
#[derive(Debug, Default)]
pub struct Plan {
    /// In the order they go into the tarball; parents before children.
    pub entries: Vec<Entry>,
    /// Host directories the docker backend binds read-only at the same place in the container
    /// (the `sandbox.mirror` label); `/usr` for the host image, empty otherwise.
    pub mirror: Vec<String>,
    /// Host paths left out on purpose (secrets, files the engine provides), with why.
    pub excluded: Vec<Omitted>,
    /// Host paths that could not be taken (unreadable, sockets, devices), with why.
    pub skipped: Vec<Omitted>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Omitted {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path inside the image (`etc/passwd`).
    pub path: PathBuf,
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// Stored as a link, never followed: the target is resolved inside the container.
    Symlink {
        target: PathBuf,
    },
    File {
        contents: Contents,
        size: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// Read from this host path when the tarball is written.
    Host(PathBuf),
    Inline(Vec<u8>),
}

impl Entry {
    /// A root-owned directory made up by the plan.
    pub fn dir(path: impl Into<PathBuf>, mode: u32) -> Entry {
        Entry::synthetic(path, mode, EntryKind::Dir)
    }

    pub fn symlink(path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Entry {
        let target = target.into();
        Entry::synthetic(path, 0o777, EntryKind::Symlink { target })
    }

    pub fn inline(path: impl Into<PathBuf>, mode: u32, contents: impl Into<Vec<u8>>) -> Entry {
        let contents = contents.into();
        let size = contents.len() as u64;
        let contents = Contents::Inline(contents);
        Entry::synthetic(path, mode, EntryKind::File { contents, size })
    }

    fn synthetic(path: impl Into<PathBuf>, mode: u32, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            mtime: SYNTHETIC_MTIME,
            kind,
        }
    }

    /// An entry copied from the host with its mode, owner and mtime.
    fn from_host(path: PathBuf, meta: &std::fs::Metadata, kind: EntryKind) -> Entry {
        Entry {
            path,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: u64::try_from(meta.mtime()).unwrap_or(0),
            kind,
        }
    }
}

impl Plan {
    /// The entry at `path` inside the image, if the plan has one.
    pub fn entry(&self, path: impl AsRef<Path>) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path.as_ref())
    }
}

// --- host ------------------------------------------------------------------------------------

// The lists of what the allowlisted root holds are shared with the native jail, which shows
// the same paths of the live host: `sandbox_runtime::view`.
use sandbox_runtime::view::{ENGINE_MANAGED, MERGED_DIRS, SKELETON as HOST_SKELETON};

/// The host image: a skeleton of the host's root plus a copy of its /etc without secrets; the
/// host's /usr is bound read-only at run time instead of copied.
///
/// Why not copy /usr: it is gigabytes (5 GB on the CI machines), so a tarball of it would take
/// minutes on every fresh machine, and a copy would drift from the host as soon as a package is
/// installed. A read-only bind of /usr is what the native jail does too (its root is the host's
/// root, read-only), so both backends see exactly the same toolchains. The skeleton holds the
/// host's own top-level symlinks into /usr (`bin -> usr/bin`, read from `root`, not assumed),
/// so `/bin/sh` and `/lib64/ld-linux-x86-64.so.2` resolve once /usr is bound. The docker backend
/// learns what to bind from the `sandbox.mirror` label ([`Plan::mirror`]).
///
/// `root` is `/` except in tests.
pub fn host(root: &Path) -> Result<Plan, ImageError> {
    let mut plan = Plan {
        mirror: vec!["/usr".into()],
        ..Plan::default()
    };
    for name in sorted_names(root)? {
        let Some(name_str) = name.to_str() else {
            continue;
        };
        let host_path = root.join(&name);
        let meta = lstat(&host_path)?;
        if meta.file_type().is_symlink() {
            let target = read_link(&host_path)?;
            // Only links into /usr make sense in the image; anything else would dangle.
            if first_normal_component(&target).is_some_and(|c| c == "usr") {
                let kind = EntryKind::Symlink { target };
                plan.entries
                    .push(Entry::from_host(PathBuf::from(&name), &meta, kind));
            }
        } else if meta.is_dir() && MERGED_DIRS.contains(&name_str) {
            // A host without merged /usr: /bin etc. hold binaries, so they are mirrored too.
            plan.mirror.push(format!("/{name_str}"));
            plan.entries.push(Entry::from_host(
                PathBuf::from(&name),
                &meta,
                EntryKind::Dir,
            ));
        }
    }
    for (path, mode) in HOST_SKELETON {
        plan.entries.push(Entry::dir(*path, *mode));
    }

    let etc = root.join("etc");
    let meta = lstat(&etc)?;
    plan.entries
        .push(Entry::from_host("etc".into(), &meta, EntryKind::Dir));
    let walk = Walk {
        exclude: host_etc_exclusion,
        unreadable: Unreadable::Skip,
        placeholders: true,
    };
    walk.dir(&mut plan, &etc, Path::new("etc"))?;
    for path in ENGINE_MANAGED {
        plan.entries.push(Entry::inline(*path, 0o644, Vec::new()));
    }
    Ok(plan)
}

/// Why a path under the host's /etc stays out of the image, if it does: the native jail's
/// list too (`sandbox_runtime::view::etc_exclusion`). The image is readable by anyone who can
/// run a container, so /etc is copied minus everything that holds a password hash or a key;
/// each secret's name stays, as an unreadable empty placeholder, so that both backends show
/// the same names (the jail covers the host's file with one).
pub fn host_etc_exclusion(path: &Path) -> Option<&'static str> {
    sandbox_runtime::view::etc_exclusion(path)
}

// --- busybox ---------------------------------------------------------------------------------

/// Where Debian's busybox-static puts the binary (merged /usr first).
pub const BUSYBOX_PATHS: &[&str] = &["/usr/bin/busybox", "/bin/busybox"];

pub fn find_busybox() -> Result<PathBuf, ImageError> {
    BUSYBOX_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .ok_or_else(|| ImageError::Busybox(format!("no busybox at {}", BUSYBOX_PATHS.join(" or "))))
}

/// A busybox image: the static binary, a symlink per applet, passwd and group with root and
/// nobody (65534, the uid jobs run as), and the usual directories. The layout is merged /usr
/// like Debian's (`bin -> usr/bin`), so `/bin/sh`, `/usr/bin/env` and `/sbin/ip` all resolve.
pub fn busybox(binary: &Path) -> Result<Plan, ImageError> {
    let mut bytes = Vec::new();
    fs_err::File::open(binary)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(|e| ImageError::io("read busybox", e))?;
    match elf_is_static(&bytes) {
        Some(true) => {}
        // A dynamically linked busybox (Debian's `busybox` package) would find no libc in the
        // image and fail with a baffling "no such file or directory".
        Some(false) => {
            return Err(ImageError::Busybox(format!(
                "{} is dynamically linked",
                binary.display()
            )))
        }
        None => {
            return Err(ImageError::Busybox(format!(
                "{} is not an ELF executable",
                binary.display()
            )))
        }
    }
    let applets = busybox_applets(binary)?;

    let mut plan = Plan::default();
    for (path, mode) in [
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("var/tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
        ("opt", 0o755),
        ("workspace", 0o755),
        ("out", 0o755),
    ] {
        plan.entries.push(Entry::dir(path, mode));
    }
    plan.entries.push(Entry::symlink("bin", "usr/bin"));
    plan.entries.push(Entry::symlink("sbin", "usr/bin"));
    plan.entries.push(Entry::symlink("usr/sbin", "bin"));
    plan.entries.push(Entry::synthetic(
        "usr/bin/busybox",
        0o755,
        EntryKind::File {
            contents: Contents::Host(binary.to_path_buf()),
            size: bytes.len() as u64,
        },
    ));
    for applet in applets {
        plan.entries
            .push(Entry::symlink(Path::new("usr/bin").join(applet), "busybox"));
    }
    plan.entries.push(Entry::inline(
        "etc/passwd",
        0o644,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ));
    plan.entries.push(Entry::inline(
        "etc/group",
        0o644,
        "root:x:0:\nnogroup:x:65534:\n",
    ));
    for path in ENGINE_MANAGED {
        plan.entries.push(Entry::inline(*path, 0o644, Vec::new()));
    }
    Ok(plan)
}

/// The applet names `busybox --list` prints, minus anything that is not a plain file name.
fn busybox_applets(binary: &Path) -> Result<Vec<String>, ImageError> {
    let output = std::process::Command::new(binary)
        .arg("--list")
        .output()
        .map_err(|e| ImageError::io(format!("run `{} --list`", binary.display()), e))?;
    if !output.status.success() {
        return Err(ImageError::Busybox(format!(
            "`{} --list` failed ({})",
            binary.display(),
            output.status
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let applets: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty() && *name != "busybox")
        .filter(|name| !name.contains('/') && *name != "." && *name != "..")
        .map(str::to_owned)
        .collect();
    if !applets.iter().any(|name| name == "sh") {
        return Err(ImageError::Busybox(format!(
            "`{} --list` names no `sh` applet",
            binary.display()
        )));
    }
    Ok(applets)
}

/// Whether an ELF file has no program interpreter (PT_INTERP), i.e. runs without a dynamic
/// loader; `None` when `bytes` is not an ELF file this can read.
pub fn elf_is_static(bytes: &[u8]) -> Option<bool> {
    const PT_INTERP: u64 = 3;
    if bytes.get(..4)? != b"\x7fELF" {
        return None;
    }
    let little_endian = match bytes.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = |offset: u64, len: usize| -> Option<u64> {
        let start = usize::try_from(offset).ok()?;
        let field = bytes.get(start..start.checked_add(len)?)?;
        let mut value = 0u64;
        for i in 0..len {
            let byte = if little_endian {
                field[len - 1 - i]
            } else {
                field[i]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    };
    let (phoff, phentsize, phnum) = match bytes.get(4)? {
        1 => (read(0x1c, 4)?, read(0x2a, 2)?, read(0x2c, 2)?),
        2 => (read(0x20, 8)?, read(0x36, 2)?, read(0x38, 2)?),
        _ => return None,
    };
    for index in 0..phnum {
        let header = phoff.checked_add(index.checked_mul(phentsize)?)?;
        if read(header, 4)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

// --- a directory -----------------------------------------------------------------------------

/// A directory's contents as the root filesystem. Symlinks inside are stored as links and
/// never followed, so nothing outside `dir` is read; unreadable files are an error (the image
/// would silently lack them), sockets and device nodes are skipped and reported.
pub fn dir(dir: &Path) -> Result<Plan, ImageError> {
    let bad = |reason: String| ImageError::BadSourceDir {
        path: dir.to_path_buf(),
        reason,
    };
    // The directory itself may be reached through a symlink: that is what the user named.
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad("it does not exist".into()),
        _ => bad(e.to_string()),
    })?;
    if !meta.is_dir() {
        return Err(bad("not a directory".into()));
    }
    let canonical = fs_err::canonicalize(dir).map_err(|e| bad(e.to_string()))?;
    if canonical == Path::new("/") {
        return Err(bad(
            "that is the whole host (with /proc and /sys); use `--from host`".into(),
        ));
    }
    let shell = resolve_beneath(&canonical, Path::new("bin/sh"))
        .map(|inside| canonical.join(inside))
        .filter(|path| {
            std::fs::symlink_metadata(path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    if shell.is_none() {
        return Err(bad(
            "it has no executable /bin/sh (links resolved inside the directory); a root \
             filesystem needs one"
                .into(),
        ));
    }
    let mut plan = Plan::default();
    let walk = Walk {
        exclude: |_| None,
        unreadable: Unreadable::Fail,
        placeholders: false,
    };
    walk.dir(&mut plan, &canonical, Path::new(""))?;
    Ok(plan)
}

/// Resolves `path` as if `root` were `/`: symlinks are followed, but absolute targets restart
/// at `root` and `..` stops at it, so the result always lies beneath `root` (like
/// `openat2(RESOLVE_IN_ROOT)`). Returns the path relative to `root`, `None` when a component is
/// missing or links loop.
pub fn resolve_beneath(root: &Path, path: &Path) -> Option<PathBuf> {
    enum Step {
        Up,
        Down(OsString),
    }
    fn steps(path: &Path) -> VecDeque<Step> {
        path.components()
            .filter_map(|component| match component {
                Component::ParentDir => Some(Step::Up),
                Component::Normal(name) => Some(Step::Down(name.to_owned())),
                _ => None,
            })
            .collect()
    }
    const MAX_LINKS: usize = 40; // as the kernel's ELOOP limit
    let mut pending = steps(path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(step) = pending.pop_front() {
        let name = match step {
            Step::Up => {
                resolved.pop();
                continue;
            }
            Step::Down(name) => name,
        };
        let candidate = resolved.join(&name);
        let meta = std::fs::symlink_metadata(root.join(&candidate)).ok()?;
        if !meta.file_type().is_symlink() {
            resolved = candidate;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return None;
        }
        let target = std::fs::read_link(root.join(&candidate)).ok()?;
        if target.is_absolute() {
            resolved = PathBuf::new();
        }
        let mut next = steps(&target);
        next.extend(pending);
        pending = next;
    }
    Some(resolved)
}

// --- walking a host directory ----------------------------------------------------------------

#[derive(Clone, Copy)]
enum Unreadable {
    /// Leave it out and report it in `Plan::skipped` (the host's /etc as a non-root user).
    Skip,
    Fail,
}

struct Walk {
    /// Why an image path stays out, if it does.
    exclude: fn(&Path) -> Option<&'static str>,
    unreadable: Unreadable,
    /// Whether an excluded secret leaves an empty, unreadable placeholder of its name (engine
    /// managed files get theirs separately).
    placeholders: bool,
}

impl Walk {
    /// Adds everything below `host_dir` (not `host_dir` itself) under `image_dir`, sorted by
    /// name so that the same tree gives the same tarball.
    fn dir(&self, plan: &mut Plan, host_dir: &Path, image_dir: &Path) -> Result<(), ImageError> {
        let names = match sorted_names(host_dir) {
            Ok(names) => names,
            Err(error) => return self.unreadable(plan, image_dir, error),
        };
        for name in names {
            let host_path = host_dir.join(&name);
            let image_path = image_dir.join(&name);
            if let Some(reason) = (self.exclude)(&image_path) {
                let managed = ENGINE_MANAGED.iter().any(|m| image_path == Path::new(m));
                if self.placeholders && !managed {
                    let is_dir = lstat(&host_path).is_ok_and(|meta| meta.is_dir());
                    plan.entries.push(if is_dir {
                        Entry::dir(image_path.clone(), 0o755)
                    } else {
                        Entry::inline(image_path.clone(), 0o000, Vec::new())
                    });
                }
                plan.excluded.push(Omitted {
                    path: image_path,
                    reason: reason.into(),
                });
                continue;
            }
            let meta = lstat(&host_path)?;
            let file_type = meta.file_type();
            if file_type.is_symlink() {
                let target = read_link(&host_path)?;
                let kind = EntryKind::Symlink { target };
                plan.entries.push(Entry::from_host(image_path, &meta, kind));
            } else if file_type.is_dir() {
                plan.entries
                    .push(Entry::from_host(image_path.clone(), &meta, EntryKind::Dir));
                self.dir(plan, &host_path, &image_path)?;
            } else if file_type.is_file() {
                // Opened once here so that an unreadable file is found while planning, not
                // half-way through streaming the tarball to the engine.
                if let Err(error) = fs_err::File::open(&host_path) {
                    self.unreadable(plan, &image_path, ImageError::io("read a file", error))?;
                    continue;
                }
                let kind = EntryKind::File {
                    contents: Contents::Host(host_path),
                    size: meta.len(),
                };
                plan.entries.push(Entry::from_host(image_path, &meta, kind));
            } else {
                plan.skipped.push(Omitted {
                    path: image_path,
                    reason: "not a regular file, directory or symlink (socket, fifo or device)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    fn unreadable(
        &self,
        plan: &mut Plan,
        image_path: &Path,
        error: ImageError,
    ) -> Result<(), ImageError> {
        match self.unreadable {
            Unreadable::Fail => Err(error),
            Unreadable::Skip => {
                plan.skipped.push(Omitted {
                    path: image_path.to_path_buf(),
                    reason: error_chain(&error),
                });
                Ok(())
            }
        }
    }
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>, ImageError> {
    let mut names = fs_err::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|entry| entry.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| ImageError::io("list a directory", e))?;
    names.sort();
    Ok(names)
}

fn lstat(path: &Path) -> Result<std::fs::Metadata, ImageError> {
    fs_err::symlink_metadata(path).map_err(|e| ImageError::io("stat a file", e))
}

fn read_link(path: &Path) -> Result<PathBuf, ImageError> {
    fs_err::read_link(path).map_err(|e| ImageError::io("read a symlink", e))
}

fn first_normal_component(path: &Path) -> Option<&std::ffi::OsStr> {
    path.components().find_map(|c| match c {
        Component::Normal(name) => Some(name),
        _ => None,
    })
}

/// The error with its causes on one line, for [`Omitted::reason`].
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
