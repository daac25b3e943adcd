//! Fan-out of `clientDesiredVersionsChanged` over real WebSockets (issue 17 part 2): for
//! each count N of `BENCH_SUBSCRIBERS` (`1000,5000,10000`), a fresh distribution (a child
//! process of this bench, release build, SQLite, a real Git state repo of `BENCH_SERVICES`
//! (20) services) gets N idle subscribers, each on its own socket speaking
//! graphql-transport-ws as the updater does (`connection_init` with the token, then
//! `subscribe`). Then `BENCH_CHANGES` (3) times: a commit to the state repo that changes one
//! desired client version, and the Git hook (`POST /hooks/git`); each subscriber's latency
//! is from the hook's request to the `next` message carrying the new version.
//!
//! Prints per N: delivery latency p50/p99/max over all subscribers and changes, the server's
//! RSS before and after opening the subscriptions (KiB per idle subscription), the server's
//! CPU while pushing, and the machine's load average.
//!
//! The bench binary and its serving child allocate through jemalloc, as the `vupdate`
//! program does, so the RSS figures are the program's. The file-descriptor limit is raised
//! to the hard limit here (the child inherits it), never on the machine; each side needs
//! one descriptor per subscriber.
//!
//! Run with `cargo bench -p vupdate-distribution --bench fanout`
//! (`BENCH_SUBSCRIBERS=10000 BENCH_CHANGES=5 …` to focus).

mod support;

use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use support::{BenchResult, CpuMeter, Latencies, Server, ServerInfo};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The updater's subscription (`vupdate-client`'s, with the revision).
const SUBSCRIPTION: &str = "subscription($services: [String!]) { clientDesiredVersionsChanged(services: $services) { service version revision } }";
/// The service whose desired client version each change sets.
const CHANGED: &str = "svc01";
/// Sockets being opened at once: the server's accept backlog stays far from full.
const OPENING_AT_ONCE: usize = 64;
/// How long everything one step waits for may take before the bench gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// What one run measures.
struct Settings {
    subscribers: Vec<usize>,
    services: usize,
    changes: usize,
}

impl Settings {
    fn from_env() -> BenchResult<Settings> {
        // A tiny round when run as a test (`cargo test --benches`).
        let full = support::benching();
        Ok(Settings {
            subscribers: support::env_list(
                "BENCH_SUBSCRIBERS",
                if full { &[1000, 5000, 10_000] } else { &[20] },
            )?,
            services: support::env_or("BENCH_SERVICES", 20)?,
            changes: support::env_or("BENCH_CHANGES", if full { 3 } else { 2 })?,
        })
    }
}

fn main() -> BenchResult<()> {
    if support::serve_if_child()? {
        return Ok(());
    }
    let settings = Settings::from_env()?;
    let limit = raise_descriptor_limit()?;
    support::client_runtime()?.block_on(async move {
        println!("machine: {}", vupdate_test_support::machine::describe());
        println!(
            "fanout: {} services, {} changes per count, descriptor limit {limit}, load avg {}",
            settings.services,
            settings.changes,
            support::load_average()
        );
        println!(
            "{:>11} | {:>9} {:>9} {:>9} | {:>10} {:>10} {:>8} | {:>10} | load avg",
            "subscribers",
            "p50 ms",
            "p99 ms",
            "max ms",
            "rss before",
            "rss after",
            "KiB/sub",
            "server cpu"
        );
        for &count in &settings.subscribers {
            // The server takes every subscriber (all from 127.0.0.1) and the bench's own
            // requests.
            let server = Server::start_for(settings.services, Some(count + 64)).await?;
            let row = measure(&server, count, &settings).await;
            server.stop().await?;
            println!("{}", row?);
        }
        Ok(())
    })
}

/// One row: `count` subscribers on a fresh server, then the changes.
async fn measure(server: &Server, count: usize, settings: &Settings) -> BenchResult<String> {
    let info = server.info().clone();
    let http = support::client(4)?;
    let load_before = support::load_average();
    let rss_before = support::rss_kib(info.pid);
    // Each subscriber reports the instant it saw each expected version.
    let (expected_tx, expected_rx) = watch::channel(String::new());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let gate = std::sync::Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut subscribers = tokio::task::JoinSet::new();
    for _ in 0..count {
        let permit = gate.clone().acquire_owned().await?;
        let info = info.clone();
        let expected = expected_rx.clone();
        let seen = seen_tx.clone();
        let ready = ready_tx.clone();
        subscribers.spawn(async move {
            let socket = subscribe(&info).await;
            drop(permit);
            let mut socket = socket?;
            first_list(&mut socket).await?;
            let _ = ready.send(());
            follow(socket, expected, seen).await
        });
    }
    drop((seen_tx, ready_tx));
    for _ in 0..count {
        tokio::select! {
            ready = within(ready_rx.recv(), "every subscriber's first list") => {
                ready?.ok_or("the subscribers ended before their first list")?;
            }
            Some(ended) = subscribers.join_next() => return Err(ended_early(ended)),
        }
    }
    // Settle: the server's answers to the last subscriptions are written.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = support::rss_kib(info.pid);
    let meter = CpuMeter::start(info.pid);
    let mut latencies = Latencies::default();
    for change in 1..=settings.changes {
        let version = format!("{}_{change}", support::desired_version(1));
        expected_tx.send_replace(version.clone());
        commit_client_version(&info, &version).await?;
        let hook = Instant::now();
        let answer = http
            .post(format!("{}/hooks/git", info.base))
            .bearer_auth(&info.builder)
            .send()
            .await?;
        if !answer.status().is_success() {
            return Err(format!("the Git hook answered {}", answer.status()).into());
        }
        for _ in 0..count {
            let (seen, at) = tokio::select! {
                seen = within(seen_rx.recv(), "every subscriber's new list") => {
                    seen?.ok_or("the subscribers ended before the change reached them all")?
                }
                Some(ended) = subscribers.join_next() => return Err(ended_early(ended)),
            };
            if seen != change {
                return Err(
                    format!("a subscriber saw change {seen} during change {change}").into(),
                );
            }
            latencies.record(at.saturating_duration_since(hook));
        }
    }
    let cpu = meter.report(count * settings.changes);
    subscribers.abort_all();
    let [p50, p99, max] = latencies.quantiles().ok_or("no latencies")?;
    let per_subscriber = rss_after.saturating_sub(rss_before) as f64 / count as f64;
    Ok(format!(
        "{count:>11} | {p50:>9.1} {p99:>9.1} {max:>9.1} | {:>6} MiB {:>6} MiB {per_subscriber:>8.1} | {cpu} (load avg when opening {load_before})",
        rss_before / 1024,
        rss_after / 1024,
    ))
}

/// Why a subscriber that should still be following ended.
fn ended_early(
    ended: Result<BenchResult<()>, tokio::task::JoinError>,
) -> Box<dyn std::error::Error + Send + Sync> {
    match ended {
        Ok(Ok(())) => "a subscriber stopped following".into(),
        Ok(Err(error)) => format!("a subscriber failed: {error}").into(),
        Err(error) => format!("a subscriber panicked: {error}").into(),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket with the subscription sent, as the updater opens it.
async fn subscribe(info: &ServerInfo) -> BenchResult<Socket> {
    let url = format!("{}/graphql/ws", info.base.replacen("http", "ws", 1));
    let mut request = url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // The bench holds thousands of sockets; small buffers keep its own memory small.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut socket, _) = within(
        tokio_tungstenite::connect_async_with_config(request, Some(config), true),
        "a socket",
    )
    .await??;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", info.updater)}}),
    )
    .await?;
    loop {
        let message = read(&mut socket).await?;
        match message["type"].as_str() {
            Some("connection_ack") => break,
            Some("ping") => send(&mut socket, json!({"type": "pong"})).await?,
            other => return Err(format!("expected `connection_ack`, got {other:?}").into()),
        }
    }
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {}}}),
    )
    .await?;
    Ok(socket)
}

/// Waits for the list in force, which every subscription gets first.
async fn first_list(socket: &mut Socket) -> BenchResult<()> {
    loop {
        let message = read(socket).await?;
        if message["type"] == "next" {
            return Ok(());
        }
        if message["type"] != "ping" {
            return Err(format!("expected the first list, got {message}").into());
        }
    }
}

/// Reads the feed, reporting the instant each expected version arrives (`seen` gets the
/// change's number, the digits after the version's `_`).
async fn follow(
    mut socket: Socket,
    expected: watch::Receiver<String>,
    seen: mpsc::UnboundedSender<(usize, Instant)>,
) -> BenchResult<()> {
    loop {
        let message = read(&mut socket).await?;
        let at = Instant::now();
        if message["type"] == "ping" {
            send(&mut socket, json!({"type": "pong"})).await?;
            continue;
        }
        if message["type"] != "next" {
            return Err(format!("expected a list, got {message}").into());
        }
        let want = expected.borrow().clone();
        let list = &message["payload"]["data"]["clientDesiredVersionsChanged"];
        let version = list
            .as_array()
            .and_then(|items| items.iter().find(|item| item["service"] == CHANGED))
            .and_then(|item| item["version"].as_str());
        if version == Some(want.as_str()) {
            let change = want.rsplit('_').next().unwrap_or_default().parse()?;
            if seen.send((change, at)).is_err() {
                return Ok(());
            }
        }
    }
}

async fn send(socket: &mut Socket, value: Value) -> BenchResult<()> {
    socket.send(Message::text(value.to_string())).await?;
    Ok(())
}

/// The next text message as JSON; a close or an end is an error.
async fn read(socket: &mut Socket) -> BenchResult<Value> {
    loop {
        match socket.next().await {
            None => return Err("the socket ended".into()),
            Some(Err(tungstenite::Error::ConnectionClosed)) => {
                return Err("the socket closed".into());
            }
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("the server closed the socket: {frame:?}").into());
            }
            Some(Ok(_)) => {}
        }
    }
}

/// `future`, or an error naming `what` after [`STEP_TIMEOUT`].
async fn within<F: std::future::Future>(future: F, what: &str) -> BenchResult<F::Output> {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .map_err(|_| format!("no {what} within {STEP_TIMEOUT:?}").into())
}

/// Commits `desired/client.yaml` with `version` for [`CHANGED`] (the `git` program, as a
/// person would push).
async fn commit_client_version(info: &ServerInfo, version: &str) -> BenchResult<()> {
    let repo = info.repo.clone();
    let content = format!("versions:\n  {CHANGED}: {version}\n");
    let message = format!("Bench: {CHANGED} at {version}");
    tokio::task::spawn_blocking(move || -> BenchResult<()> {
        std::fs::write(repo.join("desired/client.yaml"), content)?;
        let output = std::process::Command::new("git")
            .current_dir(&repo)
            .args(["commit", "--quiet", "--all", "--no-verify", "-m", &message])
            .env("GIT_AUTHOR_NAME", "Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "git commit failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(())
    })
    .await?
}

/// Raises this process's soft limit on open files to its hard limit (the serving child
/// inherits it); returns the limit now in force.
fn raise_descriptor_limit() -> BenchResult<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}
