//! The service states handle; reports go through the writer's group commit (see
//! `group_commit`), ahead of any log lines waiting.

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::model::Stored;
use crate::model::states::{ServiceStateRecord, StateQuery};
use crate::store::Store;
use crate::store::group_commit::{self, Grouped, Queue};

impl Grouped for ServiceStateRecord {
    const REPLACE: bool = true;

    fn queue(store: &Store) -> &Queue<Self> {
        &store.inner.state_queue
    }

    fn committed(_: &Store, _: Vec<Self>, _: &[i64], _: DateTime<Utc>) {}
}

/// Service states: one per distribution, instance, service and directory; no history.
#[derive(Debug, Clone, Copy)]
pub struct ServiceStates<'a> {
    store: &'a Store,
}

impl<'a> ServiceStates<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        ServiceStates { store }
    }

    /// Sets the states of a report, replacing earlier states of the same instances, all or
    /// nothing: every record is validated before any is written. Reports set at the same
    /// time share one transaction and go before log lines waiting to be written; each is
    /// answered once its transaction committed, and fails only for its own sake.
    pub async fn set(
        &self,
        states: Vec<ServiceStateRecord>,
    ) -> Result<Vec<Stored<ServiceStateRecord>>, StoreError> {
        let docs = Store::docs(&states)?;
        let committed = group_commit::submit(self.store, states, |_| Ok(docs.clone())).await?;
        Store::stored(docs, committed.sequences, committed.now)
    }

    /// The matching states, by distribution, service, instance and directory (or in
    /// `_sequence` order with an `after_sequence` cursor).
    pub async fn query(
        &self,
        query: &StateQuery,
    ) -> Result<Vec<Stored<ServiceStateRecord>>, StoreError> {
        self.store.find_records(query.to_find()).await
    }
}
