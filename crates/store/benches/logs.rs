//! The log store at volume, SQLite and MongoDB side by side in one run: ingestion in lines/s
//! (batches as updaters send them), the dashboard's queries (p50/p99) at each size, and
//! expiry of the oldest day's lines with a writer's p99 while it runs; with the machine's
//! load average before and after.
//!
//! `cargo bench -p vupdate-store --bench logs` runs SQLite only; `scripts/bench-store`
//! starts the MongoDB stand-in and passes its URL in `VUPDATE_BENCH_MONGODB_URL`.
//! Settings (environment):
//! - `STORE_BENCH_SIZES`: the SQLite sizes to measure at, comma-separated (default
//!   `1000000,10000000`); `STORE_BENCH_MONGO_SIZES` the same for MongoDB (default `1000000`;
//!   the stand-in is a Python server, far slower than a real one: its figures test the
//!   path, not MongoDB's speed).
//! - `STORE_BENCH_BATCH`: lines per insert (default 100: what an updater sends every
//!   half second at 200 lines/s; at most 1000); `STORE_BENCH_WRITERS`: how many send at
//!   once (default 8; the store writes batches that arrive together in one transaction).
//! - `STORE_BENCH_DIR`: where the SQLite file goes (default a temporary directory);
//!   `STORE_BENCH_KEEP=1` leaves it there afterwards (its path is printed) to look into.
//!
//! The lines are the same on both backends and deterministic: 20 services on 200
//! instances, each batch from one of them as an updater sends it, levels mostly info (trace 5%, debug 15%, info 72%, warn 6%, error 2%),
//! messages of 60–140 bytes from a few templates with ids and numbers in them, spread evenly
//! over 7 days so that expiring one day removes a seventh of the lines.

use std::time::{Duration, Instant};

// The distribution's allocator (crates/cli/src/allocator.rs), so the figures are the server's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use vupdate_core::log::Level;
use vupdate_store::expiry::ExpiryPolicy;
use vupdate_store::model::logs::{LogQuery, LogRecord};
use vupdate_store::{Store, StoreConfig};
use vupdate_test_support::machine::{self, load_average};

const SERVICES: u64 = 20;
const INSTANCES: u64 = 200;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The span the lines of one run cover.
const SPAN_DAYS: i64 = 7;
/// How long each query is repeated (at most 200 times; at least 3 unless that takes
/// longer than [`SLOW_QUERY_TIME`]).
const QUERY_TIME: Duration = Duration::from_secs(2);
/// How long a slow query (the stand-in's scans) is repeated at most, after its first run.
const SLOW_QUERY_TIME: Duration = Duration::from_secs(20);

/// A SplitMix64 step: a cheap, well-mixed number for line `i` and salt `salt`.
fn mix(i: u64, salt: u64) -> u64 {
    let mut z = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn service(n: u64) -> String {
    format!("svc-{n:02}")
}

/// Line `i` of a run of `total` lines, sent in batches of `batch` lines.
fn line(i: u64, total: u64, batch: u64) -> LogRecord {
    let r = mix(i, 1);
    let level = match r % 100 {
        0..5 => Level::Trace,
        5..20 => Level::Debug,
        20..92 => Level::Info,
        92..98 => Level::Warn,
        _ => Level::Error,
    };
    let ms = mix(i, 2) % 2000;
    let message = match level {
        Level::Error => format!(
            "request {:016x} failed: upstream timeout after 30 s (attempt {}/3) on /api/v1/orders/{}",
            mix(i, 3),
            1 + ms % 3,
            ms * 7
        ),
        Level::Warn => format!(
            "slow query took {ms} ms: SELECT id, total FROM orders WHERE customer_id = {}",
            mix(i, 4) % 100_000
        ),
        _ => match mix(i, 5) % 3 {
            0 => format!(
                "GET /api/v1/orders/{} 200 {ms}ms user={} req={:016x}",
                mix(i, 6) % 1_000_000,
                mix(i, 7) % 50_000,
                mix(i, 3)
            ),
            1 => format!(
                "job sync-inventory finished in {ms} ms, {} items processed",
                mix(i, 8) % 10_000
            ),
            _ => format!(
                "connected to postgres://db-{}:5432/app (pool {}/32)",
                mix(i, 9) % 4,
                1 + ms % 32
            ),
        },
    };
    // A batch is what one updater sends: lines of one service on one instance.
    let instance = mix(i / batch, 10) % INSTANCES;
    LogRecord {
        service: service(instance % SERVICES).parse().expect("name"),
        role: None,
        instance: format!("vm-{instance:03}"),
        directory: "/srv/app".to_owned(),
        process: format!("{}", 4000 + instance),
        task: None,
        time: base() + TimeDelta::milliseconds((i as i64) * (SPAN_DAYS * DAY_MS) / total as i64),
        level,
        unit: "http".to_owned(),
        message,
        termination_status: None,
        source_sequence: Some(i as i64),
    }
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| {
        let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[index].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}

/// CPU time of this process so far, in seconds: the sum over its threads of the time
/// they ran (`/proc/self/task/*/schedstat`, in nanoseconds), so it is precise enough for
/// one query. Threads that ended are not counted: the runtimes keep theirs.
fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let nanos: u64 = tasks
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    nanos as f64 / 1e9
}

struct Bench {
    name: &'static str,
    store: Store,
    runtime: tokio::runtime::Runtime,
    batch: u64,
    writers: u64,
    stored: u64,
}

impl Bench {
    /// Inserts lines `self.stored..until` of a run of `total`; returns lines per second of
    /// wall time and per second of this process's CPU time (which the load of other
    /// processes on the machine changes less).
    fn fill(&mut self, until: u64, total: u64) -> (f64, f64) {
        let started = Instant::now();
        let cpu = cpu_seconds();
        let from = self.stored;
        let batch = self.batch;
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(from));
        let writers: Vec<_> = (0..self.writers)
            .map(|_| {
                let store = self.store.clone();
                let next = next.clone();
                self.runtime.spawn(async move {
                    loop {
                        let start = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                        if start >= until {
                            return;
                        }
                        let end = (start + batch).min(until);
                        let lines = (start..end).map(|i| line(i, total, batch)).collect();
                        store.logs().insert(lines).await.expect("insert");
                    }
                })
            })
            .collect();
        self.runtime.block_on(async {
            for writer in writers {
                writer.await.expect("writer");
            }
        });
        self.stored = until;
        let lines = (until - from) as f64;
        (
            lines / started.elapsed().as_secs_f64(),
            lines / (cpu_seconds() - cpu),
        )
    }

    /// Brings the text index up to date (the store keeps it a few thousand lines behind
    /// the writes; this is what is left when they stop); returns the lines indexed and the
    /// wall and CPU seconds it took.
    fn catch_up_text_index(&self) -> (usize, f64, f64) {
        let started = Instant::now();
        let cpu = cpu_seconds();
        let indexed = self
            .runtime
            .block_on(self.store.logs().index_text())
            .expect("index text");
        (
            indexed,
            started.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
        )
    }

    /// Times `last_source_sequence` (what the server reads once per source after a
    /// start) for a few sources: p50 and p99 in milliseconds.
    fn time_last_source_sequence(&self, total: u64) {
        let mut samples = Vec::new();
        for source in 0..50 {
            let record = line(mix(source, 11) % total, total, self.batch);
            let at = Instant::now();
            self.runtime
                .block_on(self.store.logs().last_source_sequence(
                    &record.service,
                    None,
                    &record.instance,
                    &record.directory,
                    &record.process,
                ))
                .expect("last source sequence");
            samples.push(at.elapsed());
        }
        let (p50, p99) = percentiles(&mut samples);
        println!(
            "{:<8} {:>11} {:<48} p50 {p50:>9.2} ms  p99 {p99:>9.2} ms  (50 sources)",
            self.name, total, "last source sequence of one source"
        );
    }

    /// Runs `query` for up to [`QUERY_TIME`]; returns wall time (p50, p99), this
    /// process's CPU time (p50: what the query costs without other processes on the
    /// machine, disk waits aside) and the lines found.
    fn time_query(&self, query: &LogQuery) -> (f64, f64, f64, usize) {
        let mut samples = Vec::new();
        let mut cpu = Vec::new();
        let started = Instant::now();
        let mut found = 0;
        while samples.is_empty()
            || (samples.len() < 3 && started.elapsed() < SLOW_QUERY_TIME)
            || (started.elapsed() < QUERY_TIME && samples.len() < 200)
        {
            let at = Instant::now();
            let cpu_at = cpu_seconds();
            let lines = self
                .runtime
                .block_on(self.store.logs().query(query))
                .expect("query");
            samples.push(at.elapsed());
            cpu.push(Duration::from_secs_f64((cpu_seconds() - cpu_at).max(0.0)));
            found = lines.len();
        }
        let (p50, p99) = percentiles(&mut samples);
        let (cpu_p50, _) = percentiles(&mut cpu);
        (p50, p99, cpu_p50, found)
    }

    fn queries(&self, total: u64) {
        let newest = |query: LogQuery| LogQuery {
            limit: Some(1000),
            ..query
        };
        let svc = || Some(service(7).parse().expect("name"));
        // The request id of the first error line from a third of the way: it appears once.
        let rare = (total / 3..total)
            .find(|&i| line(i, total, self.batch).level == Level::Error)
            .map(|i| format!("{:016x}", mix(i, 3)))
            .unwrap_or_default();
        let cases = [
            ("newest 1000, no filter", newest(LogQuery::default())),
            (
                "service, newest 1000",
                newest(LogQuery {
                    service: svc(),
                    ..LogQuery::default()
                }),
            ),
            (
                "service + level >= warn, newest 1000",
                newest(LogQuery {
                    service: svc(),
                    min_level: Some(Level::Warn),
                    ..LogQuery::default()
                }),
            ),
            (
                "service + level >= error, newest 1000",
                newest(LogQuery {
                    service: svc(),
                    min_level: Some(Level::Error),
                    ..LogQuery::default()
                }),
            ),
            (
                "service + instance, newest 1000",
                newest(LogQuery {
                    service: svc(),
                    instance: Some("vm-127".to_owned()),
                    ..LogQuery::default()
                }),
            ),
            (
                "service + text `timeout`, newest 1000",
                newest(LogQuery {
                    service: svc(),
                    text: Some("TimeOut".to_owned()),
                    ..LogQuery::default()
                }),
            ),
            (
                // A quarter of a service's lines, none of its warnings or errors: too many
                // candidates for the index, so it reads the service's lines newest first.
                "service + text `get /api` (dense), newest 1000",
                newest(LogQuery {
                    service: svc(),
                    text: Some("GET /api".to_owned()),
                    ..LogQuery::default()
                }),
            ),
            (
                // About one line in 400: a few thousand candidates at 1M lines.
                "service + text `db-3:5432/app (pool 7/`, newest 1000",
                newest(LogQuery {
                    service: svc(),
                    text: Some("db-3:5432/app (pool 7/".to_owned()),
                    ..LogQuery::default()
                }),
            ),
            (
                "text of one request id (1 match), newest 1000",
                newest(LogQuery {
                    text: Some(rare),
                    ..LogQuery::default()
                }),
            ),
            (
                "text absent everywhere, newest 1000",
                newest(LogQuery {
                    text: Some("no such line".to_owned()),
                    ..LogQuery::default()
                }),
            ),
        ];
        for (name, query) in cases {
            let (p50, p99, cpu, found) = self.time_query(&query);
            println!(
                "{:<8} {:>11} {:<48} p50 {p50:>9.2} ms  p99 {p99:>9.2} ms  CPU p50 {cpu:>9.2} ms  ({found} lines)",
                self.name, total, name
            );
        }
    }

    /// Expires the oldest day while a writer inserts batches of 100; prints both.
    fn expiry(&self, total: u64) {
        let store = self.store.clone();
        let now = base() + TimeDelta::milliseconds(SPAN_DAYS * DAY_MS);
        let policy = ExpiryPolicy {
            service_logs: Duration::from_secs((SPAN_DAYS as u64 - 1) * 24 * 60 * 60),
            ..ExpiryPolicy::default()
        };
        let (took, removed, mut latencies) = self.runtime.block_on(async move {
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let store = store.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut next = total;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let lines = (next..next + 100).map(|i| line(i, total, 100)).collect();
                        let at = Instant::now();
                        store.logs().insert(lines).await.expect("insert");
                        latencies.push(at.elapsed());
                        next += 100;
                    }
                    latencies
                })
            };
            let started = Instant::now();
            let report = store.expire(&policy, now).await.expect("expire");
            let took = started.elapsed();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let latencies = writer.await.expect("writer");
            (took, report.service_logs, latencies)
        });
        let writes = latencies.len();
        let (p50, p99) = percentiles(&mut latencies);
        let max = latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3);
        println!(
            "{:<8} {:>11} expiry of the oldest day: {removed} lines in {:.2} s; a writer's batches of 100 meanwhile: {writes}, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
            self.name,
            total,
            took.as_secs_f64()
        );
    }
}

/// CPU seconds it takes to make one line as the senders do (formatting its message and
/// fields), measured on 100,000 lines: part of the ingestion's CPU time, which the store
/// does not spend (a server spends it parsing the request instead).
fn cpu_per_line_made() -> f64 {
    const LINES: u64 = 100_000;
    let cpu = cpu_seconds();
    let made: usize = (0..LINES)
        .map(|i| std::hint::black_box(line(i, LINES, 100)).message.len())
        .sum();
    std::hint::black_box(made);
    (cpu_seconds() - cpu) / LINES as f64
}

fn sizes(variable: &str, default: &str) -> Vec<u64> {
    std::env::var(variable)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("a number of lines"))
        .collect()
}

/// Fills `bench` to each size in turn (lines/s of each step), queries at each, and
/// expires the oldest day at the largest.
fn run(mut bench: Bench, sizes: &[u64]) {
    let Some(&total) = sizes.iter().max() else {
        return;
    };
    let made = cpu_per_line_made();
    for &size in sizes {
        let from = bench.stored;
        let (rate, per_cpu) = bench.fill(size, total);
        println!(
            "{:<8} {:>11} ingestion of lines {from}..{size} in batches of {} from {} senders at once: {rate:.0} lines/s, {per_cpu:.0} lines per CPU-second of this process, {:.0} without making the lines ({:.2} µs each) (load {})",
            bench.name,
            size,
            bench.batch,
            bench.writers,
            1.0 / (1.0 / per_cpu - made),
            made * 1e6,
            load_average()
        );
        let (indexed, wall, cpu) = bench.catch_up_text_index();
        if indexed > 0 {
            let sustained = (size - from) as f64 / ((size - from) as f64 / per_cpu + cpu);
            println!(
                "{:<8} {:>11} text index: {indexed} lines left to index when the senders stopped, indexed in {wall:.2} s ({cpu:.2} CPU-s); ingestion with the index complete: {sustained:.0} lines per CPU-second",
                bench.name, size
            );
        }
        bench.queries(size);
        bench.time_last_source_sequence(size);
    }
    bench.expiry(total);
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let batch = sizes("STORE_BENCH_BATCH", "100")[0];
    let writers = sizes("STORE_BENCH_WRITERS", "8")[0].max(1);
    println!("machine: {}", machine::describe());
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            // Blocking threads stay, so the CPU time summed over threads loses none.
            .thread_keep_alive(Duration::from_secs(24 * 60 * 60))
            .build()
            .expect("runtime")
    };

    let dir = match std::env::var_os("STORE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let sqlite = runtime();
    let store = sqlite
        .block_on(vupdate_store::open(&StoreConfig::Sqlite {
            path: path.clone(),
        }))
        .expect("open SQLite");
    let sqlite_sizes = sizes("STORE_BENCH_SIZES", "1000000,10000000");
    run(
        Bench {
            name: "sqlite",
            store,
            runtime: sqlite,
            batch,
            writers,
            stored: 0,
        },
        &sqlite_sizes,
    );
    let bytes: u64 = std::fs::read_dir(dir.path())
        .expect("bench directory")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    println!(
        "sqlite   files: {:.0} MB, {:.0} bytes per line",
        bytes as f64 / 1e6,
        bytes as f64 / sqlite_sizes.iter().max().copied().unwrap_or(1) as f64
    );

    match std::env::var("VUPDATE_BENCH_MONGODB_URL") {
        Ok(url) => {
            let mongo = runtime();
            let database = format!("bench{}", std::process::id());
            let store = mongo
                .block_on(vupdate_store::open(&StoreConfig::Mongo {
                    url,
                    database,
                    logs: None,
                }))
                .expect("open MongoDB");
            run(
                Bench {
                    name: "mongodb",
                    store,
                    runtime: mongo,
                    batch,
                    writers,
                    stored: 0,
                },
                &sizes("STORE_BENCH_MONGO_SIZES", "1000000"),
            );
        }
        Err(_) => println!(
            "mongodb  skipped: set VUPDATE_BENCH_MONGODB_URL, or run scripts/bench-store, which starts the stand-in"
        ),
    }
    if std::env::var_os("STORE_BENCH_KEEP").is_some() {
        println!(
            "sqlite   kept: {}",
            dir.keep().join("store.sqlite").display()
        );
    }
    println!("load average after: {}", load_average());
}
