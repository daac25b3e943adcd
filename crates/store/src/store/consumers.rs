//! The consumers' installed-versions reports handle: shared by every replica on one store,
//! so a consumer reporting through one replica is seen through all.

use crate::doc::{Cond, Val};
use crate::error::StoreError;
use crate::model::consumers::{CONSUMER, ConsumerInstalled};
use crate::store::Store;

/// Consumers' last reports, one per consumer.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerReports<'a> {
    store: &'a Store,
}

impl<'a> ConsumerReports<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        ConsumerReports { store }
    }

    /// Replaces the consumer's last report with `report`.
    pub async fn set(&self, report: ConsumerInstalled) -> Result<(), StoreError> {
        self.store.put_records(&[report]).await.map(drop)
    }

    /// The consumer's last report, if it made one.
    pub async fn get(&self, consumer: &str) -> Result<Option<ConsumerInstalled>, StoreError> {
        let found = self
            .store
            .first_record::<ConsumerInstalled>(vec![Cond::Eq(&CONSUMER, Val::str(consumer))])
            .await?;
        Ok(found.map(|stored| stored.record))
    }
}
