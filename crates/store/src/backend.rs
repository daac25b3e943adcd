//! The interface both backends implement: generic documents in named collections, each
//! with an optional history collection. The typed API in [`crate::store`] is built on it
//! once, so the backends cannot differ in what a query, an update or an expiry means.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::body::Body;
use crate::doc::{CollectionDef, Cond, Doc, FieldDef, Find, Val};
use crate::error::StoreError;
use crate::in_force::CommitInForce;
use crate::lease::{Ask, Lease};

/// A stored document as read back: history fields and the record's body.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    /// `_sequence`.
    pub sequence: i64,
    /// `_modifyTime`.
    pub modify_time: DateTime<Utc>,
    /// `_archiveTime`, for archived versions.
    pub archive_time: Option<DateTime<Utc>>,
    /// The record.
    pub body: Body,
}

/// Generic document storage. Every write gives each written document a new `_sequence`
/// from the collection's persistent counter and `_modifyTime = now`.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Does on the caller's task what a later write of `docs` can do before the writer's
    /// turn (SQLite: each body's text, [`Doc::prepared`]); nothing by default.
    fn prepare(&self, _def: &'static CollectionDef, _docs: &mut [Doc]) {}

    /// Adds new documents, all or nothing; [`StoreError::Duplicate`] when a key exists.
    async fn insert(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

    /// Adds or replaces documents by key, in order; a replaced version moves to the history
    /// collection (archived `now`) when the collection keeps history.
    async fn put(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

    /// Replaces the current version of `doc`'s key only while it is still version
    /// `expected` (`None`: while there is none), as [`Backend::put`] does; returns the new
    /// `_sequence`, or `None`, writing nothing, when another write came first.
    async fn put_if(
        &self,
        def: &'static CollectionDef,
        doc: Doc,
        expected: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;

    /// Deletes the current documents matching `filter`, moving them to the history
    /// collection (archived `now`) when the collection keeps history. Returns how many.
    async fn archive(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Current documents.
    async fn find(&self, def: &'static CollectionDef, find: Find) -> Result<Vec<Raw>, StoreError>;

    /// How many current documents match.
    async fn count(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError>;

    /// The distinct values of a text or text-list field among the matching current
    /// documents, sorted.
    async fn distinct(
        &self,
        def: &'static CollectionDef,
        field: &'static FieldDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<String>, StoreError>;

    /// Archived versions matching `filter`, oldest first.
    async fn history(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<Raw>, StoreError>;

    /// Makes the archived version `sequence` current again (as a new version), archiving the
    /// current one with the same key, if any. Refused when it was archived before
    /// `window_start`. Returns the new `_sequence`.
    async fn restore(
        &self,
        def: &'static CollectionDef,
        sequence: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Sets declared fields, none of them a key field, of the current documents matching
    /// `filter`, in place: `_sequence` and `_modifyTime` stay, since the record is the same
    /// (e.g. the same values spelled as a newer build spells them). Returns how many.
    async fn update(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        set: Vec<(&'static FieldDef, Val)>,
    ) -> Result<u64, StoreError>;

    /// Removes matching current documents for good (expiry). Returns how many.
    async fn purge(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError>;

    /// Removes at most `max_rows` of the matching current documents for good (one step of
    /// an expiry that lets writers in between); a backend may remove more. Returns how many.
    async fn purge_some(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        max_rows: usize,
    ) -> Result<u64, StoreError> {
        let _ = max_rows;
        self.purge(def, filter).await
    }

    /// Adds at most `max_rows` of the rows not yet in the text index of `def`'s
    /// [`CollectionDef::text`] field to it, oldest first; returns how many. A backend
    /// without such an index (MongoDB: its search is a scan) has nothing to do.
    async fn index_text(
        &self,
        def: &'static CollectionDef,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        let _ = (def, max_rows);
        Ok(0)
    }

    /// Takes one bounded step of dropping the parts of `def`'s text index whose documents
    /// have all been removed (after an expiry); returns whether it took one, so a caller
    /// repeats it until it returns false.
    /// A backend without such an index has nothing to do.
    async fn prune_text(&self, def: &'static CollectionDef) -> Result<bool, StoreError> {
        let _ = def;
        Ok(false)
    }

    /// Takes one bounded step of making the text index of `def` quicker to search (on
    /// SQLite: merging a finished day's pieces); returns whether it took one, so a caller
    /// repeats it until it returns false. A backend without such an index has nothing to do.
    async fn merge_text(&self, def: &'static CollectionDef) -> Result<bool, StoreError> {
        let _ = def;
        Ok(false)
    }

    /// Removes archived versions archived before `time` for good, returning them.
    async fn purge_history(
        &self,
        def: &'static CollectionDef,
        before: DateTime<Utc>,
    ) -> Result<Vec<Raw>, StoreError>;

    /// Applies [`crate::lease::decide`] to lease `name` atomically: the stored lease is read
    /// and replaced by the decision in one step no other process can come between. Returns
    /// the lease as granted, or `None` when it was refused (nothing written).
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        ask: Ask,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError>;

    /// Lease `name` as stored, expired or not; `None` when it was never taken.
    async fn read_lease(&self, name: &str) -> Result<Option<Lease>, StoreError>;

    /// Replaces the record of `record.distribution`'s commit in force with `record`.
    async fn record_in_force(&self, record: &CommitInForce) -> Result<(), StoreError>;

    /// `distribution`'s commit in force as last recorded; `None` before the first record.
    async fn read_in_force(&self, distribution: &str) -> Result<Option<CommitInForce>, StoreError>;
}
