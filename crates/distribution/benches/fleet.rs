//! A fleet reporting to one distribution (issue 17 part 3): for each count N of
//! `BENCH_INSTANCES` (`1000,10000,50000`), a fresh distribution (a child process of this
//! bench, release build, SQLite, a real Git state repo of `BENCH_SERVICES` (20) services)
//! and N simulated instances. Each instance, once every `BENCH_PERIOD_SECONDS` (10 s) at
//! its own offset in the period, sends one `setServiceStates` of `BENCH_SERVICES_PER_REPORT`
//! (3) services and ships its logs as one `addLogs` batch of `BENCH_LINES_PER_SECOND` (10)
//! lines per second of the period, each line with the next sequence number of its source.
//! A batch the server refuses (busy, timed out) is sent again after 1 s, as the updater
//! does, and an instance sends in order (its next batch after this one is answered).
//!
//! Runs `BENCH_SECONDS` (30) of schedule; what is still running `BENCH_DRAIN_SECONDS` (60)
//! after is abandoned and counted. Prints per N: state reports offered and answered per
//! second, their latency from the scheduled time (a stall counts for every report it
//! delays), log lines sent, accepted (the sum of `addLogs`'s answers) and lost (sent in an
//! answered batch but not accepted), lines not sent in time, errors, the server's RSS at
//! the end and its peak, its CPU, and the machine's load.
//!
//! At most `BENCH_IN_FLIGHT` (400) requests are in flight at once (the server's default
//! `limits.requests.max` is 512); the server takes twice that many connections and requests
//! from one address (every simulated instance connects from 127.0.0.1).
//!
//! Run with `cargo bench -p vupdate-distribution --bench fleet`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use std::sync::Mutex;
use support::calls::{Errors, graphql, report_body};
use support::{BenchResult, CpuMeter, Latencies, Server, ServerInfo};

use tokio::sync::Semaphore;
use tokio::time::Instant;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `addLogs`, as updaters send it.
const ADD_LOGS: &str = "mutation($service: String!, $role: String, $instance: String!, $directory: String!, $process: String!, $task: String, $logs: [LogLineInput!]!) { addLogs(service: $service, role: $role, instance: $instance, directory: $directory, process: $process, task: $task, logs: $logs) }";
/// How long a refused log batch waits before it is sent again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What one run measures.
struct Settings {
    instances: Vec<usize>,
    services: usize,
    per_report: usize,
    period: f64,
    lines_per_second: f64,
    seconds: f64,
    drain: f64,
    in_flight: usize,
}

impl Settings {
    fn from_env() -> BenchResult<Settings> {
        // A tiny round when run as a test (`cargo test --benches`).
        let full = support::benching();
        Ok(Settings {
            instances: support::env_list(
                "BENCH_INSTANCES",
                if full { &[1000, 10_000, 50_000] } else { &[20] },
            )?,
            services: support::env_or("BENCH_SERVICES", 20)?,
            per_report: support::env_or("BENCH_SERVICES_PER_REPORT", 3)?,
            period: support::env_or("BENCH_PERIOD_SECONDS", if full { 10.0 } else { 0.5 })?,
            lines_per_second: support::env_or("BENCH_LINES_PER_SECOND", 10.0)?,
            seconds: support::env_or("BENCH_SECONDS", if full { 30.0 } else { 1.0 })?,
            drain: support::env_or("BENCH_DRAIN_SECONDS", if full { 60.0 } else { 30.0 })?,
            in_flight: support::env_or("BENCH_IN_FLIGHT", 400)?,
        })
    }
}

/// What all instances of one row add up to.
#[derive(Default)]
struct Tally {
    reports: Latencies,
    errors: Errors,
    lines_sent: u64,
    lines_accepted: u64,
    lines_lost: u64,
    not_sent: u64,
}

fn main() -> BenchResult<()> {
    if support::serve_if_child()? {
        return Ok(());
    }
    let settings = Arc::new(Settings::from_env()?);
    support::client_runtime()?.block_on(async move {
        println!(
            "fleet: {} services, {} per report, every {} s, {} log lines/s per instance, {} s of schedule, {} requests in flight at most, load avg {}",
            settings.services,
            settings.per_report,
            settings.period,
            settings.lines_per_second,
            settings.seconds,
            settings.in_flight,
            support::load_average()
        );
        for &count in &settings.instances {
            // Twice the requests in flight: a connection the client dropped may still count
            // on the server for a moment.
            let server = Server::start_for(settings.services, Some(settings.in_flight * 2)).await?;
            let row = measure(server.info(), count, &settings).await;
            server.stop().await?;
            println!("{}", row?);
        }
        Ok(())
    })
}

/// One row: `count` instances on a fresh server.
async fn measure(info: &ServerInfo, count: usize, settings: &Arc<Settings>) -> BenchResult<String> {
    let client = support::client(settings.in_flight)?;
    let slots = Arc::new(Semaphore::new(settings.in_flight));
    // Every outcome is counted when it happens, so an instance still sending at the end
    // has its answers counted too.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let meter = CpuMeter::start(info.pid);
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(settings.seconds);
    let mut instances = tokio::task::JoinSet::new();
    for instance in 0..count {
        let offset = Duration::from_secs_f64(settings.period * instance as f64 / count as f64);
        let simulated = Instance {
            number: instance,
            client: client.clone(),
            url: format!("{}/graphql", info.base),
            token: info.updater.clone(),
            slots: slots.clone(),
            settings: settings.clone(),
            tally: tally.clone(),
        };
        instances.spawn(async move { simulated.run(start + offset, end).await });
    }
    let drained = tokio::time::timeout_at(end + Duration::from_secs_f64(settings.drain), async {
        while instances.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let abandoned = instances.len();
    instances.abort_all();
    let wall = start.elapsed().as_secs_f64();
    let mut tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    // CPU per request: the reports and the log batches answered.
    let lines_per_batch = (settings.lines_per_second * settings.period)
        .round()
        .max(1.0) as u64;
    let requests = tally.reports.len() + (tally.lines_sent / lines_per_batch) as usize;
    let cpu = meter.report(requests);
    let scheduled = (count as f64 * settings.seconds / settings.period).ceil() as usize;
    let offered = count as f64 / settings.period;
    let answered = tally.reports.len() as f64 / wall;
    let [p50, p99, max] = tally.reports.quantiles().unwrap_or([f64::NAN; 3]);
    let (rss, peak) = (support::rss_kib(info.pid), support::rss_peak_kib(info.pid));
    Ok(format!(
        "{count:>7} instances: reports offered {offered:.0}/s, answered {answered:.0}/s, latency from schedule p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; \
         {} of {scheduled} scheduled reports answered; log lines sent {} (at {:.0}/s), accepted {}, lost {}, not sent in time {}; {}{}; server RSS {} MiB (peak {} MiB); {cpu}",
        tally.reports.len(),
        tally.lines_sent,
        tally.lines_sent as f64 / wall,
        tally.lines_accepted,
        tally.lines_lost,
        tally.not_sent,
        tally.errors.summary(),
        if drained {
            String::new()
        } else {
            format!(
                ", {abandoned} instances still sending {} s after the schedule (abandoned)",
                settings.drain
            )
        },
        rss / 1024,
        peak / 1024,
    ))
}

/// One simulated instance.
struct Instance {
    number: usize,
    client: reqwest::Client,
    url: String,
    token: String,
    slots: Arc<Semaphore>,
    settings: Arc<Settings>,
    tally: Arc<Mutex<Tally>>,
}

impl Instance {
    /// Reports and ships logs once per period from `first` until `end`, counting each
    /// outcome in the shared tally as it comes.
    async fn run(&self, first: Instant, end: Instant) {
        let settings = &self.settings;
        let period = Duration::from_secs_f64(settings.period);
        let lines = (settings.lines_per_second * settings.period).round() as usize;
        let mut sequence = 0i64;
        let mut at = first;
        while at < end {
            tokio::time::sleep_until(at).await;
            let body = report_body(self.number, settings.services, settings.per_report);
            let answer = self.call(body).await;
            self.count(|tally| match answer {
                Ok(_) => tally.reports.record(at.elapsed()),
                Err(message) => tally.errors.add(format!("setServiceStates: {message}")),
            });
            if lines > 0 {
                let batch = self.logs(sequence, lines);
                sequence += lines as i64;
                self.ship(&batch, lines as u64, end).await;
            }
            at += period;
        }
    }

    /// Sends one log batch until it is answered, or counts it as not sent when the
    /// schedule ends first.
    async fn ship(&self, batch: &str, lines: u64, end: Instant) {
        loop {
            match self.call(batch.to_owned()).await {
                Ok(answer) => {
                    let accepted = serde_json::from_slice::<Value>(&answer)
                        .ok()
                        .and_then(|value| value["data"]["addLogs"].as_u64())
                        .unwrap_or(0);
                    self.count(|tally| {
                        tally.lines_sent += lines;
                        tally.lines_accepted += accepted;
                        tally.lines_lost += lines.saturating_sub(accepted);
                    });
                    return;
                }
                Err(message) => {
                    let late = Instant::now() + RETRY_AFTER >= end;
                    self.count(|tally| {
                        tally.errors.add(format!("addLogs: {message}"));
                        if late {
                            tally.not_sent += lines;
                        }
                    });
                    if late {
                        return;
                    }
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    fn count(&self, record: impl FnOnce(&mut Tally)) {
        record(&mut self.tally.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn call(&self, body: String) -> Result<bytes::Bytes, String> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| "the bench stopped".to_owned())?;
        graphql(&self.client, &self.url, &self.token, body).await
    }

    /// One `addLogs` batch of `lines` lines of this instance's first service, numbered
    /// from `sequence` + 1.
    fn logs(&self, sequence: i64, lines: usize) -> String {
        let service = support::service_name(self.number % self.settings.services + 1);
        let now = chrono::Utc::now();
        let logs: Vec<Value> = (0..lines)
            .map(|k| {
                let level = if k % 50 == 49 { "WARN" } else { "INFO" };
                json!({
                    "sequence": sequence + 1 + k as i64,
                    "time": (now + chrono::Duration::microseconds(k as i64)).to_rfc3339(),
                    "level": level,
                    "unit": "http",
                    "message": format!("GET /api/orders/{} 200 in {} ms request_id=r{:08x}", sequence + k as i64, 3 + k % 40, self.number * 7919 + k),
                })
            })
            .collect();
        json!({
            "query": ADD_LOGS,
            "variables": {
                "service": service,
                "role": null,
                "instance": format!("vm-{:05}", self.number),
                "directory": format!("/srv/{service}"),
                "process": "main",
                "task": null,
                "logs": logs,
            },
        })
        .to_string()
    }
}
