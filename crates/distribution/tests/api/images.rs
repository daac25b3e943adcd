//! Images through the server: a cut upload leaves no version, and a version uploaded once
//! stays as it was.

use reqwest::StatusCode;
use tokio::io::AsyncWriteExt as _;

use super::support::Harness;

#[tokio::test]
async fn a_killed_upload_leaves_no_visible_version() {
    let harness = Harness::start().await;
    let path = "/images/developer/api/acme-1.0.7";
    let address = harness.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Length: 10000000\r\n\r\n",
        harness.builder
    );
    socket.write_all(head.as_bytes()).await.expect("headers");
    socket
        .write_all(&vec![7u8; 1_000_000])
        .await
        .expect("a part of the body");
    socket.flush().await.expect("flush");
    // The uploader dies here.
    drop(socket);

    let get = || async {
        harness
            .client
            .get(harness.url(path))
            .bearer_auth(&harness.admin)
            .send()
            .await
            .expect("GET")
            .status()
    };
    assert_eq!(get().await, StatusCode::NOT_FOUND);
    // Once the server has seen the connection go, the version can be uploaded whole.
    harness
        .eventually("the cut upload to let go of the version", || async {
            let put = harness
                .client
                .put(harness.url(path))
                .bearer_auth(&harness.builder)
                .body(vec![1u8; 4096])
                .send()
                .await
                .expect("PUT");
            if put.status() == StatusCode::CREATED {
                return Some(());
            }
            assert_eq!(
                put.status(),
                StatusCode::CONFLICT,
                "only the dying upload may still hold the version"
            );
            None
        })
        .await;
    let body = harness
        .client
        .get(harness.url(path))
        .bearer_auth(&harness.admin)
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.as_ref(), &[1u8; 4096][..]);
    let leftovers = std::fs::read_dir(harness.data.path().join("images/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(leftovers, 0);
}

/// The message of a `409 LEASE_LOST` answer; panics on any other.
async fn lease_lost(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    assert_eq!(body["error"]["code"], "LEASE_LOST", "{body}");
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

/// A lease holder's builder: what it writes is kept while the lease its token was issued
/// under is in force, and refused on every replica once it ended, whether or not another
/// replica took over and revoked the token yet.
#[tokio::test]
async fn a_holder_s_builder_writes_only_while_the_lease_of_its_token_is_in_force() {
    use vupdate_distribution::auth::IssuedUnder;
    use vupdate_distribution::leadership::LEASE_NAME;

    let harness = Harness::start().await;
    let context = harness.distribution.as_ref().expect("running").context();
    let leases = context.store.leases();
    let lease = leases
        .take(LEASE_NAME, "holder-1", std::time::Duration::from_secs(60))
        .await
        .expect("take")
        .expect("nobody holds it");
    let token = context
        .auth
        .issue_access_token_under(
            "builder",
            Some(IssuedUnder {
                holder: lease.holder.clone(),
                token: lease.token,
            }),
        )
        .await
        .expect("token");
    let upload = |path: &'static str, token: String| {
        let request = harness
            .client
            .put(harness.url(path))
            .bearer_auth(token)
            .body(vec![3u8; 2048]);
        async move { request.send().await.expect("PUT") }
    };
    let record = |version: &'static str| {
        harness.graphql(
            &token,
            "mutation($v: String!) { addDeveloperVersionInfo(info: {service: \"api\", version: $v, buildInfo: {author: \"ci\", sources: [], time: \"2026-12-01T00:00:00Z\", comment: \"built\"}}) { version } }",
            serde_json::json!({"v": version}),
        )
    };

    let log = |sequence: u64, message: &'static str| {
        let request = harness
            .client
            .post(harness.url("/logs/batches"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(serde_json::json!({
                "service": "api", "instance": "builder", "directory": "/build", "process": "1",
                "task": "t-1",
                "logs": [{"sequence": sequence,
                    "time": "2026-12-01T00:00:00Z", "level": "INFO", "unit": "build", "message": message}],
            }).to_string());
        async move { request.send().await.expect("POST /logs/batches") }
    };

    assert_eq!(log(1, "cloned").await.status(), StatusCode::OK);
    let kept = upload("/images/developer/api/acme-1.0.1", token.clone()).await;
    assert_eq!(kept.status(), StatusCode::CREATED);
    let recorded = record("acme-1.0.1").await;
    assert_eq!(
        recorded["data"]["addDeveloperVersionInfo"]["version"], "acme-1.0.1",
        "{recorded}"
    );

    // The holder stops without handing over; its token is not revoked.
    assert!(leases.release(&lease).await.expect("release"));
    let message = lease_lost(upload("/images/developer/api/acme-1.0.2", token.clone()).await).await;
    assert!(
        message.contains(&format!("with token {} is no longer held", lease.token))
            && message.contains("nobody holds it since"),
        "{message}"
    );
    let stored = harness
        .client
        .get(harness.url("/images/developer/api/acme-1.0.2"))
        .bearer_auth(&harness.admin)
        .send()
        .await
        .expect("GET");
    assert_eq!(stored.status(), StatusCode::NOT_FOUND, "nothing was kept");

    // Nor is a line of its task's log.
    lease_lost(log(2, "built").await).await;
    let task_log = harness
        .ok(
            &harness.admin,
            "{ logs(filter: {task: \"t-1\"}, limit: 10) { message } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        task_log["logs"],
        serde_json::json!([{"message": "cloned"}]),
        "the line sent while the lease was in force only"
    );

    // An image an administrator uploaded is not recorded by the fenced builder either.
    let by_admin = upload("/images/developer/api/acme-1.0.3", harness.admin.clone()).await;
    assert_eq!(by_admin.status(), StatusCode::CREATED);
    let refused = record("acme-1.0.3").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "LEASE_LOST",
        "{refused}"
    );
    let versions = harness
        .ok(
            &harness.admin,
            "{ developerVersionsInfo(service: \"api\") { version } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        versions["developerVersionsInfo"],
        serde_json::json!([{"version": "acme-1.0.1"}])
    );

    // A builder token issued under no lease (a single server's, or one an administrator
    // made) is not a holder's: it is not fenced.
    let plain = upload("/images/developer/api/acme-1.0.4", harness.builder.clone()).await;
    assert_eq!(plain.status(), StatusCode::CREATED);
}
