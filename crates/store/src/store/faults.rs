//! The fault reports handle.

use chrono::{DateTime, Utc};
use vupdate_core::service::ServiceName;

use crate::doc::{Cond, Val};
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::faults::{
    DISTRIBUTION, FAULT_REPORTS, FaultQuery, FaultReport, ID, ROLE, SERVICE, by_time,
};
use crate::store::Store;
use crate::store::accounts::one;

/// Fault reports: unique by distribution and id, newest first.
#[derive(Debug, Clone, Copy)]
pub struct FaultReports<'a> {
    store: &'a Store,
}

fn by_id(distribution: &str, id: &str) -> Vec<Cond> {
    vec![
        Cond::Eq(&DISTRIBUTION, Val::str(distribution)),
        Cond::Eq(&ID, Val::str(id)),
    ]
}

impl<'a> FaultReports<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        FaultReports { store }
    }

    /// Adds a report; [`StoreError::Duplicate`] when its id is taken in its distribution.
    pub async fn add(&self, report: FaultReport) -> Result<Stored<FaultReport>, StoreError> {
        one(self.store.insert_records(&[report]).await?)
    }

    /// The report with this id (exactly this id: the original matched `<=`).
    pub async fn get(
        &self,
        distribution: &str,
        id: &str,
    ) -> Result<Option<Stored<FaultReport>>, StoreError> {
        self.store.first_record(by_id(distribution, id)).await
    }

    /// The matching reports, newest fault first (or in `_sequence` order with a cursor).
    pub async fn query(&self, query: &FaultQuery) -> Result<Vec<Stored<FaultReport>>, StoreError> {
        self.store.find_records(query.to_find()).await
    }

    /// The distributions that have reports, sorted.
    pub async fn distributions(&self) -> Result<Vec<String>, StoreError> {
        self.store
            .backend()
            .distinct(&FAULT_REPORTS, &DISTRIBUTION, Vec::new())
            .await
    }

    /// The services that have reports, optionally in one distribution, sorted.
    pub async fn services(&self, distribution: Option<&str>) -> Result<Vec<String>, StoreError> {
        let filter = distribution
            .map(|d| vec![Cond::Eq(&DISTRIBUTION, Val::str(d))])
            .unwrap_or_default();
        self.store
            .backend()
            .distinct(&FAULT_REPORTS, &SERVICE, filter)
            .await
    }

    /// The roles that have reports (a report of a service in no role adds none),
    /// optionally of one distribution and one service, sorted.
    pub async fn roles(
        &self,
        distribution: Option<&str>,
        service: Option<&ServiceName>,
    ) -> Result<Vec<String>, StoreError> {
        let mut filter = Vec::new();
        if let Some(distribution) = distribution {
            filter.push(Cond::Eq(&DISTRIBUTION, Val::str(distribution)));
        }
        if let Some(service) = service {
            filter.push(Cond::Eq(&SERVICE, Val::str(service.as_str())));
        }
        self.store
            .backend()
            .distinct(&FAULT_REPORTS, &ROLE, filter)
            .await
    }

    /// The times of the oldest and newest faults, filtered by distribution and by the
    /// reports' `info.service` (the original filtered on a `service` field that reports lack).
    pub async fn time_range(
        &self,
        distribution: Option<&str>,
        service: Option<&ServiceName>,
    ) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let query = FaultQuery {
            distribution: distribution.map(str::to_owned),
            service: service.cloned(),
            ..FaultQuery::default()
        };
        let first = self
            .store
            .find_records::<FaultReport>(by_time(query.filter(), false))
            .await?;
        let last = self
            .store
            .find_records::<FaultReport>(by_time(query.filter(), true))
            .await?;
        Ok(first
            .first()
            .zip(last.first())
            .map(|(a, b)| (a.record.info.time, b.record.info.time)))
    }

    /// Deletes a report (restorable for [`crate::ARCHIVE_RETENTION`]); false when there is none.
    pub async fn remove(&self, distribution: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .archive_records::<FaultReport>(by_id(distribution, id))
            .await?
            > 0)
    }

    /// Makes the archived report `sequence` current again.
    pub async fn restore(&self, sequence: i64) -> Result<Stored<FaultReport>, StoreError> {
        self.store.restore_record(sequence).await
    }
}
