//! The vupdate builder: turns a service's build settings into a version image (a zip),
//! and, as a [`job`], hands it to a distribution.
//!
//! A [`Builder`] owns a work directory: `<dir>/developer/services/<service>/{source/<name>,
//! build}` for developer versions and `<dir>/client/services/<service>/settings/<name>` for
//! client versions (which read the developer image where it is); finished zips are written
//! next to those (`<service>-<version>.zip`). The `Builder` itself does not talk to the
//! distribution: callers hand it the build settings (from the state repo), private files as
//! a local directory, a [`BuildLog`] and a cancellation token, and get a [`BuiltImage`] to
//! upload.
//!
//! The caller in production is [`job::run`], what `vupdate builder build-…` runs: the
//! distribution's reconcile loop starts that command as a child process for each build,
//! and the job reads the settings at the build's state commit, downloads private files,
//! builds, uploads the image and records the version through the distribution's public
//! API, as a builder on another machine would.
//!
//! Builds of one service share its directories, so they must run one at a time (the
//! reconcile loop does so); builds of different services may run in parallel. A failed or
//! cancelled build leaves no zip under the version's name; the clones stay for the next
//! build to fetch into.
//!
//! Layout, one module per step:
//! - [`sources`]: clone or fetch repositories with gix, check the branch head out, tag.
//! - [`developer`]: `update.json`, build commands, `copyFiles`, `install.json`, zip, tags.
//! - [`client`]: merge client settings over a developer image's files and repack it.
//! - [`generation`]: which client version a settings change makes (`_N`), pure.
//! - [`image`]: write and repack image zips; `copy` and `process` are internal.
//! - [`log`]: the [`BuildLog`] sink; [`error`]: [`BuilderError`].
//! - [`job`]: a whole build job against a distribution: settings from the state repo,
//!   private files, images and version records through `vupdate-client`.

pub mod client;
mod copy;
pub mod developer;
pub mod error;
pub mod generation;
pub mod image;
pub mod job;
pub mod log;
mod private;
mod process;
pub mod sources;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use client::ClientRequest;
pub use developer::DeveloperRequest;
pub use error::BuilderError;
pub use generation::{NextClient, next_client_version};
pub use image::ZipFile;
pub use log::{BuildLog, MemoryLog};
pub use tokio_util::sync::CancellationToken;

/// How a builder behaves; the defaults suit a distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderOptions {
    /// How long a cancelled build command has after SIGTERM before its group is killed.
    pub kill_grace: Duration,
    /// The most bytes a developer image's files may hold in all, read in a client build.
    pub max_unpacked_bytes: u64,
}

impl Default for BuilderOptions {
    fn default() -> Self {
        BuilderOptions {
            kill_grace: Duration::from_secs(5),
            max_unpacked_bytes: 16 * 1024 * 1024 * 1024,
        }
    }
}

/// Builds developer and client versions in its work directory.
#[derive(Debug, Clone)]
pub struct Builder {
    directory: PathBuf,
    options: BuilderOptions,
}

/// A finished image, ready to upload, and what it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The zip: path, SHA-256, size, content digest.
    pub zip: ZipFile,
    /// The repositories it was built from (sources, or settings for a client version), with
    /// the commit of each.
    pub sources: Vec<SourceCommit>,
}

/// One repository a version was built from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceCommit {
    /// Its name in the build settings.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The commit built, 40 hex digits.
    pub commit: String,
}

impl From<&sources::Checkout> for SourceCommit {
    fn from(checkout: &sources::Checkout) -> Self {
        SourceCommit {
            name: checkout.name.clone(),
            url: checkout.url.clone(),
            commit: checkout.commit.clone(),
        }
    }
}

impl Builder {
    /// A builder working in `directory` (created when needed) with default options.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Builder::with_options(directory, BuilderOptions::default())
    }

    /// A builder working in `directory` with `options`.
    pub fn with_options(directory: impl Into<PathBuf>, options: BuilderOptions) -> Self {
        Builder {
            directory: directory.into(),
            options,
        }
    }

    /// The work directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The options in force.
    pub fn options(&self) -> &BuilderOptions {
        &self.options
    }
}

/// Runs blocking work on the blocking pool, inside the caller's span (so its events carry
/// the build's service and version); a panic there becomes [`BuilderError::Internal`].
pub(crate) async fn blocking<T: Send + 'static>(
    step: &'static str,
    work: impl FnOnce() -> Result<T, BuilderError> + Send + 'static,
) -> Result<T, BuilderError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|error| BuilderError::Internal {
            step,
            reason: error.to_string(),
        })?
}

/// Fails with [`BuilderError::Cancelled`] when `cancel` fired.
pub(crate) fn check_cancelled(cancel: &CancellationToken, step: &str) -> Result<(), BuilderError> {
    if cancel.is_cancelled() {
        Err(BuilderError::Cancelled {
            step: step.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Removes the file at `path`, if it exists.
pub(crate) fn remove_file(path: &Path) -> Result<(), BuilderError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(BuilderError::Io {
            action: "removing",
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Removes `path` and everything under it, if it exists.
pub(crate) fn remove_dir(path: &Path) -> Result<(), BuilderError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(BuilderError::Io {
            action: "removing",
            path: path.to_path_buf(),
            error,
        }),
    }
}
