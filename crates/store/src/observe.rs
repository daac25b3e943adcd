//! [`StoreObserver`]: how long each store operation takes, for a server's metrics.
//!
//! The store wraps its backend in `Timed`, which measures every backend call and hands
//! the operation, the collection and the time to the observer set with
//! [`Store::set_observer`](crate::Store::set_observer), if any. The store itself keeps no
//! figures and knows nothing of any metrics format.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::backend::{Backend, Raw};
use crate::doc::{CollectionDef, Cond, Doc, FieldDef, Find, Val};
use crate::error::StoreError;

/// Receives the duration of every store operation.
pub trait StoreObserver: Send + Sync + 'static {
    /// `operation` (`insert`, `find`, …) on `collection` took `elapsed`; `ok` is false when
    /// it failed.
    fn operation(
        &self,
        operation: &'static str,
        collection: &'static str,
        elapsed: Duration,
        ok: bool,
    );
}

/// A backend whose calls are timed for the observer.
pub(crate) struct Timed {
    inner: Box<dyn Backend>,
    observer: OnceLock<Arc<dyn StoreObserver>>,
}

impl Timed {
    pub(crate) fn new(inner: Box<dyn Backend>) -> Timed {
        Timed {
            inner,
            observer: OnceLock::new(),
        }
    }

    /// Sets the observer once; later calls are ignored and return false.
    pub(crate) fn set_observer(&self, observer: Arc<dyn StoreObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    fn seen<T>(
        &self,
        operation: &'static str,
        def: &CollectionDef,
        start: Instant,
        result: &Result<T, StoreError>,
    ) {
        if let Some(observer) = self.observer.get() {
            observer.operation(operation, def.name, start.elapsed(), result.is_ok());
        }
    }
}

#[async_trait]
impl Backend for Timed {
    fn prepare(&self, def: &'static CollectionDef, docs: &mut [Doc]) {
        self.inner.prepare(def, docs);
    }

    async fn insert(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let start = Instant::now();
        let result = self.inner.insert(def, docs, now).await;
        self.seen("insert", def, start, &result);
        result
    }

    async fn put(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let start = Instant::now();
        let result = self.inner.put(def, docs, now).await;
        self.seen("put", def, start, &result);
        result
    }

    async fn put_if(
        &self,
        def: &'static CollectionDef,
        doc: Doc,
        expected: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let start = Instant::now();
        let result = self.inner.put_if(def, doc, expected, now).await;
        self.seen("put", def, start, &result);
        result
    }

    async fn archive(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let start = Instant::now();
        let result = self.inner.archive(def, filter, now).await;
        self.seen("archive", def, start, &result);
        result
    }

    async fn find(&self, def: &'static CollectionDef, find: Find) -> Result<Vec<Raw>, StoreError> {
        let start = Instant::now();
        let result = self.inner.find(def, find).await;
        self.seen("find", def, start, &result);
        result
    }

    async fn count(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError> {
        let start = Instant::now();
        let result = self.inner.count(def, filter).await;
        self.seen("count", def, start, &result);
        result
    }

    async fn distinct(
        &self,
        def: &'static CollectionDef,
        field: &'static FieldDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<String>, StoreError> {
        let start = Instant::now();
        let result = self.inner.distinct(def, field, filter).await;
        self.seen("distinct", def, start, &result);
        result
    }

    async fn history(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<Raw>, StoreError> {
        let start = Instant::now();
        let result = self.inner.history(def, filter).await;
        self.seen("history", def, start, &result);
        result
    }

    async fn restore(
        &self,
        def: &'static CollectionDef,
        sequence: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let start = Instant::now();
        let result = self.inner.restore(def, sequence, now, window_start).await;
        self.seen("restore", def, start, &result);
        result
    }

    async fn update(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        set: Vec<(&'static FieldDef, Val)>,
    ) -> Result<u64, StoreError> {
        let start = Instant::now();
        let result = self.inner.update(def, filter, set).await;
        self.seen("update", def, start, &result);
        result
    }

    async fn purge(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError> {
        let start = Instant::now();
        let result = self.inner.purge(def, filter).await;
        self.seen("purge", def, start, &result);
        result
    }

    async fn purge_some(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        max_rows: usize,
    ) -> Result<u64, StoreError> {
        let start = Instant::now();
        let result = self.inner.purge_some(def, filter, max_rows).await;
        self.seen("purge", def, start, &result);
        result
    }

    async fn index_text(
        &self,
        def: &'static CollectionDef,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        let start = Instant::now();
        let result = self.inner.index_text(def, max_rows).await;
        self.seen("index text", def, start, &result);
        result
    }

    async fn merge_text(&self, def: &'static CollectionDef) -> Result<bool, StoreError> {
        let start = Instant::now();
        let result = self.inner.merge_text(def).await;
        self.seen("merge text", def, start, &result);
        result
    }

    async fn prune_text(&self, def: &'static CollectionDef) -> Result<bool, StoreError> {
        let start = Instant::now();
        let result = self.inner.prune_text(def).await;
        self.seen("prune text", def, start, &result);
        result
    }

    async fn purge_history(
        &self,
        def: &'static CollectionDef,
        before: DateTime<Utc>,
    ) -> Result<Vec<Raw>, StoreError> {
        let start = Instant::now();
        let result = self.inner.purge_history(def, before).await;
        self.seen("purge_history", def, start, &result);
        result
    }

    // Leases are a few small writes a second at most: not worth a figure of their own.
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        ask: crate::lease::Ask,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<crate::lease::Lease>, StoreError> {
        self.inner.lease(name, holder, ask, now, until).await
    }

    async fn read_lease(&self, name: &str) -> Result<Option<crate::lease::Lease>, StoreError> {
        self.inner.read_lease(name).await
    }

    async fn record_in_force(
        &self,
        record: &crate::in_force::CommitInForce,
    ) -> Result<(), StoreError> {
        self.inner.record_in_force(record).await
    }

    async fn read_in_force(
        &self,
        distribution: &str,
    ) -> Result<Option<crate::in_force::CommitInForce>, StoreError> {
        self.inner.read_in_force(distribution).await
    }
}
