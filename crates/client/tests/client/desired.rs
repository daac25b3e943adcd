//! Desired client versions: the query, and the live feed over `/graphql/ws` (the list in
//! force at once, each change after), its refusal with a code, and its end when the
//! server goes away; both with the state commit the list comes from.

use std::time::Duration;

use vupdate_client::Client;
use vupdate_client::desired::DesiredVersions;
use vupdate_core::service::ServiceName;

use super::support;

/// How long any wait may last on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

fn names(list: &[&str]) -> Vec<ServiceName> {
    list.iter()
        .map(|name| name.parse().expect("a service name"))
        .collect()
}

fn map(entries: &[(&str, &str)]) -> DesiredVersions {
    entries
        .iter()
        .map(|(service, version)| {
            (
                service.parse().expect("service"),
                version.parse().expect("version"),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_query_gives_the_desired_client_versions_of_the_services_asked_for() {
    let mut server = support::start().await;
    let none = server
        .updater
        .client_desired_versions(None)
        .await
        .expect("query");
    assert!(none.is_empty(), "{none:?}");
    server
        .desire_client(&[("api", "acme-1.0.0_1"), ("web", "acme-2.0.0")])
        .await;
    let only_api = names(&["api"]);
    let found = server
        .updater
        .client_desired_versions(Some(&only_api))
        .await
        .expect("query");
    assert_eq!(found, map(&[("api", "acme-1.0.0_1")]));
    let all = server
        .updater
        .client_desired_versions(None)
        .await
        .expect("query");
    assert_eq!(all, map(&[("api", "acme-1.0.0_1"), ("web", "acme-2.0.0")]));
    server.stop().await;
}

#[tokio::test]
async fn the_feed_gives_the_list_in_force_then_each_change() {
    let mut server = support::start().await;
    server.desire_client(&[("api", "acme-1.0.0_1")]).await;
    let services = names(&["api"]);
    let mut feed = server
        .updater
        .follow_client_desired_versions(Some(&services))
        .await
        .expect("follow");
    let first = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("the list in force in time")
        .expect("no error");
    assert_eq!(first, Some(map(&[("api", "acme-1.0.0_1")])));
    // A change of another service only is not an event for `api`'s follower.
    server.desire_client(&[("web", "acme-3.0.0")]).await;
    server.desire_client(&[("api", "acme-1.0.0_2")]).await;
    let next = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("the change in time")
        .expect("no error");
    assert_eq!(next, Some(map(&[("api", "acme-1.0.0_2")])));
    feed.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_list_carries_its_state_commit_and_a_new_commit_sends_it_again() {
    let mut server = support::start().await;
    let first = server.desire_client(&[("api", "acme-1.0.0_1")]).await;
    let services = names(&["api"]);
    let polled = server
        .updater
        .client_desired_list(Some(&services), None)
        .await
        .expect("query");
    assert_eq!(polled.revision.as_deref(), Some(first.as_str()));
    assert_eq!(polled.versions, map(&[("api", "acme-1.0.0_1")]));
    let mut feed = server
        .updater
        .follow_client_desired_list(Some(&services), None)
        .await
        .expect("follow");
    let in_force = tokio::time::timeout(LIMIT, feed.next_list())
        .await
        .expect("the list in force in time")
        .expect("no error")
        .expect("a list");
    assert_eq!(in_force, polled);
    // A commit that leaves `api` as it was still moves the revision `api`'s updater
    // converges to.
    let second = server.desire_client(&[("web", "acme-3.0.0")]).await;
    let next = tokio::time::timeout(LIMIT, feed.next_list())
        .await
        .expect("the new commit in time")
        .expect("no error")
        .expect("a list");
    assert_eq!(next.revision.as_deref(), Some(second.as_str()));
    assert_eq!(next.versions, polled.versions);
    feed.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_refused_feed_carries_its_code_and_a_stopped_server_ends_the_feed() {
    let mut server = support::start().await;
    let anonymous = Client::new(&server.base, None).expect("client");
    let mut refused = anonymous
        .follow_client_desired_versions(None)
        .await
        .expect("the socket opens; the operation is refused");
    let error = tokio::time::timeout(LIMIT, refused.next())
        .await
        .expect("an answer in time")
        .expect_err("refused");
    assert!(
        matches!(error.code(), Some("UNAUTHENTICATED" | "FORBIDDEN")),
        "{error}"
    );
    assert!(!error.is_transient(), "{error}");
    assert_eq!(refused.next().await.expect("ended"), None);

    let mut feed = server
        .updater
        .follow_client_desired_versions(None)
        .await
        .expect("follow");
    let first = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("the list in force in time")
        .expect("no error");
    assert_eq!(first, Some(DesiredVersions::new()));
    server.stop().await;
    let ended = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("the end in time");
    match ended {
        Err(error) => assert!(error.is_transient(), "{error}"),
        Ok(None) => {}
        Ok(Some(list)) => panic!("an event after the stop: {list:?}"),
    }
    let error = server
        .updater
        .follow_client_desired_versions(None)
        .await
        .expect_err("nobody listens");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("/graphql/ws"), "{error}");
}

/// Answers `/graphql` as a server from before revisions on the desired list would: an
/// unknown-argument error for a query that gives `instance`, an unknown-field error for
/// one that asks for `revision`, the list for one that does neither. One request per connection; returns the queries it was sent.
async fn older_server(listener: tokio::net::TcpListener, requests: usize) -> Vec<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut seen = Vec::new();
    for _ in 0..requests {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buffer = [0_u8; 4096];
        let body = loop {
            let read = socket.read(&mut buffer).await.expect("read");
            assert!(read > 0, "the request ended early");
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request).into_owned();
            let Some(end) = text.find("\r\n\r\n") else {
                continue;
            };
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break text[end + 4..].to_owned();
            }
        };
        let answer = if body.contains("$instance") {
            r#"{"data":null,"errors":[{"message":"Unknown argument \"instance\" on field \"clientDesiredVersions\" of type \"QueryRoot\".","extensions":{"code":"BAD_REQUEST"}}]}"#
        } else if body.contains("revision") {
            r#"{"data":null,"errors":[{"message":"Unknown field \"revision\" on type \"ServiceVersion\".","extensions":{"code":"BAD_REQUEST"}}]}"#
        } else {
            r#"{"data":{"clientDesiredVersions":[{"service":"api","version":"acme-1.0.0_1"}]}}"#
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        socket.write_all(response.as_bytes()).await.expect("write");
        seen.push(body);
    }
    seen
}

#[tokio::test]
async fn a_server_from_before_revisions_gives_the_list_without_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(older_server(listener, 2));
    let client = Client::new(&base, Some("token".to_owned())).expect("client");
    let list = tokio::time::timeout(LIMIT, client.client_desired_list(None, None))
        .await
        .expect("in time")
        .expect("the list, asked again without the revision");
    assert_eq!(list.revision, None);
    assert_eq!(list.versions, map(&[("api", "acme-1.0.0_1")]));
    let seen = server.await.expect("the server");
    assert!(
        seen[0].contains("revision") && !seen[1].contains("revision"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_server_from_before_waves_is_asked_without_the_instance() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(older_server(listener, 3));
    let client = Client::new(&base, Some("token".to_owned())).expect("client");
    let list = tokio::time::timeout(LIMIT, client.client_desired_list(None, Some("vm-1")))
        .await
        .expect("in time")
        .expect("the list, asked again without the instance");
    assert_eq!(list.versions, map(&[("api", "acme-1.0.0_1")]));
    let seen = server.await.expect("the server");
    assert!(
        seen[0].contains("vm-1") && !seen[1].contains("$instance") && !seen[2].contains("revision"),
        "{seen:?}"
    );
}
