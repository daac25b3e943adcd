//! GraphQL throughput and latency over real HTTP on 127.0.0.1, against a distribution with
//! the embedded SQLite store and a real state repo of `BENCH_SERVICES` (50) services:
//!
//! 1. `clientDesiredVersions` closed-loop at each concurrency of `BENCH_CONCURRENCY`
//!    (`1,32`): queries/s and p50/p99/max latency; then, at the highest concurrency and
//!    for half the time each, the floors under it (`BENCH_BASELINES=false` skips them):
//!    `GET /health`, `{ __typename }` anonymous, and `{ __typename }` with a token (adds
//!    authentication).
//! 2. `setServiceStates`, as `N` simulated instances (each of `BENCH_INSTANCES`,
//!    `1000,10000`) each reporting `BENCH_SERVICES_PER_REPORT` (3) services every
//!    `BENCH_PERIOD_SECONDS` (10 s): first one report per instance as fast as the server
//!    takes them (fills the table; closed-loop), then open-loop at the offered rate
//!    `N / period`, the sends spread evenly at fixed times and each latency measured from
//!    its scheduled time, so a stall is counted for every report it delays (no coordinated
//!    omission).
//! 3. The most `setServiceStates` reports/s closed-loop, at `BENCH_STATE_CONCURRENCY` (32)
//!    connections over the largest instance count.
//!
//! Each measurement lasts `BENCH_SECONDS` (20). The server runs in a child process by
//! default (`BENCH_SERVER=child`), so the generator and the server are separate processes
//! that the OS schedules on the cores; `BENCH_SERVER=inprocess` runs both on one runtime.
//! `BENCH_CLIENT_THREADS` (2) and `BENCH_SERVER_THREADS` (tokio's default) size the runtimes.
//!
//! Run with `cargo bench -p vupdate-distribution --bench graphql`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::calls::{Errors, Outcome, REQUEST_TIMEOUT, post_json, report_body};
use support::{BenchResult, CpuMeter, Latencies, Server, ServerInfo};
use tokio::sync::Semaphore;

const CLIENT_DESIRED: &str = "{ clientDesiredVersions { service version } }";
/// The most reports in flight in the open loop (connections); a report waiting for one
/// still has its latency counted from its scheduled time.
const MAX_IN_FLIGHT: usize = 2048;

/// What one run measures.
struct Settings {
    seconds: f64,
    services: usize,
    concurrency: Vec<usize>,
    instances: Vec<usize>,
    per_report: usize,
    period: f64,
    state_concurrency: usize,
    baselines: bool,
}

impl Settings {
    fn from_env() -> BenchResult<Settings> {
        // A tiny round when run as a test (`cargo test --benches`).
        let full = support::benching();
        Ok(Settings {
            seconds: support::env_or("BENCH_SECONDS", if full { 20.0 } else { 0.5 })?,
            services: support::env_or("BENCH_SERVICES", if full { 50 } else { 5 })?,
            concurrency: support::env_list(
                "BENCH_CONCURRENCY",
                if full { &[1, 32] } else { &[2] },
            )?,
            instances: support::env_list(
                "BENCH_INSTANCES",
                if full { &[1000, 10_000] } else { &[20] },
            )?,
            per_report: support::env_or("BENCH_SERVICES_PER_REPORT", 3)?,
            period: support::env_or("BENCH_PERIOD_SECONDS", if full { 10.0 } else { 0.5 })?,
            state_concurrency: support::env_or(
                "BENCH_STATE_CONCURRENCY",
                if full { 32 } else { 2 },
            )?,
            baselines: support::env_or("BENCH_BASELINES", true)?,
        })
    }
}

/// One request of a closed loop.
enum Call {
    /// `GET /health`: the HTTP stack alone.
    Health,
    /// A GraphQL operation (`POST /graphql`), with the updater's token or anonymous.
    Graphql { authenticated: bool, body: String },
}

async fn send(
    client: &reqwest::Client,
    info: &ServerInfo,
    token: &str,
    call: Call,
) -> Result<(), String> {
    match call {
        Call::Health => {
            let response = client
                .get(format!("{}/health", info.base))
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = response.status();
            response.bytes().await.map_err(|e| format!("read: {e}"))?;
            if !status.is_success() {
                return Err(format!("GET /health: HTTP {status}"));
            }
            Ok(())
        }
        Call::Graphql {
            authenticated,
            body,
        } => {
            let token = if authenticated { token } else { "" };
            post_json(client, &format!("{}/graphql", info.base), token, body)
                .await
                .map(drop)
        }
    }
}

/// `workers` connections each sending `make(i)` for the next `i` until `deadline` (or
/// until `limit` operations were started); returns latencies, errors, and the wall time.
/// GraphQL calls carry `token` unless anonymous.
async fn closed_loop<F>(
    info: &ServerInfo,
    token: &str,
    workers: usize,
    deadline: Instant,
    limit: Option<usize>,
    make: F,
) -> BenchResult<(Latencies, Errors, Duration)>
where
    F: Fn(usize) -> Call + Send + Sync + 'static,
{
    let client = support::client(workers)?;
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (client, info, token, next, make) = (
            client.clone(),
            info.clone(),
            token.to_owned(),
            next.clone(),
            make.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut errors = Errors::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|limit| i >= limit) {
                    break;
                }
                let call = make(i);
                let sent = Instant::now();
                match send(&client, &info, &token, call).await {
                    Ok(_) => latencies.record(sent.elapsed()),
                    Err(message) => errors.add(message),
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Latencies::default();
    let mut errors = Errors::default();
    for handle in handles {
        let (l, e) = handle.await?;
        latencies.extend(l);
        errors.merge(e);
    }
    Ok((latencies, errors, started.elapsed()))
}

async fn bench_client_desired(
    settings: &Settings,
    info: &ServerInfo,
    concurrency: usize,
) -> BenchResult<()> {
    // Check once that the answer is the whole list.
    let client = support::client(1)?;
    let body = json!({"query": CLIENT_DESIRED}).to_string();
    let bytes = post_json(
        &client,
        &format!("{}/graphql", info.base),
        &info.updater,
        body.clone(),
    )
    .await?;
    let value: Value = serde_json::from_slice(&bytes)?;
    let listed = value["data"]["clientDesiredVersions"]
        .as_array()
        .map_or(0, Vec::len);
    if listed != settings.services {
        return Err(format!(
            "clientDesiredVersions listed {listed} services, not {}",
            settings.services
        )
        .into());
    }
    let deadline = Instant::now() + Duration::from_secs_f64(settings.seconds);
    let cpu = CpuMeter::start(info.pid);
    let (mut latencies, errors, wall) = closed_loop(
        info,
        &info.updater,
        concurrency,
        deadline,
        None,
        move |_| Call::Graphql {
            authenticated: true,
            body: body.clone(),
        },
    )
    .await?;
    println!(
        "clientDesiredVersions ({listed} services), closed loop, {concurrency} connection(s): {:.0} queries/s, {}, {}",
        latencies.len() as f64 / wall.as_secs_f64(),
        latencies.summary(),
        errors.summary()
    );
    println!("    {}", cpu.report(latencies.len()));
    Ok(())
}

/// The floors under `clientDesiredVersions`, at `concurrency` connections: `GET /health`
/// (HTTP), `{ __typename }` anonymous (plus GraphQL) and with the updater's token (plus
/// authentication: the token's signature and the account read from the store).
async fn baselines(settings: &Settings, info: &ServerInfo, concurrency: usize) -> BenchResult<()> {
    let typename = json!({"query": "{ __typename }"}).to_string();
    for (name, authenticated) in [
        ("GET /health", None),
        ("{ __typename } anonymous", Some(false)),
        ("{ __typename } with a token", Some(true)),
    ] {
        let body = typename.clone();
        let deadline = Instant::now() + Duration::from_secs_f64(settings.seconds / 2.0);
        let cpu = CpuMeter::start(info.pid);
        let (mut latencies, errors, wall) = closed_loop(
            info,
            &info.updater,
            concurrency,
            deadline,
            None,
            move |_| match authenticated {
                None => Call::Health,
                Some(authenticated) => Call::Graphql {
                    authenticated,
                    body: body.clone(),
                },
            },
        )
        .await?;
        println!(
            "baseline {name}, closed loop, {concurrency} connection(s): {:.0} requests/s, {}, {}",
            latencies.len() as f64 / wall.as_secs_f64(),
            latencies.summary(),
            errors.summary()
        );
        println!("    {}", cpu.report(latencies.len()));
    }
    Ok(())
}

/// One report per instance as fast as the server takes them (the first report of each
/// inserts its rows; later ones replace them).
async fn fill_states(settings: &Settings, info: &ServerInfo, instances: usize) -> BenchResult<()> {
    let (services, per_report) = (settings.services, settings.per_report);
    let cpu = CpuMeter::start(info.pid);
    let (mut latencies, errors, wall) = closed_loop(
        info,
        &info.updater,
        settings.state_concurrency,
        Instant::now() + Duration::from_secs(600),
        Some(instances),
        move |i| Call::Graphql {
            authenticated: true,
            body: report_body(i, services, per_report),
        },
    )
    .await?;
    println!(
        "setServiceStates first report of {instances} instances, closed loop, {} connections: {:.0} reports/s, {}, {}",
        settings.state_concurrency,
        latencies.len() as f64 / wall.as_secs_f64(),
        latencies.summary(),
        errors.summary()
    );
    println!("    {}", cpu.report(latencies.len()));
    Ok(())
}

/// `instances` instances each reporting every period, sends at fixed times.
async fn open_loop_states(
    settings: &Settings,
    info: &ServerInfo,
    instances: usize,
) -> BenchResult<()> {
    let rate = instances as f64 / settings.period;
    let interval = Duration::from_secs_f64(settings.period / instances as f64);
    let total = (settings.seconds * rate).round().max(1.0) as usize;
    let client = support::client(256)?;
    let url = Arc::new(format!("{}/graphql", info.base));
    let token = Arc::new(info.updater.clone());
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (services, per_report) = (settings.services, settings.per_report);
    let cpu = CpuMeter::start(info.pid);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut handles = Vec::with_capacity(total);
    let mut late_sends = 0usize;
    for j in 0..total {
        let at = start + interval * j as u32;
        tokio::time::sleep_until(at).await;
        if tokio::time::Instant::now() > at + Duration::from_millis(10) {
            late_sends += 1;
        }
        let (client, url, token, slots) =
            (client.clone(), url.clone(), token.clone(), slots.clone());
        handles.push(tokio::spawn(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let body = report_body(j % instances, services, per_report);
            let outcome = match post_json(&client, &url, &token, body).await {
                Ok(_) => Outcome::Ok,
                Err(message) => Outcome::Failed(message),
            };
            (at.elapsed(), outcome)
        }));
    }
    let mut latencies = Latencies::default();
    let mut errors = Errors::default();
    for handle in handles {
        let (latency, outcome) = handle.await?;
        match outcome {
            Outcome::Ok => latencies.record(latency),
            Outcome::Failed(message) => errors.add(message),
        }
    }
    // The offered span is `total` intervals; a slower server stretches it.
    let wall = start.elapsed().max(interval * total as u32);
    println!(
        "setServiceStates, {instances} instances x {} services every {}s, open loop: offered {rate:.0} reports/s, achieved {:.0} reports/s, latency from schedule {}, {}{}",
        per_report.min(services),
        settings.period,
        latencies.len() as f64 / wall.as_secs_f64(),
        latencies.summary(),
        errors.summary(),
        if late_sends > 0 {
            format!(", {late_sends} sends started >10 ms late (generator behind)")
        } else {
            String::new()
        }
    );
    println!("    {}", cpu.report(latencies.len()));
    Ok(())
}

async fn max_states(settings: &Settings, info: &ServerInfo, instances: usize) -> BenchResult<()> {
    let (services, per_report) = (settings.services, settings.per_report);
    let deadline = Instant::now() + Duration::from_secs_f64(settings.seconds);
    let cpu = CpuMeter::start(info.pid);
    let (mut latencies, errors, wall) = closed_loop(
        info,
        &info.updater,
        settings.state_concurrency,
        deadline,
        None,
        move |i| Call::Graphql {
            authenticated: true,
            body: report_body(i % instances, services, per_report),
        },
    )
    .await?;
    println!(
        "setServiceStates max, closed loop over {instances} instances, {} connections: {:.0} reports/s ({:.0} states/s), {}, {}",
        settings.state_concurrency,
        latencies.len() as f64 / wall.as_secs_f64(),
        (latencies.len() * per_report.min(services)) as f64 / wall.as_secs_f64(),
        latencies.summary(),
        errors.summary()
    );
    println!("    {}", cpu.report(latencies.len()));
    Ok(())
}

async fn run() -> BenchResult<()> {
    let settings = Settings::from_env()?;
    let setup = Instant::now();
    let server = Server::start(settings.services).await?;
    let info = server.info().clone();
    println!(
        "graphql bench: {} services, {} s per measurement, {}, {} cores, ready in {:.1} s",
        settings.services,
        settings.seconds,
        server.describe(),
        std::thread::available_parallelism().map_or(0, usize::from),
        setup.elapsed().as_secs_f64()
    );
    for &concurrency in &settings.concurrency {
        bench_client_desired(&settings, &info, concurrency).await?;
    }
    if settings.baselines
        && let Some(&concurrency) = settings.concurrency.iter().max()
    {
        baselines(&settings, &info, concurrency).await?;
    }
    let mut largest = 0;
    for &instances in &settings.instances {
        fill_states(&settings, &info, instances).await?;
        open_loop_states(&settings, &info, instances).await?;
        largest = largest.max(instances);
    }
    if largest > 0 {
        max_states(&settings, &info, largest).await?;
    }
    server.stop().await
}

fn main() -> BenchResult<()> {
    if support::serve_if_child()? {
        return Ok(());
    }
    support::client_runtime()?.block_on(run())
}
