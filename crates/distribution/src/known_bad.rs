//! Known-bad versions from updaters' rollbacks: a state report naming a `failedVersion`
//! (the version the updater rolled back because it ended, or failed its health check,
//! within its start window) records that version as known-bad for its service, with the
//! instance, the update error as the reason and the instance's fault reports of that
//! version as the evidence.
//!
//! Updaters repeat `failedVersion` in every state report while the version stays desired,
//! so fault reports uploaded after the state join the record at a later report; recording
//! what is known already writes nothing.
//!
//! [`KnownBad`] holds this distribution's known-bad versions back: `clientDesiredVersions`
//! (query and subscription) leaves out a service whose desired version is known-bad, so
//! its updaters keep the version they run and one that has none starts nothing. A newly
//! known-bad version applies the service's `onFailure` (`rollout.yaml`): `revert` commits
//! a revert of the change that desired it, as author `vupdate`, with the evidence in the
//! message; `hold` only marks it. A known-bad version runs again when a later commit
//! desires it anew (the desired version moved away from it, by that revert or by hand,
//! and back), or when a person clears the mark (`clearKnownBadVersion`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_state::{Author, HistoryEntry, OnFailure, Revision, StateError, StateRepo};
use vupdate_store::model::faults::FaultQuery;
use vupdate_store::model::known_bad::KnownBadVersion;
use vupdate_store::model::states::ServiceStateRecord;
use vupdate_store::{Store, StoreError};

use crate::watcher::{InForce, WatchTrigger};

/// How many commits of the state repo's history are searched for the change that desired
/// a known-bad version.
const REVERT_SEARCH: usize = 200;

/// The known-bad versions held back, by service.
pub type Held = Arc<BTreeMap<ServiceName, BTreeSet<ClientVersion>>>;

/// `versions` without the services whose version is in `held`.
pub fn keep_out_of(
    held: &Held,
    versions: BTreeMap<ServiceName, ClientVersion>,
) -> BTreeMap<ServiceName, ClientVersion> {
    versions
        .into_iter()
        .filter(|(service, version)| !held.get(service).is_some_and(|bad| bad.contains(version)))
        .collect()
}

/// This distribution's known-bad versions: recorded from rollbacks, held back from its
/// updaters, reverted in Git by policy; cheap to clone.
#[derive(Clone)]
pub struct KnownBad {
    distribution: String,
    store: Store,
    repo: Arc<StateRepo>,
    in_force: watch::Receiver<Option<InForce>>,
    trigger: WatchTrigger,
    held: Arc<watch::Sender<Held>>,
    settled: Arc<Settled>,
    /// Held while a record is read, merged and written back: two state reports of the same
    /// rollback recorded at once would otherwise both read the old record, and the later
    /// write would drop the other's instance and fault reports.
    writes: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for KnownBad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownBad")
            .field("distribution", &self.distribution)
            .finish_non_exhaustive()
    }
}

impl KnownBad {
    /// Reads the known-bad versions of `distribution` and follows the commits in force to
    /// release those a newer commit desires anew.
    pub async fn start(
        distribution: String,
        store: Store,
        repo: Arc<StateRepo>,
        in_force: watch::Receiver<Option<InForce>>,
        trigger: WatchTrigger,
    ) -> Result<KnownBad, StoreError> {
        let (held, _) = watch::channel(Held::default());
        let known = KnownBad {
            distribution,
            store,
            repo,
            in_force,
            trigger,
            held: Arc::new(held),
            settled: Arc::default(),
            writes: Arc::default(),
        };
        known.refresh().await?;
        tokio::spawn(known.clone().release_on_new_commits());
        Ok(known)
    }

    /// The versions held back, updated at each change.
    pub fn held(&self) -> watch::Receiver<Held> {
        self.held.subscribe()
    }

    /// The known-bad versions held back now (a new `Arc` each time they change).
    pub fn held_now(&self) -> Held {
        Arc::clone(&self.held.borrow())
    }

    /// Whether `version` of `service` is held back as known-bad.
    pub fn is_held(&self, service: &ServiceName, version: &ClientVersion) -> bool {
        self.held
            .borrow()
            .get(service)
            .is_some_and(|bad| bad.contains(version))
    }

    async fn refresh(&self) -> Result<(), StoreError> {
        let all = self
            .store
            .known_bad_versions()
            .list(Some(&self.distribution))
            .await?;
        let mut held: BTreeMap<ServiceName, BTreeSet<ClientVersion>> = BTreeMap::new();
        for entry in all {
            held.entry(entry.service).or_default().insert(entry.version);
        }
        self.held.send_if_modified(|current| {
            let changed = **current != held;
            if changed {
                *current = Arc::new(held);
            }
            changed
        });
        Ok(())
    }

    /// Records the rollbacks `records` report (see the module's documentation); a version of
    /// this distribution that becomes known-bad is held back at once and its service's
    /// `onFailure` applied.
    pub async fn record(&self, records: &[ServiceStateRecord]) -> Result<(), StoreError> {
        // Almost every report names no rollback: those do not queue behind the lock.
        if records
            .iter()
            .all(|record| record.state.failed_version.is_none())
        {
            return Ok(());
        }
        let _writing = self.writes.lock().await;
        let changed = record_rollbacks(&self.store, &self.settled, records).await?;
        let ours: Vec<&KnownBadVersion> = changed
            .iter()
            .filter(|entry| entry.distribution == self.distribution)
            .collect();
        if ours.is_empty() {
            return Ok(());
        }
        let newly: Vec<KnownBadVersion> = ours
            .iter()
            .filter(|entry| !self.is_held(&entry.service, &entry.version))
            .map(|entry| (*entry).clone())
            .collect();
        self.refresh().await?;
        for mut entry in newly {
            // Which commit desires it now: a later one desiring it anew releases it.
            entry.desired_by = self
                .change_desiring(&entry.service, &entry.version)
                .await
                .map(|revision| revision.id);
            if entry.desired_by.is_some() {
                self.store
                    .known_bad_versions()
                    .record(entry.clone())
                    .await?;
            }
            let policy = self
                .in_force
                .borrow()
                .as_ref()
                .map(|in_force| in_force.state.rollout.on_failure(&entry.service))
                .unwrap_or_default();
            if policy == OnFailure::Revert {
                let known = self.clone();
                // The commit waits for nobody: the updater's report is answered now.
                tokio::spawn(async move { known.revert(entry).await });
            }
        }
        Ok(())
    }

    /// Forgets that `version` of `service` is known-bad; false when it was not.
    pub async fn clear(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
    ) -> Result<bool, StoreError> {
        let _writing = self.writes.lock().await;
        let removed = self
            .store
            .known_bad_versions()
            .remove(&self.distribution, service, version)
            .await?;
        // A rollback of it from now on is recorded anew.
        self.settled
            .lock()
            .expect("the settled set is never poisoned")
            .retain(|(_, s, v, _)| (s, v) != (service, version));
        self.refresh().await?;
        Ok(removed)
    }

    /// The commit that made the branch desire `version` of `service` (see
    /// [`change_desiring`]); `None` when the tip does not desire it or the history cannot
    /// be read (said in the log).
    async fn change_desiring(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
    ) -> Option<Revision> {
        let repo = Arc::clone(&self.repo);
        let (service, version) = (service.clone(), version.clone());
        let found = tokio::task::spawn_blocking(move || {
            change_desiring(&repo, &service, &version).map(|found| found.map(|(change, _)| change))
        })
        .await;
        match found {
            Ok(Ok(change)) => change,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the state repo's history");
                None
            }
            Err(error) => {
                tracing::error!(%error, "the history task failed");
                None
            }
        }
    }

    /// Commits a revert of the change that desired `entry`'s version, if the branch tip
    /// still desires it.
    async fn revert(&self, entry: KnownBadVersion) {
        let repo = Arc::clone(&self.repo);
        let author = Author::new("vupdate", format!("vupdate@{}", self.distribution));
        let service = entry.service.clone();
        let version = entry.version.clone();
        let reverted = tokio::task::spawn_blocking(move || revert_change(&repo, &entry, &author))
            .await
            .map_err(|error| error.to_string())
            .and_then(|result| result.map_err(|error| error.to_string()));
        match reverted {
            Ok(Some(revision)) => {
                tracing::warn!(%service, %version, commit = %revision.id, "known-bad version reverted in the state repo");
                self.trigger.trigger();
            }
            Ok(None) => {
                tracing::info!(%service, %version, "the state repo no longer desires the known-bad version: nothing to revert");
            }
            Err(error) => {
                tracing::error!(%service, %version, %error, "cannot revert the change that desired a known-bad version");
            }
        }
    }

    /// Releases a known-bad version when a commit in force desires it anew: the change
    /// that makes the branch desire it is not the one it was marked under.
    async fn release_on_new_commits(self) {
        let mut in_force = self.in_force.clone();
        while in_force.changed().await.is_ok() {
            let Some(now) = in_force
                .borrow_and_update()
                .as_ref()
                .map(|in_force| in_force.state.effective_client_versions())
            else {
                continue;
            };
            let desired_and_held: Vec<(ServiceName, ClientVersion)> = {
                let held = self.held.borrow();
                now.into_iter()
                    .filter(|(service, version)| {
                        held.get(service).is_some_and(|bad| bad.contains(version))
                    })
                    .collect()
            };
            for (service, version) in desired_and_held {
                if let Err(error) = self.release_if_desired_anew(&service, &version).await {
                    tracing::error!(%service, %version, %error, "cannot release a known-bad version");
                }
            }
        }
    }

    async fn release_if_desired_anew(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
    ) -> Result<(), StoreError> {
        let Some(marked) = self
            .store
            .known_bad_versions()
            .get(&self.distribution, service, version)
            .await?
        else {
            return Ok(());
        };
        let Some(marked_by) = marked.record.desired_by else {
            return Ok(());
        };
        let Some(change) = self.change_desiring(service, version).await else {
            return Ok(());
        };
        if change.id != marked_by {
            tracing::warn!(%service, %version, commit = %change.id, "a newer commit desires the known-bad version again: it is released");
            self.clear(service, version).await?;
        }
        Ok(())
    }
}

/// Whether `entry` (a revision of the history) desires `version` of `service`.
fn desires(entry: &HistoryEntry, service: &ServiceName, version: &ClientVersion) -> bool {
    let Ok(desired) = &entry.desired else {
        return false;
    };
    match desired.client.get(service) {
        Some(client) => client == version,
        None => {
            version.generation == 0 && desired.developer.get(service) == Some(&version.developer)
        }
    }
}

/// The commit that made the branch desire `version` of `service` (the oldest of the
/// newest run of commits that desire it) and the branch tip; `None` when the tip does not
/// desire it, or has since before the history searched.
fn change_desiring(
    repo: &StateRepo,
    service: &ServiceName,
    version: &ClientVersion,
) -> Result<Option<(Revision, Revision)>, StateError> {
    let history = repo.history(REVERT_SEARCH)?;
    let run = history
        .iter()
        .take_while(|revision| desires(revision, service, version))
        .count();
    if run == 0 || run == history.len() {
        return Ok(None);
    }
    Ok(Some((
        history[run - 1].revision.clone(),
        history[0].revision.clone(),
    )))
}

/// Reverts the commit that made the branch desire `entry`'s version. `None` when the tip
/// no longer desires it.
fn revert_change(
    repo: &StateRepo,
    entry: &KnownBadVersion,
    author: &Author,
) -> Result<Option<Revision>, StateError> {
    let (service, version) = (&entry.service, &entry.version);
    let Some((change, tip)) = change_desiring(repo, service, version)? else {
        return Ok(None);
    };
    let mut message = format!(
        "Revert \"{}\": {service} {version} is known-bad\n\nUpdaters rolled it back on {}: {}\n",
        change.summary,
        entry.instances.join(", "),
        entry.reason
    );
    if !entry.fault_ids.is_empty() {
        message.push_str(&format!("Fault reports: {}\n", entry.fault_ids.join(", ")));
    }
    message.push_str(&format!("\nThis reverts commit {}.\n", change.id));
    repo.revert(&change.id, &tip.id, author, Some(&message))
        .map(Some)
}
/// How many of a service's newest fault reports are searched for a version's evidence.
const EVIDENCE_SEARCH: u64 = 200;

/// A rollback by one instance: distribution, service, version, instance.
type RollbackKey = (String, ServiceName, ClientVersion, String);

/// The rollbacks recorded with at least one fault report of their instance: an updater
/// repeats its rollback in every state report, and these need no further look at the
/// fault reports (kept in memory; after a restart each is looked at once more).
type Settled = std::sync::Mutex<BTreeSet<RollbackKey>>;

/// Records the rollbacks `records` report; returns the versions that became known-bad
/// or gained an instance or a fault report.
async fn record_rollbacks(
    store: &Store,
    settled: &Settled,
    records: &[ServiceStateRecord],
) -> Result<Vec<KnownBadVersion>, StoreError> {
    // One entry per version, however many of its instances are in the report.
    let mut rollbacks: BTreeMap<(String, ServiceName, String), KnownBadVersion> = BTreeMap::new();
    for record in records {
        let Some(version) = &record.state.failed_version else {
            continue;
        };
        let key = (
            record.distribution.clone(),
            record.service.clone(),
            version.clone(),
            record.instance.clone(),
        );
        if settled
            .lock()
            .expect("the settled set is never poisoned")
            .contains(&key)
        {
            continue;
        }
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
            desired_by: None,
        });
        if let Err(at) = entry.instances.binary_search(&record.instance) {
            entry.instances.insert(at, record.instance.clone());
        }
    }
    let mut changed = Vec::new();
    for (_, mut entry) in rollbacks {
        let found = evidence(store, &entry).await?;
        entry.fault_ids = found.iter().map(|(id, _)| id.clone()).collect();
        entry.fault_ids.sort();
        entry.fault_ids.dedup();
        let (record, new) = store.known_bad_versions().record(entry).await?;
        settled
            .lock()
            .expect("the settled set is never poisoned")
            .extend(found.into_iter().map(|(_, instance)| {
                (
                    record.distribution.clone(),
                    record.service.clone(),
                    record.version.clone(),
                    instance,
                )
            }));
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

/// The fault reports of `entry`'s version on its instances: id and instance.
async fn evidence(
    store: &Store,
    entry: &KnownBadVersion,
) -> Result<Vec<(String, String)>, StoreError> {
    let reports = store
        .fault_reports()
        .query(&FaultQuery {
            distribution: Some(entry.distribution.clone()),
            service: Some(entry.service.clone()),
            limit: Some(EVIDENCE_SEARCH),
            ..FaultQuery::default()
        })
        .await?;
    Ok(reports
        .into_iter()
        .filter(|report| {
            let info = &report.record.info;
            info.state.version.as_ref() == Some(&entry.version)
                && entry.instances.binary_search(&info.instance).is_ok()
        })
        .map(|report| (report.record.id, report.record.info.instance))
        .collect())
}
