//! [`ServerError`]: why a distribution could not start or stopped serving.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::auth::AuthError;
use crate::images::ImageError;
use crate::tasks::TaskError;
use crate::watcher::WatchError;

/// Why a distribution could not start or stopped serving; each names the part.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}: {error}", path.display())]
    DataDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The data directory cannot be locked for this server (another one runs on it).
    #[error("cannot take the data directory {}: {error}", path.display())]
    DataDirectoryLock {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The store cannot be opened.
    #[error("cannot open the store: {0}")]
    Store(vupdate_store::StoreError),
    /// The thread log uploads are worked on cannot be started.
    #[error("cannot start the log upload thread: {0}")]
    LogUploads(std::io::Error),
    /// The JWT key or the first accounts cannot be set up.
    #[error("cannot set up accounts: {0}")]
    Auth(AuthError),
    /// The push webhook's secret cannot be read or made.
    #[error("cannot set up the push webhook: {0}")]
    Webhook(crate::webhook::WebhookSecretError),
    /// The image store cannot be opened.
    #[error("cannot open the image store: {0}")]
    Images(ImageError),
    /// The object store's credentials cannot be read.
    #[error("cannot use the object store (objectStore.s3): {0}")]
    ObjectStore(String),
    /// An older server's enrolment token file cannot be taken into the store.
    #[error("cannot take over the enrolment tokens: {0}")]
    Enrolments(crate::enrolment::EnrolmentError),
    /// The secrets folder cannot be set up.
    #[error("cannot open the secrets: {0}")]
    Secrets(crate::secrets::SecretError),
    /// The self-update record cannot be read.
    #[error("cannot read the self-update record: {0}")]
    SelfUpdate(crate::self_update::SelfUpdateError),
    /// Interrupted tasks cannot be recovered.
    #[error("cannot recover the tasks of the previous run: {0}")]
    Tasks(TaskError),
    /// The state repo cannot be opened or cloned.
    #[error("cannot follow the state repo: {0}")]
    Watch(WatchError),
    /// The listen address cannot be bound.
    #[error(
        "cannot listen on {address}: {error} (is another server running there? set `listen` in the config)"
    )]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("cannot use the TLS certificate {} and key {}: {reason}", certificate.display(), key.display())]
    Tls {
        /// The certificate chain file.
        certificate: PathBuf,
        /// The private key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// Serving stopped with an I/O error.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// An access token of `tokenFiles` cannot be issued or written.
    #[error("tokenFiles.{account}: cannot write an access token to {}: {message}", path.display())]
    TokenFile {
        /// The account.
        account: String,
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A background task was lost.
    #[error("a start-up task stopped: {0}")]
    Join(String),
}
