//! A 200 MB image up and down through a real distribution on 127.0.0.1, streamed at both
//! ends: the checksum matches and the process's peak memory grows by far less than the
//! image (it is never held whole). Alone in its test binary so that no other test's
//! memory counts.

use std::time::Duration;

use futures::StreamExt as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Person};

const SIZE: u64 = 200 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;
/// Far below the image's size: what buffers, both HTTP stacks and the test may use.
const MAX_GROWTH_KB: u64 = 80 * 1024;

/// The process's peak resident memory so far, in KiB (Linux `VmHWM`).
fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Chunk `i` of the image: deterministic, and not all alike.
fn chunk(i: u64) -> Vec<u8> {
    (0..CHUNK)
        .map(|j| ((i as usize * 31 + j * 7) % 251) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_image_streams_both_ways_with_bounded_memory() {
    let repo = GitRepo::init();
    repo.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", ""),
            ("desired/developer.yaml", "versions: {}\n"),
        ],
        "Empty state",
        &Person::alice(),
    );
    let data = TempDir::new().expect("data");
    let yaml = format!(
        "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\n",
        repo.path().display()
    );
    let config = DistributionConfig::from_str(&yaml, data.path()).expect("config");
    let server = Distribution::start(
        &config,
        StartOptions {
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
            ..StartOptions::default()
        },
    )
    .await
    .expect("start");
    let base = format!("http://{}", server.local_addr());
    // In a workspace build reqwest has rustls without a provider (vupdate-client brings
    // it, with ring): a client needs the process-wide provider installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let token = server
        .context()
        .auth
        .issue_access_token("builder")
        .await
        .expect("builder token");
    let url = format!("{base}/images/developer/api/acme-1.0.0");

    let before = peak_kb();
    let chunks = (SIZE / CHUNK as u64) as usize;
    let mut hasher = Sha256::new();
    for i in 0..chunks {
        hasher.update(chunk(i as u64));
    }
    let expected = hex::encode(hasher.finalize());
    let body = futures::stream::iter(0..chunks).map(|i| Ok::<_, std::io::Error>(chunk(i as u64)));
    let uploaded = client
        .put(&url)
        .bearer_auth(&token)
        .header("X-Content-Sha256", &expected)
        .body(reqwest::Body::wrap_stream(body))
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("PUT");
    assert_eq!(uploaded.status(), reqwest::StatusCode::CREATED);
    let answer: serde_json::Value =
        serde_json::from_slice(&uploaded.bytes().await.expect("body")).expect("JSON");
    assert_eq!(answer["size"], json!(SIZE));

    let response = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.headers()["x-content-sha256"], expected.as_str());
    let mut stream = response.bytes_stream();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.expect("download chunk");
        received += bytes.len() as u64;
        hasher.update(&bytes);
    }
    assert_eq!(received, SIZE);
    assert_eq!(
        hex::encode(hasher.finalize()),
        expected,
        "the image came back intact"
    );
    let growth = peak_kb().saturating_sub(before);
    assert!(
        growth < MAX_GROWTH_KB,
        "peak memory grew by {growth} KiB for a {} KiB image: something holds it whole",
        SIZE / 1024
    );
    server.shutdown().await.expect("shutdown");
}
