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
