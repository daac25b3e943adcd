//! Tasks: newest first, every filter, updates with history, interrupted tasks.

use vupdate_store::model::tasks::TaskQuery;

use super::Ctx;
use super::fixtures::{at, service, task};

fn ids(found: &[vupdate_store::Stored<vupdate_store::model::tasks::Task>]) -> Vec<&str> {
    found.iter().map(|t| t.record.id.as_str()).collect()
}

async fn seed(ctx: &Ctx) {
    let tasks = ctx.store.tasks();
    tasks
        .add(task("t1", "BuildDeveloperVersion", &["api"], 10, false))
        .await
        .expect("add");
    tasks
        .add(task("t2", "BuildClientVersions", &["api", "web"], 20, true))
        .await
        .expect("add");
    tasks
        .add(task("t3", "BuildDeveloperVersion", &["web"], 30, true))
        .await
        .expect("add");
    tasks
        .add(task("t4", "GetLastCommitComment", &["db"], 40, false))
        .await
        .expect("add");
}

pub async fn newest_first_with_every_filter(ctx: Ctx) {
    seed(&ctx).await;
    let tasks = ctx.store.tasks();
    let q = |query: TaskQuery| async move { tasks.query(&query).await.expect("query") };
    assert_eq!(
        ids(&q(TaskQuery::default()).await),
        ["t4", "t3", "t2", "t1"]
    );
    assert_eq!(
        ids(&q(TaskQuery {
            limit: Some(2),
            ..TaskQuery::default()
        })
        .await),
        ["t4", "t3"]
    );
    assert_eq!(
        ids(&q(TaskQuery {
            id: Some("t2".into()),
            ..TaskQuery::default()
        })
        .await),
        ["t2"]
    );
    let by_type = TaskQuery {
        task_type: Some("BuildDeveloperVersion".into()),
        ..TaskQuery::default()
    };
    assert_eq!(ids(&q(by_type).await), ["t3", "t1"]);
    assert_eq!(
        ids(&q(TaskQuery {
            service: Some(service("web")),
            ..TaskQuery::default()
        })
        .await),
        ["t3", "t2"]
    );
    assert_eq!(
        ids(&q(TaskQuery {
            only_active: true,
            ..TaskQuery::default()
        })
        .await),
        ["t3", "t2"]
    );
    let window = TaskQuery {
        from_time: Some(at(20)),
        to_time: Some(at(30)),
        ..TaskQuery::default()
    };
    assert_eq!(ids(&q(window).await), ["t3", "t2"], "both ends inclusive");
    let combined = TaskQuery {
        service: Some(service("api")),
        only_active: true,
        ..TaskQuery::default()
    };
    assert_eq!(ids(&q(combined).await), ["t2"]);
}

pub async fn ending_a_task_keeps_its_history(ctx: Ctx) {
    let tasks = ctx.store.tasks();
    let started = tasks
        .add(task("t1", "BuildDeveloperVersion", &["api"], 0, true))
        .await
        .expect("add");
    let mut ended = started.record.clone();
    ended.active = false;
    ended.termination_time = Some(at(90));
    ended.termination_status = Some(true);
    let stored = tasks.put(ended.clone()).await.expect("end");
    assert!(stored.sequence > started.sequence);
    assert_eq!(
        tasks.get("t1").await.expect("get").expect("exists").record,
        ended
    );
    assert!(
        tasks
            .query(&TaskQuery {
                only_active: true,
                ..TaskQuery::default()
            })
            .await
            .expect("query")
            .is_empty()
    );
    assert!(
        tasks.add(task("t1", "X", &[], 0, true)).await.is_err(),
        "ids are unique"
    );
}

pub async fn active_tasks_are_interrupted_at_start(ctx: Ctx) {
    seed(&ctx).await;
    let tasks = ctx.store.tasks();
    assert_eq!(tasks.interrupt_active().await.expect("interrupt"), 2);
    let now = vupdate_store::Clock::now(ctx.clock.as_ref());
    for id in ["t2", "t3"] {
        let t = tasks.get(id).await.expect("get").expect("exists").record;
        assert_eq!(
            (t.active, t.termination_status, t.termination_time),
            (false, Some(false), Some(now)),
            "{id}"
        );
    }
    assert_eq!(
        tasks
            .get("t1")
            .await
            .expect("get")
            .expect("exists")
            .record
            .termination_status,
        None
    );
    assert_eq!(tasks.interrupt_active().await.expect("again"), 0);
}

pub async fn types_and_services_are_listed(ctx: Ctx) {
    seed(&ctx).await;
    let tasks = ctx.store.tasks();
    assert_eq!(
        tasks.types().await.expect("types"),
        [
            "BuildClientVersions",
            "BuildDeveloperVersion",
            "GetLastCommitComment"
        ]
    );
    assert_eq!(
        tasks.services().await.expect("services"),
        ["api", "db", "web"]
    );
}
