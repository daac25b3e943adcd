//! Fault reports: the archive to `PUT /faults/{id}` (written once: a second upload is
//! `409 ALREADY_EXISTS`), then the report to `addFaultReport` (adding an id again changes
//! nothing). [`Client::send_fault_report`] does both and may be repeated after any
//! failure or crash, so a report is stored exactly once however often it is sent.

use std::path::Path;

use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::Serialize;
use serde_json::json;

use crate::error::ClientError;
use crate::states::StateReport;
use crate::transport;
use crate::{Client, encode_segment};

const ADD_REPORT: &str = "mutation($report: FaultReportInput!) { addFaultReport(report: $report) }";

/// A file in a report's archive (the API's `FaultFileInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultFileReport {
    /// Its path in the archive.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What happened (the API's `FaultInfoInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultInfoReport {
    /// When the service failed.
    pub time: DateTime<Utc>,
    /// The instance (VM) id.
    pub instance: String,
    /// The service (its name, without the role).
    pub service: String,
    /// Its role, if it runs in one.
    pub service_role: Option<String>,
    /// Its directory on the instance.
    pub service_directory: String,
    /// Its state at the failure.
    pub state: StateReport,
    /// The last lines of its log, oldest first.
    pub log_tail: Vec<String>,
}

/// A fault report (the API's `FaultReportInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultReport {
    /// The report's id (8-64 of `[A-Za-z0-9_-]`), the archive's too.
    pub id: String,
    /// What happened.
    pub info: FaultInfoReport,
    /// The files of the archive.
    pub files: Vec<FaultFileReport>,
}

/// How an archive upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveUpload {
    /// The server stored it now.
    Stored,
    /// The server had it already (an earlier attempt got through).
    AlreadyStored,
}

impl Client {
    /// Streams the zip at `archive` to `PUT /faults/{id}`; an archive the server has
    /// already counts as uploaded (archives are written once).
    pub async fn upload_fault_archive(
        &self,
        id: &str,
        archive: &Path,
    ) -> Result<ArchiveUpload, ClientError> {
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(ClientError::io("opening", archive))?;
        let size = file
            .metadata()
            .await
            .map_err(ClientError::io("reading", archive))?
            .len();
        let url = self.url(&format!("/faults/{}", encode_segment(id)));
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ));
        let request = self
            .request(reqwest::Method::PUT, &url)
            .header(CONTENT_LENGTH, size)
            .header(CONTENT_TYPE, "application/zip")
            .body(body);
        match transport::send("PUT", &url, request).await {
            Ok(_) => Ok(ArchiveUpload::Stored),
            Err(ClientError::Refused { status: 409, .. }) => Ok(ArchiveUpload::AlreadyStored),
            Err(error) => Err(error),
        }
    }

    /// Records `report`, whose archive must be uploaded already; returns its id. Adding
    /// a report the server has changes nothing.
    pub async fn add_fault_report(&self, report: &FaultReport) -> Result<String, ClientError> {
        let data: serde_json::Value = self
            .graphql(ADD_REPORT, json!({ "report": report }))
            .await?;
        data["addFaultReport"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Decode {
                what: "GraphQL `addFaultReport`".to_owned(),
                reason: format!("`addFaultReport` is not an id: {data}"),
            })
    }

    /// Uploads the archive at `archive` and records `report`: safe to repeat after any
    /// failure, including one that left only the archive on the server.
    pub async fn send_fault_report(
        &self,
        archive: &Path,
        report: &FaultReport,
    ) -> Result<(), ClientError> {
        match self.upload_fault_archive(&report.id, archive).await {
            Ok(_) => {}
            Err(error @ ClientError::Transport { .. }) => {
                // The server answers a conflict before reading the body and closes the
                // connection, which looks like a cut here: the report itself says
                // whether the archive is there (it is refused as NOT_FOUND otherwise).
                return match self.add_fault_report(report).await {
                    Ok(_) => Ok(()),
                    Err(ClientError::Graphql { .. }) => Err(error),
                    Err(other) => Err(other),
                };
            }
            Err(error) => return Err(error),
        }
        self.add_fault_report(report).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_serialize_as_the_schema_names_them() {
        let time = DateTime::from_timestamp(1_767_225_600, 0).expect("time");
        let report = FaultReport {
            id: "20260101T000000000Z-0a1b2c3d".to_owned(),
            info: FaultInfoReport {
                time,
                instance: "vm-1".to_owned(),
                service: "web".to_owned(),
                service_role: Some("eu".to_owned()),
                service_directory: "/srv/web-eu".to_owned(),
                state: StateReport {
                    time,
                    install_time: None,
                    start_time: None,
                    version: Some("acme-1.0.0".to_owned()),
                    update_to_version: None,
                    update_error: None,
                    failures_count: Some(1),
                    last_exit_code: Some(3),
                    failed_version: None,
                },
                log_tail: vec!["last words".to_owned()],
            },
            files: vec![FaultFileReport {
                path: "files/core".to_owned(),
                size: 12,
            }],
        };
        let value = serde_json::to_value(&report).expect("json");
        assert_eq!(value["info"]["serviceRole"], "eu");
        assert_eq!(value["info"]["serviceDirectory"], "/srv/web-eu");
        assert_eq!(value["info"]["logTail"], json!(["last words"]));
        assert_eq!(value["info"]["state"]["lastExitCode"], 3);
        assert_eq!(value["files"], json!([{"path": "files/core", "size": 12}]));
    }
}
