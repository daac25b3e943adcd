//! Following logs: replay then live, gap-free and without duplicates, the same matching as
//! queries, and a resync when a follower falls behind.

use std::time::Duration;

use vupdate_core::log::Level;
use vupdate_store::feed::FOLLOW_BATCH;
use vupdate_store::model::logs::{LogQuery, LogRecord};
use vupdate_store::{FollowFrom, LogFollower, Stored};

use super::Ctx;
use super::fixtures::{log, service};

async fn next(follower: &mut LogFollower) -> Vec<Stored<LogRecord>> {
    tokio::time::timeout(Duration::from_secs(10), follower.next_batch())
        .await
        .expect("a batch within 10 s")
        .expect("no error")
}

async fn nothing_pending(follower: &mut LogFollower) {
    let waited = tokio::time::timeout(Duration::from_millis(100), follower.next_batch()).await;
    assert!(waited.is_err(), "no record expected, got {waited:?}");
}

fn messages(batch: &[Stored<LogRecord>]) -> Vec<String> {
    batch.iter().map(|r| r.record.message.clone()).collect()
}

fn lines(prefix: &str, count: usize) -> Vec<LogRecord> {
    (0..count)
        .map(|i| {
            log(
                "api",
                "vm-1",
                Level::Info,
                i as i64,
                &format!("{prefix}{i}"),
            )
        })
        .collect()
}

pub async fn replays_then_follows_live(ctx: Ctx) {
    let logs = ctx.store.logs();
    logs.insert(lines("old", 3)).await.expect("insert");
    let mut follower = logs
        .follow(LogQuery::default(), FollowFrom::After(0))
        .await
        .expect("follow");
    assert_eq!(
        messages(&next(&mut follower).await),
        ["old0", "old1", "old2"]
    );
    let sequences = logs.insert(lines("new", 2)).await.expect("insert");
    assert_eq!(messages(&next(&mut follower).await), ["new0", "new1"]);
    assert_eq!(follower.last_sequence(), sequences[1]);
    nothing_pending(&mut follower).await;
}

pub async fn from_now_skips_what_is_stored(ctx: Ctx) {
    let logs = ctx.store.logs();
    let old = logs.insert(lines("old", 3)).await.expect("insert");
    let mut follower = logs
        .follow(LogQuery::default(), FollowFrom::Now)
        .await
        .expect("follow");
    assert_eq!(follower.last_sequence(), old[2]);
    logs.insert(lines("new", 1)).await.expect("insert");
    assert_eq!(messages(&next(&mut follower).await), ["new0"]);
    // Following from a known sequence resumes exactly after it.
    let mut resumed = logs
        .follow(LogQuery::default(), FollowFrom::After(old[1]))
        .await
        .expect("follow");
    assert_eq!(messages(&next(&mut resumed).await), ["old2", "new0"]);
}

pub async fn follows_only_matching_records(ctx: Ctx) {
    let logs = ctx.store.logs();
    let query = LogQuery {
        service: Some(service("api")),
        min_level: Some(Level::Warn),
        ..LogQuery::default()
    };
    logs.insert(vec![
        log("api", "vm-1", Level::Error, 0, "stored match"),
        log("api", "vm-1", Level::Info, 1, "stored miss"),
    ])
    .await
    .expect("insert");
    let mut follower = logs
        .follow(query, FollowFrom::After(0))
        .await
        .expect("follow");
    assert_eq!(messages(&next(&mut follower).await), ["stored match"]);
    logs.insert(vec![
        log("web", "vm-1", Level::Error, 2, "other service"),
        log("api", "vm-1", Level::Warn, 3, "live match"),
        log("api", "vm-1", Level::Debug, 4, "too low"),
    ])
    .await
    .expect("insert");
    assert_eq!(messages(&next(&mut follower).await), ["live match"]);
    nothing_pending(&mut follower).await;
}

pub async fn query_and_follow_agree_on_text(ctx: Ctx) {
    // The original searched text one way in queries and another in subscriptions.
    let logs = ctx.store.logs();
    let texts = [
        "Disk FULL on /var",
        "disk full",
        "diskfull",
        "Ошибка: Disk Full",
        "full disk",
    ];
    let query = LogQuery {
        text: Some("disk full".into()),
        ..LogQuery::default()
    };
    let mut follower = logs
        .follow(query.clone(), FollowFrom::Now)
        .await
        .expect("follow");
    let batch = texts
        .iter()
        .enumerate()
        .map(|(i, t)| log("api", "vm-1", Level::Info, i as i64, t))
        .collect();
    logs.insert(batch).await.expect("insert");
    let mut live = messages(&next(&mut follower).await);
    let mut queried = messages(&logs.query(&query).await.expect("query"));
    live.sort();
    queried.sort();
    assert_eq!(live, queried);
    assert_eq!(
        queried,
        ["Disk FULL on /var", "disk full", "Ошибка: Disk Full"]
    );
}

pub async fn a_lagging_follower_resyncs_without_gaps(ctx: Ctx) {
    let logs = ctx.store.logs();
    let mut follower = logs
        .follow(LogQuery::default(), FollowFrom::Now)
        .await
        .expect("follow");
    // Once it has read everything stored, the follower waits on the feed.
    logs.insert(vec![log("api", "vm-1", Level::Info, 0, "first")])
        .await
        .expect("insert");
    assert_eq!(messages(&next(&mut follower).await), ["first"]);
    nothing_pending(&mut follower).await;
    // More single-record batches than the feed buffers, while the follower reads nothing.
    let total = 1100;
    for i in 0..total {
        logs.insert(vec![log(
            "api",
            "vm-1",
            Level::Info,
            i,
            &format!("line {i}"),
        )])
        .await
        .expect("insert");
    }
    let mut seen = Vec::new();
    while seen.len() < total as usize {
        let batch = next(&mut follower).await;
        assert!(batch.len() <= FOLLOW_BATCH);
        seen.extend(batch.into_iter().map(|r| r.sequence));
    }
    assert!(
        follower.resyncs() >= 1,
        "the follower fell behind and re-read the gap"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    assert_eq!(seen.len(), total as usize, "no gap");
    nothing_pending(&mut follower).await;
}

pub async fn large_batches_are_split(ctx: Ctx) {
    let logs = ctx.store.logs();
    let mut follower = logs
        .follow(LogQuery::default(), FollowFrom::Now)
        .await
        .expect("follow");
    logs.insert(lines("x", 250)).await.expect("insert");
    let sizes = [
        next(&mut follower).await.len(),
        next(&mut follower).await.len(),
        next(&mut follower).await.len(),
    ];
    assert_eq!(sizes, [100, 100, 50]);
}

/// Batches inserted at the same time may share a transaction: each still gets its own
/// consecutive sequences, and the feed carries every line once, in sequence order.
pub async fn concurrent_batches_keep_consecutive_sequences_and_feed_order(ctx: Ctx) {
    let mut follower = ctx
        .store
        .logs()
        .follow(LogQuery::default(), FollowFrom::Now)
        .await
        .expect("follow");
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = ctx.store.clone();
            tokio::spawn(async move {
                store
                    .logs()
                    .insert(lines(&format!("w{w}-"), 10))
                    .await
                    .expect("insert")
            })
        })
        .collect();
    let mut stored = Vec::new();
    for (w, writer) in writers.into_iter().enumerate() {
        let sequences = writer.await.expect("writer");
        assert_eq!(sequences.len(), 10, "writer {w}");
        assert!(
            sequences.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "writer {w}: {sequences:?}"
        );
        stored.extend(sequences);
    }
    stored.sort_unstable();
    stored.dedup();
    assert_eq!(stored.len(), 160, "no sequence shared");
    let mut fed = Vec::new();
    while fed.len() < stored.len() {
        fed.extend(next(&mut follower).await.iter().map(|r| r.sequence));
    }
    assert_eq!(fed, stored);
    nothing_pending(&mut follower).await;
}
