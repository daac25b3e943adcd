//! The known-bad versions handle.

use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

use crate::doc::{Cond, Find, Val};
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::known_bad::{DISTRIBUTION, KnownBadVersion, SERVICE, VERSION};
use crate::store::Store;

/// Known-bad versions: unique by distribution, service and version.
#[derive(Debug, Clone, Copy)]
pub struct KnownBadVersions<'a> {
    store: &'a Store,
}

/// The conditions that select one version's record.
fn by_key(distribution: &str, service: &ServiceName, version: &ClientVersion) -> Vec<Cond> {
    vec![
        Cond::Eq(&DISTRIBUTION, Val::str(distribution)),
        Cond::Eq(&SERVICE, Val::str(service.as_str())),
        Cond::Eq(&VERSION, Val::str(version.to_string())),
    ]
}

impl<'a> KnownBadVersions<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        KnownBadVersions { store }
    }

    /// Records `entry`, or adds its instances and fault reports to the version's record
    /// (the first reason and time stay). Returns the record and whether anything changed;
    /// recording what is known already writes nothing, so updaters may report a rollback
    /// at every state report.
    pub async fn record(
        &self,
        entry: KnownBadVersion,
    ) -> Result<(KnownBadVersion, bool), StoreError> {
        let existing = self
            .get(&entry.distribution, &entry.service, &entry.version)
            .await?;
        let (record, changed) = match existing {
            Some(stored) => {
                let mut record = stored.record;
                let changed = record.merge(&entry);
                (record, changed)
            }
            None => (entry, true),
        };
        if changed {
            self.store
                .put_records(std::slice::from_ref(&record))
                .await?;
        }
        Ok((record, changed))
    }

    /// The record of one version, if it is known-bad.
    pub async fn get(
        &self,
        distribution: &str,
        service: &ServiceName,
        version: &ClientVersion,
    ) -> Result<Option<Stored<KnownBadVersion>>, StoreError> {
        self.store
            .first_record(by_key(distribution, service, version))
            .await
    }

    /// Every known-bad version, optionally of one distribution.
    pub async fn list(
        &self,
        distribution: Option<&str>,
    ) -> Result<Vec<KnownBadVersion>, StoreError> {
        let filter = distribution
            .map(|d| vec![Cond::Eq(&DISTRIBUTION, Val::str(d))])
            .unwrap_or_default();
        let found = self
            .store
            .find_records::<KnownBadVersion>(Find {
                filter,
                ..Find::default()
            })
            .await?;
        let mut all: Vec<KnownBadVersion> = found.into_iter().map(|stored| stored.record).collect();
        all.sort_by(|a, b| {
            (a.service.as_str(), &a.version.to_string())
                .cmp(&(b.service.as_str(), &b.version.to_string()))
        });
        Ok(all)
    }

    /// Forgets a known-bad version (restorable for [`crate::ARCHIVE_RETENTION`]); false
    /// when it was not known-bad.
    pub async fn remove(
        &self,
        distribution: &str,
        service: &ServiceName,
        version: &ClientVersion,
    ) -> Result<bool, StoreError> {
        let removed = self
            .store
            .archive_records::<KnownBadVersion>(by_key(distribution, service, version))
            .await?;
        Ok(removed > 0)
    }
}
