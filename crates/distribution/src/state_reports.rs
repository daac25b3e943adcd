//! [`StateReports`]: group commit of service state reports.
//!
//! Every updater reports every 10 s, so a fleet of 10,000 sends 1,000 reports a second,
//! and the store writes one transaction at a time. Reports that arrive while a transaction
//! is being written wait for the next one and go into it together, so the transactions
//! per second stay low however many reports there are. A report is acknowledged only once
//! the transaction holding it has committed. When a transaction of several reports fails,
//! each report is written again on its own, so one bad report fails alone and never takes
//! the others with it (nor is any report ever half written). Each committed transaction
//! is counted on a watch ([`StateReports::written`]), so the dashboard's `statusChanged`
//! hears of new states without polling the store.

use tokio::sync::{mpsc, oneshot, watch};
use vupdate_store::model::states::ServiceStateRecord;
use vupdate_store::{Store, StoreError};

/// The most states written in one transaction (reports are never split).
const MAX_BATCH_STATES: usize = 2_000;
/// Reports waiting for a transaction; a sender beyond waits in line.
const QUEUE: usize = 4_096;

/// One report waiting to be written.
struct Pending {
    records: Vec<ServiceStateRecord>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Writes state reports in as few transactions as the load allows; cheap to clone.
#[derive(Clone)]
pub struct StateReports {
    queue: mpsc::Sender<Pending>,
    written: watch::Receiver<u64>,
}

impl std::fmt::Debug for StateReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateReports").finish_non_exhaustive()
    }
}

impl StateReports {
    /// Starts the writer on the current runtime; it ends when the last handle is dropped.
    pub fn start(store: Store) -> StateReports {
        let (queue, pending) = mpsc::channel(QUEUE);
        let (counter, written) = watch::channel(0);
        tokio::spawn(write_loop(store, pending, counter));
        StateReports { queue, written }
    }

    /// Changes each time reports were written (the count of transactions committed).
    pub fn written(&self) -> watch::Receiver<u64> {
        self.written.clone()
    }

    /// Stores one report (all or nothing), replacing the earlier state of each instance.
    pub async fn set(&self, records: Vec<ServiceStateRecord>) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        self.queue
            .send(Pending { records, done })
            .await
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Task {
        collection: "serviceStates",
        reason: "the state report writer has stopped".to_owned(),
    }
}

async fn write_loop(
    store: Store,
    mut pending: mpsc::Receiver<Pending>,
    written: watch::Sender<u64>,
) {
    while let Some(first) = pending.recv().await {
        let mut states = first.records.len();
        let mut batch = vec![first];
        while states < MAX_BATCH_STATES {
            match pending.try_recv() {
                Ok(next) => {
                    states += next.records.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        write(&store, batch, &written).await;
    }
}

/// Writes `batch` in one transaction, or each report alone when that fails; each commit
/// is counted on `written` before its reports are acknowledged.
async fn write(store: &Store, batch: Vec<Pending>, written: &watch::Sender<u64>) {
    if batch.len() > 1 {
        let records: Vec<ServiceStateRecord> = batch
            .iter()
            .flat_map(|report| report.records.iter().cloned())
            .collect();
        if store.service_states().set(records).await.is_ok() {
            vupdate_crashpoint::reached_async("state-reports.committed").await;
            written.send_modify(|count| *count += 1);
            for report in batch {
                let _ = report.done.send(Ok(()));
            }
            return;
        }
    }
    for report in batch {
        let result = store.service_states().set(report.records).await.map(drop);
        if result.is_ok() {
            vupdate_crashpoint::reached_async("state-reports.committed").await;
            written.send_modify(|count| *count += 1);
        }
        let _ = report.done.send(result);
    }
}

#[cfg(test)]
mod tests {
    use vupdate_store::StoreConfig;
    use vupdate_store::model::states::{ServiceState, StateQuery};

    use super::*;

    fn report(instance: &str, version: &str) -> Vec<ServiceStateRecord> {
        ["api", "web"]
            .iter()
            .map(|service| ServiceStateRecord {
                state_commit: None,
                labels: Default::default(),
                distribution: "acme".to_owned(),
                instance: instance.to_owned(),
                service: service.parse().expect("service"),
                role: None,
                directory: format!("/srv/{service}"),
                state: ServiceState {
                    time: chrono::Utc::now(),
                    install_time: None,
                    start_time: None,
                    version: Some(version.parse().expect("version")),
                    update_to_version: None,
                    update_error: None,
                    failures_count: Some(0),
                    last_exit_code: None,
                    failed_version: None,
                },
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_sent_together_are_all_stored_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let store = vupdate_store::open(&StoreConfig::Sqlite {
            path: dir.path().join("store.sqlite"),
        })
        .await
        .expect("store");
        let reports = StateReports::start(store.clone());
        let written = reports.written();
        assert_eq!(*written.borrow(), 0);
        // 200 reports at once, one of them invalid (an instance must be named).
        let sends: Vec<_> = (0..200)
            .map(|i| {
                let reports = reports.clone();
                let instance = if i == 100 {
                    String::new()
                } else {
                    format!("vm-{i}")
                };
                tokio::spawn(async move { reports.set(report(&instance, "acme-1.0.0")).await })
            })
            .collect();
        let mut failed = Vec::new();
        for (i, send) in sends.into_iter().enumerate() {
            if send.await.expect("join").is_err() {
                failed.push(i);
            }
        }
        assert_eq!(failed, [100]);
        let stored = store
            .service_states()
            .query(&StateQuery::default())
            .await
            .expect("query");
        assert_eq!(stored.len(), 199 * 2);
        // A later report replaces the earlier state of the same instance.
        reports
            .set(report("vm-7", "acme-1.1.0"))
            .await
            .expect("report");
        let stored = store
            .service_states()
            .query(&StateQuery::default())
            .await
            .expect("query");
        assert_eq!(stored.len(), 199 * 2);
        let vm7: Vec<String> = stored
            .iter()
            .filter(|s| s.record.instance == "vm-7")
            .map(|s| {
                s.record
                    .state
                    .version
                    .as_ref()
                    .expect("version")
                    .to_string()
            })
            .collect();
        assert_eq!(vm7, ["acme-1.1.0", "acme-1.1.0"]);

        // Each commit is counted before its report is acknowledged; a refused one is not.
        let count = *written.borrow();
        assert!(count >= 2, "{count} commits counted");
        reports
            .set(report("vm-8", "acme-1.1.0"))
            .await
            .expect("report");
        assert_eq!(*written.borrow(), count + 1);
        assert!(reports.set(report("", "acme-1.1.0")).await.is_err());
        assert_eq!(*written.borrow(), count + 1);
    }
}
