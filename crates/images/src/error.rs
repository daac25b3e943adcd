//! [`ImageError`]: why an image store operation failed, naming service, version, path, digest.

use std::path::PathBuf;

use vupdate_core::service::ServiceName;

use super::key::ImageVersion;

/// The image an error is about: service and version (the version tells the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageId {
    /// The service.
    pub service: ServiceName,
    /// The version.
    pub version: ImageVersion,
}

impl ImageId {
    /// Boxed, to keep [`ImageError`] small.
    pub fn boxed(service: &ServiceName, version: &ImageVersion) -> Box<ImageId> {
        Box::new(ImageId {
            service: service.clone(),
            version: version.clone(),
        })
    }
}

impl std::fmt::Display for ImageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} image of `{}` version `{}`",
            self.version.kind(),
            self.service,
            self.version
        )
    }
}

/// Why an image store operation failed. Each variant names what a person would look for:
/// the service and version, the file on disk, the digests involved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file system call failed.
    #[error("image store: cannot {action} `{path}`: {error}")]
    Io {
        /// What was being done (e.g. "create directory").
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The object store (S3) refused or failed a request.
    #[error("image object store: cannot {action} `{key}`: {error}")]
    Remote {
        /// What was being done (e.g. "read ref").
        action: &'static str,
        /// The object's key in the bucket.
        key: String,
        /// The object store's error.
        error: Box<object_store::Error>,
    },
    /// The version already has an image; versions are immutable, so nothing was stored.
    #[error("{image} already exists (`{path}`); versions are immutable, use a new version number")]
    VersionExists {
        /// The service and version.
        image: Box<ImageId>,
        /// Its ref file.
        path: PathBuf,
    },
    /// Another upload of the same version is in progress in this process.
    #[error("{image} is being uploaded already")]
    UploadInProgress {
        /// The service and version.
        image: Box<ImageId>,
    },
    /// The version has no image.
    #[error("{image} does not exist (no `{path}`)")]
    NotFound {
        /// The service and version.
        image: Box<ImageId>,
        /// The ref file that is missing.
        path: PathBuf,
    },
    /// The expected digest given to an upload is not a SHA-256 digest.
    #[error("expected digest `{value}` for {image} is not `sha256:` followed by 64 hex digits")]
    BadExpectedDigest {
        /// The service and version.
        image: Box<ImageId>,
        /// The digest as given.
        value: String,
    },
    /// The uploaded bytes do not have the digest the uploader announced; nothing was stored.
    #[error(
        "upload of {image}: received {size} bytes with digest {actual}, but {expected} was expected; nothing was stored"
    )]
    UploadDigestMismatch {
        /// The service and version.
        image: Box<ImageId>,
        /// The announced digest.
        expected: String,
        /// The digest of what arrived.
        actual: String,
        /// How many bytes arrived.
        size: u64,
    },
    /// The upload passed the configured size limit; its temporary file was removed.
    #[error("upload of {image} is larger than the limit of {limit} bytes; nothing was stored")]
    TooLarge {
        /// The service and version.
        image: Box<ImageId>,
        /// The limit in bytes.
        limit: u64,
    },
    /// An earlier write of this upload failed; the upload must be started again.
    #[error("upload of {image} failed earlier and was discarded")]
    UploadFailed {
        /// The service and version.
        image: Box<ImageId>,
    },
    /// A blob's content does not match its ref (bit rot, truncation, tampering).
    #[error(
        "{image} is corrupt: `{path}` has {actual_size} bytes with digest {actual}, its ref says {expected_size} bytes with digest {expected}"
    )]
    Corrupt {
        /// The service and version.
        image: Box<ImageId>,
        /// The blob file.
        path: PathBuf,
        /// The digest the ref records.
        expected: String,
        /// The size the ref records.
        expected_size: u64,
        /// The digest of the blob now (empty when only the size was checked).
        actual: String,
        /// The size of the blob now.
        actual_size: u64,
    },
    /// A ref points to a blob that is not on disk.
    #[error("{image} is missing: its ref names {digest}, but `{path}` does not exist")]
    BlobMissing {
        /// The service and version.
        image: Box<ImageId>,
        /// The digest the ref records.
        digest: String,
        /// The blob file that is missing.
        path: PathBuf,
    },
    /// A byte range outside the image was asked for (HTTP 416).
    #[error("range {start}-{end} is not satisfiable for {image} of {size} bytes")]
    RangeNotSatisfiable {
        /// The service and version.
        image: Box<ImageId>,
        /// First byte asked for.
        start: u64,
        /// Last byte asked for (inclusive).
        end: u64,
        /// The image's size, for the `Content-Range: bytes */size` answer.
        size: u64,
    },
    /// A ref file cannot be read as JSON `{digest, size}`.
    #[error("image ref `{path}` is damaged: {reason}")]
    BadRef {
        /// The ref file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A blocking file system task panicked or was cancelled.
    #[error("image store: background file task failed: {0}")]
    Task(tokio::task::JoinError),
}

/// `?` on a blocking task's join; the message carries the cause, so it is no `source`.
impl From<tokio::task::JoinError> for ImageError {
    fn from(error: tokio::task::JoinError) -> Self {
        ImageError::Task(error)
    }
}

/// A closure that wraps an I/O error with what was done to which path.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io {
        action,
        path,
        error: source,
    }
}

/// Maps an object store's error to [`ImageError::Remote`] for `action` on `key`.
pub(crate) fn remote_err(
    action: &'static str,
    key: &object_store::path::Path,
) -> impl FnOnce(object_store::Error) -> ImageError {
    let key = key.to_string();
    move |error| ImageError::Remote {
        action,
        key,
        error: Box::new(error),
    }
}
