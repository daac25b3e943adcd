//! Logs: batches stored once, the sender batching as lines come and closing with a report.

use std::time::Duration;

use serde_json::{Value, json};
use vupdate_client::logs::LogSenderOptions;
use vupdate_client::{LogLine, LogSender, LogSource};
use vupdate_core::log::Level;

use super::support;

fn source(task: &str) -> LogSource {
    LogSource {
        service: "builder".to_owned(),
        role: None,
        instance: "ci".to_owned(),
        directory: "/srv/builder".to_owned(),
        process: "4242".to_owned(),
        task: Some(task.to_owned()),
    }
}

async fn task_log(server: &support::Server, task: &str) -> Vec<String> {
    let data: Value = server
        .admin
        .graphql(
            "query($t: String!) { logs(filter: {task: $t}, limit: 10000) { message } }",
            json!({"t": task}),
        )
        .await
        .expect("logs");
    let mut messages: Vec<String> = data["logs"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| line["message"].as_str().expect("message").to_owned())
        .collect();
    messages.sort();
    messages
}

#[tokio::test]
async fn a_resent_batch_is_stored_once() {
    let mut server = support::start().await;
    let lines: Vec<LogLine> = (0..3)
        .map(|i| LogLine {
            time: chrono::Utc::now(),
            level: Level::Info,
            unit: "PROCESS".to_owned(),
            message: format!("line {i}"),
            sequence: Some(100 + i),
            termination_status: None,
        })
        .collect();
    let source = source("t-resend");
    assert_eq!(
        server
            .builder
            .add_logs(&source, &lines)
            .await
            .expect("first"),
        3
    );
    assert_eq!(
        server
            .builder
            .add_logs(&source, &lines)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        task_log(&server, "t-resend").await,
        ["line 0", "line 1", "line 2"]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_sender_delivers_every_line_in_batches_and_reports_at_close() {
    let mut server = support::start().await;
    let sender = LogSender::start(
        server.builder.clone(),
        source("t-sender"),
        LogSenderOptions {
            interval: Duration::from_millis(50),
            max_lines: 100,
            ..LogSenderOptions::default()
        },
    );
    for i in 0..250 {
        sender.line(Level::Info, "PROCESS", &format!("output {i:03}"));
    }
    sender.last_line(Level::Info, "BUILD", "done", true);
    let report = sender.close(Duration::from_secs(30)).await;
    assert_eq!(
        (report.sent, report.dropped),
        (251, 0),
        "{:?}",
        report.last_error
    );
    let log = task_log(&server, "t-sender").await;
    assert_eq!(log.len(), 251);
    assert_eq!(log[0], "done");
    assert_eq!(log[1], "output 000");

    // A sender whose lines are refused (no role to send them) drops them and says why.
    let sender = LogSender::start(
        server.admin.with_token("not-a-token"),
        source("t-refused"),
        LogSenderOptions::default(),
    );
    sender.line(Level::Info, "PROCESS", "never stored");
    let report = sender.close(Duration::from_secs(30)).await;
    assert_eq!((report.sent, report.dropped), (0, 1));
    assert_eq!(
        report.last_error.as_ref().and_then(|e| e.code()),
        Some("UNAUTHENTICATED"),
        "{:?}",
        report.last_error
    );
    server.stop().await;

    // With the server gone, close gives up at its deadline and counts what was left.
    let sender = LogSender::start(
        server.builder.clone(),
        source("t-gone"),
        LogSenderOptions::default(),
    );
    sender.line(Level::Info, "PROCESS", "nobody listens");
    let report = sender.close(Duration::from_millis(800)).await;
    assert_eq!((report.sent, report.dropped), (0, 1));
}

/// A distribution from before `POST /logs/batches`, as far as log batches go: that route
/// answers `404 NOT_FOUND` as such a server's fallback does, and `addLogs` stores every
/// line, after answering the first `behind` batches `STORE_BEHIND` as a server whose
/// writer is behind does (a GraphQL error, HTTP 200). Records the requests to each.
async fn older_distribution(
    behind: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut socket = tokio::io::BufReader::new(socket);
                loop {
                    let mut head = String::new();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("length");
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0; length];
                    socket.read_exact(&mut body).await.expect("body");
                    let request = head.lines().next().unwrap_or_default().to_owned();
                    let graphql_asked = {
                        let mut seen = seen.lock().expect("lock");
                        seen.push(request.clone());
                        graphql_requests(&seen)
                    };
                    let (status, answer) = if request.starts_with("POST /graphql ") {
                        let body: Value = serde_json::from_slice(&body).expect("JSON");
                        let lines = body["variables"]["logs"].as_array().map_or(0, Vec::len);
                        if graphql_asked <= behind {
                            let error = json!({
                                "message": "the server is behind and will take this batch later",
                                "extensions": {"code": "STORE_BEHIND", "retryAfterSeconds": 1}
                            });
                            ("200 OK", json!({"data": null, "errors": [error]}))
                        } else {
                            ("200 OK", json!({"data": {"addLogs": lines}}))
                        }
                    } else {
                        (
                            "404 Not Found",
                            json!({"error": {"code": "NOT_FOUND", "message": "no such route"}}),
                        )
                    };
                    let answer = answer.to_string();
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if socket
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (base, asked)
}

#[tokio::test]
async fn a_distribution_without_the_log_batch_route_gets_batches_by_graphql() {
    let (base, asked) = older_distribution(0).await;
    let client = vupdate_client::Client::new(base, Some("token".to_owned())).expect("client");
    let lines: Vec<LogLine> = (0..4)
        .map(|i| LogLine {
            time: chrono::Utc::now(),
            level: Level::Info,
            unit: "PROCESS".to_owned(),
            message: format!("line {i}"),
            sequence: Some(i),
            termination_status: None,
        })
        .collect();
    let source = source("t-older");
    assert_eq!(client.add_logs(&source, &lines).await.expect("sent"), 4);
    assert_eq!(
        client.add_logs(&source, &lines[..2]).await.expect("sent"),
        2
    );
    // The route is asked once; the client remembers the answer (and so do its clones).
    assert_eq!(
        client
            .clone()
            .add_logs(&source, &lines[..1])
            .await
            .expect("sent"),
        1
    );
    assert_eq!(
        *asked.lock().expect("lock"),
        [
            "POST /logs/batches HTTP/1.1",
            "POST /graphql HTTP/1.1",
            "POST /graphql HTTP/1.1",
            "POST /graphql HTTP/1.1"
        ]
    );
}

/// `addLogs` answering `STORE_BEHIND` means "later", not "refused": the sender keeps the
/// batch and sends it again (it used to drop it, losing the lines).
#[tokio::test]
async fn a_batch_answered_store_behind_by_graphql_is_sent_again_not_dropped() {
    let (base, asked) = older_distribution(2).await;
    let client = vupdate_client::Client::new(base, Some("token".to_owned())).expect("client");
    let sender = LogSender::start(
        client,
        source("t-behind"),
        LogSenderOptions {
            interval: Duration::from_millis(20),
            ..LogSenderOptions::default()
        },
    );
    for i in 0..3 {
        sender.line(Level::Info, "PROCESS", &format!("line {i}"));
    }
    let report = sender.close(Duration::from_secs(30)).await;
    assert_eq!(
        (report.sent, report.dropped),
        (3, 0),
        "{:?}",
        report.last_error
    );
    let asked = asked.lock().expect("lock");
    assert_eq!(graphql_requests(&asked), 3, "{asked:?}");
}

/// How many of the request lines `seen` went to `POST /graphql`.
fn graphql_requests(seen: &[String]) -> usize {
    seen.iter()
        .filter(|r| r.starts_with("POST /graphql "))
        .count()
}
