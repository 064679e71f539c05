//! `sandbox check --bundle DIR`: the proof of one change in one directory, for an orchestrator
//! to attach to a pull request: the patch, the job's Outcome, the Verdict, a Markdown summary,
//! the audit record with its hash, and the author's note. `manifest.json` is written last and
//! lists every file with its blake3, so a bundle without one is incomplete and a file edited
//! afterwards shows.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

pub const BUNDLE_SCHEMA: &str = "sandbox/bundle@1";
/// Where the job's change set is written as a git patch.
pub const PATCH: &str = "change.patch";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "the bundle directory {0} is not empty: give a new or empty directory, so that no \
         file of an earlier bundle is mistaken for this change's"
    )]
    NotEmpty(PathBuf),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BundleError {
    let path = path.to_owned();
    move |source| BundleError::Io {
        action,
        path,
        source,
    }
}

/// Creates `dir` (or takes it empty), before the job runs: a bad `--bundle` must not cost one.
pub fn prepare(dir: &Path) -> Result<(), BundleError> {
    std::fs::create_dir_all(dir).map_err(io("create the bundle directory", dir))?;
    let mut entries = std::fs::read_dir(dir).map_err(io("read the bundle directory", dir))?;
    if entries.next().is_some() {
        return Err(BundleError::NotEmpty(dir.to_owned()));
    }
    Ok(())
}

/// What goes into a bundle besides the Verdict.
pub struct Contents<'a> {
    pub verdict: &'a Verdict,
    /// The Verdict rendered as Markdown, as a pull request comment would show it.
    pub summary_markdown: &'a str,
    /// The job's patch when it was written outside the bundle (`--diff PATH`); otherwise the
    /// job wrote it into the bundle as [`PATCH`] already.
    pub patch_elsewhere: Option<&'a Path>,
    /// The job's audit record as the log holds it (with `seq`, `prev` and `hash`).
    pub audit_record: Option<serde_json::Value>,
    pub audit_log: Option<&'a Path>,
    /// The author's rationale (`--note FILE`), copied as `note.md`.
    pub note: Option<&'a Path>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Manifest {
    pub schema: String,
    /// The Verdict's status.
    pub status: crate::verdict::VerdictStatus,
    pub files: Vec<BundledFile>,
    /// Where the job's audit record is, to check it against the log (`sandbox audit verify`).
    pub audit: Option<AuditPointer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BundledFile {
    pub name: String,
    pub bytes: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditPointer {
    pub log: PathBuf,
    pub seq: Option<u64>,
    pub hash: Option<String>,
}

/// Writes the bundle into `dir` (made ready by [`prepare`]) and returns its manifest.
pub fn write(dir: &Path, contents: &Contents<'_>) -> Result<Manifest, BundleError> {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("verdict.json".into(), pretty(contents.verdict)),
        (
            "summary.md".into(),
            contents.summary_markdown.as_bytes().to_vec(),
        ),
    ];
    if let Some(job) = &contents.verdict.job {
        files.push(("outcome.json".into(), pretty(job)));
    }
    if let Some(record) = &contents.audit_record {
        files.push(("audit-record.json".into(), pretty(record)));
    }
    if let Some(path) = contents.patch_elsewhere {
        let patch = std::fs::read(path).map_err(io("read the job's patch", path))?;
        files.push((PATCH.into(), patch));
    }
    if let Some(path) = contents.note {
        let note = std::fs::read(path).map_err(io("read the note", path))?;
        files.push(("note.md".into(), note));
    }
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io("write", &path))?;
    }
    // The patch the job wrote into the bundle itself, when it did (a job that changed nothing
    // writes an empty one).
    let mut names: Vec<String> = files.into_iter().map(|(name, _)| name).collect();
    if contents.patch_elsewhere.is_none() && dir.join(PATCH).is_file() {
        names.push(PATCH.into());
    }
    names.sort();
    let mut listed = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(io("read back", &path))?;
        listed.push(BundledFile {
            bytes: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
            name,
        });
    }
    let manifest = Manifest {
        schema: BUNDLE_SCHEMA.into(),
        status: contents.verdict.status,
        files: listed,
        audit: contents.audit_log.map(|log| AuditPointer {
            log: log.to_owned(),
            seq: contents
                .audit_record
                .as_ref()
                .and_then(|record| record["seq"].as_u64()),
            hash: contents
                .audit_record
                .as_ref()
                .and_then(|record| record["hash"].as_str().map(str::to_owned)),
        }),
    };
    let path = dir.join("manifest.json");
    std::fs::write(&path, pretty(&manifest)).map_err(io("write", &path))?;
    Ok(manifest)
}

/// Pretty JSON with a final newline; serialising these types cannot fail (string keys only).
fn pretty<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
