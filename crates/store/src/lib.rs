//! The vupdate store: accounts, developer and client version records, build states, tasks,
//! log records, service states and fault reports, kept in an embedded SQLite file (the
//! default: a fresh data directory needs no set-up) or in MongoDB (chosen by a connection
//! URL, with an optional second connection for log records).
//!
//! # Layout
//!
//! - [`open`] takes a [`StoreConfig`] and returns a [`Store`], the one type callers hold
//!   (cheap to clone). Its handles, one per collection ([`Store::accounts`],
//!   [`Store::logs`], …), are the whole API; records and query structs are in [`model`].
//! - Below the handles, one crate-private `Backend` trait of generic document operations
//!   (insert, replace, archive, find, count, distinct, history, restore, purge) has two
//!   implementations: `sqlite` (rusqlite, WAL, blocking calls on tokio's blocking pool) and
//!   `mongo` (the official driver). Records declare the fields queries use once (`doc`),
//!   so filters, ordering and history rules are defined once and both backends index
//!   exactly those fields. This is why the API is a concrete `Store` over `dyn Backend`
//!   rather than `dyn Store`: the semantics live above the trait, where they cannot drift.
//! - [`in_force`]: each distribution's commit in force, recorded by its lease holder and
//!   read by the other replicas ([`Store::commits_in_force`]).
//! - [`lease`]: named leases with fencing tokens ([`Store::leases`]), so one of several
//!   processes on one store runs the work that must run once.
//! - [`backup`]: a consistent copy of a SQLite store while it is in use.
//! - [`feed`]: live log following; [`expiry`] and [`schedule`]: what is removed and when;
//!   [`clock`]: where "now" comes from.
//! - `tests/store/conformance/` is one suite of cases, run against both backends by
//!   `tests/store/sqlite.rs` and `tests/store/mongo.rs` (one test binary).
//!
//! # History
//!
//! Every document has `_sequence` (unique and increasing per collection: SQLite reserves it
//! from a counter table in the same transaction as the write; MongoDB from a counter
//! document with `$inc`; so it survives restarts and is shared by processes), `_modifyTime`
//! and `_archiveTime`. Current documents and archived versions live apart
//! (`accounts` / `accounts_history`): a replace moves the old version to history, archived
//! now, and writes the new one with a new `_sequence`; a delete moves the document to
//! history. History of a document = its archived versions plus the current one, by
//! `_sequence`. An archived version can be restored for [`ARCHIVE_RETENTION`] (7 days): it
//! becomes current again with a new `_sequence`, and the version it displaces is archived.
//! Keeping history apart makes "one current document per key" a plain unique index and lets
//! MongoDB, which has no transactions on a standalone server, write the history copy first
//! so that a crash in between never loses a version. Log records are append-only and
//! service states keep no history (they are replaced every few seconds).
//!
//! # Expiry
//!
//! [`Store::expire`] applies an [`ExpiryPolicy`] at an explicit time: service and task logs
//! by age, ended tasks by age, fault reports by age and by count (returned, so the caller
//! deletes their archives), dead service states, and archived versions past the restore
//! window. [`schedule::run_expiry`] runs it on a 5-field crontab [`Schedule`].
//!
//! # Live feed
//!
//! [`Logs::insert`] broadcasts each stored batch in process; [`Logs::follow`] joins that
//! feed with a replay from the store, deduplicated by `_sequence`, so a follower sees every
//! matching record once and in order, and re-reads from the store if it falls behind.
//! Text search is one definition everywhere (case-insensitive substring,
//! Unicode lower-casing), in queries and in the feed alike.
//!
//! # Upgrades
//!
//! A SQLite file of an older schema gets the columns of fields declared since when it is
//! opened (values its records held in the body move into them); MongoDB needs nothing.
//! Records whose meaning changed are rewritten by an explicit call that knows what the
//! store cannot: [`Store::split_legacy_roles`] splits the `name-role` service names of
//! older updaters, given the declared services. Its progress is kept per collection
//! (`upgrade_marks`), so each record is rewritten once.

pub mod backup;
pub mod clock;
pub mod config;
pub mod error;
pub mod expiry;
pub mod feed;
pub mod in_force;
pub mod lease;
pub mod model;
pub mod observe;
pub mod probe;
pub mod schedule;

mod backend;
mod body;
mod doc;
mod mongo;
mod sqlite;
mod store;

pub use backup::backup_sqlite;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{MongoLogs, StoreConfig};
pub use error::StoreError;
pub use expiry::{ExpiryPolicy, ExpiryReport};
pub use feed::{FollowFrom, LogFollower};
pub use in_force::CommitInForce;
pub use lease::Lease;
pub use model::Stored;
pub use observe::StoreObserver;
pub use probe::{StoreProbe, probe};
pub use schedule::{Schedule, ScheduleError, run_expiry};
pub use store::{
    ARCHIVE_RETENTION, Accounts, BuildStates, ClientVersions, CommitsInForce, ConsumerReports,
    DeveloperVersions, EnrolmentEntry, EnrolmentTokens, FaultReports, KnownBadVersions, Leases,
    Logs, RoleSplit, Secrets, ServiceStates, Store, Tasks,
};

/// Every collection, for schema creation and history expiry.
pub(crate) const COLLECTIONS: &[&doc::CollectionDef] = &[
    &model::accounts::ACCOUNTS,
    &model::versions::DEVELOPER_VERSIONS,
    &model::versions::CLIENT_VERSIONS,
    &model::builds::BUILD_STATES,
    &model::tasks::TASKS,
    &model::logs::LOG_RECORDS,
    &model::states::SERVICE_STATES,
    &model::faults::FAULT_REPORTS,
    &model::known_bad::KNOWN_BAD_VERSIONS,
    &model::enrolments::ENROLMENT_TOKENS,
    &model::consumers::CONSUMER_INSTALLED,
    &model::secrets::SECRETS,
    &model::enrolments::ENROLMENT_USES,
    &model::rollouts::ROLLOUTS,
    &model::upgrades::UPGRADE_MARKS,
];

/// Opens the store `config` describes: creates the SQLite file, its directory and schema
/// when missing, or connects to MongoDB and creates the indexes. A corrupt SQLite file or
/// an unreachable server is one [`StoreError`] naming the path or URL.
pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
    match config {
        StoreConfig::Sqlite { path } => {
            let path = path.clone();
            let description = format!("sqlite:{}", path.display());
            let backend = tokio::task::spawn_blocking(move || {
                sqlite::SqliteBackend::open(&path, COLLECTIONS)
            })
            .await
            .map_err(|e| StoreError::Task {
                collection: "store",
                reason: e.to_string(),
            })??;
            let store = Store::new(Box::new(backend), description);
            store.start_text_index();
            Ok(store)
        }
        StoreConfig::Mongo {
            url,
            database,
            logs,
        } => {
            let main = mongo::MongoTarget { url, database };
            let logs_target = logs.as_ref().map(|l| mongo::MongoTarget {
                url: &l.url,
                database: &l.database,
            });
            let description = format!("mongodb:{} ({database})", mongo::redact_url(url));
            let backend = mongo::MongoBackend::open(main, logs_target, COLLECTIONS).await?;
            Ok(Store::new(Box::new(backend), description))
        }
    }
}
