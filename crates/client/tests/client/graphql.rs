//! GraphQL answers and errors.

use serde_json::{Value, json};
use vupdate_client::{Client, ClientError};

use super::support;

#[tokio::test]
async fn data_is_decoded_and_errors_carry_their_codes() {
    let mut server = support::start().await;
    let data: Value = server
        .builder
        .graphql("{ distributionInfo { distribution } }", json!({}))
        .await
        .expect("query");
    assert_eq!(data["distributionInfo"]["distribution"], "acme");

    // The updater may not record versions: FORBIDDEN, with the operation named.
    let error = server
        .updater
        .graphql::<Value>("mutation { retryFailedBuilds }", json!({}))
        .await
        .expect_err("forbidden");
    assert_eq!(error.code(), Some("FORBIDDEN"), "{error}");
    assert!(
        matches!(&error, ClientError::Graphql { operation, .. } if operation == "retryFailedBuilds"),
        "{error}"
    );
    assert!(!error.is_transient());

    // A bad token is refused whatever it asks.
    let stranger = Client::new(&server.base, Some("not-a-token".to_owned())).expect("client");
    let error = stranger
        .graphql::<Value>("{ status { synced } }", json!({}))
        .await
        .expect_err("unauthenticated");
    assert_eq!(error.code(), Some("UNAUTHENTICATED"), "{error}");

    // Data that does not fit the caller's type is a decode error naming the operation.
    let error = server
        .builder
        .graphql::<Vec<String>>("{ distributionInfo { distribution } }", json!({}))
        .await
        .expect_err("wrong type");
    assert!(
        error
            .to_string()
            .starts_with("GraphQL `distributionInfo`: unexpected answer"),
        "{error}"
    );
    server.stop().await;

    // A server that is gone is a transient transport error.
    let error = server
        .builder
        .graphql::<Value>("{ distributionInfo { distribution } }", json!({}))
        .await
        .expect_err("gone");
    assert!(matches!(error, ClientError::Transport { .. }), "{error}");
    assert!(error.is_transient());
}

/// A server that accepts a connection and closes it at once: reqwest's own message says
/// only "error sending request"; the cause is two sources down.
#[tokio::test]
async fn a_cut_connection_names_its_cause_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let closer = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let error = Client::new(&base, None)
        .expect("client")
        .graphql::<Value>("{ status { synced } }", json!({}))
        .await
        .expect_err("the connection is cut");
    closer.abort();
    assert!(error.is_transient(), "{error}");
    // The message carries the whole cause, as the updater's logs print it...
    let message = error.to_string();
    assert!(message.contains("error sending request"), "{message}");
    assert!(
        message.to_lowercase().contains("connection"),
        "the cause is in the message: {message}"
    );
    // ...and `source()` does not repeat it, so `{:#}` of the binary prints it once.
    let printed = vupdate_core::error_chain::Chain(&error).to_string();
    assert_eq!(printed, message);
    assert_eq!(
        printed.matches("error sending request").count(),
        1,
        "{printed}"
    );
}

/// A server on 127.0.0.1 that closes the first connection it reads a request on without
/// answering (as an older distribution closes a kept-alive connection idle for its
/// `headerTimeout` just as a request goes out) and answers the next; its base URL, and how
/// many requests it read.
async fn closes_the_first_unanswered() -> (String, tokio::task::JoinHandle<usize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let mut requests = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            // The whole request, head and body (a close with bytes unread would be a
            // reset, not the quiet close this is about).
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !vupdate_test_support::http::whole_message(&request) {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => request.extend_from_slice(&chunk[..read]),
                }
            }
            requests += 1;
            if requests == 1 {
                drop(socket);
                continue;
            }
            let body = r#"{"data":{"ping":"pong"}}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.expect("answer");
            return requests;
        }
        requests
    });
    (base, server)
}

/// A query the server closed unanswered is sent once more, on a new connection, and
/// answered.
#[tokio::test]
async fn a_query_the_server_closed_unanswered_is_sent_once_more() {
    let (base, server) = closes_the_first_unanswered().await;
    let data: Value = Client::new(&base, None)
        .expect("client")
        .graphql("{ ping }", json!({}))
        .await
        .expect("answered the second time");
    assert_eq!(data["ping"], "pong");
    assert_eq!(server.await.expect("server"), 2, "sent exactly twice");
}

/// A mutation is not sent again: the server may have applied it before it went away.
#[tokio::test]
async fn a_mutation_the_server_closed_unanswered_is_not_sent_again() {
    let (base, server) = closes_the_first_unanswered().await;
    let error = Client::new(&base, None)
        .expect("client")
        .graphql::<Value>("mutation { ping }", json!({}))
        .await
        .expect_err("no answer");
    assert!(
        error.to_string().contains("POST"),
        "the transport error names the request: {error}"
    );
    server.abort();
    assert_eq!(
        server.await.err().map(|e| e.is_cancelled()),
        Some(true),
        "still waiting for a second request, which never came"
    );
}
