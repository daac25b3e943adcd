//! The developer and client version handles (one macro, two collections).

use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::error::StoreError;
use crate::model::Stored;
use crate::model::versions::{ClientVersionRecord, DeveloperVersionRecord, VersionQuery};
use crate::store::Store;
use crate::store::accounts::one;

macro_rules! versions_handle {
    ($handle:ident, $record:ty, $version:ty, $what:literal) => {
        #[doc = concat!("The ", $what, " version records: unique by service and version, with history.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $handle<'a> {
            store: &'a Store,
        }

        impl<'a> $handle<'a> {
            pub(crate) fn new(store: &'a Store) -> Self {
                $handle { store }
            }

            /// Adds a version; [`StoreError::Duplicate`] when it exists (a version number is
            /// never reused for different contents).
            pub async fn add(&self, record: $record) -> Result<Stored<$record>, StoreError> {
                one(self.store.insert_records(&[record]).await?)
            }

            /// Adds several versions, all or nothing (e.g. versions copied from a provider).
            pub async fn add_many(&self, records: Vec<$record>) -> Result<Vec<Stored<$record>>, StoreError> {
                self.store.insert_records(&records).await
            }

            /// Replaces the record of an existing version (or adds it); the old one goes to history.
            pub async fn put(&self, record: $record) -> Result<Stored<$record>, StoreError> {
                one(self.store.put_records(&[record]).await?)
            }

            /// One version of one service.
            pub async fn get(
                &self,
                service: &ServiceName,
                version: &$version,
            ) -> Result<Option<Stored<$record>>, StoreError> {
                self.store
                    .first_record(VersionQuery::one(service, version).filter(<$record>::QUERY_FIELDS))
                    .await
            }

            /// The matching versions, by service, newest version first.
            pub async fn query(&self, query: &VersionQuery) -> Result<Vec<Stored<$record>>, StoreError> {
                let find = crate::doc::Find { filter: query.filter(<$record>::QUERY_FIELDS), ..Default::default() };
                let mut found: Vec<Stored<$record>> = self.store.find_records(find).await?;
                found.sort_by(|a, b| {
                    a.record.service.cmp(&b.record.service).then_with(|| b.record.version.cmp(&a.record.version))
                });
                Ok(found)
            }

            /// Deletes a version's record (restorable for [`crate::ARCHIVE_RETENTION`]);
            /// false when there is none.
            pub async fn remove(&self, service: &ServiceName, version: &$version) -> Result<bool, StoreError> {
                let filter = VersionQuery::one(service, version).filter(<$record>::QUERY_FIELDS);
                Ok(self.store.archive_records::<$record>(filter).await? > 0)
            }

            /// Every version of the record, oldest first; the current one, if any, is last.
            pub async fn history(
                &self,
                service: &ServiceName,
                version: &$version,
            ) -> Result<Vec<Stored<$record>>, StoreError> {
                self.store.history_records(VersionQuery::one(service, version).filter(<$record>::QUERY_FIELDS)).await
            }

            /// Makes the archived version `sequence` the current one again.
            pub async fn restore(&self, sequence: i64) -> Result<Stored<$record>, StoreError> {
                self.store.restore_record(sequence).await
            }
        }
    };
}

versions_handle!(
    DeveloperVersions,
    DeveloperVersionRecord,
    DeveloperVersion,
    "developer"
);
versions_handle!(ClientVersions, ClientVersionRecord, ClientVersion, "client");
