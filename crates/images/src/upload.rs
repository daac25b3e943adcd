//! [`Upload`]: one image streaming into the store, hashed as it is written.

use std::fs;
use std::path::PathBuf;

use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;
use vupdate_core::service::ServiceName;

use super::error::{ImageError, ImageId, io_err};
use super::fsutil::{Published, create_dir_durable, publish_new, read_ref, sync_dir, temp_path};
use super::key::{DIGEST_PREFIX, ImageInfo, ImageVersion, digest_string, normalize_sha256};
use super::{ImageStore, RemoteImages, blob_path, blocking};

/// An image being uploaded. Bytes go to a temp file as they come, hashed on the way; only
/// [`finish`](Upload::finish) makes the version visible. Dropping it (or the process
/// dying) discards the upload: the temp file is removed now, or at the next open.
#[derive(Debug)]
pub struct Upload {
    store: ImageStore,
    service: ServiceName,
    version: ImageVersion,
    expected: Option<String>,
    tmp: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: sha2::Sha256,
    size: u64,
    failed: bool,
    finished: bool,
}

/// Starts an upload: refuses a taken version and a second concurrent upload of it.
pub(super) async fn begin(
    store: &ImageStore,
    service: &ServiceName,
    version: &ImageVersion,
    expected_sha256: Option<&str>,
) -> Result<Upload, ImageError> {
    let expected = expected_sha256
        .map(|text| {
            normalize_sha256(text).ok_or_else(|| ImageError::BadExpectedDigest {
                image: ImageId::boxed(service, version),
                value: text.to_owned(),
            })
        })
        .transpose()?;
    let ref_path = store.ref_path(service, version);
    if store.info(service, version).await?.is_some() {
        return Err(ImageError::VersionExists {
            image: ImageId::boxed(service, version),
            path: ref_path,
        });
    }
    let key = (service.clone(), version.clone());
    {
        let mut uploading = store
            .inner
            .uploading
            .lock()
            .expect("the uploading set is never left poisoned: no code panics holding it");
        if !uploading.insert(key) {
            return Err(ImageError::UploadInProgress {
                image: ImageId::boxed(service, version),
            });
        }
    }
    // From here on the Upload owns the reservation: its Drop releases it on every path.
    let mut upload = Upload {
        store: store.clone(),
        service: service.clone(),
        version: version.clone(),
        expected,
        tmp: temp_path(&store.tmp_dir(), "upload"),
        file: None,
        hasher: sha2::Sha256::new(),
        size: 0,
        failed: false,
        finished: false,
    };
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&upload.tmp)
        .await
        .map_err(io_err("create upload file", &upload.tmp))?;
    upload.file = Some(file);
    Ok(upload)
}

impl Upload {
    /// The service the image is for.
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// The version the image is for.
    pub fn version(&self) -> &ImageVersion {
        &self.version
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `chunk`. Past the size limit the upload is discarded and
    /// [`ImageError::TooLarge`] returned; after any error the upload only returns
    /// [`ImageError::UploadFailed`].
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        if self.failed || self.finished {
            return Err(self.failed_error());
        }
        let new_size = self.size + chunk.len() as u64;
        if let Some(limit) = self.store.inner.options.max_image_bytes
            && new_size > limit
        {
            self.discard();
            return Err(ImageError::TooLarge {
                image: ImageId::boxed(&self.service, &self.version),
                limit,
            });
        }
        let file = self
            .file
            .as_mut()
            .expect("an upload that has not failed or finished has its file");
        if let Err(e) = file.write_all(chunk).await {
            self.discard();
            return Err(io_err("write upload file", &self.tmp)(e));
        }
        self.hasher.update(chunk);
        self.size = new_size;
        Ok(())
    }

    /// Completes the upload: checks the expected digest, syncs the bytes, moves them to
    /// their blob (kept as is when the same content is stored already), then publishes the
    /// version's ref, refusing with [`ImageError::VersionExists`] if it appeared meanwhile.
    pub async fn finish(mut self) -> Result<ImageInfo, ImageError> {
        if self.failed || self.finished {
            return Err(self.failed_error());
        }
        let mut file = self
            .file
            .take()
            .expect("an upload that has not failed or finished has its file");
        let synced = async {
            file.flush().await?;
            file.sync_all().await
        }
        .await;
        drop(file);
        if let Err(e) = synced {
            self.discard();
            return Err(io_err("sync upload file", &self.tmp)(e));
        }
        let hasher = std::mem::take(&mut self.hasher);
        let info = ImageInfo {
            digest: digest_string(hasher),
            size: self.size,
        };
        if let Some(expected) = self.expected.clone()
            && expected != info.hex()
        {
            self.discard();
            return Err(ImageError::UploadDigestMismatch {
                image: ImageId::boxed(&self.service, &self.version),
                expected: format!("{DIGEST_PREFIX}{expected}"),
                actual: info.digest,
                size: info.size,
            });
        }

        let store = self.store.clone();
        let shared = store.inner.publish.read().await;
        let outcome = match store.inner.options.remote.clone() {
            None => self.publish_local(&info).await,
            Some(remote) => self.publish_remote(&remote, &info).await,
        };
        drop(shared);
        match outcome {
            Ok(Published::Done) => {
                self.finished = true;
                tracing::info!(service = %self.service, version = %self.version, digest = %info.digest, size = info.size, "image stored");
                self.store.inner.stored.send_modify(|count| *count += 1);
                Ok(info)
            }
            Ok(Published::Exists) => {
                self.discard();
                Err(ImageError::VersionExists {
                    image: ImageId::boxed(&self.service, &self.version),
                    path: self.store.ref_path(&self.service, &self.version),
                })
            }
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    /// Moves the bytes into their blob in the local directory (kept as is when the same
    /// content is there already); returns the blob's path.
    async fn store_blob(&self, info: &ImageInfo) -> Result<PathBuf, ImageError> {
        let blob = blob_path(&self.store.inner.root, info.hex());
        let (tmp, blob2, size) = (self.tmp.clone(), blob.clone(), info.size);
        blocking(move || move_into_blob(&tmp, &blob2, size)).await?;
        Ok(blob)
    }

    /// With an object store: the blob goes to the local cache and the bucket, then the
    /// ref is created in the bucket (refused when another replica created it first).
    async fn publish_remote(
        &self,
        remote: &RemoteImages,
        info: &ImageInfo,
    ) -> Result<Published, ImageError> {
        if remote
            .read_ref(&self.service, &self.version)
            .await?
            .is_some()
        {
            return Ok(Published::Exists);
        }
        let blob = self.store_blob(info).await?;
        remote.put_blob(&blob, info).await?;
        vupdate_crashpoint::reached("images.blob-stored");
        let published = remote
            .publish_ref(&self.service, &self.version, info)
            .await?;
        // A blob that was in the bucket already (same content, an older version since
        // removed) may have been collected between the look-up and the ref: store it again.
        remote.put_blob(&blob, info).await?;
        Ok(published)
    }

    /// On disk: blob, then the ref with no-clobber semantics.
    async fn publish_local(&self, info: &ImageInfo) -> Result<Published, ImageError> {
        let root = self.store.inner.root.clone();
        let tmp_dir = self.store.tmp_dir();
        let tmp = self.tmp.clone();
        let ref_path = self.store.ref_path(&self.service, &self.version);
        let info2 = info.clone();
        blocking(move || {
            // Checked again here so a version taken meanwhile does not even get its blob
            // moved; publish_new below is the race-free check.
            if read_ref(&ref_path)?.is_some() {
                return Ok(Published::Exists);
            }
            move_into_blob(&tmp, &blob_path(&root, info2.hex()), info2.size)?;
            vupdate_crashpoint::reached("images.blob-stored");
            let json = serde_json::to_vec_pretty(&info2).expect("ImageInfo always serialises");
            publish_new(&tmp_dir, &ref_path, &json)
        })
        .await
    }

    fn failed_error(&self) -> ImageError {
        ImageError::UploadFailed {
            image: ImageId::boxed(&self.service, &self.version),
        }
    }

    /// Marks the upload failed and removes its temp file (if still there).
    fn discard(&mut self) {
        self.failed = true;
        self.file = None;
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Moves the upload at `tmp` into `blob`, or drops it when `blob` holds the same content
/// already (deduplicated).
fn move_into_blob(
    tmp: &std::path::Path,
    blob: &std::path::Path,
    size: u64,
) -> Result<(), ImageError> {
    let same_blob = fs::metadata(blob).is_ok_and(|m| m.is_file() && m.len() == size);
    if same_blob {
        let _ = fs::remove_file(tmp);
        return Ok(());
    }
    let dir = blob.parent().expect("a blob path has a prefix directory");
    create_dir_durable(dir)?;
    fs::rename(tmp, blob).map_err(io_err("move upload into blob", blob))?;
    sync_dir(dir)
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.finished && !self.failed {
            self.file = None;
            // Best effort: a file left behind is cleared at the next open.
            let _ = fs::remove_file(&self.tmp);
        }
        if let Ok(mut uploading) = self.store.inner.uploading.lock() {
            uploading.remove(&(self.service.clone(), self.version.clone()));
        }
    }
}
