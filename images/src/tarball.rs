//! Writes a [`Plan`] as a tar stream: the root filesystem `docker import` takes.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use crate::error::ImageError;
use crate::plan::{Contents, EntryKind, Plan};

/// Writes every entry of `plan` into `out` and finishes the archive; returns `out`.
/// Host files are read now, in plan order, exactly as many bytes as planned: a file that
/// changed size since planning is an error rather than a corrupt archive.
pub fn write<W: Write>(plan: &Plan, out: W) -> Result<W, ImageError> {
    let mut builder = tar::Builder::new(out);
    for entry in &plan.entries {
        let mut header = Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(entry.mtime);
        let path = &entry.path;
        let adding =
            |e: io::Error| ImageError::io(format!("add {} to the tarball", path.display()), e);
        match &entry.kind {
            EntryKind::Dir => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                builder
                    .append_data(&mut header, path, io::empty())
                    .map_err(adding)?;
            }
            EntryKind::Symlink { target } => {
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                builder
                    .append_link(&mut header, path, target)
                    .map_err(adding)?;
            }
            EntryKind::File { contents, size } => {
                header.set_entry_type(EntryType::Regular);
                header.set_size(*size);
                match contents {
                    Contents::Inline(bytes) => builder
                        .append_data(&mut header, path, bytes.as_slice())
                        .map_err(adding)?,
                    Contents::Host(source) => {
                        let file = fs_err::File::open(source).map_err(adding)?;
                        let reader = Exact {
                            inner: file.take(*size),
                            remaining: *size,
                        };
                        builder
                            .append_data(&mut header, path, reader)
                            .map_err(adding)?;
                    }
                }
            }
        }
    }
    builder
        .into_inner()
        .map_err(|e| ImageError::io("finish the tarball", e))
}

/// Reads exactly `remaining` bytes or fails: tar's header already promised that size.
struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank by {} bytes while being read",
                    self.remaining
                ),
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}
