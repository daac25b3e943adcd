//! Blocking file helpers for the image store: durable directory creation, atomic no-clobber
//! publication of ref files, ref reading and streaming hashing.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::Digest as _;

use super::error::{ImageError, io_err};
use super::key::{ImageInfo, digest_string, normalize_sha256};

/// Buffer size for hashing and copying files.
pub(crate) const CHUNK: usize = 1 << 20;

/// Flushes a directory's entries (a new, renamed or removed name) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Creates `dir` and any missing parents, syncing each parent whose entries changed so
/// the new directory survives a crash.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), ImageError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err("create directory", dir)(e)),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// A file name in `tmp/` no other upload of this or an earlier process uses.
pub(crate) fn temp_path(tmp_dir: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    tmp_dir.join(format!("{what}-{}-{nanos}-{n}", std::process::id()))
}

/// Outcome of [`publish_new`].
pub(crate) enum Published {
    /// The file is in place.
    Done,
    /// A file already had that name; it was left untouched.
    Exists,
}

/// Writes `bytes` to `target` atomically and only if `target` does not exist yet: the
/// content goes to a synced temp file in `tmp_dir` first, then is hard-linked into place
/// (`link` fails instead of replacing, unlike `rename`), then the directory is synced.
pub(crate) fn publish_new(
    tmp_dir: &Path,
    target: &Path,
    bytes: &[u8],
) -> Result<Published, ImageError> {
    let tmp = temp_path(tmp_dir, "ref");
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create temporary ref", &tmp))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io_err("write temporary ref", &tmp))?;
        let dir = target
            .parent()
            .expect("a ref path always has a service directory");
        create_dir_durable(dir)?;
        match fs::hard_link(&tmp, target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Published::Exists),
            Err(e) => return Err(io_err("publish ref", target)(e)),
        }
        sync_dir(dir)?;
        Ok(Published::Done)
    })();
    // The temp name is only scaffolding: drop it whatever happened (at worst the next
    // open clears it).
    let _ = fs::remove_file(&tmp);
    result
}

/// Reads a ref file; `Ok(None)` when it does not exist.
pub(crate) fn read_ref(path: &Path) -> Result<Option<ImageInfo>, ImageError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read ref", path)(e)),
    };
    parse_ref(&bytes, path).map(Some)
}

/// A ref's content (`{"digest": "sha256:…", "size": N}`), read from `path` (a file, or
/// an object's key).
pub(crate) fn parse_ref(bytes: &[u8], path: &Path) -> Result<ImageInfo, ImageError> {
    let info: ImageInfo = serde_json::from_slice(bytes).map_err(|e| ImageError::BadRef {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if normalize_sha256(&info.digest).as_deref() != Some(info.hex()) {
        return Err(ImageError::BadRef {
            path: path.to_owned(),
            reason: format!(
                "digest `{}` is not `sha256:` and 64 lowercase hex digits",
                info.digest
            ),
        });
    }
    Ok(info)
}

/// Hashes a file by streaming it; returns its digest and size.
pub(crate) fn hash_file(path: &Path) -> Result<ImageInfo, ImageError> {
    let mut file = fs::File::open(path).map_err(io_err("open blob", path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err("read blob", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(ImageInfo {
        digest: digest_string(hasher),
        size,
    })
}
