//! The service states handle.

use crate::error::StoreError;
use crate::model::Stored;
use crate::model::states::{ServiceStateRecord, StateQuery};
use crate::store::Store;

/// Service states: one per distribution, instance, service and directory; no history.
#[derive(Debug, Clone, Copy)]
pub struct ServiceStates<'a> {
    store: &'a Store,
}

impl<'a> ServiceStates<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        ServiceStates { store }
    }

    /// Sets the states of a report, replacing earlier states of the same instances. On
    /// SQLite the batch is one transaction; every record is validated before any is written.
    pub async fn set(
        &self,
        states: Vec<ServiceStateRecord>,
    ) -> Result<Vec<Stored<ServiceStateRecord>>, StoreError> {
        self.store.put_records(&states).await
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
