//! Known-bad versions from updaters' rollbacks: a state report naming a `failedVersion`
//! (the version the updater rolled back because it ended, or failed its health check,
//! within its start window) records that version as known-bad for its service, with the
//! instance, the update error as the reason and the instance's fault reports of that
//! version as the evidence.
//!
//! Updaters repeat `failedVersion` in every state report while the version stays desired,
//! so fault reports uploaded after the state join the record at a later report; recording
//! what is known already writes nothing.

use std::collections::BTreeMap;

use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_store::model::faults::FaultQuery;
use vupdate_store::model::known_bad::KnownBadVersion;
use vupdate_store::model::states::ServiceStateRecord;
use vupdate_store::{Store, StoreError};

/// How many of a service's newest fault reports are searched for a version's evidence.
const EVIDENCE_SEARCH: u64 = 200;

/// Records the rollbacks `records` report; returns the versions that became known-bad
/// or gained an instance or a fault report.
pub async fn record_rollbacks(
    store: &Store,
    records: &[ServiceStateRecord],
) -> Result<Vec<KnownBadVersion>, StoreError> {
    // One entry per version, however many of its instances are in the report.
    let mut rollbacks: BTreeMap<(String, ServiceName, String), KnownBadVersion> = BTreeMap::new();
    for record in records {
        let Some(version) = &record.state.failed_version else {
            continue;
        };
        let reason = record.state.update_error.as_ref().map_or_else(
            || format!("{version} was rolled back"),
            |error| error.error.clone(),
        );
        let key = (
            record.distribution.clone(),
            record.service.clone(),
            version.to_string(),
        );
        let entry = rollbacks.entry(key).or_insert_with(|| KnownBadVersion {
            distribution: record.distribution.clone(),
            service: record.service.clone(),
            version: version.clone(),
            reason,
            instances: Vec::new(),
            fault_ids: Vec::new(),
            recorded_at: store.now(),
        });
        if let Err(at) = entry.instances.binary_search(&record.instance) {
            entry.instances.insert(at, record.instance.clone());
        }
    }
    let mut changed = Vec::new();
    for (_, mut entry) in rollbacks {
        entry.fault_ids = evidence(store, &entry).await?;
        let (record, new) = store.known_bad_versions().record(entry).await?;
        if new {
            tracing::warn!(
                service = %record.service,
                version = %record.version,
                instances = ?record.instances,
                faults = ?record.fault_ids,
                reason = %record.reason,
                "known-bad version recorded"
            );
            changed.push(record);
        }
    }
    Ok(changed)
}

/// The ids of the fault reports of `entry`'s version on its instances, sorted.
async fn evidence(store: &Store, entry: &KnownBadVersion) -> Result<Vec<String>, StoreError> {
    let reports = store
        .fault_reports()
        .query(&FaultQuery {
            distribution: Some(entry.distribution.clone()),
            service: Some(entry.service.clone()),
            limit: Some(EVIDENCE_SEARCH),
            ..FaultQuery::default()
        })
        .await?;
    let mut ids: Vec<String> = reports
        .into_iter()
        .filter(|report| {
            let info = &report.record.info;
            info.state.version.as_ref() == Some(&entry.version)
                && entry.instances.binary_search(&info.instance).is_ok()
        })
        .map(|report| report.record.id)
        .collect();
    ids.sort();
    Ok(ids)
}

/// Whether `version` of `service` is known-bad in `distribution`, and why.
pub async fn known_bad(
    store: &Store,
    distribution: &str,
    service: &ServiceName,
    version: &ClientVersion,
) -> Result<Option<KnownBadVersion>, StoreError> {
    Ok(store
        .known_bad_versions()
        .get(distribution, service, version)
        .await?
        .map(|stored| stored.record))
}
