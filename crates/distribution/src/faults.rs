//! [`FaultFiles`]: the archives of fault reports, one zip per report, on disk under
//! `<dataDirectory>/faults/<distribution>/<id>.zip`.
//!
//! An upload streams into `tmp/` and is hard-linked into place, which fails when the file
//! exists: a report's archive is written once and never changes, and a half-written one is
//! never visible. The record (`addFaultReport`) refers to it by id.
//!
//! With an object store (replicas, `objectStore:`), the archive is stored there too, under
//! `faults/<distribution>/<id>.zip`, create-only, before it appears on disk: the object
//! store is the truth and every replica serves it, the local file a cache filled on the
//! first download through each replica.

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt as _};
use tokio::io::AsyncWriteExt as _;

use vupdate_images::RemoteFiles;

use crate::http::ApiError;

/// Tells apart the temporary files of one process's concurrent uploads and fetches.
static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Fault report archives on disk (and in the object store); cheap to clone.
#[derive(Debug, Clone)]
pub struct FaultFiles {
    root: PathBuf,
    /// The most bytes one archive may have (`limits.requests.maxFaultArchive`).
    max_bytes: u64,
    /// The archives every replica shares; `None` on a single server.
    remote: Option<RemoteFiles>,
}

/// Checks a report id: 8 to 64 of `[A-Za-z0-9_-]`, so it is safe as a file name.
pub fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "fault report id `{id}` must be 8 to 64 letters, digits, `_` or `-`"
        )))
    }
}

impl FaultFiles {
    /// The archives under `root` (created when needed, with leftovers of interrupted
    /// uploads removed), each at most `max_bytes`.
    pub async fn open(root: impl Into<PathBuf>, max_bytes: u64) -> std::io::Result<FaultFiles> {
        let root = root.into();
        let tmp = root.join("tmp");
        match tokio::fs::remove_dir_all(&tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        tokio::fs::create_dir_all(&tmp).await?;
        Ok(FaultFiles {
            root,
            max_bytes,
            remote: None,
        })
    }

    /// The same archives, stored in `remote` too (the object store the replicas share).
    pub fn with_remote(self, remote: Option<RemoteFiles>) -> FaultFiles {
        FaultFiles { remote, ..self }
    }

    /// The archive of report `id` of `distribution` on disk (see [`FaultFiles::local`]).
    pub fn path(&self, distribution: &str, id: &str) -> PathBuf {
        self.root.join(distribution).join(format!("{id}.zip"))
    }

    /// Its key in the object store.
    fn key(distribution: &str, id: &str) -> String {
        format!("{distribution}/{id}.zip")
    }

    /// Whether the archive exists (here, or in the object store).
    pub async fn exists(&self, distribution: &str, id: &str) -> bool {
        if tokio::fs::try_exists(self.path(distribution, id))
            .await
            .unwrap_or(false)
        {
            return true;
        }
        match &self.remote {
            None => false,
            Some(remote) => match remote.exists(&Self::key(distribution, id)).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(%error, fault = %id, "cannot look the fault archive up in the object store");
                    false
                }
            },
        }
    }

    /// The archive on disk, fetched from the object store first when another replica
    /// stored it; `None` when there is none (or it cannot be fetched, said in the log).
    pub async fn local(&self, distribution: &str, id: &str) -> Option<PathBuf> {
        match self.cached(distribution, id).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(error = ?error, fault = %id, "cannot fetch the fault archive from the object store");
                None
            }
        }
    }

    /// [`FaultFiles::local`], with the error.
    async fn cached(&self, distribution: &str, id: &str) -> Result<Option<PathBuf>, ApiError> {
        let path = self.path(distribution, id);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(Some(path));
        }
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let tmp = self.tmp(distribution, id, "fetch");
        let fetched = remote
            .fetch(&Self::key(distribution, id), &tmp)
            .await
            .map_err(ApiError::internal);
        let result = match fetched {
            Ok(true) => match self.publish(&tmp, &path, id).await {
                Ok(()) => Ok(Some(path)),
                // Another request fetched it at the same time: the same bytes.
                Err(_) if path.exists() => Ok(Some(path)),
                Err(error) => Err(error),
            },
            Ok(false) => Ok(None),
            Err(error) => Err(error),
        };
        let _ = tokio::fs::remove_file(&tmp).await;
        result
    }

    fn tmp(&self, distribution: &str, id: &str, what: &str) -> PathBuf {
        self.root.join("tmp").join(format!(
            "{distribution}-{id}-{}-{what}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }

    /// Streams `body` in as the archive of report `id`; `ALREADY_EXISTS` when it exists,
    /// `PAYLOAD_TOO_LARGE` past the limit, the body's own error when it fails. Returns the
    /// size.
    pub async fn store<S, E>(
        &self,
        distribution: &str,
        id: &str,
        mut body: S,
    ) -> Result<u64, ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: Into<ApiError>,
    {
        check_id(id)?;
        let target = self.path(distribution, id);
        if self.exists(distribution, id).await {
            return Err(already_exists(id));
        }
        let tmp = self.tmp(distribution, id, "upload");
        let written = self.write_tmp(&tmp, &mut body).await;
        let result = match written {
            Ok(size) => match self.put_remote(&tmp, distribution, id).await {
                Ok(()) => self.publish(&tmp, &target, id).await.map(|()| size),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        // The temporary name is only ever a link or a leftover: remove it either way.
        let _ = tokio::fs::remove_file(&tmp).await;
        result
    }

    async fn write_tmp<S, E>(&self, tmp: &Path, body: &mut S) -> Result<u64, ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: Into<ApiError>,
    {
        let failed = |e| ApiError::write_failed("storing the fault archive", tmp, e);
        let mut file = tokio::fs::File::create(tmp).await.map_err(failed)?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Into::into)?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(ApiError::payload_too_large(format!(
                    "a fault archive may have at most {} bytes",
                    self.max_bytes
                )));
            }
            file.write_all(&chunk).await.map_err(failed)?;
        }
        file.sync_all().await.map_err(failed)?;
        Ok(size)
    }

    /// Stores the archive in the object store, create-only: `ALREADY_EXISTS` when another
    /// replica stored one under this id first.
    async fn put_remote(&self, tmp: &Path, distribution: &str, id: &str) -> Result<(), ApiError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        match remote.put(&Self::key(distribution, id), tmp, true).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(already_exists(id)),
            Err(error) => Err(ApiError::internal(error)),
        }
    }

    async fn publish(&self, tmp: &Path, target: &Path, id: &str) -> Result<(), ApiError> {
        let dir = target
            .parent()
            .expect("an archive path has a distribution directory");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(ApiError::internal)?;
        match tokio::fs::hard_link(tmp, target).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(already_exists(id)),
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    /// Opens the archive of report `id`, or `NOT_FOUND`.
    pub async fn open_file(
        &self,
        distribution: &str,
        id: &str,
    ) -> Result<(tokio::fs::File, u64), ApiError> {
        check_id(id)?;
        let path = self
            .cached(distribution, id)
            .await?
            .unwrap_or_else(|| self.path(distribution, id));
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::not_found(format!(
                    "fault report `{id}` of `{distribution}` has no archive"
                )));
            }
            Err(e) => return Err(ApiError::internal(e)),
        };
        let size = file.metadata().await.map_err(ApiError::internal)?.len();
        Ok((file, size))
    }

    /// Removes the archive of a report that expired (blocking; called from expiry, on the
    /// lease holder). Its object-store copy is removed by a task of its own; other
    /// replicas' cached copies stay until their data directory is cleared (nothing names
    /// them any more).
    pub fn remove_blocking(&self, distribution: &str, id: &str) {
        let path = self.path(distribution, id);
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), %error, "cannot remove an expired fault archive");
        }
        if let (Some(remote), Ok(runtime)) =
            (self.remote.clone(), tokio::runtime::Handle::try_current())
        {
            let (key, id) = (Self::key(distribution, id), id.to_owned());
            runtime.spawn(async move {
                if let Err(error) = remote.remove(&key).await {
                    tracing::warn!(%error, fault = %id, "cannot remove an expired fault archive from the object store");
                }
            });
        }
    }
}

fn already_exists(id: &str) -> ApiError {
    ApiError::conflict(
        "ALREADY_EXISTS",
        format!("fault report `{id}` already has an archive"),
    )
}
