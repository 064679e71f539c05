//! Writing a change set back into the real workspace.
//!
//! The workspace belongs to the user and the content to the job, so nothing here trusts a
//! path: every directory is resolved from the workspace's descriptor with `openat2` refusing
//! symlinks, and every file is replaced by an fsynced copy renamed over it. The copies are
//! made first, all of them (`stage`): a full disk or a changed view then writes back nothing
//! at all. After that, a failure (rare: the workspace changed under us) fails that path only.

use std::collections::{HashMap, HashSet};
use std::fs::File;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstat, fstatat, mkdirat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchown, fchownat, fsync, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::changes::{Change, ChangeKind, ChangeSet, FileType};
use super::stage::{copy_checked, Stage};
use super::sys::Root;
use super::WorkspaceError;

/// What [`commit`] did, path by path. Every path of the change set is in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommitReport {
    /// Paths whose every change was applied, in change-set order.
    pub written: Vec<String>,
    /// Paths with at least one change that failed; the workspace keeps what it had there (or,
    /// for a type change whose removal succeeded, nothing).
    pub failed: Vec<CommitFailure>,
    /// Paths not tried because going on was unsafe; `aborted` says why.
    pub not_attempted: Vec<String>,
    /// Why commit stopped before touching anything, if it did.
    pub aborted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommitFailure {
    pub path: String,
    pub error: String,
}

impl CommitReport {
    /// Everything in the change set is now in the workspace.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.not_attempted.is_empty()
    }
}

/// One thing commit does to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Remove,
    MakeDir,
    Write,
    SetDirMode,
}

/// The order that works, as data: removals of files and symlinks (the old halves of type
/// changes included), then of directories deepest first (their listed contents are gone by
/// then), then new directories top-down (created owner-writable), then files and symlinks,
/// then directory modes deepest first (so a read-only directory is sealed after it is filled).
fn plan(entries: &[Change]) -> Vec<(Step, usize)> {
    use ChangeKind::{Added, Deleted, Modified};
    let mut forward: Vec<usize> = (0..entries.len()).collect();
    forward.sort_by(|&a, &b| entries[a].path.cmp(&entries[b].path));
    // A child's path sorts after its parent's, so the reverse order visits children first.
    let backward: Vec<usize> = forward.iter().rev().copied().collect();
    let mut steps: Vec<_> = pick(entries, &forward, Step::Remove, &[Deleted], false).collect();
    steps.extend(pick(entries, &backward, Step::Remove, &[Deleted], true));
    steps.extend(pick(entries, &forward, Step::MakeDir, &[Added], true));
    steps.extend(pick(
        entries,
        &forward,
        Step::Write,
        &[Added, Modified],
        false,
    ));
    steps.extend(pick(
        entries,
        &backward,
        Step::SetDirMode,
        &[Added, Modified],
        true,
    ));
    steps
}

/// `step` for each entry, in `order`, of one of `kinds` that is (or is not) a directory.
fn pick<'a>(
    entries: &'a [Change],
    order: &'a [usize],
    step: Step,
    kinds: &'a [ChangeKind],
    dir: bool,
) -> impl Iterator<Item = (Step, usize)> + 'a {
    order
        .iter()
        .copied()
        .filter(move |&i| {
            kinds.contains(&entries[i].kind) && (entries[i].file_type == FileType::Dir) == dir
        })
        .map(move |i| (step, i))
}

/// Writes the entries of `changes` from `view` into `workspace` and touches nothing else.
/// Each path ends up in `written` or `failed`; if the workspace or the view cannot be opened
/// at all, every path is `not_attempted`.
pub fn commit(changes: &ChangeSet, view: &Path, workspace: &Path) -> CommitReport {
    let mut paths: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for change in &changes.entries {
        if seen.insert(change.path.as_str()) {
            paths.push(&change.path);
        }
    }
    let roots = Root::open(workspace).and_then(|workspace| Ok((workspace, Root::open(view)?)));
    let (workspace, view) = match roots {
        Ok(roots) => roots,
        Err(error) => {
            return CommitReport {
                not_attempted: paths.into_iter().map(str::to_string).collect(),
                aborted: Some(error.to_string()),
                ..CommitReport::default()
            }
        }
    };

    let mut stage = match Stage::fill(&workspace, &view, &changes.entries) {
        Ok(stage) => stage,
        Err((path, error)) => {
            return CommitReport {
                not_attempted: paths.into_iter().map(str::to_string).collect(),
                aborted: Some(format!(
                    "nothing was written back: copying {} into the workspace's filesystem \
                     failed: {error}",
                    if path.is_empty() {
                        "the change set"
                    } else {
                        &path
                    }
                )),
                ..CommitReport::default()
            }
        }
    };
    let mut errors: HashMap<&str, WorkspaceError> = HashMap::new();
    for (step, index) in plan(&changes.entries) {
        let change = &changes.entries[index];
        // Once a step on a path failed (removing the old entry, creating the directory), the
        // later ones would fail too or mix old and new: leave the path as it is.
        if step != Step::Remove && errors.contains_key(change.path.as_str()) {
            continue;
        }
        let result = match step {
            Step::Remove => remove(&workspace, change),
            Step::MakeDir => make_dir(&workspace, change),
            Step::Write => write(&workspace, &view, &mut stage, index, change),
            Step::SetDirMode => set_mode(&workspace, change, dir_mode(change)),
        };
        if let Err(error) = result {
            errors.entry(&change.path).or_insert(error);
        }
    }

    let mut report = CommitReport::default();
    for path in paths {
        match errors.remove(path) {
            Some(error) => report.failed.push(CommitFailure {
                path: path.to_string(),
                error: error.to_string(),
            }),
            None => report.written.push(path.to_string()),
        }
    }
    report
}

fn remove(workspace: &Root, change: &Change) -> Result<(), WorkspaceError> {
    let (dir, name) = workspace.parent(&change.path)?;
    let flag = match change.file_type {
        FileType::Dir => UnlinkatFlags::RemoveDir,
        FileType::File | FileType::Symlink => UnlinkatFlags::NoRemoveDir,
    };
    match unlinkat(&dir, name, flag) {
        // Already gone: the workspace is as the change set wants it.
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTEMPTY | Errno::EEXIST) => Err(WorkspaceError::NotEmpty {
            path: change.path.clone(),
        }),
        Err(errno) => Err(sys_at("unlinkat", workspace, change, errno)),
    }
}

fn make_dir(workspace: &Root, change: &Change) -> Result<(), WorkspaceError> {
    let (dir, name) = workspace.parent(&change.path)?;
    let owner = owner_of(&dir, name, workspace, change)?;
    // Owner-writable until `SetDirMode` gives it its mode, so its entries can be written.
    let mode = Mode::from_bits_truncate(dir_mode(change) | 0o700);
    match mkdirat(&dir, name, mode) {
        Ok(()) => chown_at(&dir, name, owner, workspace, change),
        Err(Errno::EEXIST) => match kind_at(&dir, name, workspace, change)? {
            // Made since the job started; it is what we want there.
            Some(SFlag::S_IFDIR) => Ok(()),
            Some(SFlag::S_IFLNK) => Err(symlink_in_path(workspace, change)),
            _ => Err(sys_at("mkdirat", workspace, change, Errno::EEXIST)),
        },
        Err(errno) => Err(sys_at("mkdirat", workspace, change, errno)),
    }
}

fn write(
    workspace: &Root,
    view: &Root,
    stage: &mut Stage,
    index: usize,
    change: &Change,
) -> Result<(), WorkspaceError> {
    match change.file_type {
        FileType::File if change.writes_content() => {
            install_file(workspace, view, stage, index, change)
        }
        FileType::File => set_mode(workspace, change, file_mode(change)),
        FileType::Symlink => write_symlink(workspace, view, change),
        FileType::Dir => Ok(()),
    }
}

/// Renames the staged copy over the target, with the owner of what it replaces and the
/// change's mode. A target directory on another filesystem (a mount inside the workspace)
/// cannot take a rename from the stage: that file is copied beside its target instead.
fn install_file(
    workspace: &Root,
    view: &Root,
    stage: &mut Stage,
    index: usize,
    change: &Change,
) -> Result<(), WorkspaceError> {
    let Some(staged) = stage.staged(index).map(str::to_owned) else {
        return write_file(workspace, view, change);
    };
    let (dir, name) = workspace.parent(&change.path)?;
    let owner = owner_of(&dir, name, workspace, change)?;
    chown_at(&stage.dir, &staged, owner, workspace, change)?;
    // After the chown, which clears set-id bits; and explicit, so the umask does not apply.
    fchmodat(
        &stage.dir,
        staged.as_str(),
        Mode::from_bits_truncate(file_mode(change)),
        FchmodatFlags::NoFollowSymlink,
    )
    .map_err(|errno| sys_at("fchmodat(staged copy of)", workspace, change, errno))?;
    match nix::fcntl::renameat(&stage.dir, staged.as_str(), &dir, name) {
        Ok(()) => {
            stage.installed(index);
            sync_dir(&dir, workspace, change)
        }
        Err(Errno::EXDEV) => write_file(workspace, view, change),
        Err(errno) => Err(sys_at("renameat", workspace, change, errno)),
    }
}

/// Copies the view's file into a temp file next to the target, checks it is the content the
/// change set describes, fsyncs it and renames it over the target: the workspace holds the old
/// file or the new one, never half of one.
fn write_file(workspace: &Root, view: &Root, change: &Change) -> Result<(), WorkspaceError> {
    let (dir, name) = workspace.parent(&change.path)?;
    let owner = owner_of(&dir, name, workspace, change)?;
    let (temp, target) = Temp::file(&dir, name, workspace, change)?;
    let mut target = File::from(target);
    copy_checked(view, change, &mut target, workspace.path().join(&temp.name))?;

    let temp_path = || workspace.path().join(&temp.name);
    let stat = fstat(&target).map_err(|errno| WorkspaceError::sys("fstat", temp_path(), errno))?;
    if (stat.st_uid, stat.st_gid) != owner {
        fchown(
            &target,
            Some(Uid::from_raw(owner.0)),
            Some(Gid::from_raw(owner.1)),
        )
        .map_err(|errno| WorkspaceError::sys("fchown", temp_path(), errno))?;
    }
    // After fchown, which clears set-id bits; and explicit, so the umask does not apply.
    fchmod(&target, Mode::from_bits_truncate(file_mode(change)))
        .map_err(|errno| WorkspaceError::sys("fchmod", temp_path(), errno))?;
    target
        .sync_all()
        .map_err(|error| WorkspaceError::read("fsync", temp_path(), error))?;
    temp.rename_over(name, workspace, change)?;
    sync_dir(&dir, workspace, change)
}

/// Creates the link at a temp name and renames it over the target, so the path always holds
/// the old entry or the new link.
fn write_symlink(workspace: &Root, view: &Root, change: &Change) -> Result<(), WorkspaceError> {
    let (view_dir, view_name) = view.parent(&change.path)?;
    let target = nix::fcntl::readlinkat(&view_dir, view_name).map_err(|errno| {
        WorkspaceError::sys("readlinkat", view.path().join(&change.path), errno)
    })?;
    if target.to_str() != change.symlink_target.as_deref() {
        return Err(WorkspaceError::ViewChanged {
            view: view.path().to_path_buf(),
            path: change.path.clone(),
            detail: "the symlink points elsewhere".to_string(),
        });
    }
    let (dir, name) = workspace.parent(&change.path)?;
    let owner = owner_of(&dir, name, workspace, change)?;
    let temp = Temp::symlink(&dir, name, &target, workspace, change)?;
    chown_at(&dir, &temp.name, owner, workspace, change)?;
    temp.rename_over(name, workspace, change)?;
    sync_dir(&dir, workspace, change)
}

fn set_mode(workspace: &Root, change: &Change, mode: u32) -> Result<(), WorkspaceError> {
    let (dir, name) = workspace.parent(&change.path)?;
    let mode = Mode::from_bits_truncate(mode);
    match fchmodat(&dir, name, mode, FchmodatFlags::NoFollowSymlink) {
        Ok(()) => Ok(()),
        // What the change set calls a file or directory is a symlink in the workspace now.
        Err(Errno::EOPNOTSUPP) => Err(symlink_in_path(workspace, change)),
        Err(errno) => Err(sys_at("fchmodat", workspace, change, errno)),
    }
}

/// A job must not hand the workspace owner a set-user-ID or set-group-ID program: files are
/// written with those bits cleared.
fn file_mode(change: &Change) -> u32 {
    change.new_mode.unwrap_or(0o644) & 0o1777
}

fn dir_mode(change: &Change) -> u32 {
    change.new_mode.unwrap_or(0o755) & 0o7777
}

/// Who should own what lands at `name`: whoever owns what is there now, else whoever owns the
/// directory. As root, left alone, every file commit writes would be root's; without root,
/// files can only be ours, and that is what writing them made them.
fn owner_of(
    dir: &OwnedFd,
    name: &str,
    workspace: &Root,
    change: &Change,
) -> Result<(u32, u32), WorkspaceError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Ok((euid.as_raw(), nix::unistd::getegid().as_raw()));
    }
    let stat = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => {
            fstat(dir).map_err(|errno| sys_at("fstat(parent of)", workspace, change, errno))?
        }
        Err(errno) => return Err(sys_at("fstatat", workspace, change, errno)),
    };
    Ok((stat.st_uid, stat.st_gid))
}

fn chown_at(
    dir: &OwnedFd,
    name: &str,
    owner: (u32, u32),
    workspace: &Root,
    change: &Change,
) -> Result<(), WorkspaceError> {
    let stat = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|errno| sys_at("fstatat", workspace, change, errno))?;
    if (stat.st_uid, stat.st_gid) == owner {
        return Ok(());
    }
    let (uid, gid) = (Uid::from_raw(owner.0), Gid::from_raw(owner.1));
    fchownat(
        dir,
        name,
        Some(uid),
        Some(gid),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|errno| sys_at("fchownat", workspace, change, errno))
}

fn kind_at(
    dir: &OwnedFd,
    name: &str,
    workspace: &Root,
    change: &Change,
) -> Result<Option<SFlag>, WorkspaceError> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(SFlag::from_bits_truncate(
            stat.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(sys_at("fstatat", workspace, change, errno)),
    }
}

/// Makes the rename durable, not just the file's bytes.
fn sync_dir(dir: &OwnedFd, workspace: &Root, change: &Change) -> Result<(), WorkspaceError> {
    fsync(dir).map_err(|errno| sys_at("fsync(parent of)", workspace, change, errno))
}

fn sys_at(call: &'static str, workspace: &Root, change: &Change, errno: Errno) -> WorkspaceError {
    WorkspaceError::sys(call, workspace.path().join(&change.path), errno)
}

fn symlink_in_path(workspace: &Root, change: &Change) -> WorkspaceError {
    WorkspaceError::SymlinkInPath {
        root: workspace.path().to_path_buf(),
        path: change.path.clone(),
    }
}

/// A temp entry next to its target, removed on drop unless it was renamed into place.
struct Temp<'a> {
    dir: BorrowedFd<'a>,
    name: String,
    renamed: bool,
}

/// Makes temp names unique within this process; the pid makes them unique across processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl<'a> Temp<'a> {
    /// `.sandbox-<pid>-<n>-<name>.tmp`, with `name` shortened to keep within NAME_MAX.
    fn name(target: &str) -> String {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!(".sandbox-{}-{n}-", std::process::id());
        let mut room = 255 - prefix.len() - ".tmp".len();
        while !target.is_char_boundary(room.min(target.len())) {
            room -= 1;
        }
        format!("{prefix}{}.tmp", &target[..room.min(target.len())])
    }

    /// `O_CREAT | O_EXCL | O_NOFOLLOW`: the temp name is never an existing file or a symlink
    /// someone planted; on a clash, the next name is tried.
    fn file(
        dir: &'a OwnedFd,
        target: &str,
        workspace: &Root,
        change: &Change,
    ) -> Result<(Temp<'a>, OwnedFd), WorkspaceError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut last = Errno::EEXIST;
        for _ in 0..16 {
            let name = Temp::name(target);
            match nix::fcntl::openat(dir, name.as_str(), flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => return Ok((Temp::new(dir, name), fd)),
                Err(Errno::EEXIST) => continue,
                Err(errno) => {
                    last = errno;
                    break;
                }
            }
        }
        Err(sys_at("openat(temp file beside)", workspace, change, last))
    }

    fn symlink(
        dir: &'a OwnedFd,
        target_name: &str,
        link: &std::ffi::OsStr,
        workspace: &Root,
        change: &Change,
    ) -> Result<Temp<'a>, WorkspaceError> {
        let mut last = Errno::EEXIST;
        for _ in 0..16 {
            let name = Temp::name(target_name);
            match symlinkat(link, dir, name.as_str()) {
                Ok(()) => return Ok(Temp::new(dir, name)),
                Err(Errno::EEXIST) => continue,
                Err(errno) => {
                    last = errno;
                    break;
                }
            }
        }
        Err(sys_at(
            "symlinkat(temp link beside)",
            workspace,
            change,
            last,
        ))
    }

    fn new(dir: &'a OwnedFd, name: String) -> Self {
        Temp {
            dir: dir.as_fd(),
            name,
            renamed: false,
        }
    }

    fn rename_over(
        mut self,
        target: &str,
        workspace: &Root,
        change: &Change,
    ) -> Result<(), WorkspaceError> {
        nix::fcntl::renameat(self.dir, self.name.as_str(), self.dir, target)
            .map_err(|errno| sys_at("renameat", workspace, change, errno))?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: a leftover is a hidden, clearly named file; failing the commit over
            // it would hide the error that got us here.
            let _ = unlinkat(self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: ChangeKind, file_type: FileType) -> Change {
        super::super::walk::change(path.into(), kind, file_type)
    }

    #[test]
    fn plan_removes_before_it_creates_and_seals_dirs_last() {
        use ChangeKind::*;
        use FileType::*;
        let entries = [
            entry("d", Deleted, Dir),
            entry("d", Added, File),
            entry("d/sub", Deleted, Dir),
            entry("d/sub/f", Deleted, File),
            entry("n", Deleted, File),
            entry("n", Added, Dir),
            entry("n/deep", Added, Dir),
            entry("n/deep/f", Added, File),
            entry("m", Modified, Dir),
        ];
        let steps: Vec<(Step, &str)> = plan(&entries)
            .into_iter()
            .map(|(step, i)| (step, entries[i].path.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                (Step::Remove, "d/sub/f"),
                (Step::Remove, "n"),
                (Step::Remove, "d/sub"),
                (Step::Remove, "d"),
                (Step::MakeDir, "n"),
                (Step::MakeDir, "n/deep"),
                (Step::Write, "d"),
                (Step::Write, "n/deep/f"),
                (Step::SetDirMode, "n/deep"),
                (Step::SetDirMode, "n"),
                (Step::SetDirMode, "m"),
            ]
        );
    }

    #[test]
    fn temp_names_stay_within_name_max() {
        let long = "é".repeat(127);
        let name = Temp::name(&long);
        assert!(name.len() <= 255, "{}", name.len());
        assert!(name.starts_with(".sandbox-") && name.ends_with(".tmp"));
        assert_ne!(Temp::name("x"), Temp::name("x"));
    }
}
