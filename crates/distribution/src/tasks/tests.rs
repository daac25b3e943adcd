//! Tasks against a real SQLite store.

use std::collections::BTreeMap;
use std::time::Duration;

use tempfile::TempDir;
use tokio::time::timeout;
use vupdate_core::log::Level;
use vupdate_store::model::logs::{LogQuery, LogRecord};
use vupdate_store::model::tasks::Task;
use vupdate_store::{FollowFrom, Store, StoreConfig};

use super::{CANCELLED, INTERRUPTED, LogOrigin, TaskContext, TaskManager, TaskOutcome};

const LIMIT: Duration = Duration::from_secs(10);

async fn store(dir: &TempDir) -> Store {
    let config = StoreConfig::Sqlite {
        path: dir.path().join("store.sqlite"),
    };
    vupdate_store::open(&config).await.expect("open the store")
}

fn origin() -> LogOrigin {
    LogOrigin {
        service: "distribution".parse().expect("service name"),
        instance: "test-host".to_owned(),
        directory: "/srv/distribution".to_owned(),
        process: "42".to_owned(),
    }
}

fn manager(store: &Store, grace: Duration) -> TaskManager {
    TaskManager::new(store.clone(), origin(), grace)
}

/// A fresh store in `dir` with a manager whose cancel grace is `grace`.
async fn setup(dir: &TempDir, grace: Duration) -> (Store, TaskManager) {
    let store = store(dir).await;
    let tasks = manager(&store, grace);
    (store, tasks)
}

/// Waits (at most [`LIMIT`]) for the task to end and returns its outcome.
async fn outcome_of(tasks: &TaskManager, id: &str) -> TaskOutcome {
    timeout(LIMIT, tasks.wait(id))
        .await
        .expect("in time")
        .expect("outcome")
}

/// The task's stored record.
async fn stored_task(store: &Store, id: &str) -> Task {
    store
        .tasks()
        .get(id)
        .await
        .expect("get")
        .expect("stored")
        .record
}

/// Work that never ends on its own and ignores cancellation.
async fn never_ends(_ctx: TaskContext) -> Result<(), String> {
    std::future::pending::<()>().await;
    Ok(())
}

/// The task's log lines, oldest first.
async fn log_of(store: &Store, id: &str) -> Vec<LogRecord> {
    let query = LogQuery {
        task: Some(id.to_owned()),
        ..LogQuery::default()
    };
    let records = store
        .logs()
        .in_sequence(&query, 1000)
        .await
        .expect("query logs");
    records.into_iter().map(|r| r.record).collect()
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_task_logs_lines_and_succeeds() {
    let dir = TempDir::new().expect("temp dir");
    let (store, tasks) = setup(&dir, Duration::from_secs(5)).await;
    let api = "api".parse().expect("service");
    let mut follower = store
        .logs()
        .follow(LogQuery::default(), FollowFrom::Now)
        .await
        .expect("follow");
    let id = tasks
        .start(
            "BuildDeveloperVersion",
            params(&[("version", "orbit-1.0.0")]),
            vec![api],
            |ctx| async move {
                for i in 0..3 {
                    ctx.log(Level::Info, "build", &format!("step {i}"));
                }
                Ok(())
            },
        )
        .await
        .expect("start");
    assert_eq!(
        outcome_of(&tasks, &id).await,
        TaskOutcome {
            succeeded: true,
            message: None
        }
    );
    let lines = log_of(&store, &id).await;
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["step 0", "step 1", "step 2", "task succeeded"]);
    assert_eq!(lines[3].termination_status, Some(true));
    assert!(lines[..3].iter().all(|l| l.termination_status.is_none()));

    let task = stored_task(&store, &id).await;
    assert!(!task.active);
    assert_eq!(task.termination_status, Some(true));
    assert!(task.termination_time.is_some());
    assert_eq!(task.task_type, "BuildDeveloperVersion");
    assert_eq!(task.parameters["version"], "orbit-1.0.0");
    assert!(tasks.running().is_empty());

    // Followers of the live feed see the task's lines too.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let batch = timeout(LIMIT, follower.next_batch())
            .await
            .expect("in time");
        seen.extend(batch.expect("batch").into_iter().map(|r| r.record));
    }
    assert!(seen.iter().all(|r| r.task.as_deref() == Some(id.as_str())));
}

#[tokio::test]
async fn a_failing_task_records_its_message() {
    let dir = TempDir::new().expect("temp dir");
    let (store, tasks) = setup(&dir, Duration::from_secs(5)).await;
    let id = tasks
        .start(
            "BuildClientVersion",
            BTreeMap::new(),
            Vec::new(),
            |ctx| async move {
                ctx.log(Level::Warn, "build", "about to fail");
                Err("the builder is not available yet".to_owned())
            },
        )
        .await
        .expect("start");
    let outcome = outcome_of(&tasks, &id).await;
    assert!(!outcome.succeeded);
    assert_eq!(
        outcome.message.as_deref(),
        Some("the builder is not available yet")
    );
    let lines = log_of(&store, &id).await;
    let last = lines.last().expect("a last line");
    assert_eq!(
        last.message,
        "task failed: the builder is not available yet"
    );
    assert_eq!(last.level, Level::Error);
    assert_eq!(last.termination_status, Some(false));
    let task = stored_task(&store, &id).await;
    assert_eq!((task.active, task.termination_status), (false, Some(false)));
}

#[tokio::test]
async fn cancel_stops_a_cooperative_task_and_aborts_a_stubborn_one() {
    let dir = TempDir::new().expect("temp dir");
    let (store, tasks) = setup(&dir, Duration::from_millis(100)).await;
    let cooperative = tasks
        .start("Long", BTreeMap::new(), Vec::new(), |ctx| async move {
            ctx.cancelled().await;
            ctx.log(Level::Info, "work", "stopping on request");
            Ok(())
        })
        .await
        .expect("start");
    let stubborn = tasks
        .start("Stubborn", BTreeMap::new(), Vec::new(), never_ends)
        .await
        .expect("start");
    assert_eq!(tasks.running().len(), 2);
    for id in [&cooperative, &stubborn] {
        tasks.cancel(id).expect("cancel");
    }
    for id in [&cooperative, &stubborn] {
        let outcome = outcome_of(&tasks, id).await;
        assert_eq!(outcome.message.as_deref(), Some(CANCELLED));
        assert!(!outcome.succeeded);
        let task = stored_task(&store, id).await;
        assert_eq!(task.termination_status, Some(false));
    }
    let lines = log_of(&store, &cooperative).await;
    assert_eq!(lines[0].message, "stopping on request");
    assert_eq!(
        lines.last().map(|l| l.message.as_str()),
        Some("task failed: cancelled")
    );
    assert!(
        tasks.cancel(&cooperative).is_err(),
        "an ended task cannot be cancelled"
    );
}

#[tokio::test]
async fn tasks_interrupted_by_a_restart_are_recovered() {
    let dir = TempDir::new().expect("temp dir");
    let id = {
        let (_store, tasks) = setup(&dir, Duration::from_secs(5)).await;
        tasks
            .start(
                "BuildDeveloperVersion",
                params(&[("version", "orbit-2.0.0")]),
                vec!["web".parse().expect("service")],
                never_ends,
            )
            .await
            .expect("start")
        // The manager and store are dropped with the task still active: a "crash".
    };
    let (store, tasks) = setup(&dir, Duration::from_secs(5)).await;
    let recovered = tasks.recover_interrupted().await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].id, id);
    assert_eq!(recovered[0].parameters["version"], "orbit-2.0.0");
    let task = stored_task(&store, &id).await;
    assert_eq!((task.active, task.termination_status), (false, Some(false)));
    let lines = log_of(&store, &id).await;
    assert_eq!(lines.last().map(|l| l.message.as_str()), Some(INTERRUPTED));
    assert_eq!(
        tasks.wait(&id).await.expect("outcome from the store"),
        TaskOutcome {
            succeeded: false,
            message: None
        }
    );
    assert!(tasks.recover_interrupted().await.expect("again").is_empty());
}
