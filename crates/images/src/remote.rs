//! [`RemoteImages`]: the image store's blobs and refs in an S3-compatible object store, so
//! every replica of a distribution serves the images any of them stored.
//!
//! Keys mirror the local layout under an optional prefix: `blobs/sha256/<aa>/<hex>` and
//! `refs/<kind>/<service>/<version>.json`. The object store holds the truth; the local
//! directory keeps a cache of the blobs a replica served or stored, each one hashed on
//! its way in. A ref is written last, with create-only semantics (`If-None-Match: *`), so
//! two replicas uploading one version at once store it once and the second is refused as
//! [`ImageError::VersionExists`], as on disk.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, WriteMultipart,
};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vupdate_core::service::ServiceName;

use super::error::{ImageError, ImageId, io_err, remote_err};
use super::fsutil::{CHUNK, Published, parse_ref};
use super::key::{ImageInfo, ImageKind, ImageVersion, digest_string};

/// Multipart parts uploaded at once per blob.
const PARTS_IN_FLIGHT: usize = 4;

/// Where an S3-compatible store is and how to sign for it (the caller reads the
/// credentials from the environment or a file, never from the config).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// Its region (`us-east-1` for most S3-compatible servers).
    pub region: String,
    /// The server's URL for an S3-compatible store (MinIO, Ceph…); `None` for AWS.
    pub endpoint: Option<String>,
    /// A key prefix, so several distributions can share a bucket (`acme/`); may be empty.
    pub prefix: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets stay out of logs.
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Images in an object store; cheap to clone.
#[derive(Debug, Clone)]
pub struct RemoteImages {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl RemoteImages {
    /// The images in `store`, under `prefix` (empty, or ending in `/`).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> RemoteImages {
        let prefix = prefix.trim_matches('/');
        RemoteImages {
            store,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// An S3 (or S3-compatible) bucket; plain `http://` endpoints are allowed (a store on
    /// the local network or a test server).
    pub fn s3(settings: &S3Settings) -> Result<RemoteImages, ImageError> {
        // The workspace's one TLS stack; a program that installed it already keeps its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key);
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|error| ImageError::Remote {
            action: "configure bucket",
            key: settings.bucket.clone(),
            error: Box::new(error),
        })?;
        Ok(RemoteImages::new(Arc::new(store), &settings.prefix))
    }

    /// Plain files under `area` of the same bucket and prefix (fault archives, private
    /// files).
    pub fn files(&self, area: &str) -> crate::RemoteFiles {
        crate::RemoteFiles::new(Arc::clone(&self.store), &self.prefix, area)
    }

    fn key(&self, relative: &str) -> Path {
        Path::from(format!("{}{relative}", self.prefix))
    }

    fn ref_key(&self, service: &ServiceName, version: &ImageVersion) -> Path {
        self.key(&format!(
            "refs/{}/{service}/{version}.json",
            version.kind().as_str()
        ))
    }

    fn blob_key(&self, info: &ImageInfo) -> Path {
        let hex = info.hex();
        self.key(&format!("blobs/sha256/{}/{hex}", &hex[..2]))
    }

    /// The ref of a version, or `None` when it has no image.
    pub(crate) async fn read_ref(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
    ) -> Result<Option<ImageInfo>, ImageError> {
        let key = self.ref_key(service, version);
        self.read_ref_at(&key).await
    }

    async fn read_ref_at(&self, key: &Path) -> Result<Option<ImageInfo>, ImageError> {
        let bytes = match self.store.get(key).await {
            Ok(found) => found.bytes().await.map_err(remote_err("read ref", key))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(remote_err("read ref", key)(error)),
        };
        parse_ref(&bytes, FsPath::new(key.as_ref())).map(Some)
    }

    /// Uploads the blob at `file` (already hashed as `info`) unless the store has it.
    pub(crate) async fn put_blob(&self, file: &FsPath, info: &ImageInfo) -> Result<(), ImageError> {
        let key = self.blob_key(info);
        match self.store.head(&key).await {
            Ok(meta) if meta.size == info.size => return Ok(()),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(remote_err("look up blob", &key)(error)),
        }
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(remote_err("start blob upload", &key))?;
        let mut writer = WriteMultipart::new(upload);
        let mut source = tokio::fs::File::open(file)
            .await
            .map_err(io_err("open blob", file))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = source
                .read(&mut buf)
                .await
                .map_err(io_err("read blob", file))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(remote_err("upload blob", &key))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(remote_err("upload blob", &key))?;
        Ok(())
    }

    /// Writes a version's ref, create-only: [`Published::Exists`] when the version has one.
    pub(crate) async fn publish_ref(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
        info: &ImageInfo,
    ) -> Result<Published, ImageError> {
        let key = self.ref_key(service, version);
        let json = serde_json::to_vec_pretty(info).expect("ImageInfo always serialises");
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&key, PutPayload::from(json), options)
            .await
        {
            Ok(_) => Ok(Published::Done),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Published::Exists),
            Err(error) => Err(remote_err("write ref", &key)(error)),
        }
    }

    /// Downloads the blob of `info` to `dest` (a new file), streaming and hashing it;
    /// refused as [`ImageError::Corrupt`] when its bytes are not `info`'s. The file is
    /// synced, ready to be renamed into the cache.
    pub(crate) async fn fetch_blob(
        &self,
        image: &ImageId,
        info: &ImageInfo,
        dest: &FsPath,
    ) -> Result<(), ImageError> {
        let key = self.blob_key(info);
        let found = self.store.get(&key).await.map_err(|error| match error {
            object_store::Error::NotFound { .. } => ImageError::BlobMissing {
                image: Box::new(image.clone()),
                digest: info.digest.clone(),
                path: PathBuf::from(key.to_string()),
            },
            error => remote_err("download blob", &key)(error),
        })?;
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .await
            .map_err(io_err("create cached blob", dest))?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        let mut stream = found.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(remote_err("download blob", &key))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(io_err("write cached blob", dest))?;
        }
        file.flush()
            .await
            .map_err(io_err("write cached blob", dest))?;
        file.sync_all()
            .await
            .map_err(io_err("sync cached blob", dest))?;
        let actual = ImageInfo {
            digest: digest_string(hasher),
            size,
        };
        if actual != *info {
            return Err(ImageError::Corrupt {
                image: Box::new(image.clone()),
                path: PathBuf::from(key.to_string()),
                expected: info.digest.clone(),
                expected_size: info.size,
                actual: actual.digest,
                actual_size: actual.size,
            });
        }
        Ok(())
    }

    /// Every version of `service` of this kind that has a ref, oldest first.
    pub(crate) async fn list_refs(
        &self,
        kind: ImageKind,
        service: &ServiceName,
    ) -> Result<Vec<(ImageVersion, ImageInfo)>, ImageError> {
        let prefix = self.key(&format!("refs/{}/{service}", kind.as_str()));
        let mut listing = self.store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(remote_err("list refs", &prefix))?;
            let Some(name) = meta.location.filename() else {
                continue;
            };
            let Some(version) = name
                .strip_suffix(".json")
                .and_then(|stem| ImageVersion::parse(kind, stem).ok())
            else {
                tracing::warn!(key = %meta.location, "not a ref of a version; skipped");
                continue;
            };
            if let Some(info) = self.read_ref_at(&meta.location).await? {
                out.push((version, info));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every digest (hex) some ref points to.
    pub(crate) async fn referenced(&self) -> Result<std::collections::HashSet<String>, ImageError> {
        let prefix = self.key("refs");
        let mut listing = self.store.list(Some(&prefix));
        let mut set = std::collections::HashSet::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(remote_err("list refs", &prefix))?;
            if let Some(info) = self.read_ref_at(&meta.location).await? {
                set.insert(info.hex().to_owned());
            }
        }
        Ok(set)
    }

    /// Deletes the bucket's blobs that no ref names and that were stored more than `grace`
    /// ago (a younger one may be an upload between its blob and its ref); returns their
    /// digests. The refs are read before and again after listing the blobs, and a blob
    /// either read names is kept; an unreadable ref deletes nothing. `may_delete` is asked
    /// before each delete (the lease's fence): once it says no, nothing more is deleted.
    pub(crate) async fn collect_blobs<F, Fut>(
        &self,
        grace: std::time::Duration,
        mut may_delete: F,
    ) -> Result<Vec<String>, ImageError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let before = self.referenced().await?;
        let cutoff = chrono::Utc::now()
            - chrono::TimeDelta::from_std(grace).unwrap_or(chrono::TimeDelta::MAX);
        let prefix = self.key("blobs");
        let mut listing = self.store.list(Some(&prefix));
        let mut old = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(remote_err("list blobs", &prefix))?;
            let Some(hex) = meta.location.filename().map(str::to_owned) else {
                continue;
            };
            if !before.contains(&hex) && meta.last_modified < cutoff {
                old.push((hex, meta.location));
            }
        }
        if old.is_empty() {
            return Ok(Vec::new());
        }
        let after = self.referenced().await?;
        let mut removed = Vec::new();
        for (hex, key) in old {
            if after.contains(&hex) {
                continue;
            }
            if !may_delete().await {
                break;
            }
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    removed.push(format!("{}{hex}", crate::DIGEST_PREFIX));
                }
                Err(error) => return Err(remote_err("remove blob", &key)(error)),
            }
        }
        Ok(removed)
    }

    /// Removes a version's ref, returning what it pointed to (`None`: it had none).
    pub(crate) async fn remove_ref(
        &self,
        service: &ServiceName,
        version: &ImageVersion,
    ) -> Result<Option<ImageInfo>, ImageError> {
        let key = self.ref_key(service, version);
        let Some(info) = self.read_ref_at(&key).await? else {
            return Ok(None);
        };
        self.store
            .delete(&key)
            .await
            .map_err(remote_err("remove ref", &key))?;
        Ok(Some(info))
    }
}
