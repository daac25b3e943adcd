//! [`BuilderError`]: why a build failed, naming the step, file, repository or command.

use std::path::{Path, PathBuf};

use vupdate_core::macros::MacroError;
use vupdate_core::settings::SettingsError;
use vupdate_core::update::UpdateJsonError;

/// Why a developer or client build failed. Every message names what a person would look at:
/// the repository and URL, the file and JSON path, the build step and command.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    /// A file or directory operation failed.
    #[error("{action} `{}`: {error}", path.display())]
    Io {
        /// What was being done (`creating directory`, `reading`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The system error.
        error: std::io::Error,
    },
    /// The build settings cannot be used as given.
    #[error("invalid build settings: {0}")]
    Settings(String),
    /// Cloning or fetching a repository failed.
    #[error("repository `{name}` ({url}, branch `{branch}`): {step} failed: {reason}")]
    Git {
        /// The repository's directory name in the build settings.
        name: String,
        /// Its URL.
        url: String,
        /// The branch built from.
        branch: String,
        /// What was being done (`clone`, `fetch`, `checkout`, `submodule update`).
        step: &'static str,
        /// What git or gix said.
        reason: String,
    },
    /// A repository's `subDirectory` is not in the checked-out commit.
    #[error(
        "repository `{name}`: subDirectory `{sub_directory}` does not exist at commit {commit}"
    )]
    SubDirectoryMissing {
        /// The repository's name.
        name: String,
        /// The missing folder.
        sub_directory: String,
        /// The commit checked out.
        commit: String,
    },
    /// The first source repository has no `update.json`.
    #[error(
        "`{}` does not exist: the first source repository must hold the service's update.json",
        path.display()
    )]
    UpdateJsonMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `update.json` does not parse or breaks a rule.
    #[error("`{}`: {error}", path.display())]
    UpdateJson {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (JSON path, line, column).
        error: UpdateJsonError,
    },
    /// `update.json` has no entry for the service being built.
    #[error("`{}` has no entry for service `{service}` (it describes: {described})", path.display())]
    ServiceNotDescribed {
        /// The file.
        path: PathBuf,
        /// The service built.
        service: String,
        /// The services it does describe, comma-separated.
        described: String,
    },
    /// A macro in a build step has no value.
    #[error("{step}: {error}")]
    Macro {
        /// The step (`buildCommands[1]`, `install.json`).
        step: String,
        /// The macro error, naming the field and the macro.
        error: MacroError,
    },
    /// A build command could not be started.
    #[error("{step}: cannot run `{command}` in `{}`: {error}", directory.display())]
    Spawn {
        /// The step (`buildCommands[0]`).
        step: String,
        /// The command line.
        command: String,
        /// The directory it was to run in.
        directory: PathBuf,
        /// The system error.
        error: std::io::Error,
    },
    /// A build command ended with another exit code than its `exitCode`.
    #[error(
        "{step}: `{command}` exited with {status}, expected exit code {expected}; output ends with:\n{tail}"
    )]
    ExitCode {
        /// The step.
        step: String,
        /// The command line.
        command: String,
        /// How it ended (`exit code 3`, `signal 9`).
        status: String,
        /// The `exitCode` asked for.
        expected: i32,
        /// The last lines of its output.
        tail: String,
    },
    /// A build command's output does not match its `outputMatch`.
    #[error(
        "{step}: the output of `{command}` does not match outputMatch `{pattern}`; output ends with:\n{tail}"
    )]
    OutputMismatch {
        /// The step.
        step: String,
        /// The command line.
        command: String,
        /// The pattern.
        pattern: String,
        /// The last lines of its output.
        tail: String,
    },
    /// A `copyFiles` entry names a source that does not exist or leaves the source directory.
    #[error("copyFiles[{index}]: sourceFile `{source_file}` {problem}")]
    CopySource {
        /// The entry's index in `copyFiles`.
        index: usize,
        /// The `sourceFile` as written.
        source_file: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A private file named in the build settings is not in the private files directory.
    #[error(
        "private file `{path}` is named in the build settings but missing from `{}`",
        directory.display()
    )]
    PrivateFileMissing {
        /// The path inside the image.
        path: String,
        /// The directory the files were given in.
        directory: PathBuf,
    },
    /// Copied files already hold `install.json`, which the `install` section would replace.
    #[error(
        "copyFiles put an `install.json` in the image, but update.json has an `install` section that is written there: remove one"
    )]
    InstallJsonConflict,
    /// Writing the image zip failed.
    #[error("writing image `{}`: {reason}", path.display())]
    Zip {
        /// The zip file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A developer image cannot be unpacked safely.
    #[error("unpacking image `{}`: {reason}", path.display())]
    Unpack {
        /// The zip file.
        path: PathBuf,
        /// What is wrong (unsafe entry name, too large, corrupt).
        reason: String,
    },
    /// The client settings do not merge.
    #[error("merging client settings ({overlays}): {error}")]
    Merge {
        /// Which repository each overlay number in the message is.
        overlays: String,
        /// What core's merge refused, naming the overlay, file and position (boxed: it is
        /// large, and every other result would carry its size).
        error: Box<SettingsError>,
    },
    /// Tagging a source repository or pushing the tag failed.
    #[error("tagging repository `{name}` ({url}) with `{tag}`: {reason}")]
    Tag {
        /// The repository's name.
        name: String,
        /// Its URL (where the tag is pushed).
        url: String,
        /// The tag.
        tag: String,
        /// What git said.
        reason: String,
    },
    /// The build was cancelled; nothing was left behind.
    #[error("the build was cancelled during {step}")]
    Cancelled {
        /// The step running when it was cancelled.
        step: String,
    },
    /// A step of a build job ([`crate::job`]) failed; `source` says why.
    #[error("step `{step}`")]
    Step {
        /// The step, e.g. `building` or `uploading the image`.
        step: &'static str,
        /// What went wrong in it.
        #[source]
        source: Box<BuilderError>,
    },
    /// What a build job was asked for cannot be built from the state it reads (a service
    /// that is not declared, or has no developer settings).
    #[error("{reason}")]
    Request {
        /// What is wrong, naming the service and the state commit.
        reason: String,
    },
    /// The distribution refused a call of a build job, or could not be reached.
    #[error(transparent)]
    Api(#[from] vupdate_client::ClientError),
    /// A private file of the build could not be downloaded.
    #[error("private file `{path}`")]
    PrivateFile {
        /// The file's path inside the image.
        path: String,
        /// Why.
        source: vupdate_client::ClientError,
    },
    /// The state repo could not be read at the build's commit.
    #[error(transparent)]
    State(#[from] vupdate_state::StateError),
    /// A blocking step ended abnormally (a panic in a worker thread).
    #[error("{step} ended abnormally: {reason}")]
    Internal {
        /// The step.
        step: &'static str,
        /// What the runtime said.
        reason: String,
    },
}

impl BuilderError {
    /// Whether the error comes from what the caller asked for (a service or commit the
    /// state repo does not have) rather than from the machine, the network or the build.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            BuilderError::Request { .. } => true,
            BuilderError::State(error) => error.is_invalid_input(),
            BuilderError::Step { source, .. } => source.is_invalid_input(),
            _ => false,
        }
    }

    /// The message with every cause after it, `: `-separated (what `{:#}` of an
    /// `anyhow::Error` prints), for a log line.
    pub fn chain(&self) -> String {
        vupdate_core::error_chain::Chain(self).to_string()
    }

    /// A [`BuilderError::Io`] maker for `map_err` on a walk of `root` (the entry that
    /// failed, or `root`).
    pub(crate) fn walk(root: &Path) -> impl FnOnce(walkdir::Error) -> BuilderError + '_ {
        move |error| BuilderError::Io {
            action: "reading",
            path: error.path().unwrap_or(root).to_path_buf(),
            error: error.into(),
        }
    }

    /// An [`BuilderError::Io`] maker for `map_err`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> BuilderError {
        let path = path.into();
        move |source| BuilderError::Io {
            action,
            path,
            error: source,
        }
    }
}
