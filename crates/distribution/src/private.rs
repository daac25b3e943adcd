//! [`PrivateFiles`]: files a build adds to an image that must never be in Git (keys,
//! certificates), kept under `<dataDirectory>/private/<kind>/<service>/<path>`.
//!
//! The state repo names them (`privateFiles` in `common.yaml` and `services/<name>.yaml`);
//! administrators upload their content, the builder downloads it. A service's own file
//! wins over common's of the same path. A write goes to a temporary file and is renamed
//! into place, so a reader never sees half a file.

use std::path::{Component, Path, PathBuf};

use futures::{Stream, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use vupdate_core::service::ServiceName;

use crate::http::ApiError;
use crate::images::ImageKind;

/// The folder of files shared by every service (no service name starts with `_`).
pub const COMMON: &str = "_common";
/// The most bytes one private file may have.
pub const MAX_PRIVATE_BYTES: u64 = 256 << 20;

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

/// The private files on disk; cheap to clone.
#[derive(Debug, Clone)]
pub struct PrivateFiles {
    root: PathBuf,
}

impl PrivateFiles {
    /// The files under `root` (created when needed).
    pub async fn open(root: impl Into<PathBuf>) -> std::io::Result<PrivateFiles> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("tmp")).await?;
        Ok(PrivateFiles { root })
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
        E: std::fmt::Display,
    {
        let relative = check_path(path)?;
        let target = self.file(kind, owner, &relative);
        let dir = target.parent().expect("a private file has a folder");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(ApiError::internal)?;
        let tmp = self.root.join("tmp").join(format!(
            "{}-{}-{}",
            std::process::id(),
            owner.dir_name(),
            hex::encode(path.as_bytes())
        ));
        let result = async {
            let failed = |e| ApiError::write_failed("storing the private file", &tmp, e);
            let mut file = tokio::fs::File::create(&tmp).await.map_err(failed)?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
                size += chunk.len() as u64;
                if size > MAX_PRIVATE_BYTES {
                    return Err(ApiError::invalid(
                        "PAYLOAD_TOO_LARGE",
                        format!("a private file may have at most {MAX_PRIVATE_BYTES} bytes"),
                    ));
                }
                file.write_all(&chunk).await.map_err(failed)?;
            }
            file.sync_all().await.map_err(failed)?;
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
        let mut candidates = vec![self.file(kind, owner, &relative)];
        if *owner != Owner::Common {
            candidates.push(self.file(kind, &Owner::Common, &relative));
        }
        for candidate in candidates {
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
