//! Fault reports: the archive and the report stored once, whether the report is sent
//! twice or after an attempt that left only the archive on the server.

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::{ArchiveUpload, FaultFileReport, FaultInfoReport, FaultReport, StateReport};

use super::support;

fn report(id: &str) -> FaultReport {
    let time = chrono::Utc::now();
    FaultReport {
        id: id.to_owned(),
        info: FaultInfoReport {
            time,
            instance: "vm-1".to_owned(),
            service: "web".to_owned(),
            service_role: Some("eu".to_owned()),
            service_directory: "/srv/web-eu".to_owned(),
            state: StateReport {
                time,
                install_time: None,
                start_time: Some(time),
                version: Some("acme-1.0.0_1".to_owned()),
                update_to_version: None,
                update_error: None,
                failures_count: Some(1),
                last_exit_code: Some(3),
                failed_version: None,
            },
            log_tail: vec!["starting".to_owned(), "giving up: no database".to_owned()],
        },
        files: vec![FaultFileReport {
            path: "files/core".to_owned(),
            size: 4,
        }],
    }
}

async fn stored(server: &support::Server, id: &str) -> Vec<Value> {
    let data: Value = server
        .admin
        .graphql(
            "query($id: String!) { faults(id: $id) { id service serviceRole logTail state { lastExitCode } downloadPath } }",
            json!({"id": id}),
        )
        .await
        .expect("faults");
    data["faults"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_report_sent_twice_or_after_a_half_done_attempt_is_stored_once() {
    let mut server = support::start().await;
    let dir = TempDir::new().expect("dir");
    let archive = support::pattern_file(dir.path(), "fault.zip", 50_000);

    let first = report("20260101T000000000Z-00000001");
    server
        .updater
        .send_fault_report(&archive, &first)
        .await
        .expect("send");
    server
        .updater
        .send_fault_report(&archive, &first)
        .await
        .expect("send again");
    let found = stored(&server, &first.id).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["serviceRole"], "eu");
    assert_eq!(
        found[0]["logTail"],
        json!(["starting", "giving up: no database"])
    );
    assert_eq!(found[0]["state"]["lastExitCode"], 3);
    let url = format!(
        "{}{}",
        server.base,
        found[0]["downloadPath"].as_str().expect("path")
    );
    let download = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("GET the archive")
        .bytes()
        .await
        .expect("the archive's bytes");
    assert_eq!(
        download.as_ref(),
        std::fs::read(&archive).expect("archive").as_slice()
    );

    // An updater that crashed after the upload sends the whole report again.
    let second = report("20260101T000000000Z-00000002");
    assert_eq!(
        server
            .updater
            .upload_fault_archive(&second.id, &archive)
            .await
            .expect("archive only"),
        ArchiveUpload::Stored
    );
    assert_eq!(
        server
            .updater
            .upload_fault_archive(&second.id, &archive)
            .await
            .expect("archive again"),
        ArchiveUpload::AlreadyStored
    );
    server
        .updater
        .send_fault_report(&archive, &second)
        .await
        .expect("send after the crash");
    assert_eq!(stored(&server, &second.id).await.len(), 1);

    // A report without its archive is refused with a code.
    let error = server
        .updater
        .add_fault_report(&report("20260101T000000000Z-00000003"))
        .await
        .expect_err("no archive");
    assert_eq!(error.code(), Some("NOT_FOUND"), "{error}");
    server.stop().await;
}
