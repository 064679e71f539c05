//! `sandbox-images`: root filesystems built locally as tarballs and imported into Docker, so
//! that no registry is needed.
//!
//! Three sources ([`Source`]): the host (a skeleton plus /etc; the host's /usr is bound
//! read-only at run time, see [`plan::host`]), a static busybox, or a directory. [`build`]
//! plans the root filesystem ([`plan`]), streams it as a tarball ([`tarball`]) into the
//! engine's import (`docker import`), and tags it; [`list`] shows what was built.
//!
//! Every image carries labels the docker backend and `sandbox image list` read:
//! `sandbox.built-by=sandbox`, `sandbox.source=host|busybox|dir` and, for the host image,
//! `sandbox.mirror=/usr` (comma-separated host directories to bind read-only at the same path).

pub mod error;
pub mod plan;
pub mod tarball;

mod engine;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use error::ImageError;
pub use plan::{Omitted, Plan};

pub const LABEL_BUILT_BY: &str = "sandbox.built-by";
pub const LABEL_SOURCE: &str = "sandbox.source";
/// Comma-separated absolute host paths the docker backend must bind read-only at the same
/// place in the container; without them the image is only a skeleton.
pub const LABEL_MIRROR: &str = "sandbox.mirror";

/// How long `build` and `list` wait for the engine to answer before saying there is none.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an image's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The host's toolchains: /etc copied without secrets, /usr bound read-only at run time.
    Host,
    /// Debian's static busybox and nothing else: small and independent of the host.
    Busybox,
    /// A directory holding a root filesystem (with /bin/sh).
    Dir(PathBuf),
}

impl Source {
    /// `host` and `busybox` are the built-in sources; anything else is a directory (write
    /// `./host` for a directory of that name).
    pub fn from_arg(arg: &str) -> Source {
        match arg {
            "host" => Source::Host,
            "busybox" => Source::Busybox,
            dir => Source::Dir(PathBuf::from(dir)),
        }
    }

    /// The value of the `sandbox.source` label.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Host => "host",
            Source::Busybox => "busybox",
            Source::Dir(_) => "dir",
        }
    }

    /// The tag `build` gives when none is asked for; `sandbox/host:latest` is the image the
    /// built-in profiles name (`backend.image`).
    pub fn default_tag(&self) -> &'static str {
        match self {
            Source::Host => "sandbox/host:latest",
            Source::Busybox => "sandbox/busybox:latest",
            Source::Dir(_) => "sandbox/dir:latest",
        }
    }

    /// The root filesystem this source gives on this host, without touching the engine.
    pub fn plan(&self) -> Result<Plan, ImageError> {
        match self {
            Source::Host => plan::host(std::path::Path::new("/")),
            Source::Busybox => plan::busybox(&plan::find_busybox()?),
            Source::Dir(dir) => plan::dir(dir),
        }
    }
}

/// What [`build`] made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltImage {
    pub tag: String,
    pub id: String,
    pub source: String,
    /// Host directories the backend binds read-only (the `sandbox.mirror` label).
    pub mirror: Vec<String>,
    /// Entries in the root filesystem tarball.
    pub entries: usize,
    /// Bytes streamed to the engine.
    pub tar_bytes: u64,
    /// The image's size as the engine reports it.
    pub size: u64,
    /// Host paths left out on purpose (secrets), with why.
    pub excluded: Vec<Omitted>,
    /// Host paths that could not be taken, with why.
    pub skipped: Vec<Omitted>,
    /// The previous image under this tag, removed because nothing referred to it any more.
    pub replaced: Option<String>,
}

/// One image `sandbox` built, as `sandbox image list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    pub tags: Vec<String>,
    pub id: String,
    /// Bytes, as the engine reports them.
    pub size: u64,
    /// Unix seconds.
    pub created: i64,
    /// `host`, `busybox` or `dir` (the `sandbox.source` label).
    pub source: String,
    pub mirror: Vec<String>,
}

/// Builds an image from `source` and tags it `tag` (default [`Source::default_tag`]).
pub fn build(source: &Source, tag: Option<&str>) -> Result<BuiltImage, ImageError> {
    let tag = tag.unwrap_or(source.default_tag());
    let (repo, version) = split_tag(tag)?;
    let plan = source.plan()?;
    let changes = changes(source, &plan);
    let entries = plan.entries.len();
    let mirror = plan.mirror.clone();
    let excluded = plan.excluded.clone();
    let skipped = plan.skipped.clone();
    let imported = block_on(async {
        let docker = engine::connect(ENGINE_TIMEOUT).await?;
        engine::import(&docker, plan, repo, version, changes).await
    })??;
    Ok(BuiltImage {
        tag: format!("{repo}:{version}"),
        id: imported.id,
        source: source.name().into(),
        mirror,
        entries,
        tar_bytes: imported.tar_bytes,
        size: imported.size,
        excluded,
        skipped,
        replaced: imported.replaced,
    })
}

/// The images `sandbox` built (labelled `sandbox.built-by=sandbox`).
pub fn list() -> Result<Vec<ImageSummary>, ImageError> {
    block_on(async {
        let docker = engine::connect(ENGINE_TIMEOUT).await?;
        engine::list(&docker).await
    })?
}

/// The Dockerfile instructions applied on import: labels, and defaults that make
/// `docker run IMAGE` behave (a PATH, a shell, the workspace as working directory).
fn changes(source: &Source, plan: &Plan) -> Vec<String> {
    let mut changes = vec![
        format!("LABEL {LABEL_BUILT_BY}=sandbox"),
        format!("LABEL {LABEL_SOURCE}={}", source.name()),
    ];
    if !plan.mirror.is_empty() {
        changes.push(format!("LABEL {LABEL_MIRROR}={}", plan.mirror.join(",")));
    }
    changes.push("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    changes.push("WORKDIR /workspace".into());
    changes.push(r#"CMD ["/bin/sh"]"#.into());
    changes
}

/// `name[:tag]` into its repository and tag (`latest` when none). The colon of a registry
/// port (`localhost:5000/x`) is not a tag separator; digests cannot name an import.
pub fn split_tag(reference: &str) -> Result<(&str, &str), ImageError> {
    let invalid = |reason: &str| ImageError::InvalidTag {
        tag: reference.to_owned(),
        reason: reason.to_owned(),
    };
    if reference.is_empty() || reference.chars().any(char::is_whitespace) {
        return Err(invalid("empty or contains whitespace"));
    }
    if reference.contains('@') {
        return Err(invalid(
            "a digest cannot name an imported image; give name:tag",
        ));
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match reference[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (&reference[..colon], &reference[colon + 1..])
        }
        None => (reference, "latest"),
    };
    if repo.is_empty() || tag.is_empty() {
        return Err(invalid("expected name[:tag], e.g. sandbox/host:latest"));
    }
    Ok((repo, tag))
}

/// Runs `future` on a single-threaded runtime: callers of this crate are synchronous.
fn block_on<F: Future>(future: F) -> Result<F::Output, ImageError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ImageError::Runtime)?;
    Ok(runtime.block_on(future))
}
