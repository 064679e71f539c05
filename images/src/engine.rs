//! Talking to the Docker engine: connect, import a tarball as an image, list our images.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use sandbox_runtime::SandboxError;

use crate::error::ImageError;
use crate::plan::Plan;
use crate::{ImageSummary, LABEL_BUILT_BY, LABEL_MIRROR, LABEL_SOURCE};

/// How long one request may take once connected. The engine answers an import only after it
/// has read the whole root filesystem, so this is generous; connecting has its own timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Size of the pieces the tarball is streamed to the engine in; a few are in flight at once,
/// so memory stays bounded whatever the size of the root filesystem.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Connects the way the docker backend does (`DOCKER_HOST` or the local socket, API version
/// negotiated down to the engine's), so that `sandbox image build` and `sandbox exec` always
/// talk to the same engine; then lifts the request timeout for imports.
pub(crate) async fn connect(timeout: Duration) -> Result<Docker, ImageError> {
    match sandbox_runtime::docker::connect(timeout).await {
        Ok(docker) => Ok(docker.with_timeout(REQUEST_TIMEOUT)),
        // The reason already names the endpoint and says what to run.
        Err(SandboxError::Refused { reason, .. }) => Err(ImageError::NoEngine(reason)),
        Err(other) => Err(ImageError::NoEngine(other.with_causes())),
    }
}

/// What an import produced.
pub(crate) struct Imported {
    pub id: String,
    pub size: u64,
    pub tar_bytes: u64,
    /// The image the tag named before, removed because nothing else referred to it.
    pub replaced: Option<String>,
}

/// Streams `plan` as a tarball into `POST /images/create?fromSrc=-` (`docker import`, not
/// `docker load`, which is `import_image`), tagging it `repo:tag` and applying `changes`
/// (Dockerfile instructions: LABEL, ENV, CMD, WORKDIR).
pub(crate) async fn import(
    docker: &Docker,
    plan: Plan,
    repo: &str,
    tag: &str,
    changes: Vec<String>,
) -> Result<Imported, ImageError> {
    let reference = format!("{repo}:{tag}");
    let previous = docker
        .inspect_image(&reference)
        .await
        .ok()
        .and_then(|i| i.id);

    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    // Shared so that we can close the channel when the engine gives up: a writer blocked on a
    // full channel then wakes with an error instead of waiting forever.
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let body_receiver = Arc::clone(&receiver);
    let body = futures_util::stream::poll_fn(move |cx| {
        match body_receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(receiver) => receiver.poll_recv(cx),
            None => Poll::Ready(None),
        }
    });
    let writer = tokio::task::spawn_blocking(move || {
        let sink = ChunkSink {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK),
            written: 0,
        };
        let result = crate::tarball::write(&plan, sink).and_then(|mut sink| {
            sink.flush()
                .map_err(|e| ImageError::io("finish the tarball", e))?;
            Ok(sink.written)
        });
        if let Err(error) = &result {
            // Makes the engine abandon the half-sent import instead of keeping a truncated one.
            let _ = sender.blocking_send(Err(io::Error::other(error.to_string())));
        }
        result
    });

    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .message("sandbox image build")
        .changes(changes)
        .build();
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    let mut engine_error = None;
    while let Some(item) = progress.next().await {
        if let Err(error) = item {
            engine_error = Some(error);
            break;
        }
    }
    drop(progress);
    receiver
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();

    let written = writer.await.map_err(|e| {
        ImageError::Stream(io::Error::other(format!("the tarball writer failed: {e}")))
    })?;
    // The writer's own error (an unreadable file) explains more than the engine's reaction to
    // a broken stream; a writer that only saw the engine hang up explains less.
    let tar_bytes = match (written, engine_error) {
        (Ok(bytes), None) => bytes,
        (Err(error), Some(engine)) if is_hang_up(&error) => {
            return Err(ImageError::engine(format!("import {reference}"), engine))
        }
        (Err(error), _) => return Err(error),
        (Ok(_), Some(engine)) => {
            return Err(ImageError::engine(format!("import {reference}"), engine))
        }
    };

    let inspect = docker
        .inspect_image(&reference)
        .await
        .map_err(|e| ImageError::engine(format!("inspect {reference} after importing it"), e))?;
    let id = inspect.id.unwrap_or_default();
    let replaced = match previous {
        Some(old) if old != id => remove_if_orphaned(docker, &old).await,
        _ => None,
    };
    Ok(Imported {
        id,
        size: inspect
            .size
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0),
        tar_bytes,
        replaced,
    })
}

/// Removes an image a rebuild untagged, if we built it and nothing else names it, so that
/// rebuilding (every `scripts/setup`) does not pile up dangling images. An image a container
/// still uses stays: the engine refuses, and that is fine.
async fn remove_if_orphaned(docker: &Docker, id: &str) -> Option<String> {
    let inspect = docker.inspect_image(id).await.ok()?;
    let ours = inspect
        .config
        .and_then(|c| c.labels)
        .is_some_and(|labels| labels.get(LABEL_BUILT_BY).is_some_and(|v| v == "sandbox"));
    let tagged = inspect.repo_tags.is_some_and(|tags| !tags.is_empty());
    if !ours || tagged {
        return None;
    }
    let options = RemoveImageOptionsBuilder::new().build();
    docker.remove_image(id, Some(options), None).await.ok()?;
    Some(id.to_owned())
}

fn is_hang_up(error: &ImageError) -> bool {
    matches!(error, ImageError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
}

/// Images labelled `sandbox.built-by=sandbox`, sorted by their first tag.
pub(crate) async fn list(docker: &Docker) -> Result<Vec<ImageSummary>, ImageError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{LABEL_BUILT_BY}=sandbox")],
    )]);
    let options = ListImagesOptionsBuilder::new().filters(&filters).build();
    let images = docker
        .list_images(Some(options))
        .await
        .map_err(|e| ImageError::engine("list images", e))?;
    let mut summaries: Vec<ImageSummary> = images
        .into_iter()
        .map(|image| ImageSummary {
            tags: image
                .repo_tags
                .into_iter()
                .filter(|tag| tag != "<none>:<none>")
                .collect(),
            id: image.id,
            size: u64::try_from(image.size).unwrap_or(0),
            created: image.created,
            source: image.labels.get(LABEL_SOURCE).cloned().unwrap_or_default(),
            mirror: image
                .labels
                .get(LABEL_MIRROR)
                .map(|m| m.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
        .collect();
    summaries.sort_by(|a, b| a.tags.first().cmp(&b.tags.first()).then(a.id.cmp(&b.id)));
    Ok(summaries)
}

/// The tarball writer's end of the channel: buffers into chunks and hands them over, blocking
/// while the engine is slower than the disk.
struct ChunkSink {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
    written: u64,
}

impl ChunkSink {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.written += chunk.len() as u64;
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading"))
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
