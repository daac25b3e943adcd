//! HTTPS: with `tls` in the config the server speaks TLS with the given certificate; a key
//! that is not one is refused at start, naming both files.

use std::sync::Arc;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Person};

fn state_repo() -> GitRepo {
    let repo = GitRepo::init();
    let files = super::support::state_files("acme-1.0.0");
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    repo.commit_files(&refs, "First state", &Person::alice());
    repo
}

fn config(dir: &TempDir, repo: &GitRepo) -> DistributionConfig {
    let yaml = format!(
        "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\ntls:\n  certificate: cert.pem\n  key: key.pem\n",
        repo.path().display()
    );
    DistributionConfig::from_str(&yaml, dir.path()).expect("config")
}

fn options() -> StartOptions {
    StartOptions {
        password_cost: PasswordCost::MINIMAL_FOR_TESTS,
        ..StartOptions::default()
    }
}

#[tokio::test]
async fn the_server_speaks_tls_with_the_configured_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let repo = state_repo();
    let dir = TempDir::new().expect("dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).expect("write");
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .expect("write");
    let server = Distribution::start(&config(&dir, &repo), options())
        .await
        .expect("start");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("root");
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.expect("response");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_key_that_is_not_a_key_is_refused_naming_the_files() {
    let repo = state_repo();
    let dir = TempDir::new().expect("dir");
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("write");
    std::fs::write(dir.path().join("key.pem"), "not a key").expect("write");
    let error = Distribution::start(&config(&dir, &repo), options())
        .await
        .expect_err("bad PEM files");
    let message = error.to_string();
    assert!(
        message.contains("cert.pem") && message.contains("key.pem"),
        "{message}"
    );
}
