//! A fleet reporting to one distribution (issue 17 part 3): for each count N of
//! `BENCH_INSTANCES` (`1000,10000,50000`), a fresh distribution (a child process of this
//! bench, release build, SQLite, a real Git state repo of `BENCH_SERVICES` (20) services)
//! and N simulated instances.
//!
//! Each instance runs two loops of its own, as the updater does (`state.rs` the reporter,
//! `logs/drain.rs` the drainer, independent tasks): a slow log upload never holds back a
//! state report, and a report never waits for logs.
//! - **Reports**: once every `BENCH_PERIOD_SECONDS` (10 s) at its own offset in the
//!   period, one `setServiceStates` of `BENCH_SERVICES_PER_REPORT` (3) services; a late
//!   report delays the next, as the updater's reporter loop does.
//! - **Logs**: its service writes `BENCH_LINES_PER_SECOND` (10) lines a second into the
//!   spool; every `BENCH_SHIP_SECONDS` (the period) the drainer sends what has
//!   accumulated, at most 1,000 lines a batch (the updater's `max_lines`), each line with
//!   the next sequence number of its source, each batch made when it can be sent (its
//!   budget, below, has room), as the drainer reads its spool. A refused batch (busy,
//!   timed out) is sent again after the updater's backoff (500 ms doubling to 30 s, with
//!   jitter), while lines keep accumulating. (The real drainer also sends a batch that is not full after 500 ms,
//!   so at 10 lines/s it sends about two small batches a second; this bench ships every
//!   period, the load a drainer with a longer wait would put on the server.)
//!
//! Reports and log batches have separate in-flight budgets, `BENCH_REPORTS_IN_FLIGHT` (100)
//! and `BENCH_LOGS_IN_FLIGHT` (400), so neither waits for the other in the client, and
//! together they stay under the server's `limits.requests.max` (512): a fleet has a batch
//! in flight from every instance whose lines wait, which the server must turn away when
//! its writer is behind. The server takes twice the total as connections and requests
//! from each address.
//! `BENCH_REPORTS_IN_FLIGHT=0` sends every report when it is due, as a fleet does (each
//! updater has its own connection): then the server's own `limits.requests.max` decides,
//! and it takes [`UNCAPPED_CONNECTIONS`] connections and requests.
//!
//! The instances connect from `BENCH_CLIENT_ADDRESSES` (16) loopback addresses (127.0.0.1
//! and up, instance by instance in turn), as a fleet comes from many machines: from one
//! address, the connections opened while answers are slow (each report due that finds no
//! idle connection opens one) crowd that address's 28,232 ephemeral ports, which no fleet
//! of machines does (in one run, with the server's listen queue overflowing, about 14,000
//! were open and 22,000 in `TIME_WAIT`, and the kernel took half the CPU).
//!
//! Runs `BENCH_SECONDS` (30) of schedule; log shipping goes on for at most
//! `BENCH_DRAIN_SECONDS` (60) after it, and what is still unsent then is counted. Prints
//! per N: state reports offered and answered per second, their latency from the scheduled
//! time (a stall counts for every report it delays) and their round trip once sent, each
//! also as its p99 in each period of the schedule (the first holds every instance's first
//! report, the second its first log batch), and the server's own p99 (from its
//! `/metrics`); log lines written, accepted (the sum of the batches' answers) and per
//! second, refused (lines of batches the server turned away, each time), lost (sent in an
//! answered batch but not accepted), not acknowledged by the end of the drain (still in
//! the spools, or in flight when the bench stopped); errors (by cause), the connections
//! the kernel dropped at a full listen queue (the machine's `ListenOverflows` over the
//! row), the server's RSS at the end and its peak, its CPU, and the machine's load.
//!
//! Run with `cargo bench -p vupdate-distribution --bench fleet`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::calls::{Errors, post_json, report_body};
use support::{BenchResult, CpuMeter, Latencies, Server, ServerInfo};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use vupdate_backoff::Backoff;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The most lines in one batch: the updater drainer's `max_lines`.
const MAX_BATCH_LINES: u64 = 1000;
/// The server's connection limit (and requests per address) when reports are not capped.
const UNCAPPED_CONNECTIONS: usize = 4096;
/// The drainer's retry delays: from about 500 ms, doubling up to 30 s.
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What one run measures.
struct Settings {
    instances: Vec<usize>,
    services: usize,
    per_report: usize,
    period: f64,
    lines_per_second: f64,
    ship: f64,
    seconds: f64,
    drain: f64,
    reports_in_flight: usize,
    logs_in_flight: usize,
    addresses: u8,
}

impl Settings {
    fn from_env() -> BenchResult<Settings> {
        // A tiny round when run as a test (`cargo test --benches`).
        let full = support::benching();
        let period = support::env_or("BENCH_PERIOD_SECONDS", if full { 10.0 } else { 0.5 })?;
        Ok(Settings {
            instances: support::env_list(
                "BENCH_INSTANCES",
                if full { &[1000, 10_000, 50_000] } else { &[20] },
            )?,
            services: support::env_or("BENCH_SERVICES", 20)?,
            per_report: support::env_or("BENCH_SERVICES_PER_REPORT", 3)?,
            period,
            lines_per_second: support::env_or("BENCH_LINES_PER_SECOND", 10.0)?,
            ship: support::env_or("BENCH_SHIP_SECONDS", period)?,
            seconds: support::env_or("BENCH_SECONDS", if full { 30.0 } else { 1.0 })?,
            drain: support::env_or("BENCH_DRAIN_SECONDS", if full { 60.0 } else { 30.0 })?,
            reports_in_flight: support::env_or("BENCH_REPORTS_IN_FLIGHT", 100)?,
            logs_in_flight: support::env_or("BENCH_LOGS_IN_FLIGHT", 400)?,
            addresses: match support::env_or("BENCH_CLIENT_ADDRESSES", 16u8)? {
                0 => return Err("BENCH_CLIENT_ADDRESSES: at least 1".into()),
                addresses => addresses,
            },
        })
    }

    /// The connections (and requests) the server takes, from all the bench's addresses and
    /// from each: its instances stand for machines with addresses of their own. Twice the
    /// requests in flight when both are capped (a connection the client dropped may still
    /// count on the server for a moment).
    fn connections(&self) -> usize {
        match self.reports_in_flight {
            0 => UNCAPPED_CONNECTIONS,
            reports => (reports + self.logs_in_flight) * 2,
        }
    }
}

/// The reports due in one period of the schedule (or in all of them).
#[derive(Default)]
struct Period {
    /// Their latency from schedule.
    reports: Latencies,
    /// Each one's own round trip, from the moment it had a slot to its answer: the
    /// server's answer time without the client's queue.
    round_trips: Latencies,
}

/// The p99 of `latencies` of each period, `a / b / c`.
fn p99_by_period(
    periods: &mut [Period],
    latencies: impl Fn(&mut Period) -> &mut Latencies,
) -> String {
    periods
        .iter_mut()
        .map(|period| {
            latencies(period)
                .quantiles()
                .map_or_else(|| "-".to_owned(), |[_, p99, _]| format!("{p99:.1}"))
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// What all instances of one row add up to.
#[derive(Default)]
struct Tally {
    /// The reports by the period they were due in: the first holds every instance's first
    /// report (and connection), the second its first log batch.
    by_period: Vec<Period>,
    /// When the last report was answered.
    last_report: Option<Instant>,
    errors: Errors,
    /// Log requests answered (for the CPU per request).
    batches: u64,
    lines_written: u64,
    lines_accepted: u64,
    lines_refused: u64,
    refusals: u64,
    lines_lost: u64,
}

fn main() -> BenchResult<()> {
    if support::serve_if_child()? {
        return Ok(());
    }
    let settings = Arc::new(Settings::from_env()?);
    support::client_runtime()?.block_on(async move {
        println!("machine: {}", vupdate_test_support::machine::describe());
        println!(
            "fleet: {} services, {} per report, every {} s, {} log lines/s per instance shipped every {} s, {} s of schedule, {} reports and {} log batches in flight at most, load avg {}",
            settings.services,
            settings.per_report,
            settings.period,
            settings.lines_per_second,
            settings.ship,
            settings.seconds,
            settings.reports_in_flight,
            settings.logs_in_flight,
            support::load_average()
        );
        for &count in &settings.instances {
            let server =
                Server::start_for(settings.services, Some(settings.connections())).await?;
            let row = measure(server.info(), count, &settings).await;
            server.stop().await?;
            println!("{}", row?);
        }
        Ok(())
    })
}

/// One row: `count` instances on a fresh server.
async fn measure(info: &ServerInfo, count: usize, settings: &Arc<Settings>) -> BenchResult<String> {
    // Connections kept open from all addresses together: the server's limit.
    let idle = settings
        .connections()
        .div_ceil(usize::from(settings.addresses));
    let clients = (0..settings.addresses)
        .map(|k| support::client_from(idle, Some(std::net::Ipv4Addr::new(127, 0, 0, 1 + k))))
        .collect::<BenchResult<Vec<_>>>()?;
    let report_slots = match settings.reports_in_flight {
        0 => Semaphore::MAX_PERMITS,
        capped => capped,
    };
    let (report_slots, log_slots) = (
        Arc::new(Semaphore::new(report_slots)),
        Arc::new(Semaphore::new(settings.logs_in_flight.max(1))),
    );
    // Every outcome is counted when it happens, so an instance still sending at the end
    // has its answers counted too.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let meter = CpuMeter::start(info.pid);
    let overflows_before = support::listen_overflows();
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(settings.seconds);
    let give_up = end + Duration::from_secs_f64(settings.drain);
    let mut loops = tokio::task::JoinSet::new();
    for instance in 0..count {
        let offset = Duration::from_secs_f64(settings.period * instance as f64 / count as f64);
        let simulated = Arc::new(Instance {
            number: instance,
            client: clients[instance % clients.len()].clone(),
            base: info.base.clone(),
            token: info.updater.clone(),
            settings: settings.clone(),
            tally: tally.clone(),
        });
        let (reporter, slots) = (simulated.clone(), report_slots.clone());
        loops.spawn(async move { reporter.report(start + offset, end, &slots).await });
        let slots = log_slots.clone();
        loops.spawn(async move {
            simulated
                .ship_logs(start + offset, end, give_up, &slots)
                .await
        });
    }
    let drained = tokio::time::timeout_at(give_up + Duration::from_secs(1), async {
        while loops.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let abandoned = loops.len();
    loops.abort_all();
    // What the server itself took for a report, from its own histogram (the bench's
    // figures add the client's side, which shares the machine).
    let server_p99 = support::server_p99(&clients[0], &info.base, "/graphql").await;
    let wall = start.elapsed().as_secs_f64();
    let mut tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    let by_period = p99_by_period(&mut tally.by_period, |period| &mut period.reports);
    let round_trips_by_period =
        p99_by_period(&mut tally.by_period, |period| &mut period.round_trips);
    let mut reports = Period::default();
    for period in std::mem::take(&mut tally.by_period) {
        reports.reports.extend(period.reports);
        reports.round_trips.extend(period.round_trips);
    }
    // CPU per request: the reports and the log batches answered.
    let requests = reports.reports.len() + tally.batches as usize;
    let cpu = meter.report(requests);
    let scheduled = (count as f64 * settings.seconds / settings.period).ceil() as usize;
    let offered = count as f64 / settings.period;
    // Over the time it took to answer them: the drain after the schedule is the logs'.
    let answered = reports.reports.len() as f64
        / tally
            .last_report
            .map_or(wall, |last| last.duration_since(start).as_secs_f64());
    let [p50, p99, max] = reports.reports.quantiles().unwrap_or([f64::NAN; 3]);
    let round_trips = reports.round_trips.summary();
    let (rss, peak) = (support::rss_kib(info.pid), support::rss_peak_kib(info.pid));
    // Connections the kernel dropped at a full listen queue (what made runs collapse).
    let overflows = match (overflows_before, support::listen_overflows()) {
        (Some(before), Some(after)) => (after - before).to_string(),
        _ => "?".to_owned(),
    };
    Ok(format!(
        "{count:>7} instances: reports offered {offered:.0}/s, answered {answered:.0}/s, latency from schedule p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms, p99 by period {by_period} ms (round trip {round_trips}, p99 by period {round_trips_by_period} ms; in the server p99 {server_p99}); \
         {} of {scheduled} scheduled reports answered; log lines written {} (offered {:.0}/s), accepted {} (at {:.0}/s over {wall:.0} s) in {} batches, refused {} in {} refusals, lost {}, not acknowledged by the end {}; {}{}; listen queue overflows {overflows}; server RSS {} MiB (peak {} MiB); {cpu}",
        reports.reports.len(),
        tally.lines_written,
        count as f64 * settings.lines_per_second,
        tally.lines_accepted,
        tally.lines_accepted as f64 / wall,
        tally.batches,
        tally.lines_refused,
        tally.refusals,
        tally.lines_lost,
        // Counted here rather than by each loop: the loops still running at the end are
        // abandoned, and their lines are still in their spools.
        tally
            .lines_written
            .saturating_sub(tally.lines_accepted + tally.lines_lost),
        tally.errors.summary(),
        if drained {
            String::new()
        } else {
            format!(", {abandoned} loops still running at the end (abandoned)")
        },
        rss / 1024,
        peak / 1024,
    ))
}

/// One simulated instance.
struct Instance {
    number: usize,
    client: reqwest::Client,
    /// The server's `http://host:port`.
    base: String,
    token: String,
    settings: Arc<Settings>,
    tally: Arc<Mutex<Tally>>,
}

impl Instance {
    /// Reports once per period from `first` until `end`, each report after the last one
    /// was answered, counting each outcome as it comes.
    async fn report(&self, first: Instant, end: Instant, slots: &Semaphore) {
        let period = Duration::from_secs_f64(self.settings.period);
        let mut at = first;
        let mut period_index = 0;
        while at < end {
            tokio::time::sleep_until(at).await;
            let body = report_body(
                self.number,
                self.settings.services,
                self.settings.per_report,
            );
            let (answer, round_trip) = self.post("/graphql", || body, slots).await;
            self.count(|tally| match answer {
                Ok(_) => {
                    if tally.by_period.len() <= period_index {
                        tally
                            .by_period
                            .resize_with(period_index + 1, Period::default);
                    }
                    let due = &mut tally.by_period[period_index];
                    due.reports.record(at.elapsed());
                    due.round_trips.record(round_trip);
                    tally.last_report = Some(Instant::now());
                }
                Err(message) => tally.errors.add(format!("setServiceStates: {message}")),
            });
            at += period;
            period_index += 1;
        }
    }

    /// Ships the lines written from `first` until `end`, every ship interval what has
    /// accumulated (at most [`MAX_BATCH_LINES`] a batch), a refused batch again after the
    /// drainer's backoff; gives up at `give_up`, counting what was never sent.
    async fn ship_logs(&self, first: Instant, end: Instant, give_up: Instant, slots: &Semaphore) {
        let settings = &self.settings;
        if settings.lines_per_second <= 0.0 {
            return;
        }
        let interval = Duration::from_secs_f64(settings.ship);
        let written_by = |at: Instant| {
            (at.min(end).saturating_duration_since(first).as_secs_f64() * settings.lines_per_second)
                as u64
        };
        let total = written_by(end);
        self.count(|tally| tally.lines_written += total);
        let mut sent = 0u64;
        let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        let mut at = first + interval;
        loop {
            tokio::time::sleep_until(at.min(give_up)).await;
            let written = written_by(Instant::now());
            while sent < written && Instant::now() < give_up {
                let lines = (written - sent).min(MAX_BATCH_LINES);
                let batch = || self.logs(sent, lines as usize);
                match self.post("/logs/batches", batch, slots).await.0 {
                    Ok(answer) => {
                        let accepted = serde_json::from_slice::<Value>(&answer)
                            .ok()
                            .and_then(|value| value["stored"].as_u64())
                            .unwrap_or(0);
                        self.count(|tally| {
                            tally.batches += 1;
                            tally.lines_accepted += accepted;
                            tally.lines_lost += lines.saturating_sub(accepted);
                        });
                        sent += lines;
                        backoff.reset();
                    }
                    Err(message) => {
                        self.count(|tally| {
                            tally.errors.add(format!("POST /logs/batches: {message}"));
                            tally.lines_refused += lines;
                            tally.refusals += 1;
                        });
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
            if sent == total || Instant::now() >= give_up {
                break;
            }
            at += interval;
        }
    }

    fn count(&self, record: impl FnOnce(&mut Tally)) {
        record(&mut self.tally.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Posts what `body` makes to `path` once a slot is free; the answer, and how long the
    /// call took once it had its slot.
    async fn post(
        &self,
        path: &str,
        body: impl FnOnce() -> String,
        slots: &Semaphore,
    ) -> (Result<bytes::Bytes, String>, Duration) {
        let Ok(_slot) = slots.acquire().await else {
            return (Err("the bench stopped".to_owned()), Duration::ZERO);
        };
        // Made once it can be sent, as a drainer reads its spool when it sends: made at
        // its ship time instead, every instance's first batch (50,000 of 100 lines) would
        // be made within seconds and held while waiting for one of the 400 slots, on the
        // cores the server uses.
        let body = body();
        let sent = Instant::now();
        let url = format!("{}{path}", self.base);
        let answer = post_json(&self.client, &url, &self.token, body).await;
        (answer, sent.elapsed())
    }

    /// One `POST /logs/batches` batch of `lines` lines of this instance's first service, numbered
    /// from `sent` + 1.
    fn logs(&self, sent: u64, lines: usize) -> String {
        let sequence = sent as i64;
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
            "service": service,
            "role": null,
            "instance": format!("vm-{:05}", self.number),
            "directory": format!("/srv/{service}"),
            "process": "main",
            "task": null,
            "logs": logs,
        })
        .to_string()
    }
}
