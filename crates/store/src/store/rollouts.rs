//! The rollouts handle.

use crate::doc::{Cond, Find, Val};
use crate::error::StoreError;
use crate::model::rollouts::{DISTRIBUTION, RolloutRecord};
use crate::store::Store;

/// Rollouts by waves: one per distribution and service.
#[derive(Debug, Clone, Copy)]
pub struct Rollouts<'a> {
    store: &'a Store,
}

impl<'a> Rollouts<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Rollouts { store }
    }

    /// Writes `record`, replacing the service's earlier rollout (kept in its history).
    pub async fn put(&self, record: &RolloutRecord) -> Result<(), StoreError> {
        self.store.put_records(std::slice::from_ref(record)).await?;
        Ok(())
    }

    /// The rollouts of `distribution`, by service name.
    pub async fn list(&self, distribution: &str) -> Result<Vec<RolloutRecord>, StoreError> {
        let found = self
            .store
            .find_records::<RolloutRecord>(Find {
                filter: vec![Cond::Eq(&DISTRIBUTION, Val::str(distribution))],
                ..Find::default()
            })
            .await?;
        let mut all: Vec<RolloutRecord> = found.into_iter().map(|stored| stored.record).collect();
        all.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(all)
    }
}
