//! HTTPS with rustls and ring: a server's self-signed certificate given as an extra root
//! is trusted; without it the same server is refused. The same holds for subscriptions
//! over `wss://`.

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::{Client, PublicKeyPin};
use vupdate_test_support::{GitRepo, Person};

use crate::support;

/// A distribution serving HTTPS with a new self-signed certificate for `names`: the
/// server, its `https://` base URL, the certificate and what holds them.
struct Served {
    server: vupdate_distribution::server::Distribution,
    base: String,
    certified: rcgen::CertifiedKey<rcgen::KeyPair>,
    _repo: GitRepo,
    _dir: TempDir,
}

async fn serve_self_signed(names: &[&str]) -> Served {
    let repo = GitRepo::init();
    repo.commit_files(
        &[("vupdate.yaml", "schema: 1\n")],
        "state",
        &Person::alice(),
    );
    let dir = TempDir::new().expect("dir");
    let certified = rcgen::generate_simple_self_signed(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("certificate");
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).expect("write");
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .expect("write");
    let yaml = format!(
        "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\ntls:\n  certificate: cert.pem\n  key: key.pem\n",
        repo.path().display()
    );
    let server = support::serve(&yaml, dir.path()).await;
    let base = format!("https://{}", server.local_addr());
    Served {
        server,
        base,
        certified,
        _repo: repo,
        _dir: dir,
    }
}

#[tokio::test]
async fn https_trusts_an_extra_root_and_refuses_an_unknown_certificate() {
    let served = serve_self_signed(&["localhost", "127.0.0.1"]).await;
    let (base, pem) = (served.base.clone(), served.certified.cert.pem());

    let trusting = Client::builder(&base)
        .root_certificate_pem(pem)
        .build()
        .expect("client");
    let data: Value = trusting
        .graphql("{ distributionInfo { distribution } }", json!({}))
        .await
        .expect("over HTTPS");
    assert_eq!(data["distributionInfo"]["distribution"], "acme");

    let stranger = Client::new(&base, None).expect("client");
    let error = stranger
        .graphql::<Value>("{ distributionInfo { distribution } }", json!({}))
        .await
        .expect_err("unknown certificate");
    assert!(
        matches!(error, vupdate_client::ClientError::Transport { .. }),
        "{error}"
    );

    // Over wss://, the socket opens with the extra root: the operation itself answers
    // (refused, since the client has no token).
    let mut feed = trusting
        .follow_client_desired_versions(None)
        .await
        .expect("a socket over TLS");
    let refused = tokio::time::timeout(std::time::Duration::from_secs(60), feed.next())
        .await
        .expect("an answer in time")
        .expect_err("no token");
    assert_eq!(refused.code(), Some("UNAUTHENTICATED"), "{refused}");
    let error = stranger
        .follow_client_desired_versions(None)
        .await
        .expect_err("unknown certificate");
    assert!(
        matches!(error, vupdate_client::ClientError::WebSocket { .. })
            && error.to_string().contains("TLS"),
        "{error}"
    );
    served.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_pinned_key_is_trusted_alone_and_another_key_is_refused_with_both_pins() {
    // A name the client does not use, from no authority: only the pin can vouch for it.
    let served = serve_self_signed(&["dist.example"]).await;
    let base = served.base.clone();
    let pin = vupdate_client::pin::pin_of_certificate(served.certified.cert.der()).expect("pin");

    let pinned = Client::builder(&base)
        .pinned_public_key(pin)
        .build()
        .expect("client");
    let data: Value = pinned
        .graphql("{ distributionInfo { distribution } }", json!({}))
        .await
        .expect("over HTTPS, pinned");
    assert_eq!(data["distributionInfo"]["distribution"], "acme");
    let mut feed = pinned
        .follow_client_desired_versions(None)
        .await
        .expect("a socket over TLS, pinned");
    let refused = tokio::time::timeout(std::time::Duration::from_secs(60), feed.next())
        .await
        .expect("an answer in time")
        .expect_err("no token");
    assert_eq!(refused.code(), Some("UNAUTHENTICATED"), "{refused}");

    let other = PublicKeyPin::of_public_key(b"another key");
    let wrong = Client::builder(&base)
        .pinned_public_key(other)
        .build()
        .expect("client");
    let expected = format!(
        "the server's public key is not the pinned one (`pinnedPublicKey`): expected {other}, the server presents {pin}"
    );
    let error = wrong
        .graphql::<Value>("{ distributionInfo { distribution } }", json!({}))
        .await
        .expect_err("another key");
    assert!(
        matches!(error, vupdate_client::ClientError::UnpinnedKey { .. })
            && error.to_string() == format!("{base}/graphql: {expected}"),
        "{error}"
    );
    let error = wrong
        .follow_client_desired_versions(None)
        .await
        .expect_err("another key");
    let socket = base.replacen("https", "wss", 1);
    assert_eq!(
        error.to_string(),
        format!("{socket}/graphql/ws: {expected}")
    );
    served.server.shutdown().await.expect("shutdown");
}
