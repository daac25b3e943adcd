//! Log records: every filter, level order, time range, text search, ordering, paging,
//! batches, value lists.

use vupdate_core::log::Level;
use vupdate_store::StoreError;
use vupdate_store::model::logs::{LogField, LogQuery, LogRecord, MAX_MESSAGE_BYTES};

use super::Ctx;
use super::fixtures::{at, log, role, service, task_log};

fn messages(found: &[vupdate_store::Stored<LogRecord>]) -> Vec<&str> {
    found.iter().map(|r| r.record.message.as_str()).collect()
}

/// Six lines across services, instances, directories, processes, tasks and levels, with
/// distinct times 1..=6 s after t0 (message = "mN").
async fn seed(ctx: &Ctx) {
    let mut lines = vec![
        log("api", "vm-1", Level::Info, 1, "m1"),
        log("api", "vm-2", Level::Warn, 2, "m2"),
        LogRecord {
            directory: "/opt".into(),
            ..log("api", "vm-1", Level::Error, 3, "m3")
        },
        LogRecord {
            process: "200".into(),
            ..log("web", "vm-1", Level::Debug, 4, "m4")
        },
        task_log("task-1", 5, "m5"),
        LogRecord {
            level: Level::Trace,
            ..task_log("task-2", 6, "m6")
        },
    ];
    lines[0].unit = "db".into();
    ctx.store.logs().insert(lines).await.expect("insert");
}

pub async fn each_filter_selects_exactly_its_records(ctx: Ctx) {
    seed(&ctx).await;
    let logs = ctx.store.logs();
    let cases: Vec<(LogQuery, Vec<&str>)> = vec![
        (
            LogQuery {
                service: Some(service("api")),
                ..LogQuery::default()
            },
            vec!["m3", "m2", "m1"],
        ),
        (
            LogQuery {
                instance: Some("vm-1".into()),
                ..LogQuery::default()
            },
            vec!["m4", "m3", "m1"],
        ),
        (
            LogQuery {
                directory: Some("/opt".into()),
                ..LogQuery::default()
            },
            vec!["m3"],
        ),
        (
            LogQuery {
                process: Some("200".into()),
                ..LogQuery::default()
            },
            vec!["m4"],
        ),
        (
            LogQuery {
                task: Some("task-1".into()),
                ..LogQuery::default()
            },
            vec!["m5"],
        ),
        (
            LogQuery {
                service: Some(service("api")),
                instance: Some("vm-1".into()),
                ..LogQuery::default()
            },
            vec!["m3", "m1"],
        ),
        (
            LogQuery {
                service: Some(service("nope")),
                ..LogQuery::default()
            },
            vec![],
        ),
    ];
    for (query, expected) in cases {
        let found = logs.query(&query).await.expect("query");
        assert_eq!(messages(&found), expected, "{query:?}");
        assert_eq!(
            logs.count(&query).await.expect("count"),
            expected.len() as u64,
            "{query:?}"
        );
        for record in &found {
            assert!(
                query.matches(record.sequence, &record.record),
                "the feed's matcher agrees: {query:?}"
            );
        }
    }
    let first = logs
        .query(&LogQuery {
            process: Some("200".into()),
            ..LogQuery::default()
        })
        .await
        .expect("q");
    assert_eq!(first[0].record.unit, "main");
    let db_line = logs
        .query(&LogQuery {
            instance: Some("vm-1".into()),
            ..LogQuery::default()
        })
        .await
        .expect("q");
    assert_eq!(db_line.last().expect("m1").record.unit, "db");
}

pub async fn min_level_means_that_level_and_above(ctx: Ctx) {
    seed(&ctx).await;
    let logs = ctx.store.logs();
    for (level, expected) in [
        (Level::Trace, vec!["m6", "m5", "m4", "m3", "m2", "m1"]),
        (Level::Debug, vec!["m5", "m4", "m3", "m2", "m1"]),
        (Level::Info, vec!["m5", "m3", "m2", "m1"]),
        (Level::Warn, vec!["m3", "m2"]),
        (Level::Error, vec!["m3"]),
    ] {
        let query = LogQuery {
            min_level: Some(level),
            ..LogQuery::default()
        };
        assert_eq!(
            messages(&logs.query(&query).await.expect("query")),
            expected,
            "{level}"
        );
    }
}

pub async fn time_range_is_inclusive(ctx: Ctx) {
    seed(&ctx).await;
    let logs = ctx.store.logs();
    let range = LogQuery {
        from_time: Some(at(2)),
        to_time: Some(at(4)),
        ..LogQuery::default()
    };
    assert_eq!(
        messages(&logs.query(&range).await.expect("query")),
        ["m4", "m3", "m2"]
    );
    let from = LogQuery {
        from_time: Some(at(5)),
        ..LogQuery::default()
    };
    assert_eq!(
        messages(&logs.query(&from).await.expect("query")),
        ["m6", "m5"]
    );
    let to = LogQuery {
        to_time: Some(at(1)),
        ..LogQuery::default()
    };
    assert_eq!(messages(&logs.query(&to).await.expect("query")), ["m1"]);
}

pub async fn text_is_a_case_insensitive_literal_substring(ctx: Ctx) {
    let logs = ctx.store.logs();
    let lines = [
        "Connection REFUSED by 10.0.0.1",
        "connection refused (retrying)",
        "Ошибка записи на диск",
        "cost: a.b(c)+[d]*",
        "abc",
        "plain text",
    ];
    let batch = lines
        .iter()
        .enumerate()
        .map(|(i, m)| log("api", "vm-1", Level::Info, i as i64, m))
        .collect();
    logs.insert(batch).await.expect("insert");
    for (text, expected) in [
        (
            "refused",
            vec![
                "connection refused (retrying)",
                "Connection REFUSED by 10.0.0.1",
            ],
        ),
        (
            "ConnECTION Refused (",
            vec!["connection refused (retrying)"],
        ),
        ("ОШИБКА", vec!["Ошибка записи на диск"]),
        ("a.b(c)+[d]*", vec!["cost: a.b(c)+[d]*"]),
        ("a.c", vec![]),
        ("10.0.0.1", vec!["Connection REFUSED by 10.0.0.1"]),
        (
            "",
            vec![
                "plain text",
                "abc",
                "cost: a.b(c)+[d]*",
                "Ошибка записи на диск",
                "connection refused (retrying)",
                "Connection REFUSED by 10.0.0.1",
            ],
        ),
    ] {
        let query = LogQuery {
            text: Some(text.to_owned()),
            ..LogQuery::default()
        };
        assert_eq!(
            messages(&logs.query(&query).await.expect("query")),
            expected,
            "text {text:?}"
        );
    }
}

pub async fn newest_first_with_a_limit_and_paging(ctx: Ctx) {
    let logs = ctx.store.logs();
    // Two lines share a time: `_sequence` breaks the tie, newest first.
    let batch = vec![
        log("api", "vm-1", Level::Info, 1, "a"),
        log("api", "vm-1", Level::Info, 3, "b"),
        log("api", "vm-1", Level::Info, 2, "c"),
        log("api", "vm-1", Level::Info, 3, "d"),
        log("api", "vm-1", Level::Info, 0, "e"),
    ];
    let sequences = logs.insert(batch).await.expect("insert");
    assert!(sequences.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        messages(&logs.query(&LogQuery::default()).await.expect("query")),
        ["d", "b", "c", "a", "e"]
    );
    let page = logs
        .query(&LogQuery {
            limit: Some(2),
            ..LogQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(messages(&page), ["d", "b"]);
    let older = LogQuery {
        before_sequence: Some(sequences[2]),
        limit: Some(2),
        ..LogQuery::default()
    };
    assert_eq!(
        messages(&logs.query(&older).await.expect("query")),
        ["b", "a"]
    );
    let newer = LogQuery {
        after_sequence: Some(sequences[2]),
        ..LogQuery::default()
    };
    assert_eq!(
        messages(&logs.query(&newer).await.expect("query")),
        ["d", "e"]
    );
    let in_order = logs
        .in_sequence(&LogQuery::default(), 3)
        .await
        .expect("in sequence");
    assert_eq!(messages(&in_order), ["a", "b", "c"]);
}

pub async fn no_filter_returns_everything(ctx: Ctx) {
    // The original sent an empty `$and` for a subscription without filters.
    seed(&ctx).await;
    let logs = ctx.store.logs();
    assert_eq!(
        logs.query(&LogQuery::default()).await.expect("query").len(),
        6
    );
    assert_eq!(logs.count(&LogQuery::default()).await.expect("count"), 6);
    let empty_text = LogQuery {
        text: Some(String::new()),
        ..LogQuery::default()
    };
    assert_eq!(logs.count(&empty_text).await.expect("count"), 6);
}

pub async fn a_batch_with_one_invalid_record_writes_nothing(ctx: Ctx) {
    let logs = ctx.store.logs();
    for (index, bad) in [
        (
            1,
            LogRecord {
                instance: String::new(),
                ..log("api", "vm-1", Level::Info, 1, "x")
            },
        ),
        (
            1,
            LogRecord {
                message: "x".repeat(MAX_MESSAGE_BYTES + 1),
                ..log("api", "vm-1", Level::Info, 1, "x")
            },
        ),
        (
            1,
            LogRecord {
                task: Some(String::new()),
                ..log("api", "vm-1", Level::Info, 1, "x")
            },
        ),
    ] {
        let batch = vec![
            log("api", "vm-1", Level::Info, 0, "ok"),
            bad,
            log("api", "vm-1", Level::Info, 2, "ok"),
        ];
        let error = logs.insert(batch).await.expect_err("invalid");
        assert!(
            matches!(&error, StoreError::Invalid { collection: "log_records", index: i, .. } if *i == index),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("nothing of the batch was written"),
            "{error}"
        );
    }
    assert_eq!(logs.count(&LogQuery::default()).await.expect("count"), 0);
    assert_eq!(logs.last_sequence().await.expect("last"), None);
}

pub async fn distinct_values_and_time_range(ctx: Ctx) {
    seed(&ctx).await;
    let logs = ctx.store.logs();
    let all = LogQuery::default();
    assert_eq!(
        logs.distinct(LogField::Service, &all)
            .await
            .expect("services"),
        ["api", "builder", "web"]
    );
    let api = LogQuery {
        service: Some(service("api")),
        ..LogQuery::default()
    };
    assert_eq!(
        logs.distinct(LogField::Instance, &api)
            .await
            .expect("instances"),
        ["vm-1", "vm-2"]
    );
    assert_eq!(
        logs.distinct(LogField::Directory, &api)
            .await
            .expect("directories"),
        ["/opt", "/srv"]
    );
    assert_eq!(
        logs.distinct(LogField::Process, &all)
            .await
            .expect("processes"),
        ["100", "200"]
    );
    assert_eq!(
        logs.distinct(LogField::Task, &all).await.expect("tasks"),
        ["task-1", "task-2"]
    );
    assert_eq!(
        logs.distinct(LogField::Level, &api).await.expect("levels"),
        ["ERROR", "INFO", "WARN"]
    );
    assert_eq!(
        logs.time_range(&all).await.expect("range"),
        Some((at(1), at(6)))
    );
    assert_eq!(
        logs.time_range(&api).await.expect("range"),
        Some((at(1), at(3)))
    );
    let none = LogQuery {
        service: Some(service("nope")),
        ..LogQuery::default()
    };
    assert_eq!(logs.time_range(&none).await.expect("range"), None);
}

pub async fn times_keep_milliseconds(ctx: Ctx) {
    let logs = ctx.store.logs();
    let time = at(0) + chrono::TimeDelta::microseconds(123_456);
    let record = LogRecord {
        time,
        ..log("api", "vm-1", Level::Info, 0, "precise")
    };
    logs.insert(vec![record]).await.expect("insert");
    let back = logs.query(&LogQuery::default()).await.expect("query");
    assert_eq!(
        back[0].record.time,
        at(0) + chrono::TimeDelta::milliseconds(123)
    );
    let exact = LogQuery {
        from_time: Some(back[0].record.time),
        to_time: Some(back[0].record.time),
        ..LogQuery::default()
    };
    assert_eq!(logs.count(&exact).await.expect("count"), 1);
}

/// A small deterministic generator (xorshift64), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    fn maybe<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if self.next().is_multiple_of(3) {
            Some(self.pick(items).clone())
        } else {
            None
        }
    }
}

pub async fn random_queries_agree_with_the_feed_matcher(ctx: Ctx) {
    let logs = ctx.store.logs();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let services = ["api", "web", "db"];
    let instances = ["vm-1".to_owned(), "vm-2".to_owned()];
    let directories = ["/srv".to_owned(), "/opt".to_owned()];
    let processes = ["1".to_owned(), "2".to_owned()];
    let tasks = ["t1".to_owned(), "t2".to_owned()];
    let roles = [role("eu"), role("us")];
    let words = [
        "Error",
        "error",
        "ОШИБКА",
        "ошибка",
        "disk FULL",
        "a.b",
        "A.(b)",
        "ok",
    ];
    let mut records = Vec::new();
    for _ in 0..300 {
        let message = format!("{} {}", rng.pick(&words), rng.pick(&words));
        let (svc, instance, level) = (
            *rng.pick(&services),
            rng.pick(&instances).clone(),
            *rng.pick(&Level::ALL),
        );
        let mut record = log(svc, &instance, level, (rng.next() % 60) as i64, &message);
        record.directory = rng.pick(&directories).clone();
        record.process = rng.pick(&processes).clone();
        record.task = rng.maybe(&tasks);
        record.role = rng.maybe(&roles);
        records.push(record);
    }
    let mut stored = Vec::new();
    for chunk in records.chunks(100) {
        let sequences = logs.insert(chunk.to_vec()).await.expect("insert");
        stored.extend(sequences.into_iter().zip(chunk.iter().cloned()));
    }
    let texts = ["error", "ERROR", "ошибка", "disk full", "a.b", "(b)", "zzz"];
    for round in 0..150 {
        let query = LogQuery {
            service: rng.maybe(&services).map(service),
            role: rng.maybe(&roles),
            instance: rng.maybe(&instances),
            directory: rng.maybe(&directories),
            process: rng.maybe(&processes),
            task: rng.maybe(&tasks),
            min_level: rng.maybe(&Level::ALL),
            from_time: rng.maybe(&[at(10), at(30)]),
            to_time: rng.maybe(&[at(30), at(50)]),
            text: rng.maybe(&texts).map(str::to_owned),
            after_sequence: rng.maybe(&[stored[50].0, stored[150].0]),
            before_sequence: rng.maybe(&[stored[200].0, stored[299].0]),
            limit: rng.maybe(&[1_u64, 5, 40]),
        };
        agrees_with_the_matcher(&ctx, &stored, &query, round).await;
    }
    // A service and a lowest level, limited: the SQLite backend reads one index range per
    // level and merges them; ties in time are broken by sequence as in one range.
    for round in 0..60 {
        let query = LogQuery {
            service: Some(service(rng.pick::<&str>(&services))),
            min_level: Some(*rng.pick(&Level::ALL)),
            from_time: rng.maybe(&[at(10), at(30)]),
            to_time: rng.maybe(&[at(30), at(50)]),
            text: rng.maybe(&texts).map(str::to_owned),
            after_sequence: rng.maybe(&[stored[50].0, stored[150].0]),
            before_sequence: rng.maybe(&[stored[200].0, stored[299].0]),
            limit: Some(*rng.pick(&[1_u64, 5, 40])),
            ..LogQuery::default()
        };
        agrees_with_the_matcher(&ctx, &stored, &query, round).await;
    }
}

/// Checks that `query` finds, newest first, exactly the records of `stored` it matches.
pub async fn agrees_with_the_matcher(
    ctx: &Ctx,
    stored: &[(i64, LogRecord)],
    query: &LogQuery,
    round: usize,
) {
    let mut expected: Vec<&(i64, LogRecord)> = stored
        .iter()
        .filter(|(sequence, record)| query.matches(*sequence, record))
        .collect();
    expected.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(b.0.cmp(&a.0)));
    expected.truncate(query.limit.map_or(usize::MAX, |l| l as usize));
    let expected: Vec<i64> = expected
        .into_iter()
        .map(|(sequence, _)| *sequence)
        .collect();
    let found: Vec<i64> = ctx
        .store
        .logs()
        .query(query)
        .await
        .expect("query")
        .into_iter()
        .map(|r| r.sequence)
        .collect();
    assert_eq!(found, expected, "round {round}: {query:?}");
}

pub async fn the_last_source_sequence_is_per_source(ctx: Ctx) {
    let logs = ctx.store.logs();
    let api = service("api");
    assert_eq!(
        logs.last_source_sequence(&api, None, "vm-1", "/srv", "100")
            .await
            .expect("query"),
        None,
        "nothing stored yet"
    );
    let numbered = |instance: &str, sequence: i64| LogRecord {
        source_sequence: Some(sequence),
        ..log(
            "api",
            instance,
            Level::Info,
            sequence,
            &format!("{instance}-{sequence}"),
        )
    };
    logs.insert(vec![
        numbered("vm-1", 7),
        numbered("vm-1", 8),
        numbered("vm-2", 3),
    ])
    .await
    .expect("insert");
    logs.insert(vec![numbered("vm-1", 9)])
        .await
        .expect("insert");
    assert_eq!(
        logs.last_source_sequence(&api, None, "vm-1", "/srv", "100")
            .await
            .expect("query"),
        Some(9)
    );
    assert_eq!(
        logs.last_source_sequence(&api, None, "vm-2", "/srv", "100")
            .await
            .expect("query"),
        Some(3)
    );
    assert_eq!(
        logs.last_source_sequence(&api, None, "vm-1", "/srv", "other")
            .await
            .expect("query"),
        None,
        "another process is another source"
    );
    assert_eq!(
        logs.last_source_sequence(&api, Some(&role("eu")), "vm-1", "/srv", "100")
            .await
            .expect("query"),
        None,
        "the service in a role is another source"
    );
    logs.insert(vec![LogRecord {
        role: Some(role("eu")),
        ..numbered("vm-1", 2)
    }])
    .await
    .expect("insert");
    assert_eq!(
        logs.last_source_sequence(&api, Some(&role("eu")), "vm-1", "/srv", "100")
            .await
            .expect("query"),
        Some(2)
    );
    assert_eq!(
        logs.last_source_sequence(&api, None, "vm-1", "/srv", "100")
            .await
            .expect("query"),
        Some(9),
        "the service without a role keeps its own numbers"
    );
    // Sources taking turns within one batch: each one's last line is its newest.
    logs.insert(vec![
        numbered("vm-2", 4),
        numbered("vm-1", 10),
        numbered("vm-2", 5),
    ])
    .await
    .expect("insert");
    for (instance, last) in [("vm-1", 10), ("vm-2", 5)] {
        assert_eq!(
            logs.last_source_sequence(&api, None, instance, "/srv", "100")
                .await
                .expect("query"),
            Some(last),
            "{instance}"
        );
    }
}

pub async fn an_expired_source_has_no_last_sequence(ctx: Ctx) {
    let logs = ctx.store.logs();
    let day = 24 * 60 * 60;
    let numbered = |instance: &str, seconds: i64, sequence: i64| LogRecord {
        source_sequence: Some(sequence),
        ..log("api", instance, Level::Info, seconds, "a line")
    };
    logs.insert(vec![
        numbered("old", -3 * day, 1),
        numbered("old", -3 * day, 2),
    ])
    .await
    .expect("insert");
    logs.insert(vec![numbered("new", 0, 7)])
        .await
        .expect("insert");
    let policy = vupdate_store::ExpiryPolicy {
        service_logs: std::time::Duration::from_secs(2 * day as u64),
        ..vupdate_store::ExpiryPolicy::default()
    };
    let report = ctx.store.expire(&policy, at(0)).await.expect("expire");
    assert_eq!(report.service_logs, 2);
    let last = |instance: &'static str| async move {
        logs.last_source_sequence(&service("api"), None, instance, "/srv", "100")
            .await
            .expect("query")
    };
    assert_eq!(last("old").await, None, "every line of it expired");
    assert_eq!(last("new").await, Some(7));
    logs.insert(vec![numbered("old", 0, 3)])
        .await
        .expect("insert");
    assert_eq!(last("old").await, Some(3), "it sends again");
}

/// Messages for the text search's edge cases: case, SQL `LIKE` wildcards, multibyte
/// text, quotes (FTS5 syntax) and characters whose lower case is longer.
const EDGE_MESSAGES: [&str; 12] = [
    "Connection REFUSED by 10.0.0.1",
    "100% done",
    "50%_off at disk_full",
    "percent%sign and under_score",
    "Ошибка записи на диск",
    "Straße in İstanbul",
    "say \"hi\" AND NOT bye*",
    "a.b(c)+[d]* OR x",
    "ab",
    "ΣΊΣΥΦΟΣ rolls",
    "tab\there",
    "emoji 🚀 launch",
];

/// Needles for [`EDGE_MESSAGES`]: each is checked against the feed's matcher.
/// (Not `İ`, whose lower case is two characters: MongoDB's case-insensitive regex folds
/// it otherwise than the matcher, a difference the text index does not touch.)
const EDGE_NEEDLES: [&str; 23] = [
    "",
    "refused",
    "ConnECTION refused",
    "%",
    "_",
    "%_",
    "100%",
    "disk_",
    "r_s",
    "ошибка",
    "ЗАПИСИ НА",
    "straße",
    "STRASSE",
    "stanbul",
    "\"hi\"",
    "AND NOT",
    "bye*",
    "(c)+[",
    "ab",
    "σίσυφος",
    "\there",
    "🚀 la",
    "no such text",
];

/// Checks every edge needle, with and without a limit and next to another filter, against
/// the feed's matcher (the one definition of the search), and the count against it.
async fn edge_needles_agree(ctx: &Ctx, stored: &[(i64, LogRecord)], when: &str) {
    for (round, needle) in EDGE_NEEDLES.iter().enumerate() {
        for (limit, min_level) in [(None, None), (Some(2), None), (None, Some(Level::Warn))] {
            let query = LogQuery {
                text: Some((*needle).to_owned()),
                limit,
                min_level,
                ..LogQuery::default()
            };
            agrees_with_the_matcher(ctx, stored, &query, round).await;
            let expected = stored
                .iter()
                .filter(|(sequence, record)| query.matches(*sequence, record))
                .count();
            assert_eq!(
                ctx.store.logs().count(&query).await.expect("count"),
                expected as u64,
                "{when}: count of {needle:?}"
            );
        }
    }
}

pub async fn text_search_means_the_same_through_the_index(ctx: Ctx) {
    let logs = ctx.store.logs();
    let lines = |first: i64| -> Vec<LogRecord> {
        EDGE_MESSAGES
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let level = if i % 3 == 0 { Level::Warn } else { Level::Info };
                log("api", "vm-1", level, first + i as i64, m)
            })
            .collect()
    };
    let mut stored = Vec::new();
    let first = lines(0);
    let sequences = logs.insert(first.clone()).await.expect("insert");
    stored.extend(sequences.into_iter().zip(first));
    edge_needles_agree(&ctx, &stored, "before indexing").await;
    logs.index_text().await.expect("index");
    edge_needles_agree(&ctx, &stored, "indexed").await;
    // Lines past the index are found as well as those in it.
    let second = lines(100);
    let sequences = logs.insert(second.clone()).await.expect("insert");
    stored.extend(sequences.into_iter().zip(second));
    edge_needles_agree(&ctx, &stored, "half indexed").await;
    logs.index_text().await.expect("index again");
    assert_eq!(
        logs.index_text().await.expect("index once more"),
        0,
        "nothing is left to index"
    );
    edge_needles_agree(&ctx, &stored, "indexed again").await;
}

pub async fn expired_lines_are_not_found_by_text(ctx: Ctx) {
    let logs = ctx.store.logs();
    let day = 24 * 60 * 60;
    logs.insert(vec![
        log("api", "vm", Level::Info, -3 * day, "old needle line"),
        log("api", "vm", Level::Info, -3 * day, "old other line"),
    ])
    .await
    .expect("insert");
    logs.index_text().await.expect("index");
    let policy = vupdate_store::ExpiryPolicy {
        service_logs: std::time::Duration::from_secs(2 * day as u64),
        ..vupdate_store::ExpiryPolicy::default()
    };
    let report = ctx.store.expire(&policy, at(0)).await.expect("expire");
    assert_eq!(report.service_logs, 2);
    let fresh = logs
        .insert(vec![log("api", "vm", Level::Info, 0, "new needle line")])
        .await
        .expect("insert");
    logs.index_text().await.expect("index");
    let found = logs
        .query(&LogQuery {
            text: Some("NEEDLE".to_owned()),
            ..LogQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(
        found
            .iter()
            .map(|r| (r.sequence, r.record.message.as_str()))
            .collect::<Vec<_>>(),
        [(fresh[0], "new needle line")]
    );
}
