//! Image zips: write a directory as a zip (streamed, unix modes kept, content digest and
//! file hash computed on the way), and unpack one safely.
//!
//! Entries are written in path order with a fixed time stamp, so the same files give the
//! same zip bytes. A file that is already compressed (an archive, media, a model), told by
//! deflating its first chunk, is stored as it is: deflating it again cost seconds per
//! hundred MB for no gain, in the developer build and again in each client build. The zip
//! goes to `<name>.partial` and is renamed into place only once complete, so a crash or
//! cancellation never leaves a half image under the final name.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::error::BuilderError;

/// Files from this size on are probed; a smaller one is deflated whatever it holds.
const PROBE_FROM: u64 = 64 * 1024;
/// The share of its size a probed chunk must deflate to at most for the file to be
/// deflated; above it the file is stored.
const DEFLATED_AT_MOST: f64 = 0.95;

/// A finished image zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipFile {
    /// Where it is.
    pub path: PathBuf,
    /// SHA-256 of the zip file, hex.
    pub sha256: String,
    /// Size of the zip file in bytes.
    pub size: u64,
    /// SHA-256 over the image's paths, modes and file contents, hex: equal for equal
    /// content, whatever the zip library does with the bytes.
    pub content_digest: String,
}

/// Zips the tree under `root` into `destination` (through `destination.partial`).
/// Blocking; `interrupt` stops it between files, leaving nothing behind.
pub fn zip_directory(
    root: &Path,
    destination: &Path,
    interrupt: &AtomicBool,
) -> Result<ZipFile, BuilderError> {
    let partial = partial_path(destination);
    let result = write_zip(root, &partial, interrupt);
    match result {
        Ok((sha256, size, content_digest)) => {
            std::fs::rename(&partial, destination).map_err(BuilderError::io(
                "renaming the finished image to",
                destination,
            ))?;
            Ok(ZipFile {
                path: destination.to_path_buf(),
                sha256,
                size,
                content_digest,
            })
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    destination.with_file_name(name)
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

fn write_zip(
    root: &Path,
    partial: &Path,
    interrupt: &AtomicBool,
) -> Result<(String, u64, String), BuilderError> {
    let zip_error = |reason: String| BuilderError::Zip {
        path: partial.to_path_buf(),
        reason,
    };
    let file = File::create(partial).map_err(BuilderError::io("creating", partial))?;
    let sink = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        hash: Sha256::new(),
        size: 0,
    };
    let mut zip = zip::ZipWriter::new_stream(sink);
    let mut content = Sha256::new();
    let base = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let mut buffer = vec![0; 256 * 1024];
    let walk = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walk {
        if interrupt.load(Ordering::Relaxed) {
            return Err(BuilderError::Cancelled {
                step: "zip".to_owned(),
            });
        }
        let entry = entry.map_err(|e| zip_error(format!("reading {}: {e}", root.display())))?;
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir yields paths under its root");
        let name = relative
            .to_str()
            .ok_or_else(|| zip_error(format!("`{}` is not a UTF-8 path", relative.display())))?;
        let metadata = entry
            .metadata()
            .map_err(|e| zip_error(format!("reading {}: {e}", entry.path().display())))?;
        // Permission bits only: set-id bits from a build tree have no business in an image.
        let mode = metadata.permissions().mode() & 0o777;
        if metadata.is_dir() {
            zip.add_directory(name, base.unix_permissions(mode))
                .map_err(|e| zip_error(e.to_string()))?;
            content.update(format!("d {name} {mode:o}\n"));
            continue;
        }
        let mut source =
            File::open(entry.path()).map_err(BuilderError::io("reading", entry.path()))?;
        let first =
            fill(&mut source, &mut buffer).map_err(BuilderError::io("reading", entry.path()))?;
        let method = if metadata.len() >= PROBE_FROM && !compresses(&buffer[..first]) {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = base
            .compression_method(method)
            .unix_permissions(mode)
            .large_file(metadata.len() >= u64::from(u32::MAX));
        zip.start_file(name, options)
            .map_err(|e| zip_error(e.to_string()))?;
        let mut file_hash = Sha256::new();
        let mut read = first;
        while read > 0 {
            file_hash.update(&buffer[..read]);
            zip.write_all(&buffer[..read])
                .map_err(BuilderError::io("writing", partial))?;
            read = source
                .read(&mut buffer)
                .map_err(BuilderError::io("reading", entry.path()))?;
        }
        content.update(format!(
            "f {name} {mode:o} {}\n",
            hex::encode(file_hash.finalize())
        ));
    }
    let sink = zip
        .finish()
        .map_err(|e| zip_error(e.to_string()))?
        .into_inner();
    let HashingWriter { inner, hash, size } = sink;
    let file = inner
        .into_inner()
        .map_err(|e| zip_error(e.error().to_string()))?;
    file.sync_all()
        .map_err(BuilderError::io("syncing", partial))?;
    Ok((
        hex::encode(hash.finalize()),
        size,
        hex::encode(content.finalize()),
    ))
}

/// Reads into `buffer` until it is full or the file ends; how much was read.
fn fill(source: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
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

/// Unpacks `zip_path` into `destination` (which must not exist yet) through a temporary
/// directory next to it. Entry names must stay inside (`enclosed_name`), symlinks are
/// refused, and the decompressed size is capped at `max_bytes`. Unix modes are kept.
pub fn unpack(zip_path: &Path, destination: &Path, max_bytes: u64) -> Result<(), BuilderError> {
    let partial = partial_path(destination);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(BuilderError::io("removing", &partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(BuilderError::io("creating directory", &partial))?;
    match unpack_into(zip_path, &partial, max_bytes) {
        Ok(()) => std::fs::rename(&partial, destination).map_err(BuilderError::io(
            "renaming the unpacked image to",
            destination,
        )),
        Err(error) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(error)
        }
    }
}

fn unpack_into(zip_path: &Path, into: &Path, max_bytes: u64) -> Result<(), BuilderError> {
    let fail = |reason: String| BuilderError::Unpack {
        path: zip_path.to_path_buf(),
        reason,
    };
    let file = File::open(zip_path).map_err(BuilderError::io("opening", zip_path))?;
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| fail(e.to_string()))?;
    let mut total: u64 = 0;
    // Directory modes are set last: a read-only directory set first would refuse its files.
    let mut directory_modes: Vec<(PathBuf, u32)> = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| fail(e.to_string()))?;
        let name = entry
            .name()
            .map(|name| name.into_owned())
            .unwrap_or_else(|_| format!("#{index} (name not readable)"));
        let relative = entry
            .enclosed_name()
            .ok_or_else(|| fail(format!("entry `{name}` would be written outside the image")))?;
        if entry.is_symlink() {
            return Err(fail(format!(
                "entry `{name}` is a symbolic link, which images do not hold"
            )));
        }
        let target = into.join(&relative);
        let mode = entry.unix_mode().map(|mode| mode & 0o777);
        if entry.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(BuilderError::io("creating directory", &target))?;
            if let Some(mode) = mode {
                directory_modes.push((target, mode));
            }
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(BuilderError::io("creating directory", parent))?;
        }
        let mut out = File::create(&target).map_err(BuilderError::io("creating", &target))?;
        // Read one byte past what is left of the cap, so a size header that lies cannot
        // make a larger file slip through.
        let allowed = max_bytes.saturating_sub(total);
        let copied = std::io::copy(&mut (&mut entry).take(allowed.saturating_add(1)), &mut out)
            .map_err(|e| fail(format!("entry `{name}`: {e}")))?;
        total += copied;
        if total > max_bytes {
            return Err(fail(format!(
                "the unpacked image is larger than the limit of {max_bytes} bytes"
            )));
        }
        if let Some(mode) = mode {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                .map_err(BuilderError::io("setting the mode of", &target))?;
        }
    }
    // Deepest first, so a parent's mode never stops setting a child's.
    directory_modes.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
    for (path, mode) in directory_modes {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(BuilderError::io("setting the mode of", &path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, content: &[u8], mode: u32) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// `len` bytes no deflate can shrink (xorshift64), the same on every run.
    fn incompressible(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn an_already_compressed_file_is_stored_and_the_rest_deflated() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().join("tree");
        let noise = incompressible(1 << 20);
        let text = "GET /api/orders 200 12ms\n".repeat(40_000);
        write(&root, "assets/model.bin", &noise, 0o644);
        write(&root, "logs/sample.log", text.as_bytes(), 0o644);
        // Small files are deflated without a probe, whatever they hold.
        write(&root, "small.bin", &noise[..1000], 0o644);
        let never = AtomicBool::new(false);
        let zipped = zip_directory(&root, &temp.path().join("a.zip"), &never).expect("zip");
        let mut archive =
            zip::ZipArchive::new(File::open(&zipped.path).expect("zip")).expect("archive");
        let method = |archive: &mut zip::ZipArchive<File>, name: &str| {
            archive.by_name(name).expect(name).compression()
        };
        assert_eq!(
            method(&mut archive, "assets/model.bin"),
            zip::CompressionMethod::Stored
        );
        assert_eq!(
            method(&mut archive, "logs/sample.log"),
            zip::CompressionMethod::Deflated
        );
        assert_eq!(
            method(&mut archive, "small.bin"),
            zip::CompressionMethod::Deflated
        );
        let out = temp.path().join("out");
        unpack(&zipped.path, &out, u64::MAX).expect("unpack");
        assert_eq!(
            std::fs::read(out.join("assets/model.bin")).expect("stored"),
            noise
        );
        assert_eq!(
            std::fs::read(out.join("logs/sample.log")).expect("deflated"),
            text.as_bytes()
        );
    }

    #[test]
    fn zip_round_trip_keeps_content_and_modes_and_is_reproducible() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().join("tree");
        write(&root, "bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
        write(&root, "conf/app.json", b"{}", 0o644);
        std::fs::create_dir_all(root.join("empty")).expect("mkdir");
        let never = AtomicBool::new(false);
        let first = zip_directory(&root, &temp.path().join("a.zip"), &never).expect("zip");
        let second = zip_directory(&root, &temp.path().join("b.zip"), &never).expect("zip");
        assert_eq!(first.sha256, second.sha256, "same files give the same zip");
        assert_eq!(first.content_digest, second.content_digest);
        assert_eq!(
            first.size,
            std::fs::metadata(&first.path).expect("zip").len()
        );
        assert!(!partial_path(&first.path).exists());

        let out = temp.path().join("out");
        unpack(&first.path, &out, 1 << 20).expect("unpack");
        assert_eq!(
            std::fs::read(out.join("bin/run.sh")).expect("file"),
            b"#!/bin/sh\necho hi\n"
        );
        let mode = |path: &str| {
            std::fs::metadata(out.join(path))
                .expect("file")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert_eq!(mode("conf/app.json"), 0o644);
        assert!(out.join("empty").is_dir());

        write(&root, "conf/app.json", b"{\"a\":1}", 0o644);
        let third = zip_directory(&root, &temp.path().join("c.zip"), &never).expect("zip");
        assert_ne!(first.content_digest, third.content_digest);
    }

    #[test]
    fn unpack_refuses_more_than_the_cap_and_leaves_nothing() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().join("tree");
        write(&root, "big", &vec![7; 10_000], 0o644);
        let zip =
            zip_directory(&root, &temp.path().join("a.zip"), &AtomicBool::new(false)).expect("zip");
        let out = temp.path().join("out");
        let error = unpack(&zip.path, &out, 9_999).expect_err("over the cap");
        assert!(
            error
                .to_string()
                .contains("larger than the limit of 9999 bytes"),
            "{error}"
        );
        assert!(!out.exists() && !partial_path(&out).exists());
        unpack(&zip.path, &out, 10_000).expect("exactly the cap is allowed");
    }

    #[test]
    fn unpack_refuses_escaping_names() {
        let temp = tempfile::tempdir().expect("temp dir");
        let path = temp.path().join("evil.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).expect("create"));
        zip.start_file("../escape", SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(b"x").expect("write");
        zip.finish().expect("finish");
        let error = unpack(&path, &temp.path().join("out"), 1 << 20).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("`../escape` would be written outside"),
            "{error}"
        );
        assert!(!temp.path().join("escape").exists());
    }

    #[test]
    fn an_interrupted_zip_leaves_no_file() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().join("tree");
        write(&root, "a", b"a", 0o644);
        let destination = temp.path().join("a.zip");
        let error =
            zip_directory(&root, &destination, &AtomicBool::new(true)).expect_err("interrupted");
        assert!(matches!(error, BuilderError::Cancelled { .. }), "{error}");
        assert!(!destination.exists() && !partial_path(&destination).exists());
    }
}
