//! The build states handle.

use vupdate_core::service::ServiceName;

use crate::doc::Find;
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::builds::{BuildState, BuildStatus, BuildTarget, filter, in_process};
use crate::store::Store;
use crate::store::accounts::one;

/// Build states: the last build per service and target, with history.
#[derive(Debug, Clone, Copy)]
pub struct BuildStates<'a> {
    store: &'a Store,
}

impl<'a> BuildStates<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        BuildStates { store }
    }

    /// Sets the state of a build; the previous state of the service and target goes to history.
    pub async fn set(&self, state: BuildState) -> Result<Stored<BuildState>, StoreError> {
        one(self.store.put_records(&[state]).await?)
    }

    /// The current states, optionally of one service and/or target.
    pub async fn current(
        &self,
        service: Option<&ServiceName>,
        target: Option<BuildTarget>,
    ) -> Result<Vec<Stored<BuildState>>, StoreError> {
        self.store
            .find_records(Find {
                filter: filter(service, target),
                ..Find::default()
            })
            .await
    }

    /// Past and current states, newest first, at most `limit`.
    pub async fn history(
        &self,
        service: Option<&ServiceName>,
        target: Option<BuildTarget>,
        limit: usize,
    ) -> Result<Vec<Stored<BuildState>>, StoreError> {
        let mut versions = self
            .store
            .history_records::<BuildState>(filter(service, target))
            .await?;
        versions.reverse();
        versions.truncate(limit);
        Ok(versions)
    }

    /// Marks every build still in process as failed: at start-up, no build of a previous
    /// run is still running (the original filtered on the wrong field and kept them).
    /// Returns how many were marked.
    pub async fn interrupt_in_process(&self) -> Result<u64, StoreError> {
        let running: Vec<Stored<BuildState>> = self
            .store
            .find_records(Find {
                filter: in_process(),
                ..Find::default()
            })
            .await?;
        let now = self.store.now();
        let failed: Vec<BuildState> = running
            .into_iter()
            .map(|stored| BuildState {
                status: BuildStatus::Failure,
                time: now,
                ..stored.record
            })
            .collect();
        Ok(self.store.put_records(&failed).await?.len() as u64)
    }
}
