//! Log throughput on SQLite: inserting batches of 100 records, and a filtered, newest-first
//! query over 100,000 stored records.

use std::hint::black_box;

use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use vupdate_core::log::Level;
use vupdate_store::model::logs::{LogQuery, LogRecord};
use vupdate_store::{Store, StoreConfig};

const STORED: usize = 100_000;

fn record(i: usize) -> LogRecord {
    let base = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .expect("valid time");
    LogRecord {
        service: ["api", "web", "db", "queue", "auth"][i % 5]
            .parse()
            .expect("name"),
        role: None,
        instance: format!("vm-{}", i % 20),
        directory: "/srv".to_owned(),
        process: format!("{}", 1000 + i % 7),
        task: None,
        time: base + TimeDelta::milliseconds(i as i64 * 10),
        level: Level::ALL[(i / 7) % 5],
        unit: "main".to_owned(),
        message: if i.is_multiple_of(97) {
            format!("request {i} failed: upstream Timeout after 30 s")
        } else {
            format!("request {i} served in {} ms", i % 250)
        },
        termination_status: None,
        source_sequence: None,
    }
}

fn logs(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = StoreConfig::Sqlite {
        path: dir.path().join("bench.sqlite"),
    };
    let store: Store = runtime
        .block_on(vupdate_store::open(&config))
        .expect("open");
    runtime.block_on(async {
        for start in (0..STORED).step_by(1000) {
            store
                .logs()
                .insert((start..start + 1000).map(record).collect())
                .await
                .expect("fill");
        }
    });

    let mut next = STORED;
    c.bench_function("sqlite insert batch of 100 log records", |b| {
        b.iter_batched(
            || {
                let batch: Vec<LogRecord> = (next..next + 100).map(record).collect();
                next += 100;
                batch
            },
            |batch| {
                runtime
                    .block_on(store.logs().insert(batch))
                    .expect("insert")
            },
            BatchSize::SmallInput,
        );
    });

    let filtered = LogQuery {
        service: Some("api".parse().expect("name")),
        instance: Some("vm-5".to_owned()),
        min_level: Some(Level::Warn),
        limit: Some(100),
        ..LogQuery::default()
    };
    c.bench_function(
        "sqlite query service+instance+level, newest 100 of 100k",
        |b| {
            b.iter(|| {
                black_box(
                    runtime
                        .block_on(store.logs().query(&filtered))
                        .expect("query"),
                )
            });
        },
    );

    let text = LogQuery {
        service: Some("api".parse().expect("name")),
        text: Some("timeout".to_owned()),
        limit: Some(100),
        ..LogQuery::default()
    };
    c.bench_function("sqlite query service+text, newest 100 of 100k", |b| {
        b.iter(|| black_box(runtime.block_on(store.logs().query(&text)).expect("query")));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = logs
}
criterion_main!(benches);
