//! The version image store: content-addressed image files on disk, streamed in and out.
//!
//! Layout under the store's directory:
//!
//! ```text
//! blobs/sha256/<aa>/<64 hex>                  image bytes, named by their SHA-256
//! refs/<developer|client>/<service>/<version>.json   {"digest": "sha256:…", "size": N}
//! tmp/                                        uploads in progress; cleared at open
//! ```
//!
//! **Invariants.** A ref is written last, with no-clobber semantics, and only after its blob
//! is synced in place, so every visible version has its complete bytes; an interrupted
//! upload leaves at most a file in `tmp/`. A version that has a ref is never overwritten
//! (vUpdate, the original, overwrote the image and only then found that its database
//! insert failed): [`ImageStore::begin_upload`] refuses it before any byte is stored and
//! [`Upload::finish`] refuses it again, race-free, when publishing. Blobs are shared by
//! every ref with the same content and removed only by [`ImageStore::gc`].
//!
//! One directory belongs to one process: [`ImageStore::open`] clears `tmp/`, which would
//! discard another live process's uploads. Clone the handle instead of opening twice.
//!
//! **Boundary.** The store crate's version records carry the same digest and size; this
//! crate does not talk to it (it depends on core only): the caller stores the image here
//! first, then the record.
//!
//! Modules: `key` (kinds, versions, digests, [`ImageInfo`]), `upload` (streaming in),
//! `read` (streaming out, ranges, verification), `fsutil` (durable renames and hard
//! links), `error` ([`ImageError`]), `remote` (images in an object store), `files` (fault
//! archives and private files beside them).

mod error;
mod files;
mod fsutil;
mod key;
mod read;
mod remote;
mod upload;

#[cfg(test)]
mod remote_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vupdate_core::service::ServiceName;

pub use error::{ImageError, ImageId};
pub use files::{RemoteFile, RemoteFiles};
pub use key::{DIGEST_PREFIX, ImageInfo, ImageKind, ImageVersion, normalize_sha256};
pub use read::ImageReader;
pub use remote::{RemoteImages, S3Settings};
pub use upload::Upload;

use error::io_err;
use fsutil::{create_dir_durable, read_ref, sync_dir};

/// Settings of an [`ImageStore`].
#[derive(Debug, Clone, Default)]
pub struct ImageStoreOptions {
    /// The largest image accepted, in bytes; `None` for no limit.
    pub max_image_bytes: Option<u64>,
    /// Refs and blobs in an object store shared by replicas; the directory then keeps a
    /// cache of blobs only. `None`: everything on disk.
    pub remote: Option<RemoteImages>,
}

/// What [`ImageStore::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Digests of the blobs removed because no ref pointed to them.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Blobs kept because a ref points to them.
    pub kept: usize,
}

/// The image store; cheap to clone (clones share one directory and its locks).
#[derive(Debug, Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    options: ImageStoreOptions,
    /// Publishing (blob in place, then ref) holds it shared; gc holds it exclusive, so gc
    /// never sees a blob whose ref is about to be written.
    publish: tokio::sync::RwLock<()>,
    /// Versions with an upload in progress in this process.
    uploading: Mutex<HashSet<(ServiceName, ImageVersion)>>,
    /// How many images this process has stored, so a subscriber learns of a new one.
    stored: tokio::sync::watch::Sender<u64>,
}

/// Runs blocking file work off the async runtime's worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(work).await?
}

impl ImageStore {
    /// Opens (creating if needed) the store in `dir` with default options.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        Self::open_with(dir, ImageStoreOptions::default()).await
    }

    /// Opens (creating if needed) the store in `dir`, removing leftovers of uploads that
    /// were interrupted (files in `tmp/`).
    pub async fn open_with(
        dir: impl Into<PathBuf>,
        options: ImageStoreOptions,
    ) -> Result<ImageStore, ImageError> {
        let root: PathBuf = dir.into();
        let root2 = root.clone();
        let cleared = blocking(move || {
            for sub in [
                root2.join("blobs").join("sha256"),
                root2.join("tmp"),
                root2.join("refs").join(ImageKind::Developer.as_str()),
                root2.join("refs").join(ImageKind::Client.as_str()),
            ] {
                create_dir_durable(&sub)?;
            }
            clear_dir(&root2.join("tmp"))
        })
        .await?;
        if cleared > 0 {
            tracing::info!(dir = %root.display(), cleared, "removed leftovers of interrupted image uploads");
        }
        Ok(ImageStore {
            inner: Arc::new(Inner {
                root,
                options,
                publish: tokio::sync::RwLock::new(()),
                uploading: Mutex::new(HashSet::new()),
                stored: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    /// Changes each time an image is stored (the count stored by this process), for those
    /// waiting for a desired version's image.
    pub fn stored(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.stored.subscribe()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.root
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &ImageStoreOptions {
        &self.inner.options
    }

    fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join("tmp")
    }

    fn kind_dir(&self, kind: ImageKind) -> PathBuf {
        self.inner.root.join("refs").join(kind.as_str())
    }

    /// The ref file of a version.
    pub fn ref_path(&self, service: &ServiceName, version: &ImageVersion) -> PathBuf {
        self.kind_dir(version.kind())
            .join(service.as_str())
            .join(format!("{version}.json"))
    }

    /// The blob file of a digest (`sha256:<hex>` or bare hex, as stored).
    pub fn blob_path(&self, info: &ImageInfo) -> PathBuf {
        blob_path(&self.inner.root, info.hex())
    }

    /// The digest and size of a version's image, or `None` when it has none.
    pub async fn info(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
    ) -> Result<Option<ImageInfo>, ImageError> {
        if let Some(remote) = self.remote() {
            return remote.read_ref(service, version).await;
        }
        let path = self.ref_path(service, version);
        blocking(move || read_ref(&path)).await
    }

    fn remote(&self) -> Option<&RemoteImages> {
        self.inner.options.remote.as_ref()
    }

    /// The local file of `info`'s blob, for a caller that needs a path (unpacking a zip).
    /// With an object store, a blob not cached yet is downloaded first, hashed on the way.
    pub async fn local_blob(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
        info: &ImageInfo,
    ) -> Result<PathBuf, ImageError> {
        let path = self.blob_path(info);
        let Some(remote) = self.remote() else {
            return Ok(path);
        };
        let cached = tokio::fs::metadata(&path)
            .await
            .is_ok_and(|m| m.is_file() && m.len() == info.size);
        if cached {
            return Ok(path);
        }
        let tmp = fsutil::temp_path(&self.tmp_dir(), "fetch");
        let image = ImageId {
            service: service.clone(),
            version: version.clone(),
        };
        if let Err(error) = remote.fetch_blob(&image, info, &tmp).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(error);
        }
        let (tmp2, path2) = (tmp.clone(), path.clone());
        let moved = blocking(move || {
            let dir = path2.parent().expect("a blob path has a prefix directory");
            create_dir_durable(dir)?;
            fs::rename(&tmp2, &path2)
                .map_err(io_err("move downloaded blob into the cache", &path2))?;
            sync_dir(dir)
        })
        .await;
        if moved.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        moved.map(|()| path)
    }

    /// Starts streaming a new image for `version`. Refused with
    /// [`ImageError::VersionExists`] when the version already has one, before any byte is
    /// stored. `expected_sha256` (`sha256:<hex>` or hex) is checked at [`Upload::finish`].
    pub async fn begin_upload(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
        expected_sha256: Option<&str>,
    ) -> Result<Upload, ImageError> {
        upload::begin(self, service, version, expected_sha256).await
    }

    /// Stores `bytes` as the image of `version` (for tests and small images).
    pub async fn put_bytes(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
        bytes: &[u8],
    ) -> Result<ImageInfo, ImageError> {
        let mut upload = self.begin_upload(service, version, None).await?;
        for chunk in bytes.chunks(fsutil::CHUNK) {
            upload.write(chunk).await?;
        }
        upload.finish().await
    }

    /// Streams the file at `path` in as the image of `version` (what the builder does with
    /// the zip it made).
    pub async fn put_file(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
        path: &Path,
    ) -> Result<ImageInfo, ImageError> {
        use tokio::io::AsyncReadExt as _;
        let mut upload = self.begin_upload(service, version, None).await?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(io_err("open image file", path))?;
        let mut buf = vec![0u8; fsutil::CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(io_err("read image file", path))?;
            if n == 0 {
                break;
            }
            upload.write(&buf[..n]).await?;
        }
        upload.finish().await
    }

    /// Opens a version's whole image for reading (named apart from [`ImageStore::open`],
    /// which opens the store).
    pub async fn open_image(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
    ) -> Result<ImageReader, ImageError> {
        read::open(self, service, version, None).await
    }

    /// Opens bytes `start..=end` of a version's image (an HTTP `Range`); refused with
    /// [`ImageError::RangeNotSatisfiable`] unless `start <= end < size`.
    pub async fn open_range(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
        range: (u64, u64),
    ) -> Result<ImageReader, ImageError> {
        read::open(self, service, version, Some(range)).await
    }

    /// Re-hashes a version's blob and compares it with its ref; [`ImageError::Corrupt`]
    /// when they differ.
    pub async fn verify(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
    ) -> Result<ImageInfo, ImageError> {
        read::verify(self, service, version).await
    }

    /// Every version of `service` of this kind that has an image, oldest first. Files in
    /// the ref directory whose name is not a version of this kind are skipped with a warning.
    pub async fn list(
        &self,
        kind: ImageKind,
        service: &ServiceName,
    ) -> Result<Vec<(ImageVersion, ImageInfo)>, ImageError> {
        if let Some(remote) = self.remote() {
            return remote.list_refs(kind, service).await;
        }
        let dir = self.kind_dir(kind).join(service.as_str());
        blocking(move || list_refs(kind, &dir)).await
    }

    /// Removes a version's ref, returning what it pointed to; the blob stays until
    /// [`ImageStore::gc`] finds no ref to it.
    pub async fn remove(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
    ) -> Result<ImageInfo, ImageError> {
        let path = self.ref_path(service, version);
        let image = ImageId::boxed(service, version);
        if let Some(remote) = self.remote() {
            return remote
                .remove_ref(service, version)
                .await?
                .ok_or(ImageError::NotFound { image, path });
        }
        blocking(move || {
            let Some(info) = read_ref(&path)? else {
                return Err(ImageError::NotFound { image, path });
            };
            fs::remove_file(&path).map_err(io_err("remove ref", &path))?;
            sync_dir(path.parent().expect("a ref path has a service directory"))?;
            Ok(info)
        })
        .await
    }

    /// Removes the refs of old versions of `service`: keeps the newest `max_history` and
    /// every version in `keep` (desired, tested, running: the caller knows which), and
    /// returns the versions removed, oldest first. Blobs are freed by a later [`gc`](Self::gc).
    pub async fn retain(
        &self,
        kind: ImageKind,
        service: &ServiceName,
        max_history: usize,
        keep: &BTreeSet<ImageVersion>,
    ) -> Result<Vec<ImageVersion>, ImageError> {
        let versions = self.list(kind, service).await?;
        let cut = versions.len().saturating_sub(max_history);
        let mut removed = Vec::new();
        for (version, _) in &versions[..cut] {
            if keep.contains(version) {
                continue;
            }
            match self.remove(service, version).await {
                Ok(_) => removed.push(version.clone()),
                // Removed concurrently: the goal is reached all the same.
                Err(ImageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if !removed.is_empty() {
            tracing::info!(%service, %kind, removed = removed.len(), "old images removed by retention");
        }
        Ok(removed)
    }

    /// With an object store, deletes its blobs that no ref names and that are older than
    /// `grace` (so an upload between its blob and its ref keeps its blob); returns their
    /// digests, empty without an object store. For the one replica that runs expiry:
    /// `may_delete` (its lease's fence) is asked before each delete, and the first no
    /// leaves the rest.
    pub async fn collect_remote_blobs<F, Fut>(
        &self,
        grace: std::time::Duration,
        may_delete: F,
    ) -> Result<Vec<String>, ImageError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let Some(remote) = self.remote() else {
            return Ok(Vec::new());
        };
        let removed = remote.collect_blobs(grace, may_delete).await?;
        if !removed.is_empty() {
            tracing::info!(
                removed = removed.len(),
                "unreferenced blobs deleted from the object store"
            );
        }
        Ok(removed)
    }

    /// Removes every blob no ref points to. Refuses to delete anything when a ref cannot
    /// be read, since that ref's blob might be among the unreferenced.
    pub async fn gc(&self) -> Result<GcReport, ImageError> {
        let _exclusive = self.inner.publish.write().await;
        let root = self.inner.root.clone();
        // With an object store, the cache keeps the blobs its refs point to; the bucket's
        // own blobs are left (another replica may be between its blob and its ref).
        let live = match self.remote() {
            Some(remote) => Some(remote.referenced().await?),
            None => None,
        };
        let report = blocking(move || {
            let live = match live {
                Some(live) => live,
                None => referenced(&root)?,
            };
            gc(&root, &live)
        })
        .await?;
        if !report.removed.is_empty() {
            tracing::info!(
                removed = report.removed.len(),
                freed_bytes = report.freed_bytes,
                "image blobs collected"
            );
        }
        Ok(report)
    }
}

fn blob_path(root: &Path, hex: &str) -> PathBuf {
    root.join("blobs")
        .join("sha256")
        .join(hex.get(..2).unwrap_or("00"))
        .join(hex)
}

/// Removes everything in `dir`; returns how many entries went.
fn clear_dir(dir: &Path) -> Result<usize, ImageError> {
    let mut count = 0;
    for entry in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let path = entry.map_err(io_err("read directory", dir))?.path();
        let result = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        result.map_err(io_err("remove stale upload", &path))?;
        count += 1;
    }
    Ok(count)
}

fn list_refs(kind: ImageKind, dir: &Path) -> Result<Vec<(ImageVersion, ImageInfo)>, ImageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err("read directory", dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let version = match ImageVersion::parse(kind, stem) {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping a ref whose name is not a version");
                continue;
            }
        };
        // Removed between read_dir and here: not part of the listing.
        if let Some(info) = read_ref(&path)? {
            out.push((version, info));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every digest (hex) some ref points to.
fn referenced(root: &Path) -> Result<HashSet<String>, ImageError> {
    let mut set = HashSet::new();
    for kind in ImageKind::ALL {
        let kind_dir = root.join("refs").join(kind.as_str());
        for service in fs::read_dir(&kind_dir).map_err(io_err("read directory", &kind_dir))? {
            let service_dir = service.map_err(io_err("read directory", &kind_dir))?.path();
            if !service_dir.is_dir() {
                continue;
            }
            for entry in
                fs::read_dir(&service_dir).map_err(io_err("read directory", &service_dir))?
            {
                let path = entry
                    .map_err(io_err("read directory", &service_dir))?
                    .path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                if let Some(info) = read_ref(&path)? {
                    set.insert(info.hex().to_owned());
                }
            }
        }
    }
    Ok(set)
}

fn gc(root: &Path, live: &HashSet<String>) -> Result<GcReport, ImageError> {
    let mut report = GcReport::default();
    let blobs = root.join("blobs").join("sha256");
    for prefix in fs::read_dir(&blobs).map_err(io_err("read directory", &blobs))? {
        let prefix_dir = prefix.map_err(io_err("read directory", &blobs))?.path();
        if !prefix_dir.is_dir() {
            continue;
        }
        let mut changed = false;
        for entry in fs::read_dir(&prefix_dir).map_err(io_err("read directory", &prefix_dir))? {
            let entry = entry.map_err(io_err("read directory", &prefix_dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| key::is_blob_name(n)) else {
                continue;
            };
            if live.contains(name) {
                report.kept += 1;
                continue;
            }
            let size = entry.metadata().map_or(0, |m| m.len());
            fs::remove_file(&path).map_err(io_err("remove unreferenced blob", &path))?;
            report.removed.push(format!("{DIGEST_PREFIX}{name}"));
            report.freed_bytes += size;
            changed = true;
        }
        if changed {
            sync_dir(&prefix_dir)?;
        }
    }
    report.removed.sort();
    Ok(report)
}
