//! The store's one error type: every variant names the path, URL, collection, key or
//! sequence a person needs to act on it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite file could not be opened or is not a vupdate store (corrupt, not a
    /// database, unreadable, or its directory could not be created).
    #[error("cannot open the SQLite store {path}: {reason}")]
    OpenSqlite {
        /// The database file.
        path: PathBuf,
        /// What went wrong, with the cause.
        reason: String,
    },
    /// The MongoDB server could not be reached or refused the start-up commands.
    #[error("cannot use MongoDB at {url} (database `{database}`): {error}")]
    ConnectMongo {
        /// The connection URL, password removed.
        url: String,
        /// The database name.
        database: String,
        /// The driver's error.
        error: Box<mongodb::error::Error>,
    },
    /// A SQLite statement failed after start-up.
    #[error("SQLite store {path}: {operation} on `{collection}` failed: {error}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The collection (table).
        collection: &'static str,
        /// What was being done.
        operation: &'static str,
        /// The cause.
        error: rusqlite::Error,
    },
    /// A MongoDB command failed after start-up.
    #[error("MongoDB {operation} on `{collection}` failed: {error}")]
    Mongo {
        /// The collection.
        collection: String,
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        error: Box<mongodb::error::Error>,
    },
    /// A document with this key already exists; nothing of the batch was written.
    #[error("{collection} `{key}` already exists; nothing of the batch was written")]
    Duplicate {
        /// The collection.
        collection: &'static str,
        /// The key, rendered `a/b/c`.
        key: String,
    },
    /// No document with this key or sequence exists.
    #[error("{collection} `{key}` not found")]
    NotFound {
        /// The collection.
        collection: &'static str,
        /// The key or `#sequence`.
        key: String,
    },
    /// A record of a batch is invalid; nothing of the batch was written.
    #[error(
        "invalid {collection} record at position {index} of the batch: {reason}; nothing of the batch was written"
    )]
    Invalid {
        /// The collection.
        collection: &'static str,
        /// Its position in the batch (0 for single writes).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The archived version is past the restore window.
    #[error(
        "{collection} version #{sequence} was archived at {archived}, more than {window_days} days ago, and can no longer be restored"
    )]
    RestoreExpired {
        /// The collection.
        collection: &'static str,
        /// The archived version's `_sequence`.
        sequence: i64,
        /// When it was archived.
        archived: DateTime<Utc>,
        /// The restore window in days.
        window_days: i64,
    },
    /// The document changed while it was being replaced (another writer); retry.
    #[error("{collection} `{key}` was changed by another writer at the same time; retry")]
    Conflict {
        /// The collection.
        collection: &'static str,
        /// The key.
        key: String,
    },
    /// A stored document cannot be read back as its record type.
    #[error("{collection} document #{sequence} cannot be read: {reason}")]
    Corrupt {
        /// The collection.
        collection: &'static str,
        /// Its `_sequence`.
        sequence: i64,
        /// The decoding error.
        reason: String,
    },
    /// A blocking store task panicked or was cancelled.
    #[error("a store task for `{collection}` did not finish: {reason}")]
    Task {
        /// The collection.
        collection: &'static str,
        /// The join error.
        reason: String,
    },
    /// A write only a lease's holder may make was refused: the writer's lease expired or
    /// was taken over (its fencing token is not the stored one).
    #[error("lease `{name}` with token {token} is no longer held ({now}); the write was refused")]
    LeaseLost {
        /// The lease.
        name: String,
        /// The writer's fencing token.
        token: i64,
        /// Who holds it now.
        now: String,
    },
    /// The writer is behind: so many records of the collection wait to be written that this
    /// batch was not taken (nothing of it was written); its sender keeps it and sends it
    /// again later.
    #[error(
        "the store is behind writing {collection}: {waiting} records wait to be written, so this batch was not taken (nothing of it was written); send it again in a moment"
    )]
    Busy {
        /// The collection.
        collection: &'static str,
        /// How many records were waiting.
        waiting: usize,
    },
    /// The store was closed while a follower was waiting for log records.
    #[error("the store was closed while following log records")]
    Closed,
}

impl StoreError {
    /// The database file, when the operation failed because its disk is full (SQLite's
    /// `SQLITE_FULL`): nothing of the operation was written, and reads still work.
    pub fn disk_full(&self) -> Option<&std::path::Path> {
        match self {
            StoreError::Sqlite { path, error, .. }
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
            {
                Some(path)
            }
            _ => None,
        }
    }
}
