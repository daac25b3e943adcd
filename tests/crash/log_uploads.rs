//! Log uploads waiting for the store leave the server's request places to everything else.
//!
//! The crash point `store.sqlite.uncommitted.log_records` holds a log batch inside its
//! transaction for as long as the test likes: a writer as far behind as it gets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use vupdate_client::logs::{LogLine, LogSource};
use vupdate_client::{Client, ClientError};
use vupdate_core::log::Level;

use crate::support::{Server, empty_state, eventually};

const POINT: &str = "store.sqlite.uncommitted.log_records";

async fn add_logs(admin: &Client, message: &str) -> Result<Value, ClientError> {
    admin
        .graphql(
            "mutation($logs: [LogLineInput!]!) { addLogs(service: \"api\", instance: \"vm-a\", directory: \"/srv/api\", process: \"1\", logs: $logs) }",
            json!({"logs": [{"sequence": 1, "time": chrono::Utc::now().to_rfc3339(), "level": "INFO", "unit": "app", "message": message}]}),
        )
        .await
}

/// A batch of one line by `POST /logs/batches`, as updaters send theirs.
async fn send_batch(admin: &Client, message: &str) -> Result<(), ClientError> {
    let source = LogSource {
        service: "api".to_owned(),
        role: None,
        instance: "vm-a".to_owned(),
        directory: "/srv/api".to_owned(),
        process: "2".to_owned(),
        task: None,
    };
    let line = LogLine {
        time: chrono::Utc::now(),
        level: Level::Info,
        unit: "app".to_owned(),
        message: message.to_owned(),
        sequence: Some(1),
        termination_status: None,
    };
    admin.add_logs(&source, &[line]).await.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_uploads_waiting_for_the_store_leave_room_for_everything_else() {
    let state = empty_state();
    let mut server = Server::start(&Server::config_following(&state, "limits:\n  requests:\n    max: 2\n    perAddress: 8\n    maxLogUploads: 1\n    bodyTimeout: 10m\n",
    ))
    .await;
    server.kill9();
    server.restart(Some(POINT)).await;

    // One of the two places: a request whose body has not all arrived.
    let address = server.base().trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .expect("send");
    // A log batch the writer holds: it takes the one log upload place, not the other.
    let held = tokio::spawn({
        let admin = server.admin().clone();
        async move { add_logs(&admin, "held").await }
    });
    server.reach(POINT).await;
    let admin = server.admin().clone();
    eventually(
        "a query answered beside the held log batch",
        &server.dir,
        || {
            let admin = admin.clone();
            async move {
                admin
                    .graphql::<Value>("{ serviceStates { instance } }", json!({}))
                    .await
                    .ok()
            }
        },
    )
    .await;

    // Two more at once, one by GraphQL, one by `POST /logs/batches` (as updaters send
    // theirs): one waits for the log upload place and is refused when its wait is over;
    // the other, with as many waiting as may run, is refused at once. Nothing of either is
    // written.
    let asked = Instant::now();
    let (second, third) = tokio::join!(add_logs(&admin, "second"), send_batch(&admin, "third"));
    let mut messages: Vec<String> = [second.map(drop), third]
        .into_iter()
        .map(|answer| answer.expect_err("refused").to_string())
        .collect();
    messages.sort_by_key(|message| message.contains("none ended"));
    let [at_once, after_waiting] = &messages[..] else {
        unreachable!("two answers")
    };
    for message in &messages {
        assert!(
            message.contains("limits.requests.maxLogUploads")
                && message.contains("nothing of this batch was written"),
            "{message}"
        );
    }
    assert!(at_once.contains("as many more wait"), "{at_once}");
    assert!(
        after_waiting.contains("none ended within 5 s"),
        "{after_waiting}"
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(4),
        "one waited for a place first"
    );
    assert!(!held.is_finished(), "the held batch is still in the writer");
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_uploads_wait_for_their_bytes_before_their_body_is_read() {
    let state = empty_state();
    let mut server = Server::start(&Server::config_following(
        &state,
        "limits:\n  requests:\n    maxLogUploads: 8\n    maxLogUploadBytes: 1KiB\n    bodyTimeout: 10m\n",
    ))
    .await;
    server.kill9();
    server.restart(Some(POINT)).await;
    // A batch the writer holds; its body's share, rounded up to a KiB, is all there is.
    let held = tokio::spawn({
        let admin = server.admin().clone();
        async move { add_logs(&admin, "held").await }
    });
    server.reach(POINT).await;

    // A batch to the updaters' route that says how long its body is and never sends it:
    // refused when its wait for room is over, so it waited before its body was read
    // (reading it would have waited for the 10 minutes of `bodyTimeout`).
    let asked = Instant::now();
    let address = server.base().trim_start_matches("http://").to_owned();
    let mut unsent = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    unsent
        .write_all(b"POST /logs/batches HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n")
        .await
        .expect("send");
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::io::AsyncReadExt::read(&mut unsent, &mut answer),
    )
    .await
    .expect("answered before its body came")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(
        answer.starts_with("HTTP/1.1 503")
            && answer.contains("SERVER_BUSY")
            && answer.contains("limits.requests.maxLogUploadBytes")
            && answer.contains("did not fit within 5 s"),
        "{answer}"
    );
    assert!(asked.elapsed() >= Duration::from_secs(4), "it waited");

    // An updater's batch as the client sends it: refused the same way, nothing written.
    let refused = send_batch(server.admin(), "waits for room")
        .await
        .expect_err("no room")
        .to_string();
    assert!(
        refused.contains("limits.requests.maxLogUploadBytes")
            && refused.contains("nothing of this batch was written"),
        "{refused}"
    );
    assert!(!held.is_finished(), "the held batch is still in the writer");
}
