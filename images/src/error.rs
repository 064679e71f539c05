//! What can go wrong while building or listing images. Each message names what was attempted
//! and, where there is one, what to run about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No engine answered (no socket, refused, or no answer in time); the message names the
    /// endpoint and says what to run.
    #[error("{0}")]
    NoEngine(String),
    /// The engine answered but refused or failed a request.
    #[error("the Docker engine failed to {what}")]
    Engine {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// `source` comes from `fs-err` where a path is involved, so it names the path.
    #[error("could not {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// `--from DIR` names something that cannot be a root filesystem.
    #[error("cannot build an image from {path}: {reason}")]
    BadSourceDir { path: PathBuf, reason: String },
    /// The busybox the busybox image is made of is missing or unusable.
    #[error("{0}; install Debian's busybox-static (scripts/setup does)")]
    Busybox(String),
    #[error("invalid image tag {tag:?}: {reason}")]
    InvalidTag { tag: String, reason: String },
    /// Writing the tarball into the engine's import stopped half-way.
    #[error("could not stream the root filesystem to the engine")]
    Stream(#[source] std::io::Error),
    #[error("could not start the async runtime that talks to the engine")]
    Runtime(#[source] std::io::Error),
}

impl ImageError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ImageError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn engine(what: impl Into<String>, source: bollard::errors::Error) -> Self {
        ImageError::Engine {
            what: what.into(),
            source,
        }
    }
}
