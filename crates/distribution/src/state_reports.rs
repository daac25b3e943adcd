//! [`StateReports`]: service state reports, stored and counted.
//!
//! Every updater reports every 10 s, so a fleet of 10,000 sends 1,000 reports a second.
//! The store writes reports that arrive together in one transaction, ahead of log lines
//! waiting to be written, and answers each only once its transaction committed; a report
//! fails only for its own sake (see `vupdate_store::ServiceStates::set`). Each stored
//! report is counted on a watch ([`StateReports::written`]), so the dashboard's
//! `statusChanged` hears of new states without polling the store.

use std::sync::Arc;

use tokio::sync::watch;
use vupdate_store::model::states::ServiceStateRecord;
use vupdate_store::{Store, StoreError};

/// Stores state reports and counts them; cheap to clone.
#[derive(Clone)]
pub struct StateReports {
    store: Store,
    counter: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for StateReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateReports").finish_non_exhaustive()
    }
}

impl StateReports {
    /// Reports stored in `store`.
    pub fn start(store: Store) -> StateReports {
        StateReports {
            store,
            counter: Arc::new(watch::channel(0).0),
        }
    }

    /// Changes each time a report was stored (the count of reports stored).
    pub fn written(&self) -> watch::Receiver<u64> {
        self.counter.subscribe()
    }

    /// Stores one report (all or nothing), replacing the earlier state of each instance;
    /// it is counted before it is acknowledged.
    pub async fn set(&self, records: Vec<ServiceStateRecord>) -> Result<(), StoreError> {
        self.store.service_states().set(records).await?;
        vupdate_crashpoint::reached_async("state-reports.committed").await;
        self.counter.send_modify(|count| *count += 1);
        Ok(())
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

        // Each report is counted before it is acknowledged; a refused one is not.
        let count = *written.borrow();
        assert_eq!(count, 200, "199 reports and vm-7's second counted");
        reports
            .set(report("vm-8", "acme-1.1.0"))
            .await
            .expect("report");
        assert_eq!(*written.borrow(), count + 1);
        assert!(reports.set(report("", "acme-1.1.0")).await.is_err());
        assert_eq!(*written.borrow(), count + 1);
    }
}
