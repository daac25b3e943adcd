//! `_sequence`: increasing per collection, persistent across restarts, shared by processes.

use vupdate_core::log::Level;
use vupdate_store::model::accounts::AccountRole;
use vupdate_store::model::logs::LogQuery;

use super::Ctx;
use super::fixtures::{log, user};

pub async fn sequences_increase_across_collections_writes(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    let mut last = 0;
    for step in 0..4 {
        let written = if step % 2 == 0 {
            accounts
                .put(user("bob", AccountRole::Developer))
                .await
                .expect("put")
        } else {
            accounts
                .add(user(&format!("u{step}"), AccountRole::Developer))
                .await
                .expect("add")
        };
        assert!(
            written.sequence > last,
            "step {step}: {} after {last}",
            written.sequence
        );
        last = written.sequence;
    }
    let logs = ctx
        .store
        .logs()
        .insert(vec![log("api", "vm", Level::Info, 0, "x")])
        .await
        .expect("insert");
    assert!(logs[0] >= 1, "each collection has its own counter");
}

pub async fn sequences_survive_a_reopen(ctx: Ctx) {
    let first = ctx
        .store
        .logs()
        .insert(vec![log("api", "vm", Level::Info, 0, "a")])
        .await
        .expect("insert");
    let before = ctx
        .store
        .accounts()
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add");
    let reopened = ctx.reopen().await;
    let second = reopened
        .logs()
        .insert(vec![log("api", "vm", Level::Info, 1, "b")])
        .await
        .expect("insert");
    assert!(second[0] > first[0], "{} after {}", second[0], first[0]);
    reopened.accounts().remove("bob").await.expect("remove");
    let after = reopened
        .accounts()
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add again");
    assert!(after.sequence > before.sequence);
}

pub async fn two_stores_on_one_database_never_share_a_sequence(ctx: Ctx) {
    // The original kept the counter in one process's memory.
    let other = ctx.reopen().await;
    let mut tasks = Vec::new();
    for store in [ctx.store.clone(), other.clone()] {
        tasks.push(tokio::spawn(async move {
            let mut sequences = Vec::new();
            for i in 0..20 {
                let batch = (0..5)
                    .map(|j| log("api", "vm", Level::Info, i * 5 + j, "x"))
                    .collect();
                sequences.extend(store.logs().insert(batch).await.expect("insert"));
            }
            sequences
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "no sequence was handed out twice");
    assert_eq!(
        ctx.store
            .logs()
            .count(&LogQuery::default())
            .await
            .expect("count"),
        count as u64
    );
}
