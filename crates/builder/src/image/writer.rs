//! One image zip written entry by entry: the zip's SHA-256 and size counted on the way to
//! the file, and the content digest over each entry's path, mode and content.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

use super::{DEFLATED_AT_MOST, PROBE_FROM, ZipFile};
use crate::error::BuilderError;

/// Bytes read from a source at a time; also the probe's sample.
const CHUNK: usize = 256 * 1024;

/// Writes entries, in the order given, with a fixed time stamp and permission bits only.
pub(super) struct ImageWriter {
    zip: ZipWriter<StreamWriter<HashingWriter<BufWriter<File>>>>,
    content: Sha256,
    buffer: Vec<u8>,
    path: PathBuf,
}

impl ImageWriter {
    /// Starts the zip at `path` (created or truncated).
    pub(super) fn create(path: &Path) -> Result<ImageWriter, BuilderError> {
        let file = File::create(path).map_err(BuilderError::io("creating", path))?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(CHUNK, file),
            hash: Sha256::new(),
            size: 0,
        };
        Ok(ImageWriter {
            zip: ZipWriter::new_stream(sink),
            content: Sha256::new(),
            buffer: vec![0; CHUNK],
            path: path.to_path_buf(),
        })
    }

    /// A directory entry.
    pub(super) fn directory(&mut self, name: &str, mode: u32) -> Result<(), BuilderError> {
        let mode = mode & 0o777;
        self.zip
            .add_directory(name, options().unix_permissions(mode))
            .map_err(|e| self.zip_error(e))?;
        self.content.update(format!("d {name} {mode:o}\n"));
        Ok(())
    }

    /// A file of `len` bytes read from `source` (`origin` names it in errors): stored when
    /// it is large and its first chunk does not deflate, deflated otherwise.
    pub(super) fn file(
        &mut self,
        name: &str,
        mode: u32,
        len: u64,
        source: &mut dyn Read,
        origin: &Path,
    ) -> Result<(), BuilderError> {
        let mode = mode & 0o777;
        let first = fill(source, &mut self.buffer).map_err(BuilderError::io("reading", origin))?;
        let method = if len >= PROBE_FROM && !compresses(&self.buffer[..first]) {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        let options = options()
            .compression_method(method)
            .unix_permissions(mode)
            .large_file(len >= u64::from(u32::MAX));
        self.zip
            .start_file(name, options)
            .map_err(|e| self.zip_error(e))?;
        let mut file_hash = Sha256::new();
        let mut read = first;
        while read > 0 {
            file_hash.update(&self.buffer[..read]);
            self.zip
                .write_all(&self.buffer[..read])
                .map_err(BuilderError::io("writing", &self.path))?;
            read = source
                .read(&mut self.buffer)
                .map_err(BuilderError::io("reading", origin))?;
        }
        self.record_file(name, mode, &hex::encode(file_hash.finalize()));
        Ok(())
    }

    /// An entry of another image, copied as it is compressed: its stored name must be
    /// `name`, and `sha256` the hash of its content (read and checked by the caller).
    pub(super) fn copy<R: Read>(
        &mut self,
        entry: zip::read::ZipFile<'_, R>,
        name: &str,
        mode: u32,
        sha256: &str,
    ) -> Result<(), BuilderError> {
        let mode = mode & 0o777;
        self.zip
            .raw_copy_file_touch(entry, zip::DateTime::default(), Some(mode))
            .map_err(|e| self.zip_error(e))?;
        self.record_file(name, mode, sha256);
        Ok(())
    }

    fn record_file(&mut self, name: &str, mode: u32, sha256: &str) {
        self.content.update(format!("f {name} {mode:o} {sha256}\n"));
    }

    /// Ends the zip and syncs it to disk.
    pub(super) fn finish(self) -> Result<ZipFile, BuilderError> {
        let ImageWriter {
            zip, content, path, ..
        } = self;
        let zip_error = |reason: String| BuilderError::Zip {
            path: path.clone(),
            reason,
        };
        let sink = zip
            .finish()
            .map_err(|e| zip_error(e.to_string()))?
            .into_inner();
        let HashingWriter { inner, hash, size } = sink;
        let file = inner
            .into_inner()
            .map_err(|e| zip_error(e.error().to_string()))?;
        file.sync_all()
            .map_err(BuilderError::io("syncing", &path))?;
        Ok(ZipFile {
            path,
            sha256: hex::encode(hash.finalize()),
            size,
            content_digest: hex::encode(content.finalize()),
        })
    }

    /// An error writing this zip, for `reason`.
    pub(super) fn zip_error(&self, reason: impl std::fmt::Display) -> BuilderError {
        BuilderError::Zip {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Every entry's options: the same time stamp, so the same files give the same bytes.
fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
}

/// Counts and hashes what goes through it to the file.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads into `buffer` until it is full or the source ends; how much was read.
fn fill(source: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match source.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

/// Whether `sample` deflates (at the fastest level) to at most [`DEFLATED_AT_MOST`] of its
/// size.
fn compresses(sample: &[u8]) -> bool {
    let mut encoder =
        flate2::write::DeflateEncoder::new(std::io::sink(), flate2::Compression::fast());
    // Writing to a sink cannot fail; were it to, the file is deflated as before.
    let probed = encoder
        .write_all(sample)
        .and_then(|()| encoder.try_finish());
    probed.is_err() || (encoder.total_out() as f64) <= sample.len() as f64 * DEFLATED_AT_MOST
}
