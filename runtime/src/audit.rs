//! The tamper-evident audit log: one hash-chained JSON line per job.
//!
//! Each line is a record whose `hash` is blake3 over its `prev` (the hash of the line before,
//! or [`GENESIS`] for the first) followed by the record's canonical JSON without `hash`; `seq`
//! counts from 1. Editing, removing or reordering a line breaks the chain where it happened;
//! cutting off the tail or rewriting the whole log is caught by comparing with a head hash
//! stored elsewhere (an anchor). Writers hold an exclusive `flock` on the log for the whole
//! read-tail-then-append, so concurrent `sandbox exec` processes extend one chain.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::Outcome;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Names the record layout, so that a later change to it can be told from tampering.
pub const AUDIT_SCHEMA: &str = "sandbox/audit@1";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no place for the audit log: neither XDG_STATE_HOME nor HOME is an absolute path; pass --audit PATH")]
    NoDefaultPath,
    #[error("could not {what} the audit log {} (pass --audit PATH to log elsewhere)", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not lock the audit log {}", path.display())]
    Lock { path: PathBuf, source: Errno },
    /// The last line cannot be chained onto: a new record would vouch for a damaged one.
    #[error(
        "audit log {}:{line}: {problem}; refusing to add a record after it. Run `sandbox audit \
         verify {}`, keep the log as evidence and move it aside to start a new chain",
        path.display(),
        path.display()
    )]
    DamagedTail {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    #[error("an audit record must be a JSON object")]
    NotAnObject,
}

/// What [`append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendedRecord {
    pub seq: u64,
    pub hash: String,
}

/// The answer of [`verify`]: the intact prefix of the chain, and the first problem after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// No problem was found (and the anchor, if one was given, is in the chain).
    pub intact: bool,
    /// Records that chain correctly from the first line (all of them when intact).
    pub records: u64,
    /// The hash of the last of those records ([`GENESIS`] for none): the anchor to keep.
    pub head: String,
    pub problem: Option<Problem>,
}

/// The first place where the log stops being the chain its writers made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// 1-based line of the file; none when the problem is the log as a whole (the anchor).
    pub line: Option<u64>,
    /// The seq the record on that line claims, when it could be read.
    pub seq: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record's hash does not match its content.
    Edited,
    /// The record does not follow the one before it, and what it follows is not in the log.
    Removed,
    /// The record follows one that is elsewhere in the log, or its seq goes backwards.
    Reordered,
    /// The line is not a record (torn write, not JSON, missing chain fields).
    Unparseable,
    /// The chain is intact but does not contain the expected head hash: cut short or rewritten.
    AnchorMissing,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Removed => "removed",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Unparseable => "unparseable",
            ProblemKind::AnchorMissing => "anchor_missing",
        })
    }
}

/// One line of the log as [`read`] returns it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub line: u64,
    /// The record, or why the line is not one.
    pub record: Result<Value, String>,
}

/// `$XDG_STATE_HOME/sandbox/audit.jsonl`, else `$HOME/.local/state/sandbox/audit.jsonl`.
pub fn default_path() -> Result<PathBuf, AuditError> {
    default_path_from(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
}

fn default_path_from(
    xdg_state_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf, AuditError> {
    // The XDG base-directory spec says a relative XDG_STATE_HOME is invalid and is ignored.
    let absolute = |value: Option<std::ffi::OsString>| {
        value.map(PathBuf::from).filter(|path| path.is_absolute())
    };
    let state = match (absolute(xdg_state_home), absolute(home)) {
        (Some(state), _) => state,
        (None, Some(home)) => home.join(".local").join("state"),
        (None, None) => return Err(AuditError::NoDefaultPath),
    };
    Ok(state.join("sandbox").join("audit.jsonl"))
}

/// Fails unless a record could be appended to `path` now: its directory can be created, the
/// file opened for append, and its last line is a record to chain onto. `sandbox exec` asks
/// before the job runs, so that a job never runs unaudited.
pub fn check_writable(path: &Path) -> Result<(), AuditError> {
    let file = lock(open_for_append(path)?, FlockArg::LockShared, path)?;
    last_link(&file, path).map(drop)
}

/// The audit record of one job, without the chain fields (`seq`, `prev`, `hash`) that
/// [`append`] adds. `time` is now.
pub fn record_for(outcome: &Outcome) -> Value {
    let network: Vec<Value> = outcome
        .network
        .events
        .iter()
        .map(|event| json!({"host": event.host, "port": event.port, "decision": event.decision}))
        .collect();
    json!({
        "schema": AUDIT_SCHEMA,
        "time": rfc3339(SystemTime::now()),
        "id": outcome.id,
        "profile": outcome.profile,
        "backend": outcome.backend,
        "isolation": outcome.isolation,
        "command": outcome.command,
        "workspace": {
            "path": outcome.workspace.path,
            "mode": outcome.workspace.mode,
            "committed": outcome.workspace.committed,
            "change_hash": outcome.workspace.change_hash,
            "changed": outcome.workspace.added.len()
                + outcome.workspace.modified.len()
                + outcome.workspace.deleted.len(),
        },
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "reason": outcome.reason,
        "limits_hit": outcome.limits_hit,
        "network": network,
        "secrets": outcome.secrets,
        "notes": outcome.notes,
        "redactions": outcome.redactions,
    })
}

/// Appends `body` (a JSON object) to the log at `path` as the next record of the chain,
/// creating the log (mode 0600) and its directories (0700) when missing. `seq`, `prev` and
/// `hash` in `body` are replaced. Refuses to chain onto a last line that is not an intact
/// record.
pub fn append(path: &Path, body: &Value) -> Result<AppendedRecord, AuditError> {
    let Value::Object(fields) = body else {
        return Err(AuditError::NotAnObject);
    };
    let mut record = fields.clone();
    record.remove("hash");
    let file = lock(open_for_append(path)?, FlockArg::LockExclusive, path)?;
    let length = file
        .metadata()
        .map_err(|source| io_error("read the size of", path, source))?
        .len();
    let (seq, prev) = match last_link(&file, path)? {
        Some(last) => (last.seq + 1, last.hash),
        None => (1, GENESIS.to_owned()),
    };
    record.insert("seq".into(), seq.into());
    record.insert("prev".into(), prev.as_str().into());
    let mut record = Value::Object(record);
    let hash = chain_hash(&prev, &record);
    record["hash"] = hash.as_str().into();
    let mut line = canonical(&record);
    line.push('\n');
    // One write(2) on an O_APPEND descriptor, so that even a writer that ignores the lock
    // cannot interleave with the line. A short write (disk full) is undone: a torn line would
    // stop every later append.
    match (&*file).write(line.as_bytes()) {
        Ok(written) if written == line.len() => {}
        result => {
            let _ = file.set_len(length);
            let source = result.err().unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::WriteZero, "short write")
            });
            return Err(io_error("append to", path, source));
        }
    }
    // Synced after unlocking: concurrent supervisors then share the journal commit (a group
    // commit) instead of queueing for the lock behind each other's flush. Our line is on disk
    // before we return either way, and a later line chained onto it is only durable with it.
    let file = file
        .unlock()
        .map_err(|(_, errno)| io_error("unlock", path, errno.into()))?;
    file.sync_data()
        .map_err(|source| io_error("sync", path, source))?;
    if length == 0 {
        // The first record also needs the log's directory entry on disk.
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|source| io_error("sync the directory of", path, source))?;
        }
    }
    Ok(AppendedRecord { seq, hash })
}

/// Checks the whole chain, stopping at the first problem. `anchor` is a head hash stored
/// elsewhere earlier; the log must still contain it. Errors only when the log cannot be read.
pub fn verify(path: &Path, anchor: Option<&str>) -> Result<VerifyReport, AuditError> {
    let file = lock(open_for_read(path)?, FlockArg::LockShared, path)?;
    let mut report = VerifyReport {
        intact: false,
        records: 0,
        head: GENESIS.to_owned(),
        problem: None,
    };
    let mut anchored = anchor.is_none_or(|anchor| anchor == GENESIS);
    for_each_line(&file, path, |number, line| {
        let problem = |kind, seq, detail: String| Problem {
            kind,
            line: Some(number),
            seq,
            detail,
        };
        let link = match parse_link(line) {
            Ok(link) => link,
            Err(why) => {
                report.problem = Some(problem(ProblemKind::Unparseable, None, why));
                return Ok(false);
            }
        };
        if link.computed != link.hash {
            report.problem = Some(problem(
                ProblemKind::Edited,
                Some(link.seq),
                format!(
                    "its hash does not match its content (recomputed: {})",
                    link.computed
                ),
            ));
            return Ok(false);
        }
        let expected = report.records + 1;
        if link.seq != expected || link.prev != report.head {
            let (kind, detail) = classify_break(&file, path, &link, expected, &report.head)?;
            report.problem = Some(problem(kind, Some(link.seq), detail));
            return Ok(false);
        }
        report.records = link.seq;
        anchored |= anchor == Some(link.hash.as_str());
        report.head = link.hash;
        Ok(true)
    })?;
    if report.problem.is_none() && !anchored {
        report.problem = Some(Problem {
            kind: ProblemKind::AnchorMissing,
            line: None,
            seq: None,
            detail: format!(
                "the anchor {} is not among the {} records: the log was cut short or rewritten \
                 after the anchor was taken",
                anchor.unwrap_or_default(),
                report.records
            ),
        });
    }
    report.intact = report.problem.is_none();
    Ok(report)
}

/// Every line of the log, parsed, without checking the chain.
pub fn read(path: &Path) -> Result<Vec<Entry>, AuditError> {
    let file = lock(open_for_read(path)?, FlockArg::LockShared, path)?;
    let mut entries = Vec::new();
    for_each_line(&file, path, |line, bytes| {
        let record = match bytes {
            Line::Torn => Err(TORN.to_owned()),
            Line::Whole(bytes) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        };
        entries.push(Entry { line, record });
        Ok(true)
    })?;
    Ok(entries)
}

/// The chain fields of one record, and the hash its content gives.
#[derive(Debug)]
struct Link {
    seq: u64,
    prev: String,
    hash: String,
    computed: String,
}

/// A line as read: whole (newline stripped), or the unterminated rest of the file.
enum Line<'a> {
    Whole(&'a [u8]),
    Torn,
}

const TORN: &str = "torn: the last line has no newline at its end (an interrupted write?)";

fn parse_link(line: Line<'_>) -> Result<Link, String> {
    let bytes = match line {
        Line::Whole(bytes) => bytes,
        Line::Torn => return Err(TORN.to_owned()),
    };
    let mut record: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(fields) = &mut record else {
        return Err("not a JSON object".into());
    };
    let hash = take_hash_field(fields, "hash")?;
    let prev = hex_field(fields, "prev")?;
    let seq = fields
        .get("seq")
        .and_then(Value::as_u64)
        .filter(|seq| *seq > 0)
        .ok_or("`seq` is not a positive integer")?;
    let computed = chain_hash(&prev, &record);
    Ok(Link {
        seq,
        prev,
        hash,
        computed,
    })
}

fn take_hash_field(fields: &mut Map<String, Value>, name: &str) -> Result<String, String> {
    let hash = hex_field(fields, name)?;
    fields.remove(name);
    Ok(hash)
}

fn hex_field(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    match fields.get(name).and_then(Value::as_str) {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(hex.to_owned())
        }
        _ => Err(format!("`{name}` is not a 64-digit hex hash")),
    }
}

/// Names what broke between the record before and `link`, which both hash correctly.
fn classify_break(
    file: &File,
    path: &Path,
    link: &Link,
    expected: u64,
    head: &str,
) -> Result<(ProblemKind, String), AuditError> {
    if link.prev == head {
        // It names the right predecessor, so only a rewrite with a recomputed hash changes seq.
        return Ok((
            ProblemKind::Edited,
            format!(
                "it follows the record before it but says seq {} instead of {expected}: it was \
                 rewritten and its hash recomputed",
                link.seq
            ),
        ));
    }
    if link.seq < expected {
        return Ok((
            ProblemKind::Reordered,
            format!(
                "seq goes back from {} to {}",
                expected.saturating_sub(1),
                link.seq
            ),
        ));
    }
    if let Some(line) = find_hash(file, path, &link.prev)? {
        return Ok((
            ProblemKind::Reordered,
            format!("it follows the record on line {line}, not the one before it"),
        ));
    }
    if link.seq > expected {
        let missing = if link.seq - expected == 1 {
            format!("record {expected} is missing")
        } else {
            format!("records {expected} to {} are missing", link.seq - 1)
        };
        return Ok((
            ProblemKind::Removed,
            format!("seq jumps from {} to {}: {missing}", expected - 1, link.seq),
        ));
    }
    Ok((
        ProblemKind::Removed,
        format!(
            "the record it follows ({}) is not in the log: it was removed, and the one before \
             was put in its place",
            link.prev
        ),
    ))
}

/// The line of the record whose hash is `hash`, if any.
fn find_hash(file: &File, path: &Path, hash: &str) -> Result<Option<u64>, AuditError> {
    let mut found = None;
    for_each_line(file, path, |number, line| {
        if let Ok(link) = parse_link(line) {
            if link.hash == hash {
                found = Some(number);
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(found)
}

/// Calls `each` with every line from the start of the file (numbered from 1) until it answers
/// false. Reads positionally, so that it can run again while an outer pass is under way.
fn for_each_line(
    file: &File,
    path: &Path,
    mut each: impl FnMut(u64, Line<'_>) -> Result<bool, AuditError>,
) -> Result<(), AuditError> {
    let mut reader = BufReader::new(PositionalReader { file, offset: 0 });
    let mut buffer = Vec::new();
    let mut number = 0;
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|source| io_error("read", path, source))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let line = match buffer.strip_suffix(b"\n") {
            Some(whole) => Line::Whole(whole),
            None => Line::Torn,
        };
        if !each(number, line)? {
            return Ok(());
        }
    }
}

struct PositionalReader<'a> {
    file: &'a File,
    offset: u64,
}

impl std::io::Read for PositionalReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.file.read_at(buffer, self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

/// The last record of the log, read backwards from the end (a log grows without bound; an
/// append must not read all of it). None for an empty log; an error when the last line is
/// not an intact record.
fn last_link(file: &File, path: &Path) -> Result<Option<Link>, AuditError> {
    const CHUNK: u64 = 8192;
    let length = file
        .metadata()
        .map_err(|source| io_error("read the size of", path, source))?
        .len();
    if length == 0 {
        return Ok(None);
    }
    let damaged = |problem: String| -> Result<Option<Link>, AuditError> {
        Err(AuditError::DamagedTail {
            path: path.to_owned(),
            line: count_lines(file, path)?,
            problem,
        })
    };
    let mut last_byte = [0u8];
    file.read_exact_at(&mut last_byte, length - 1)
        .map_err(|source| io_error("read", path, source))?;
    if last_byte[0] != b'\n' {
        return damaged(TORN.to_owned());
    }
    let end = length - 1;
    let mut start = end;
    let mut line = Vec::new();
    while start > 0 {
        let size = CHUNK.min(start);
        let mut chunk = vec![0u8; size as usize];
        file.read_exact_at(&mut chunk, start - size)
            .map_err(|source| io_error("read", path, source))?;
        let newline = chunk.iter().rposition(|&b| b == b'\n');
        let keep = newline.map_or(0, |at| at + 1);
        chunk.drain(..keep);
        chunk.extend_from_slice(&line);
        line = chunk;
        if newline.is_some() {
            break;
        }
        start -= size;
    }
    let link = match parse_link(Line::Whole(&line)) {
        Ok(link) => link,
        Err(why) => return damaged(format!("the last line is unparseable: {why}")),
    };
    if link.computed != link.hash {
        return damaged("the last record was edited: its hash does not match its content".into());
    }
    Ok(Some(link))
}

/// The number of the last line (a torn one counts), for an error message.
fn count_lines(file: &File, path: &Path) -> Result<u64, AuditError> {
    let mut count = 0;
    for_each_line(file, path, |number, _| {
        count = number;
        Ok(true)
    })?;
    Ok(count)
}

/// blake3 over `prev` and the canonical JSON of `record` without its `hash` field.
fn chain_hash(prev: &str, record: &Value) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev.as_bytes());
    match record {
        Value::Object(fields) if fields.contains_key("hash") => {
            let mut fields = fields.clone();
            fields.remove("hash");
            hasher.update(canonical(&Value::Object(fields)).as_bytes());
        }
        _ => {
            hasher.update(canonical(record).as_bytes());
        }
    }
    hasher.finalize().to_hex().to_string()
}

/// Compact JSON with object keys in byte order at every depth. Sorted here rather than by
/// relying on `serde_json::Map` being a BTreeMap: any crate in the build enabling serde_json's
/// `preserve_order` would turn it into an IndexMap and silently change every hash.
fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                if let Some(field) = fields.get(key) {
                    write_canonical(field, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Creates the log's directories (0700) and the log (0600) when missing.
fn open_for_append(path: &Path) -> Result<File, AuditError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| io_error("create the directory of", path, source))?;
    }
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| io_error("open", path, source))
}

fn open_for_read(path: &Path) -> Result<File, AuditError> {
    File::open(path).map_err(|source| io_error("open", path, source))
}

fn lock(file: File, how: FlockArg, path: &Path) -> Result<Flock<File>, AuditError> {
    let mut file = file;
    loop {
        match Flock::lock(file, how) {
            Ok(locked) => return Ok(locked),
            Err((unlocked, Errno::EINTR)) => file = unlocked,
            Err((_, errno)) => {
                return Err(AuditError::Lock {
                    path: path.to_owned(),
                    source: errno,
                })
            }
        }
    }
}

fn io_error(what: &'static str, path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-02-29T13:05:09.042Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let millis: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i128,
        Err(before) => -(before.duration().as_millis() as i128),
    };
    let seconds = millis.div_euclid(1000) as i64;
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        millis.rem_euclid(1000)
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Log {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Log {
        /// A log of `records` synthetic records.
        fn new(records: u64) -> Log {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state/sandbox/audit.jsonl");
            for n in 1..=records {
                let appended =
                    append(&path, &json!({"id": format!("job-{n}"), "exit_code": 0})).unwrap();
                assert_eq!(appended.seq, n);
            }
            Log { _dir: dir, path }
        }

        fn lines(&self) -> Vec<String> {
            std::fs::read_to_string(&self.path)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }

        fn rewrite(&self, lines: &[String]) {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(&self.path, text).unwrap();
        }

        fn problem(&self) -> Problem {
            let report = verify(&self.path, None).unwrap();
            assert!(!report.intact, "{report:?}");
            report.problem.unwrap()
        }
    }

    fn replace_field(line: &str, key: &str, value: Value) -> String {
        let mut record: Value = serde_json::from_str(line).unwrap();
        record[key] = value;
        canonical(&record)
    }

    /// The edit a forger who knows the scheme makes: change a field, recompute the hash.
    fn forge(line: &str, key: &str, value: Value) -> String {
        let mut record: Value = serde_json::from_str(&replace_field(line, key, value)).unwrap();
        let prev = record["prev"].as_str().unwrap().to_owned();
        record["hash"] = chain_hash(&prev, &record).into();
        canonical(&record)
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_709_211_909_042), "2024-02-29T13:05:09.042Z");
        assert_eq!(at(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(at(253_402_300_799_000), "9999-12-31T23:59:59.000Z");
        let before = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let mut inner = Map::new();
        inner.insert("z".into(), 1.into());
        inner.insert("a".into(), json!([{"y": "é\n", "b": null}]));
        let mut outer = Map::new();
        outer.insert("zz".into(), Value::Object(inner));
        outer.insert("aa".into(), true.into());
        assert_eq!(
            canonical(&Value::Object(outer)),
            r#"{"aa":true,"zz":{"a":[{"b":null,"y":"é\n"}],"z":1}}"#
        );
    }

    #[test]
    fn default_path_prefers_an_absolute_xdg_state_home() {
        let path = |xdg: Option<&str>, home: Option<&str>| {
            default_path_from(xdg.map(Into::into), home.map(Into::into))
                .ok()
                .map(|p| p.display().to_string())
        };
        let xdg = Some("/x/state/sandbox/audit.jsonl".to_owned());
        let home = Some("/home/u/.local/state/sandbox/audit.jsonl".to_owned());
        assert_eq!(path(Some("/x/state"), Some("/home/u")), xdg);
        assert_eq!(path(Some("relative"), Some("/home/u")), home);
        assert_eq!(path(None, Some("/home/u")), home);
        assert_eq!(path(None, Some("relative")), None);
        assert_eq!(path(None, None), None);
    }

    #[test]
    fn appended_records_form_a_chain() {
        let log = Log::new(3);
        let mut prev = GENESIS.to_owned();
        for (n, line) in log.lines().iter().enumerate() {
            let record: Value = serde_json::from_str(line).unwrap();
            assert_eq!(record["seq"], n as u64 + 1);
            assert_eq!(record["prev"], prev.as_str());
            assert_eq!(record["id"], format!("job-{}", n + 1));
            assert_eq!(*line, canonical(&record), "lines are canonical JSON");
            prev = record["hash"].as_str().unwrap().to_owned();
        }
        let report = verify(&log.path, None).unwrap();
        assert_eq!(
            report,
            VerifyReport {
                intact: true,
                records: 3,
                head: prev,
                problem: None
            }
        );
    }

    #[test]
    fn chain_fields_in_the_body_are_replaced() {
        let log = Log::new(1);
        let body = json!({"seq": 99, "prev": "f".repeat(64), "hash": "x", "id": "j"});
        assert_eq!(append(&log.path, &body).unwrap().seq, 2);
        assert!(verify(&log.path, None).unwrap().intact);
        assert!(matches!(
            append(&log.path, &json!([1])),
            Err(AuditError::NotAnObject)
        ));
    }

    #[test]
    fn records_are_written_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let log = Log::new(1);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&log.path), 0o600);
        assert_eq!(mode(log.path.parent().unwrap()), 0o700);
    }

    #[test]
    fn empty_log_is_intact_with_the_genesis_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        check_writable(&path).unwrap();
        let report = verify(&path, None).unwrap();
        assert!(report.intact);
        assert_eq!((report.records, report.head.as_str()), (0, GENESIS));
    }

    #[test]
    fn an_edited_record_is_named() {
        let log = Log::new(4);
        let mut lines = log.lines();
        lines[2] = replace_field(&lines[2], "exit_code", 1.into());
        log.rewrite(&lines);
        let problem = log.problem();
        assert_eq!(
            (problem.kind, problem.line, problem.seq),
            (ProblemKind::Edited, Some(3), Some(3))
        );
        let report = verify(&log.path, None).unwrap();
        assert_eq!(report.records, 2, "the intact prefix");
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let log = Log::new(4);
        let mut lines = log.lines();
        lines[1] = forge(&lines[1], "exit_code", 1.into());
        log.rewrite(&lines);
        let problem = log.problem();
        assert_eq!(
            (problem.kind, problem.line),
            (ProblemKind::Removed, Some(3))
        );
    }

    #[test]
    fn a_forged_seq_is_an_edit() {
        let log = Log::new(3);
        let mut lines = log.lines();
        lines[1] = forge(&lines[1], "seq", 7.into());
        log.rewrite(&lines);
        let problem = log.problem();
        assert_eq!((problem.kind, problem.line), (ProblemKind::Edited, Some(2)));
    }

    #[test]
    fn a_removed_record_is_named() {
        for removed in [0, 2, 3] {
            let log = Log::new(5);
            let mut lines = log.lines();
            lines.remove(removed);
            log.rewrite(&lines);
            let problem = log.problem();
            assert_eq!(problem.kind, ProblemKind::Removed, "{problem:?}");
            assert_eq!(problem.line, Some(removed as u64 + 1), "{problem:?}");
            assert_eq!(problem.seq, Some(removed as u64 + 2), "{problem:?}");
        }
    }

    #[test]
    fn reordered_records_are_named() {
        let log = Log::new(5);
        let mut lines = log.lines();
        lines.swap(1, 2);
        log.rewrite(&lines);
        let problem = log.problem();
        assert_eq!(
            (problem.kind, problem.line),
            (ProblemKind::Reordered, Some(2))
        );

        let log = Log::new(4);
        let mut lines = log.lines();
        let last = lines.pop().unwrap();
        lines.insert(0, last);
        log.rewrite(&lines);
        let problem = log.problem();
        assert_eq!(
            (problem.kind, problem.line),
            (ProblemKind::Reordered, Some(1))
        );

        let log = Log::new(3);
        let mut lines = log.lines();
        lines.insert(2, lines[1].clone());
        log.rewrite(&lines);
        let problem = log.problem();
        assert_eq!(
            (problem.kind, problem.line),
            (ProblemKind::Reordered, Some(3)),
            "a repeated record goes back in seq"
        );
    }

    #[test]
    fn unparseable_lines_are_named() {
        for bad in ["", "not json", "[1]", r#"{"seq":1}"#] {
            let log = Log::new(3);
            let mut lines = log.lines();
            lines[1] = bad.to_owned();
            log.rewrite(&lines);
            let problem = log.problem();
            assert_eq!(
                (problem.kind, problem.line),
                (ProblemKind::Unparseable, Some(2)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_torn_tail_is_not_chained_onto() {
        let log = Log::new(3);
        let mut text = std::fs::read_to_string(&log.path).unwrap();
        text.push_str(r#"{"id":"half"#);
        std::fs::write(&log.path, &text).unwrap();
        let problem = log.problem();
        assert_eq!(
            (problem.kind, problem.line),
            (ProblemKind::Unparseable, Some(4))
        );
        for result in [
            check_writable(&log.path),
            append(&log.path, &json!({})).map(drop),
        ] {
            match result {
                Err(AuditError::DamagedTail { line: 4, .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(std::fs::read_to_string(&log.path).unwrap(), text);
    }

    #[test]
    fn an_edited_tail_is_not_chained_onto() {
        let log = Log::new(3);
        let mut lines = log.lines();
        lines[2] = replace_field(&lines[2], "exit_code", 9.into());
        log.rewrite(&lines);
        let error = append(&log.path, &json!({})).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, AuditError::DamagedTail { line: 3, .. }),
            "{message}"
        );
        assert!(
            message.contains(&log.path.display().to_string()),
            "{message}"
        );
        assert!(message.contains("edited"), "{message}");
    }

    #[test]
    fn long_records_are_found_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let long = "x".repeat(20_000);
        for _ in 0..3 {
            append(&path, &json!({"command": [long]})).unwrap();
        }
        assert_eq!(append(&path, &json!({})).unwrap().seq, 4);
        assert!(verify(&path, None).unwrap().intact);
    }

    #[test]
    fn an_anchor_catches_a_cut_tail_and_a_rewrite() {
        let log = Log::new(4);
        let anchor = verify(&log.path, None).unwrap().head;
        assert!(verify(&log.path, Some(&anchor)).unwrap().intact);
        append(&log.path, &json!({})).unwrap();
        assert!(
            verify(&log.path, Some(&anchor)).unwrap().intact,
            "still in the chain"
        );

        let mut lines = log.lines();
        lines.truncate(3);
        log.rewrite(&lines);
        assert!(
            verify(&log.path, None).unwrap().intact,
            "a cut tail is invisible alone"
        );
        let report = verify(&log.path, Some(&anchor)).unwrap();
        let problem = report.problem.unwrap();
        assert_eq!(
            (problem.kind, problem.line),
            (ProblemKind::AnchorMissing, None)
        );
        assert!(problem.detail.contains(&anchor), "{problem:?}");

        std::fs::remove_file(&log.path).unwrap();
        for n in 1..=5 {
            append(&log.path, &json!({"id": format!("forged-{n}")})).unwrap();
        }
        let problem = verify(&log.path, Some(&anchor)).unwrap().problem.unwrap();
        assert_eq!(
            problem.kind,
            ProblemKind::AnchorMissing,
            "a whole new chain"
        );
    }

    #[test]
    fn concurrent_writers_extend_one_chain() {
        let log = Log::new(0);
        std::thread::scope(|scope| {
            for writer in 0..8 {
                let path = &log.path;
                scope.spawn(move || {
                    for n in 0..25 {
                        append(path, &json!({"writer": writer, "n": n})).unwrap();
                    }
                });
            }
        });
        let report = verify(&log.path, None).unwrap();
        assert!(report.intact, "{report:?}");
        assert_eq!(report.records, 200);
    }

    #[test]
    fn an_unwritable_path_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let path = file.join("audit.jsonl");
        let error = check_writable(&path).unwrap_err();
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        let missing = verify(&dir.path().join("none.jsonl"), None).unwrap_err();
        assert!(matches!(missing, AuditError::Io { .. }), "{missing}");
    }
}
