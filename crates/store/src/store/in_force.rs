//! [`CommitsInForce`]: recording and reading each distribution's commit in force
//! ([`crate::in_force`]).

use super::Store;
use crate::error::StoreError;
use crate::in_force::CommitInForce;

/// Each distribution's commit in force, one record per distribution.
#[derive(Debug, Clone, Copy)]
pub struct CommitsInForce<'a> {
    store: &'a Store,
}

impl<'a> CommitsInForce<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        CommitsInForce { store }
    }

    /// Records `revision` on `branch` as `distribution`'s commit in force, replacing the
    /// previous record; returns the record written (stamped with the store's clock).
    pub async fn record(
        &self,
        distribution: &str,
        branch: &str,
        revision: &str,
    ) -> Result<CommitInForce, StoreError> {
        let record = CommitInForce {
            distribution: distribution.to_owned(),
            branch: branch.to_owned(),
            revision: revision.to_owned(),
            at: self.store.now(),
        };
        self.store.backend().record_in_force(&record).await?;
        Ok(record)
    }

    /// `distribution`'s commit in force as last recorded; `None` before the first record.
    pub async fn current(&self, distribution: &str) -> Result<Option<CommitInForce>, StoreError> {
        self.store.backend().read_in_force(distribution).await
    }
}
