//! The crate's one error type: every message names the file, service, version, field or
//! command a person can act on.

use std::io;
use std::path::PathBuf;

use vupdate_core::macros::MacroError;
use vupdate_core::update::UpdateJsonError;

/// Why an updater operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("cannot {action} `{}`: {error}", path.display())]
    Io {
        /// What was being done (`open`, `write`, `rename`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        error: io::Error,
    },
    /// A zip archive (an image or a fault report) could not be read or written.
    #[error("zip archive `{}`: {error}", path.display())]
    Zip {
        /// The archive.
        path: PathBuf,
        /// The zip library's error.
        error: zip::result::ZipError,
    },
    /// An image holds an entry the updater refuses to unpack.
    #[error("image `{}`: entry `{entry}`: {reason}", image.display())]
    UnsafeImage {
        /// The image zip.
        image: PathBuf,
        /// The entry's name as stored.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An image unpacks to more than the configured cap.
    #[error("image `{}` unpacks to more than {limit_bytes} bytes (maxImageSize)", image.display())]
    ImageTooLarge {
        /// The image zip.
        image: PathBuf,
        /// The cap.
        limit_bytes: u64,
    },
    /// A version has no `install.json` at its root, or it does not parse.
    #[error("`{}`: {message}", path.display())]
    InstallJson {
        /// The file (or where it was expected).
        path: PathBuf,
        /// What is wrong, naming the JSON path of a bad value.
        message: String,
    },
    /// A `%%macro%%` in `install.json` has no value for this service.
    #[error("service `{instance}`, install.json: {error}")]
    Macro {
        /// `service[-role]`.
        instance: String,
        /// The macro error, naming the field.
        error: MacroError,
    },
    /// A program could not be started.
    #[error("service `{instance}`: cannot start `{command}`: {error}")]
    Spawn {
        /// `service[-role]`.
        instance: String,
        /// The program.
        command: String,
        /// The system's error.
        error: io::Error,
    },
    /// An install or post-install command failed its checks.
    #[error("service `{instance}`, {field} `{command}`: {message}")]
    Command {
        /// `service[-role]`.
        instance: String,
        /// Where the command is written, e.g. `installCommands[1]`.
        field: String,
        /// The program.
        command: String,
        /// What went wrong (exit code, output mismatch, timeout).
        message: String,
    },
    /// `updater.yaml` is malformed or a field is invalid.
    #[error("{}{}: {message}", file.display(), location.as_ref().map(|at| format!(":{at}")).unwrap_or_default())]
    Config {
        /// The file.
        file: PathBuf,
        /// `line:column`, when known.
        location: Option<String>,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The install journal of a service cannot be read.
    #[error("install journal `{}`: {message}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The image of a version could not be had (the network seam failed).
    #[error("service `{instance}`: cannot fetch the image of `{version}`: {message}")]
    Fetch {
        /// `service[-role]`.
        instance: String,
        /// The version.
        version: String,
        /// What the image source said.
        message: String,
    },
    /// The image source has no image of a version yet: the distribution builds a version
    /// once it is desired, so an updater can be told of it before its image exists.
    #[error(
        "service `{instance}`: no image of `{version}` yet (the distribution has not built it, or its build failed)"
    )]
    ImageAbsent {
        /// `service[-role]`.
        instance: String,
        /// The version.
        version: String,
    },
    /// A self-update handover failed (the file, the pipes, or the new binary).
    #[error("updater handover `{}`: {message}", path.display())]
    Handover {
        /// The handover file (or the binary, for a probe).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The updater was asked to run the service it is itself.
    #[error(
        "service `{name}` is the updater itself: it updates itself and is not listed among the services it runs"
    )]
    ReservedService {
        /// The reserved name.
        name: String,
    },
    /// The distribution's client could not be set up, or a call to it failed.
    #[error("the distribution at {url}: {error}")]
    Client {
        /// The distribution's URL.
        url: String,
        /// What the client said (in the message, so it is not also a `source`).
        error: vupdate_client::ClientError,
    },
    /// Work moved to a blocking thread ended abnormally (it panicked).
    #[error("{what} stopped: {reason}")]
    Stopped {
        /// What was being done.
        what: String,
        /// What the runtime said.
        reason: String,
    },
    /// Another updater already runs this service directory.
    #[error("service directory `{}` is locked by another updater", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

impl Error {
    /// A closure turning an I/O error into [`Error::Io`] for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            error: source,
        }
    }

    /// A closure turning a zip error into [`Error::Zip`] for `path`.
    pub(crate) fn zip(path: impl Into<PathBuf>) -> impl FnOnce(zip::result::ZipError) -> Error {
        let path = path.into();
        move |source| Error::Zip {
            path,
            error: source,
        }
    }

    /// An [`Error::InstallJson`] from a parse error of the file at `path`.
    pub(crate) fn install_json(path: impl Into<PathBuf>, error: &UpdateJsonError) -> Error {
        Error::InstallJson {
            path: path.into(),
            message: error.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
