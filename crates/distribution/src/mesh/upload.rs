//! Reporting back to a provider with `uploadState`: every `mesh.uploadInterval`, this
//! distribution's instance states and fault reports go to the provider, which stores them
//! under this distribution's name, and the developer versions its desired client versions
//! are made from go to `setInstalledDesiredVersions`.
//!
//! Nothing is lost or doubled across restarts of either side: states and reports are read
//! in `_sequence` order after a cursor kept in `<dataDirectory>/mesh/<provider>.upload.json`,
//! and the cursor moves only after the provider acknowledged a batch. What was sent but
//! not acknowledged (a cut, a crash) is sent again, and the provider takes it again as the
//! same thing: a state replaces the instance's earlier one, a fault report's id is stored
//! once (`PUT /faults/{id}` answers 409 for an archive it has, `addFaultReport` returns
//! the id of a report it has). A state replaced here gets a new `_sequence`, so the newest
//! state of every instance is always sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use vupdate_client::{
    Client, FaultFileReport, FaultInfoReport, FaultReport as FaultReportWire, ServiceStateReport,
    StateReport, UpdateErrorReport,
};
use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;
use vupdate_store::model::faults::{FaultQuery, FaultReport};
use vupdate_store::model::states::{ServiceState, ServiceStateRecord, StateQuery};

use super::worker::Worker;

/// The most states sent in one request.
const STATES_PER_BATCH: usize = 1000;
/// The most fault reports read at once.
const FAULTS_PER_ROUND: u64 = 100;

/// Uploads to `worker`'s provider until the task is dropped.
pub async fn upload(worker: Arc<Worker>) {
    let mut interval = tokio::time::interval(worker.parts.config.upload_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut installed_sent: Option<BTreeMap<ServiceName, DeveloperVersion>> = None;
    loop {
        interval.tick().await;
        let outcome = round(&worker, &mut installed_sent).await;
        worker.parts.board.update(&worker.name, |status| match outcome {
            Ok((states, faults)) => {
                status.upload.last_upload = Some(Utc::now());
                status.upload.last_error = None;
                status.upload.states_sent += states;
                status.upload.faults_sent += faults;
            }
            Err(message) => {
                // Logged when the reason changes, not every round: a secret not set yet
                // would otherwise log a line every interval for as long as it is missing.
                if status.upload.last_error.as_ref() != Some(&message) {
                    tracing::info!(provider = %worker.name, %message, "upload failed; tried again at each round until it succeeds");
                }
                status.upload.last_error = Some(message);
            }
        });
    }
}

/// One round: states, fault reports, installed versions; how many states and reports
/// were sent.
async fn round(
    worker: &Worker,
    installed_sent: &mut Option<BTreeMap<ServiceName, DeveloperVersion>>,
) -> Result<(u64, u64), String> {
    // A token the provider refused is not used again until the follower has a new one.
    if worker
        .parts
        .board
        .get(&worker.name)
        .is_some_and(|status| status.refused)
    {
        return Err("the provider refused the access token; waiting for a new one".to_owned());
    }
    let client = worker.client().map_err(|error| error.to_string())?;
    let states = send_states(worker, &client).await?;
    let faults = send_faults(worker, &client).await?;
    let installed = installed(worker);
    if installed_sent.as_ref() != Some(&installed) {
        client
            .set_installed_desired_versions(&installed)
            .await
            .map_err(|error| format!("setInstalledDesiredVersions: {error}"))?;
        *installed_sent = Some(installed);
    }
    Ok((states, faults))
}

/// Sends the states stored after the cursor, in batches; moves the cursor after each.
async fn send_states(worker: &Worker, client: &Client) -> Result<u64, String> {
    let parts = &worker.parts;
    let mut cursors = worker.memory.cursors();
    let found = parts
        .store
        .service_states()
        .query(&StateQuery {
            distribution: Some(parts.distribution.clone()),
            after_sequence: Some(cursors.states),
            ..StateQuery::default()
        })
        .await
        .map_err(|error| format!("cannot read the states: {error}"))?;
    let mut sent = 0;
    for batch in found.chunks(STATES_PER_BATCH) {
        let reports: Vec<ServiceStateReport> = batch
            .iter()
            .map(|stored| state_report(&stored.record))
            .collect();
        client
            .set_service_states(&reports)
            .await
            .map_err(|error| format!("setServiceStates: {error}"))?;
        cursors.states = batch
            .last()
            .map_or(cursors.states, |stored| stored.sequence);
        worker
            .memory
            .set_cursors(&cursors)
            .map_err(|error| format!("cannot keep the states cursor: {error}"))?;
        sent += batch.len() as u64;
    }
    Ok(sent)
}

/// Sends the fault reports stored after the cursor, archive first; moves the cursor after
/// each.
async fn send_faults(worker: &Worker, client: &Client) -> Result<u64, String> {
    let parts = &worker.parts;
    let mut sent = 0;
    loop {
        let mut cursors = worker.memory.cursors();
        let found = parts
            .store
            .fault_reports()
            .query(&FaultQuery {
                distribution: Some(parts.distribution.clone()),
                after_sequence: Some(cursors.faults),
                limit: Some(FAULTS_PER_ROUND),
                ..FaultQuery::default()
            })
            .await
            .map_err(|error| format!("cannot read the fault reports: {error}"))?;
        if found.is_empty() {
            return Ok(sent);
        }
        for stored in found {
            let report = &stored.record;
            if let Some(archive) = parts
                .fault_files
                .local(&report.distribution, &report.id)
                .await
            {
                client
                    .send_fault_report(&archive, &fault_report(report))
                    .await
                    .map_err(|error| format!("fault report {}: {error}", report.id))?;
                sent += 1;
            } else {
                // Expired here before it could be sent: the provider cannot have it.
                tracing::warn!(provider = %worker.name, fault = %report.id, "the fault report's archive is gone; not sent");
            }
            cursors.faults = stored.sequence;
            worker
                .memory
                .set_cursors(&cursors)
                .map_err(|error| format!("cannot keep the fault reports cursor: {error}"))?;
        }
    }
}

/// The developer versions this distribution's client versions in force are made from,
/// for the services the provider offers.
fn installed(worker: &Worker) -> BTreeMap<ServiceName, DeveloperVersion> {
    let Some(in_force) = worker.parts.in_force.borrow().clone() else {
        return BTreeMap::new();
    };
    let offered = worker
        .parts
        .board
        .get(&worker.name)
        .and_then(|status| status.offer)
        .map(|offer| offer.versions)
        .unwrap_or_default();
    in_force
        .state
        .effective_client_versions()
        .into_iter()
        .filter(|(service, _)| offered.contains_key(service))
        .map(|(service, version)| (service, version.developer))
        .collect()
}

fn state(state: &ServiceState) -> StateReport {
    StateReport {
        time: state.time,
        install_time: state.install_time,
        start_time: state.start_time,
        version: state.version.as_ref().map(ToString::to_string),
        update_to_version: state.update_to_version.as_ref().map(ToString::to_string),
        update_error: state.update_error.as_ref().map(|e| UpdateErrorReport {
            critical: e.critical,
            error: e.error.clone(),
        }),
        failures_count: state.failures_count,
        last_exit_code: state.last_exit_code,
        failed_version: state.failed_version.as_ref().map(ToString::to_string),
    }
}

fn state_report(record: &ServiceStateRecord) -> ServiceStateReport {
    ServiceStateReport {
        instance: record.instance.clone(),
        service: record.service.to_string(),
        role: record.role.as_ref().map(|role| role.as_str().to_owned()),
        directory: record.directory.clone(),
        state: state(&record.state),
        state_commit: record.state_commit.clone(),
        labels: record.labels.clone(),
    }
}

fn fault_report(report: &FaultReport) -> FaultReportWire {
    let info = &report.info;
    FaultReportWire {
        id: report.id.clone(),
        info: FaultInfoReport {
            time: info.time,
            instance: info.instance.clone(),
            service: info.service.to_string(),
            service_role: info
                .service_role
                .as_ref()
                .map(|role| role.as_str().to_owned()),
            service_directory: info.service_directory.clone(),
            state: state(&info.state),
            log_tail: info.log_tail.clone(),
        },
        files: report
            .files
            .iter()
            .map(|file| FaultFileReport {
                path: file.path.clone(),
                size: file.size,
            })
            .collect(),
    }
}
