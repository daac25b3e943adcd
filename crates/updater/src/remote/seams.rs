//! The agent's four network seams ([`crate::agent::Seams`]) over vupdate-client:
//! images from `GET /images/client/{service}/{version}` (resumed, verified), log batches
//! to `POST /logs/batches`, fault reports to `PUT /faults/{id}` and `addFaultReport`, states to
//! `setServiceStates`. Each tells the [`Api`] whether the distribution answered.
//!
//! Logs and fault reports retry inside the seam while the distribution is away (see
//! [`Api::retrying`]), so they go out as soon as it is back; images and states fail at
//! once, since the runner and the reporter retry them on their own terms (a new desired
//! version, the next report).

use std::path::Path;
use std::sync::Arc;

use vupdate_client::{
    ClientError, FaultFileReport, FaultInfoReport, FaultReport, ImageRef, LogLine,
    ServiceStateReport, StateReport, UpdateErrorReport,
};
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

use super::api::Api;
use crate::Error;
use crate::agent::Seams;
use crate::faults::{FaultUploader, PendingFault};
use crate::images::ImageSource;
use crate::logs::{LogSink, LogSource, SpooledLine};
use crate::state::{InstanceState, ServiceState, StateSink};

/// The seams the agent runs with.
pub type ApiSeams = Seams<ApiImages, ApiLogs, ApiFaults, ApiStates>;

/// All four seams over one link.
pub fn seams(api: &Arc<Api>) -> ApiSeams {
    Seams {
        images: ApiImages(Arc::clone(api)),
        logs: ApiLogs(Arc::clone(api)),
        faults: ApiFaults(Arc::clone(api)),
        states: ApiStates(Arc::clone(api)),
    }
}

/// Client images from the distribution.
pub struct ApiImages(Arc<Api>);

impl ImageSource for ApiImages {
    type Error = ClientError;

    async fn fetch(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
        dest: &Path,
    ) -> Result<(), ClientError> {
        // The download lands beside `dest` and is renamed into place once verified.
        let result = self
            .0
            .client()
            .download_image(&ImageRef::client(service, version), dest)
            .await;
        self.0.observe(&result);
        let image = result?;
        tracing::info!(%service, %version, size = image.size, resumed_from = image.resumed_from, "image downloaded");
        Ok(())
    }

    fn is_absent(error: &ClientError) -> bool {
        error.code() == Some("NOT_FOUND")
    }
}

/// Log batches to `POST /logs/batches`, one call per run of lines of one process.
pub struct ApiLogs(Arc<Api>);

fn log_line(spooled: &SpooledLine) -> LogLine {
    LogLine {
        time: spooled.line.time.and_utc(),
        level: spooled.line.level,
        unit: spooled.line.unit.clone(),
        message: vupdate_client::logs::cut_message(&spooled.line.message).to_owned(),
        // Spool numbers never repeat in a spool, so the distribution drops resent lines.
        sequence: Some(i64::try_from(spooled.seq).unwrap_or(i64::MAX)),
        termination_status: None,
    }
}

impl LogSink for ApiLogs {
    type Error = ClientError;

    async fn send(&self, source: &LogSource, batch: &[SpooledLine]) -> Result<(), ClientError> {
        for run in batch.chunk_by(|a, b| a.process == b.process) {
            let source = vupdate_client::LogSource {
                service: source.instance.service.to_string(),
                role: source.instance.role.as_ref().map(ToString::to_string),
                instance: self.0.instance.clone(),
                directory: source.directory.clone(),
                process: run[0].process.to_string(),
                task: None,
            };
            let lines: Vec<LogLine> = run.iter().map(log_line).collect();
            let (source, lines) = (&source, &lines);
            let sent = self
                .0
                .retrying("log batch", move |client| async move {
                    client.add_logs(source, lines).await
                })
                .await;
            match sent {
                Ok(_) => {}
                // A batch the distribution will never take must not stop every later
                // line of the service: it is dropped, loudly.
                Err(error) if error.code() == Some("BAD_REQUEST") => {
                    tracing::error!(%error, service = %source.service, process = %source.process, lines = lines.len(), "log lines refused by the distribution; dropped");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Fault reports: the zip to `PUT /faults/{id}`, then `addFaultReport`.
pub struct ApiFaults(Arc<Api>);

impl FaultUploader for ApiFaults {
    type Error = Error;

    async fn upload(&self, fault: &PendingFault) -> Result<(), Error> {
        let pending = fault.clone();
        let (info, log_tail) = tokio::task::spawn_blocking(move || pending.read())
            .await
            .map_err(|e| Error::Stopped {
                what: format!("reading fault report {}", fault.id),
                reason: e.to_string(),
            })??;
        let report = FaultReport {
            id: info.id.clone(),
            info: FaultInfoReport {
                time: info.time,
                instance: self.0.instance.clone(),
                service: info.service.clone(),
                service_role: info.service_role.clone(),
                service_directory: info.service_directory.clone(),
                state: state_report(&info.state),
                log_tail,
            },
            files: info
                .files
                .iter()
                .map(|file| FaultFileReport {
                    path: file.path.clone(),
                    size: file.size,
                })
                .collect(),
        };
        let (archive, report) = (fault.path.as_path(), &report);
        self.0
            .retrying("fault report", move |client| async move {
                client.send_fault_report(archive, report).await
            })
            .await
            .map_err(|error| Error::Client {
                url: self.0.url().to_owned(),
                error,
            })?;
        Ok(())
    }
}

/// State reports to `setServiceStates`.
pub struct ApiStates(Arc<Api>);

/// A runner's state as the API takes it (a crash loop shows as a non-critical error).
fn state_report(state: &ServiceState) -> StateReport {
    StateReport {
        time: state.time,
        install_time: state.install_time,
        start_time: state.start_time,
        version: state.version.as_ref().map(ToString::to_string),
        update_to_version: state.update_to_version.as_ref().map(ToString::to_string),
        update_error: state.reported_error().map(|error| UpdateErrorReport {
            critical: error.critical,
            error: error.error,
        }),
        failures_count: state.failures_count,
        last_exit_code: state.last_exit_code,
        failed_version: state.failed_version.as_ref().map(ToString::to_string),
    }
}

impl StateSink for ApiStates {
    type Error = ClientError;

    async fn send(&self, states: &[InstanceState]) -> Result<(), ClientError> {
        let state_commit = self.0.provenance.commit(states);
        let reports: Vec<ServiceStateReport> = states
            .iter()
            .map(|state| ServiceStateReport {
                instance: self.0.instance.clone(),
                service: state.service.to_string(),
                role: state.role.as_ref().map(ToString::to_string),
                directory: state.directory.clone(),
                state: state_report(&state.state),
                state_commit: state_commit.clone(),
                labels: self.0.labels.clone(),
            })
            .collect();
        let result = self.0.client().set_service_states(&reports).await;
        self.0.observe(&result);
        result.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vupdate_core::log::Level;

    #[test]
    fn spooled_lines_keep_their_number_time_and_fields() {
        let time = chrono::DateTime::from_timestamp(1_767_225_600, 0)
            .expect("time")
            .naive_utc();
        let spooled = SpooledLine {
            seq: 42,
            process: 4242,
            line: vupdate_core::log::LogLine {
                time,
                level: Level::Warn,
                unit: "db".to_owned(),
                message: "slow query".to_owned(),
            },
        };
        let line = log_line(&spooled);
        assert_eq!(line.sequence, Some(42));
        assert_eq!(line.time, time.and_utc());
        assert_eq!(
            (line.level, line.unit.as_str(), line.message.as_str()),
            (Level::Warn, "db", "slow query")
        );
    }

    #[test]
    fn a_crash_loop_is_reported_as_an_update_error() {
        let mut state = ServiceState::unknown();
        state.crash_loop = true;
        state.failures_count = Some(4);
        state.version = Some("acme-1.0.0_1".parse().expect("version"));
        let report = state_report(&state);
        assert_eq!(report.version.as_deref(), Some("acme-1.0.0_1"));
        let error = report.update_error.expect("an error");
        assert!(
            !error.critical && error.error.contains("4 faults"),
            "{error:?}"
        );
    }
}
