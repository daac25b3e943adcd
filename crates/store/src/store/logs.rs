//! The log records handle: batch inserts that feed followers, queries and value lists.

use chrono::{DateTime, Utc};
use vupdate_core::service::{Role, ServiceName};

use crate::doc::{Cond, Find, SortKey, Val};
use crate::error::StoreError;
use crate::feed::{FollowFrom, LogFollower};
use crate::model::Stored;
use crate::model::logs::{LOG_RECORDS, LogField, LogQuery, LogRecord, ROLE, TIME};
use crate::store::Store;

/// Log records: append-only, newest first, with a live feed.
#[derive(Debug, Clone, Copy)]
pub struct Logs<'a> {
    store: &'a Store,
}

impl<'a> Logs<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Logs { store }
    }

    /// Stores a batch, all or nothing (every record is validated first), and passes it to
    /// followers. Returns the records' `_sequence`s, in order. Batches inserted at the
    /// same time share one transaction (see `group_commit`).
    pub async fn insert(&self, records: Vec<LogRecord>) -> Result<Vec<i64>, StoreError> {
        let committed = super::group_commit::submit(self.store, records, Store::docs).await?;
        Ok(committed.sequences)
    }

    /// The matching records, newest first (by time, then `_sequence`), at most `query.limit`.
    pub async fn query(&self, query: &LogQuery) -> Result<Vec<Stored<LogRecord>>, StoreError> {
        self.store.find_records(query.newest_first()).await
    }

    /// The matching records in storage order (`_sequence` ascending), at most `limit`.
    pub async fn in_sequence(
        &self,
        query: &LogQuery,
        limit: u64,
    ) -> Result<Vec<Stored<LogRecord>>, StoreError> {
        self.store.find_records(query.in_sequence(limit)).await
    }

    /// How many records match (the limit is ignored).
    pub async fn count(&self, query: &LogQuery) -> Result<u64, StoreError> {
        self.store
            .backend()
            .count(&LOG_RECORDS, query.filter())
            .await
    }

    /// The distinct values of `field` among the matching records, sorted (service, instance,
    /// directory, process and task lists for the dashboard's filters).
    pub async fn distinct(
        &self,
        field: LogField,
        query: &LogQuery,
    ) -> Result<Vec<String>, StoreError> {
        self.store
            .backend()
            .distinct(&LOG_RECORDS, field.def(), query.filter())
            .await
    }

    /// The times of the oldest and newest matching records.
    pub async fn time_range(
        &self,
        query: &LogQuery,
    ) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let edge = |descending| Find {
            filter: query.filter(),
            sort: vec![(SortKey::Field(&TIME), descending)],
            skip: 0,
            limit: Some(1),
        };
        let first = self.store.find_records::<LogRecord>(edge(false)).await?;
        let last = self.store.find_records::<LogRecord>(edge(true)).await?;
        Ok(first
            .first()
            .zip(last.first())
            .map(|(a, b)| (a.record.time, b.record.time)))
    }

    /// The newest `_sequence` stored, if any record is.
    pub async fn last_sequence(&self) -> Result<Option<i64>, StoreError> {
        let newest = Find {
            sort: vec![(SortKey::Sequence, true)],
            limit: Some(1),
            ..Find::default()
        };
        Ok(self
            .store
            .find_records::<LogRecord>(newest)
            .await?
            .first()
            .map(|r| r.sequence))
    }

    /// The newest `source_sequence` stored for one source (service, role, instance,
    /// directory, process), so a receiver can drop lines that a sender sends again after a
    /// retry.
    pub async fn last_source_sequence(
        &self,
        service: &ServiceName,
        role: Option<&Role>,
        instance: &str,
        directory: &str,
        process: &str,
    ) -> Result<Option<i64>, StoreError> {
        let query = LogQuery {
            service: Some(service.clone()),
            instance: Some(instance.to_owned()),
            directory: Some(directory.to_owned()),
            process: Some(process.to_owned()),
            ..LogQuery::default()
        };
        // No role is a filter here: a source without a role is not any role's source.
        let mut filter = query.filter();
        filter.push(Cond::Eq(&ROLE, Val::opt_str(role.map(Role::as_str))));
        let newest = Find {
            filter,
            sort: vec![(SortKey::Sequence, true)],
            skip: 0,
            limit: Some(1),
        };
        Ok(self
            .store
            .find_records::<LogRecord>(newest)
            .await?
            .first()
            .and_then(|r| r.record.source_sequence))
    }

    /// Adds every line not yet in the text index to it, now; returns how many. The store
    /// does so by itself a few thousand lines behind the writes (and, after opening a file
    /// with lines not indexed, in the background), so text searches find the same lines
    /// either way; this is for a caller that wants the index complete.
    pub async fn index_text(&self) -> Result<usize, StoreError> {
        super::text_index::catch_up(self.store).await
    }

    /// Follows the matching records: first those stored after `from`, then new ones as
    /// they are inserted, gap-free and without duplicates (see [`LogFollower`]).
    pub async fn follow(
        &self,
        query: LogQuery,
        from: FollowFrom,
    ) -> Result<LogFollower, StoreError> {
        LogFollower::start(self.store.clone(), query, from).await
    }
}
