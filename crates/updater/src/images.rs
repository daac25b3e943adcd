//! Where version images come from: the [`ImageSource`] seam. In the agent it is the
//! distribution's `GET /images/client/{service}/{version}` (with resume and checksum); a
//! [`DirectoryImages`] serves them from a local folder (an offline bundle, or tests).

use std::fmt::Display;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};

use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

/// Fetches the image zip of a client version.
pub trait ImageSource: Send + Sync {
    /// Why an image could not be had.
    type Error: Display + Send;

    /// Puts the image of `service` at `version` at `dest`. `dest` must only ever appear
    /// whole (download next to it, verify, rename), since its existence means "fetched".
    fn fetch(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
        dest: &Path,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether `error` says the source has no image of the version (yet: the distribution
    /// builds a desired version after it is desired), rather than that fetching it failed.
    fn is_absent(error: &Self::Error) -> bool {
        let _ = error;
        false
    }
}

/// Images in a local folder, as `<root>/<service>/<version>.zip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryImages {
    root: PathBuf,
}

impl DirectoryImages {
    /// Images under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirectoryImages { root: root.into() }
    }

    /// Where the image of `service` at `version` is looked for.
    pub fn path(&self, service: &ServiceName, version: &ClientVersion) -> PathBuf {
        self.root
            .join(service.as_str())
            .join(format!("{version}.zip"))
    }
}

/// A copy out of a [`DirectoryImages`] that failed.
#[derive(Debug)]
pub struct CopyError {
    source: PathBuf,
    error: std::io::Error,
}

impl Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot copy `{}`: {}", self.source.display(), self.error)
    }
}

impl ImageSource for DirectoryImages {
    type Error = CopyError;

    async fn fetch(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
        dest: &Path,
    ) -> Result<(), CopyError> {
        let source = self.path(service, version);
        let part = dest.with_extension("zip.part");
        let copy = || -> std::io::Result<()> {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::copy(&source, &part)?;
            fs::File::open(&part)?.sync_all()?;
            fs::rename(&part, dest)
        };
        copy().map_err(|error| CopyError { source, error })
    }

    fn is_absent(error: &CopyError) -> bool {
        // The folder is made first, so only the source can be missing.
        error.error.kind() == std::io::ErrorKind::NotFound
    }
}
