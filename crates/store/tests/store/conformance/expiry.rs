//! Expiry with an explicit `now`: logs by their own ages, fault reports by age and count,
//! dead states, ended tasks, archived versions after seven days.

use std::time::Duration;

use vupdate_core::log::Level;
use vupdate_store::ExpiryPolicy;
use vupdate_store::model::accounts::AccountRole;
use vupdate_store::model::faults::FaultQuery;
use vupdate_store::model::logs::LogQuery;
use vupdate_store::model::states::StateQuery;
use vupdate_store::model::tasks::TaskQuery;

use super::Ctx;
use super::fixtures::{at, days, fault, log, state, task, task_log, user};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn policy() -> ExpiryPolicy {
    ExpiryPolicy {
        service_logs: Duration::from_secs(2 * DAY as u64),
        task_logs: Duration::from_secs(10 * DAY as u64),
        tasks: Duration::from_secs(30 * DAY as u64),
        fault_reports_age: Duration::from_secs(5 * DAY as u64),
        fault_reports_max_count: 3,
        dead_states: Duration::from_secs(60),
    }
}

pub async fn logs_expire_by_their_own_ages(ctx: Ctx) {
    let logs = ctx.store.logs();
    logs.insert(vec![
        log("api", "vm", Level::Info, -3 * DAY, "old service line"),
        log("api", "vm", Level::Info, -DAY, "recent service line"),
        task_log("t1", -3 * DAY, "old task line, kept longer"),
        task_log("t1", -11 * DAY, "very old task line"),
    ])
    .await
    .expect("insert");
    let report = ctx.store.expire(&policy(), at(0)).await.expect("expire");
    assert_eq!((report.service_logs, report.task_logs), (1, 1));
    let mut left: Vec<_> = logs
        .query(&LogQuery::default())
        .await
        .expect("query")
        .into_iter()
        .map(|r| r.record.message)
        .collect();
    left.sort();
    assert_eq!(left, ["old task line, kept longer", "recent service line"]);
}

pub async fn faults_expire_by_age_and_by_count(ctx: Ctx) {
    let faults = ctx.store.fault_reports();
    for (id, seconds) in [
        ("f1", -6 * DAY),
        ("f2", -4 * DAY),
        ("f3", -3 * DAY),
        ("f4", -2 * DAY),
        ("f5", -DAY),
        ("f6", 0),
    ] {
        faults
            .add(fault("jetto", id, "api", seconds))
            .await
            .expect("add");
    }
    let report = ctx.store.expire(&policy(), at(0)).await.expect("expire");
    let mut removed: Vec<_> = report.fault_reports.iter().map(|f| f.id.as_str()).collect();
    removed.sort();
    assert_eq!(
        removed,
        ["f1", "f2", "f3"],
        "f1 by age, f2 and f3 beyond the newest 3"
    );
    assert!(
        report.fault_reports.iter().all(|f| !f.files.is_empty()),
        "files listed for the blob store"
    );
    let left: Vec<_> = faults
        .query(&FaultQuery::default())
        .await
        .expect("query")
        .into_iter()
        .map(|f| f.record.id)
        .collect();
    assert_eq!(left, ["f6", "f5", "f4"]);
}

pub async fn dead_states_and_old_tasks_expire(ctx: Ctx) {
    let states = ctx.store.service_states();
    states
        .set(vec![
            state("jetto", "vm-1", "api", -61),
            state("jetto", "vm-2", "api", -30),
        ])
        .await
        .expect("set");
    let tasks = ctx.store.tasks();
    tasks
        .add(task("old-ended", "X", &[], -31 * DAY, false))
        .await
        .expect("add");
    tasks
        .add(task("old-running", "X", &[], -31 * DAY, true))
        .await
        .expect("add");
    tasks
        .add(task("recent", "X", &[], -DAY, false))
        .await
        .expect("add");
    let report = ctx.store.expire(&policy(), at(0)).await.expect("expire");
    assert_eq!((report.dead_states, report.tasks), (1, 1));
    let alive = states.query(&StateQuery::default()).await.expect("query");
    assert_eq!(
        alive
            .iter()
            .map(|s| s.record.instance.as_str())
            .collect::<Vec<_>>(),
        ["vm-2"]
    );
    let mut left: Vec<_> = tasks
        .query(&TaskQuery::default())
        .await
        .expect("query")
        .into_iter()
        .map(|t| t.record.id)
        .collect();
    left.sort();
    assert_eq!(left, ["old-running", "recent"]);
}

pub async fn archived_versions_are_purged_after_seven_days(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    let bob = accounts
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add");
    accounts.remove("bob").await.expect("remove");
    ctx.clock.advance(days(3));
    accounts
        .add(user("ann", AccountRole::Developer))
        .await
        .expect("add");
    accounts
        .put(user("ann", AccountRole::Administrator))
        .await
        .expect("replace");
    let faults = ctx.store.fault_reports();
    faults
        .add(fault("jetto", "f1", "api", 3 * DAY))
        .await
        .expect("add");
    faults.remove("jetto", "f1").await.expect("remove");

    let report = ctx
        .store
        .expire(&ExpiryPolicy::default(), at(7 * DAY - 1))
        .await
        .expect("expire");
    assert_eq!(report.archived, 0, "nothing is older than 7 days yet");
    let report = ctx
        .store
        .expire(&ExpiryPolicy::default(), at(7 * DAY + 1))
        .await
        .expect("expire");
    assert_eq!(report.archived, 1, "bob's deleted version");
    assert!(accounts.history("bob").await.expect("history").is_empty());
    assert!(matches!(
        accounts.restore(bob.sequence).await,
        Err(vupdate_store::StoreError::NotFound { .. }
            | vupdate_store::StoreError::RestoreExpired { .. })
    ));
    assert_eq!(
        accounts.history("ann").await.expect("history").len(),
        2,
        "ann's old version is 4 days old"
    );
    let report = ctx
        .store
        .expire(&ExpiryPolicy::default(), at(10 * DAY + 1))
        .await
        .expect("expire");
    assert_eq!(
        report.archived, 2,
        "ann's old version and the deleted report"
    );
    assert_eq!(
        report
            .fault_reports
            .iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>(),
        ["f1"]
    );
}

pub async fn a_second_run_removes_nothing(ctx: Ctx) {
    let logs = ctx.store.logs();
    logs.insert(vec![log("api", "vm", Level::Info, -30 * DAY, "old")])
        .await
        .expect("insert");
    ctx.store
        .fault_reports()
        .add(fault("jetto", "f1", "api", -30 * DAY))
        .await
        .expect("add");
    let first = ctx
        .store
        .expire(&ExpiryPolicy::default(), at(0))
        .await
        .expect("expire");
    assert!(!first.is_empty());
    let second = ctx
        .store
        .expire(&ExpiryPolicy::default(), at(0))
        .await
        .expect("expire");
    assert!(second.is_empty(), "{second:?}");
}
