//! [`RemoteFiles`]: plain files in the images' object store, under `<prefix><area>/`, so
//! every replica of a distribution serves the fault archives and private files any of
//! them stored. Each file is one object written whole (create-only when it must never
//! change, as a fault archive); the callers keep a local copy as a cache.

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::StreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt as _;

use super::error::{ImageError, io_err, remote_err};

/// Files under one area of an object store; cheap to clone.
#[derive(Debug, Clone)]
pub struct RemoteFiles {
    store: Arc<dyn ObjectStore>,
    /// `<prefix><area>/`.
    prefix: String,
}

/// One stored file, as [`RemoteFiles::list`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Its path under the listed folder (`/`-separated).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// When it was stored.
    pub modified: chrono::DateTime<chrono::Utc>,
}

impl RemoteFiles {
    /// The files of `area` in `store`, under `prefix` (empty, or ending in `/`).
    pub(crate) fn new(store: Arc<dyn ObjectStore>, prefix: &str, area: &str) -> RemoteFiles {
        RemoteFiles {
            store,
            prefix: format!("{prefix}{}/", area.trim_matches('/')),
        }
    }

    fn key(&self, relative: &str) -> Path {
        Path::from(format!("{}{relative}", self.prefix))
    }

    /// Stores the local `file` as `relative`, read whole (the callers cap its size).
    /// `create_only`: `Ok(false)` when `relative` exists, which is then left as it was;
    /// otherwise an older content is replaced.
    pub async fn put(
        &self,
        relative: &str,
        file: &FsPath,
        create_only: bool,
    ) -> Result<bool, ImageError> {
        let key = self.key(relative);
        let bytes = tokio::fs::read(file).await.map_err(io_err("read", file))?;
        let options = PutOptions {
            mode: if create_only {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&key, PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) if create_only => Ok(false),
            Err(error) => Err(remote_err("store file", &key)(error)),
        }
    }

    /// Downloads `relative` into `dest` (a new file, synced); `Ok(false)` when there is
    /// no such file.
    pub async fn fetch(&self, relative: &str, dest: &FsPath) -> Result<bool, ImageError> {
        let key = self.key(relative);
        let found = match self.store.get(&key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(remote_err("download file", &key)(error)),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .await
            .map_err(io_err("create", dest))?;
        let mut stream = found.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(remote_err("download file", &key))?;
            file.write_all(&chunk)
                .await
                .map_err(io_err("write", dest))?;
        }
        file.flush().await.map_err(io_err("write", dest))?;
        file.sync_all().await.map_err(io_err("sync", dest))?;
        Ok(true)
    }

    /// Whether `relative` is stored.
    pub async fn exists(&self, relative: &str) -> Result<bool, ImageError> {
        let key = self.key(relative);
        match self.store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(remote_err("look up file", &key)(error)),
        }
    }

    /// Removes `relative`; `Ok(false)` when it was not stored.
    pub async fn remove(&self, relative: &str) -> Result<bool, ImageError> {
        if !self.exists(relative).await? {
            return Ok(false);
        }
        let key = self.key(relative);
        self.store
            .delete(&key)
            .await
            .map_err(remote_err("remove file", &key))?;
        Ok(true)
    }

    /// Every file under the folder `relative`, with its path under it, sorted by path.
    pub async fn list(&self, relative: &str) -> Result<Vec<RemoteFile>, ImageError> {
        let folder = self.key(relative);
        let mut listing = self.store.list(Some(&folder));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(remote_err("list files", &folder))?;
            let Some(parts) = meta.location.prefix_match(&folder) else {
                continue;
            };
            let path = parts
                .map(|part| part.as_ref().to_owned())
                .collect::<Vec<_>>()
                .join("/");
            found.push(RemoteFile {
                path,
                size: meta.size,
                modified: meta.last_modified,
            });
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }
}
