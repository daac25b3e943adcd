//! [`PrivateFiles`]: files a build adds to an image that must never be in Git (keys,
//! certificates), kept under `<dataDirectory>/private/<kind>/<service>/<path>`.
//!
//! The state repo names them (`privateFiles` in `common.yaml` and `services/<name>.yaml`);
//! administrators upload their content, the builder downloads it. A service's own file
//! wins over common's of the same path. A write goes to a temporary file and is renamed
//! into place, so a reader never sees half a file.
//!
//! With an object store (replicas, `objectStore:`), the files live there, under
//! `private/<kind>/<service>/<path>`, and every replica serves them: each read fetches the
//! file anew (they are small, and another replica may have replaced or removed it), and
//! the local copy is only where it is written on its way.

use std::path::{Component, Path, PathBuf};

use futures::{Stream, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use vupdate_core::service::ServiceName;

use vupdate_images::RemoteFiles;

use crate::http::ApiError;
use crate::images::ImageKind;

/// Tells apart the temporary files of one process's concurrent writes and fetches.
static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The folder of files shared by every service (no service name starts with `_`).
pub const COMMON: &str = "_common";

/// Whose private file: one service's, or common to all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `common.yaml`'s files.
    Common,
    /// One service's files.
    Service(ServiceName),
}

impl Owner {
    /// Reads a path segment: `_common` or a service name.
    pub fn parse(segment: &str) -> Result<Owner, ApiError> {
        if segment == COMMON {
            return Ok(Owner::Common);
        }
        segment.parse().map(Owner::Service).map_err(|e| {
            ApiError::bad_request(format!(
                "path segment `service`: {e} (or `{COMMON}` for common files)"
            ))
        })
    }

    fn dir_name(&self) -> &str {
        match self {
            Owner::Common => COMMON,
            Owner::Service(service) => service.as_str(),
        }
    }
}

/// Checks a private file's path inside an image: relative, no `..`, no empty parts.
pub fn check_path(path: &str) -> Result<PathBuf, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("private file path `{path}` {why}"));
    if path.is_empty() {
        return Err(bad("is empty"));
    }
    let relative = Path::new(path);
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("must not contain `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(bad("must be relative")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(bad("names no file"));
    }
    Ok(clean)
}

/// The private files on disk (or in the object store); cheap to clone.
#[derive(Debug, Clone)]
pub struct PrivateFiles {
    root: PathBuf,
    /// The most bytes one file may have (`limits.requests.maxPrivateFile`).
    max_bytes: u64,
    /// Where the files live when replicas share an object store; `None` on a single server.
    remote: Option<RemoteFiles>,
}

impl PrivateFiles {
    /// The files under `root` (created when needed), each at most `max_bytes`.
    pub async fn open(root: impl Into<PathBuf>, max_bytes: u64) -> std::io::Result<PrivateFiles> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("tmp")).await?;
        Ok(PrivateFiles {
            root,
            max_bytes,
            remote: None,
        })
    }

    /// The same files, kept in `remote` (the object store the replicas share).
    pub fn with_remote(self, remote: Option<RemoteFiles>) -> PrivateFiles {
        PrivateFiles { remote, ..self }
    }

    /// The object-store key of `path` of `owner`.
    fn key(kind: ImageKind, owner: &Owner, path: &Path) -> String {
        let parts: Vec<_> = path
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect();
        format!("{}/{}/{}", kind.as_str(), owner.dir_name(), parts.join("/"))
    }

    fn tmp(&self, owner: &Owner, path: &str) -> PathBuf {
        self.root.join("tmp").join(format!(
            "{}-{}-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            owner.dir_name(),
            hex::encode(path.as_bytes())
        ))
    }

    fn file(&self, kind: ImageKind, owner: &Owner, path: &Path) -> PathBuf {
        self.root
            .join(kind.as_str())
            .join(owner.dir_name())
            .join(path)
    }

    /// Stores `body` as the private file `path` of `owner`, replacing an older content.
    pub async fn store<S, E>(
        &self,
        kind: ImageKind,
        owner: &Owner,
        path: &str,
        mut body: S,
    ) -> Result<u64, ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: Into<ApiError>,
    {
        let relative = check_path(path)?;
        let target = self.file(kind, owner, &relative);
        let dir = target.parent().expect("a private file has a folder");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(ApiError::internal)?;
        let tmp = self.tmp(owner, path);
        let result = async {
            let failed = |e| ApiError::write_failed("storing the private file", &tmp, e);
            let mut file = tokio::fs::File::create(&tmp).await.map_err(failed)?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Into::into)?;
                size += chunk.len() as u64;
                if size > self.max_bytes {
                    return Err(ApiError::payload_too_large(format!(
                        "a private file may have at most {} bytes",
                        self.max_bytes
                    )));
                }
                file.write_all(&chunk).await.map_err(failed)?;
            }
            file.sync_all().await.map_err(failed)?;
            if let Some(remote) = &self.remote {
                remote
                    .put(&Self::key(kind, owner, &relative), &tmp, false)
                    .await
                    .map_err(ApiError::internal)?;
            }
            tokio::fs::rename(&tmp, &target)
                .await
                .map_err(ApiError::internal)?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Opens the private file `path` for a build of `service`: the service's own, else
    /// common's; `NOT_FOUND` when neither exists.
    pub async fn open_for(
        &self,
        kind: ImageKind,
        owner: &Owner,
        path: &str,
    ) -> Result<(tokio::fs::File, u64), ApiError> {
        let relative = check_path(path)?;
        let mut owners = vec![owner.clone()];
        if *owner != Owner::Common {
            owners.push(Owner::Common);
        }
        for owner in owners {
            let candidate = self.file(kind, &owner, &relative);
            if let Some(remote) = &self.remote {
                self.refresh(
                    remote,
                    &candidate,
                    &Self::key(kind, &owner, &relative),
                    path,
                )
                .await?;
            }
            match tokio::fs::File::open(&candidate).await {
                Ok(file) => {
                    let size = file.metadata().await.map_err(ApiError::internal)?.len();
                    return Ok((file, size));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
        Err(ApiError::not_found(format!(
            "no {kind} private file `{path}` for `{}` (nor in `{COMMON}`); upload it with PUT /private-files/{kind}/{}/{path}",
            owner.dir_name(),
            owner.dir_name()
        )))
    }
}

/// One stored private file, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// The service, or `_common`.
    pub service: String,
    /// Its path in the image (`/`-separated).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// When it was stored.
    pub modified: chrono::DateTime<chrono::Utc>,
}

impl PrivateFiles {
    /// Replaces the local copy `local` with the object store's `key` (removes it when the
    /// object store has none: another replica removed it).
    async fn refresh(
        &self,
        remote: &RemoteFiles,
        local: &Path,
        key: &str,
        path: &str,
    ) -> Result<(), ApiError> {
        let tmp = self.tmp(&Owner::Common, path);
        let fetched = remote.fetch(key, &tmp).await;
        let result = match fetched {
            Ok(true) => {
                async {
                    let dir = local.parent().expect("a private file has a folder");
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(ApiError::internal)?;
                    tokio::fs::rename(&tmp, local)
                        .await
                        .map_err(ApiError::internal)
                }
                .await
            }
            Ok(false) => match tokio::fs::remove_file(local).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ApiError::internal(e)),
                _ => Ok(()),
            },
            Err(error) => Err(ApiError::internal(error)),
        };
        let _ = tokio::fs::remove_file(&tmp).await;
        result
    }

    /// Every stored file of `kind`, by service and path.
    pub async fn list(&self, kind: ImageKind) -> Result<Vec<Listed>, ApiError> {
        if let Some(remote) = &self.remote {
            let found = remote
                .list(kind.as_str())
                .await
                .map_err(ApiError::internal)?;
            return Ok(found
                .into_iter()
                .filter_map(|file| {
                    let (service, path) = file.path.split_once('/')?;
                    Some(Listed {
                        service: service.to_owned(),
                        path: path.to_owned(),
                        size: file.size,
                        modified: file.modified,
                    })
                })
                .collect());
        }
        let base = self.root.join(kind.as_str());
        tokio::task::spawn_blocking(move || list_under(&base))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Removes the private file `path` of `owner` (only its own, never common's for a
    /// service); `NOT_FOUND` when there is none.
    pub async fn remove(&self, kind: ImageKind, owner: &Owner, path: &str) -> Result<(), ApiError> {
        let relative = check_path(path)?;
        let not_found = || {
            ApiError::not_found(format!(
                "no {kind} private file `{path}` of `{}`",
                owner.dir_name()
            ))
        };
        let local = tokio::fs::remove_file(self.file(kind, owner, &relative)).await;
        match (&self.remote, local) {
            (Some(remote), _) => match remote.remove(&Self::key(kind, owner, &relative)).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(not_found()),
                Err(error) => Err(ApiError::internal(error)),
            },
            (None, Ok(())) => Ok(()),
            (None, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found()),
            (None, Err(e)) => Err(ApiError::internal(e)),
        }
    }
}

/// The files under `base/<owner>/…`, sorted; an absent `base` lists nothing.
fn list_under(base: &Path) -> std::io::Result<Vec<Listed>> {
    let mut found = Vec::new();
    let owners = match std::fs::read_dir(base) {
        Ok(owners) => owners,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for owner in owners {
        let owner = owner?;
        let service = owner.file_name().to_string_lossy().into_owned();
        let mut stack = vec![owner.path()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    stack.push(entry.path());
                } else if meta.is_file() {
                    let relative = entry.path();
                    let relative = relative.strip_prefix(owner.path()).unwrap_or(&relative);
                    found.push(Listed {
                        service: service.clone(),
                        path: relative
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy())
                            .collect::<Vec<_>>()
                            .join("/"),
                        size: meta.len(),
                        modified: meta.modified()?.into(),
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| (&a.service, &a.path).cmp(&(&b.service, &b.path)));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::check_path;

    #[test]
    fn paths_must_stay_inside_the_image() {
        for (path, ok) in [
            ("keys/api.pem", true),
            ("./keys/api.pem", true),
            ("a", true),
            ("", false),
            ("../etc/passwd", false),
            ("keys/../../x", false),
            ("/etc/passwd", false),
            (".", false),
        ] {
            assert_eq!(check_path(path).is_ok(), ok, "{path}");
        }
    }
}
