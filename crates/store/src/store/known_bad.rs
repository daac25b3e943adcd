//! The known-bad versions handle.

use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

use crate::doc::{Cond, Find, Val};
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::known_bad::{DISTRIBUTION, KnownBadVersion, SERVICE, VERSION};
use crate::store::Store;

/// How often a record is merged again when other writes keep coming first.
const RECORD_ATTEMPTS: usize = 16;

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
    /// at every state report. Replicas recording the same version at once each merge
    /// into what the other wrote (a compare-and-swap on the version read), so no
    /// instance or fault report is lost.
    pub async fn record(
        &self,
        entry: KnownBadVersion,
    ) -> Result<(KnownBadVersion, bool), StoreError> {
        for _ in 0..RECORD_ATTEMPTS {
            let existing = self
                .get(&entry.distribution, &entry.service, &entry.version)
                .await?;
            let (record, expected) = match existing {
                Some(stored) => {
                    let mut record = stored.record;
                    if !record.merge(&entry) {
                        return Ok((record, false));
                    }
                    (record, Some(stored.sequence))
                }
                None => (entry.clone(), None),
            };
            if self.store.put_record_if(&record, expected).await?.is_some() {
                return Ok((record, true));
            }
        }
        Err(StoreError::Conflict {
            collection: crate::model::known_bad::KNOWN_BAD_VERSIONS.name,
            key: format!("{}/{}/{}", entry.distribution, entry.service, entry.version),
        })
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
