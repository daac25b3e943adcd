//! A SQLite file written by an older build (schema 1: no role columns, the role of a
//! fault report inside its body) opens, gains the new columns with the values its records
//! held, and its `name-role` records are split like any others. A file of schema 2 (the
//! log indexes before the service-and-level one) gets the new log indexes and loses the
//! one they replace, keeping every record; a file with the index of each line's source
//! (schema 3 before the table of sources) gets the table, and loses the index.

use rusqlite::Connection;
use vupdate_core::log::Level;
use vupdate_core::service::ServiceName;
use vupdate_store::StoreConfig;
use vupdate_store::model::faults::FaultQuery;
use vupdate_store::model::logs::LogQuery;
use vupdate_store::model::states::StateQuery;

/// The tables of the three collections that changed, as schema 1 created them, with one
/// record each as the last build of that schema wrote them.
const SCHEMA_1: &str = r#"
CREATE TABLE _sequences (collection TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
INSERT INTO _sequences VALUES ('service_states', 1), ('log_records', 1), ('fault_reports', 1);
CREATE TABLE "service_states" (_sequence INTEGER PRIMARY KEY, _modify_time INTEGER NOT NULL,
  "distribution" TEXT NOT NULL, "instance" TEXT NOT NULL, "service" TEXT NOT NULL,
  "directory" TEXT NOT NULL, "state_time" INTEGER, body TEXT NOT NULL) STRICT;
CREATE UNIQUE INDEX "service_states_key" ON "service_states" ("distribution", "instance", "service", "directory");
INSERT INTO service_states VALUES (1, 1767225600000, 'jetto', 'vm-1', 'worker-eu',
  '/var/lib/vupdate/./worker-eu', 1767225600000, '{"state":{"version":"jetto-1.0.0_1"}}');
CREATE TABLE "log_records" (_sequence INTEGER PRIMARY KEY, _modify_time INTEGER NOT NULL,
  "service" TEXT, "instance" TEXT, "directory" TEXT, "process" TEXT, "task" TEXT, "time" INTEGER,
  "level" TEXT, "unit" TEXT, "message" TEXT, body TEXT NOT NULL) STRICT;
INSERT INTO log_records VALUES (1, 1767225600000, 'worker-eu', 'vm-1', '/var/lib/vupdate/./worker-eu',
  '42', NULL, 1767225600000, 'INFO', 'main', 'started', '{"sourceSequence":5}');
CREATE TABLE "fault_reports" (_sequence INTEGER PRIMARY KEY, _modify_time INTEGER NOT NULL,
  "distribution" TEXT NOT NULL, "fault" TEXT NOT NULL, "info_service" TEXT, "info_time" INTEGER,
  body TEXT NOT NULL) STRICT;
CREATE TABLE "fault_reports_history" (_sequence INTEGER PRIMARY KEY, _modify_time INTEGER NOT NULL,
  _archive_time INTEGER NOT NULL, "distribution" TEXT NOT NULL, "fault" TEXT NOT NULL,
  "info_service" TEXT, "info_time" INTEGER, body TEXT NOT NULL) STRICT;
INSERT INTO fault_reports VALUES (1, 1767225600000, 'jetto', 'fault-0001', 'worker', 1767225600000,
  '{"info":{"instance":"vm-1","serviceRole":"eu","serviceDirectory":"/var/lib/vupdate/./worker-eu","state":{"time":"2026-01-01T00:00:00.000Z"},"logTail":["boom"]},"files":[]}');
PRAGMA user_version = 1;
"#;

/// A store opened on a file that `schema` (SQL an older build wrote) made: its temporary
/// directory, the file, the config and the store.
async fn open_older(
    schema: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    StoreConfig,
    vupdate_store::Store,
) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    Connection::open(&path)
        .and_then(|conn| conn.execute_batch(schema))
        .expect("a file of the older schema");
    let config = StoreConfig::Sqlite { path: path.clone() };
    let store = vupdate_store::open(&config)
        .await
        .expect("opens and upgrades");
    (dir, path, config, store)
}

/// The schema version of the file at `path`.
fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .and_then(|conn| conn.query_row("PRAGMA user_version", [], |row| row.get(0)))
        .expect("user_version")
}

/// The roles of the fault reports `store` holds that match `query`.
async fn fault_roles(store: &vupdate_store::Store, query: &FaultQuery) -> Vec<Option<String>> {
    store
        .fault_reports()
        .query(query)
        .await
        .expect("faults")
        .into_iter()
        .map(|fault| fault.record.info.service_role.map(|role| role.to_string()))
        .collect()
}

#[tokio::test]
async fn a_schema_1_file_gains_the_role_columns_and_keeps_every_value() {
    let (_dir, path, config, store) = open_older(SCHEMA_1).await;
    let in_eu = FaultQuery {
        role: Some("eu".parse().expect("role")),
        ..FaultQuery::default()
    };
    assert_eq!(
        fault_roles(&store, &in_eu).await,
        [Some("eu".to_owned())],
        "the role moved from the body into its column"
    );
    let faults = store.fault_reports().query(&in_eu).await.expect("faults");
    assert_eq!(
        faults[0].record.info.log_tail,
        ["boom"],
        "the rest of the body stays"
    );

    let split = |name: &str| {
        let (service, role) = name.rsplit_once('-')?;
        Some((service.parse().ok()?, role.parse().ok()?))
    };
    let done = store.split_legacy_roles(split).await.expect("split");
    assert_eq!(
        (done.states, done.log_roles, done.log_directories),
        (1, 1, 1)
    );
    let worker: ServiceName = "worker".parse().expect("name");
    let states = store
        .service_states()
        .query(&StateQuery {
            service: Some(worker.clone()),
            role: Some("eu".parse().expect("role")),
            ..StateQuery::default()
        })
        .await
        .expect("states");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].record.directory, "/var/lib/vupdate/worker-eu");
    let logs = store
        .logs()
        .query(&LogQuery {
            service: Some(worker),
            ..LogQuery::default()
        })
        .await
        .expect("logs");
    assert_eq!(
        (logs[0].sequence, logs[0].record.source_sequence),
        (1, Some(5)),
        "rewritten in place"
    );
    drop(store);

    assert_eq!(user_version(&path), 3);
    // Opening again finds every column and changes nothing.
    let store = vupdate_store::open(&config).await.expect("opens again");
    assert_eq!(
        fault_roles(&store, &FaultQuery::default()).await,
        [Some("eu".to_owned())]
    );
}

/// The log records table and its indexes as schema 2 created them, with a service log
/// line at each of two levels and a task log line.
const SCHEMA_2_LOGS: &str = r#"
CREATE TABLE _sequences (collection TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
INSERT INTO _sequences VALUES ('log_records', 3);
CREATE TABLE "log_records" (_sequence INTEGER PRIMARY KEY, _modify_time INTEGER NOT NULL,
  "service" TEXT, "instance" TEXT, "directory" TEXT, "process" TEXT, "task" TEXT, "time" INTEGER,
  "level" TEXT, "unit" TEXT, "message" TEXT, "role" TEXT, body TEXT NOT NULL) STRICT;
CREATE INDEX "log_records_service_time" ON "log_records" ("service", "time");
CREATE INDEX "log_records_service_instance_time" ON "log_records" ("service", "instance", "time");
CREATE INDEX "log_records_task_time" ON "log_records" ("task", "time");
CREATE INDEX "log_records_time" ON "log_records" ("time");
INSERT INTO log_records VALUES
  (1, 1767225600000, 'worker', 'vm-1', '/srv/worker', '42', NULL, 1767225600000, 'INFO', 'main',
   'started', 'eu', '{"terminationStatus":null,"sourceSequence":1}'),
  (2, 1767225601000, 'worker', 'vm-1', '/srv/worker', '42', NULL, 1767225601000, 'ERROR', 'main',
   'disk full', 'eu', '{"terminationStatus":null,"sourceSequence":2}'),
  (3, 1767225602000, 'builder', 'distribution', '/builds', '7', 'task-1', 1767225602000, 'INFO',
   'build', 'compiling', NULL, '{"terminationStatus":null}');
PRAGMA user_version = 2;
"#;

/// The names of the indexes on the log records table.
fn log_indexes(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).expect("open");
    let mut statement = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'log_records' ORDER BY name")
        .expect("prepare");
    statement
        .query_map([], |row| row.get(0))
        .expect("indexes")
        .collect::<Result<_, _>>()
        .expect("names")
}

#[tokio::test]
async fn a_schema_2_file_gets_the_new_log_indexes_and_keeps_every_line() {
    let (_dir, path, config, store) = open_older(SCHEMA_2_LOGS).await;
    let worker: ServiceName = "worker".parse().expect("name");
    let errors = store
        .logs()
        .query(&LogQuery {
            service: Some(worker.clone()),
            min_level: Some(Level::Warn),
            limit: Some(1000),
            ..LogQuery::default()
        })
        .await
        .expect("errors");
    assert_eq!(
        errors
            .iter()
            .map(|r| (r.sequence, r.record.message.as_str()))
            .collect::<Vec<_>>(),
        [(2, "disk full")]
    );
    let task = store
        .logs()
        .query(&LogQuery {
            task: Some("task-1".to_owned()),
            ..LogQuery::default()
        })
        .await
        .expect("task log");
    assert_eq!(task.len(), 1);
    assert_eq!(task[0].record.message, "compiling");
    let all = store
        .logs()
        .query(&LogQuery::default())
        .await
        .expect("every line");
    assert_eq!(
        all.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(
        worker_last(&store).await,
        Some(2),
        "each source's newest line is known"
    );
    let mut next = all[1].record.clone();
    next.message = "after the upgrade".to_owned();
    assert_eq!(
        store.logs().insert(vec![next]).await.expect("insert"),
        [4],
        "sequences go on from the file's counter"
    );
    drop(store);

    assert_eq!(
        log_indexes(&path),
        [
            "log_records_service_instance_time",
            "log_records_service_level_time",
            "log_records_task_time_present",
            "log_records_time",
        ],
        "the full task index gave way to the partial one, and the service and time one to the \
         service, level and time one"
    );
    assert_eq!(user_version(&path), 3);
    // Opening again changes nothing.
    let store = vupdate_store::open(&config).await.expect("opens again");
    assert_eq!(line_count(&store).await, 4);
    drop(store);
    assert_eq!(log_indexes(&path).len(), 4);
}

/// How many log lines `store` holds.
async fn line_count(store: &vupdate_store::Store) -> u64 {
    store
        .logs()
        .count(&LogQuery::default())
        .await
        .expect("count")
}

/// The messages found by a text search for `text`, newest first.
async fn found_by_text(store: &vupdate_store::Store, text: &str) -> Vec<String> {
    found(
        store,
        LogQuery {
            text: Some(text.to_owned()),
            ..LogQuery::default()
        },
    )
    .await
}

/// The messages `query` finds, newest first.
async fn found(store: &vupdate_store::Store, query: LogQuery) -> Vec<String> {
    store
        .logs()
        .query(&query)
        .await
        .expect("text search")
        .into_iter()
        .map(|r| r.record.message)
        .collect()
}

#[tokio::test]
async fn a_file_without_the_text_index_gets_one_and_every_line_is_found() {
    let (_dir, path, config, store) = open_older(SCHEMA_2_LOGS).await;
    // Found before the index has caught up (read past it) and after.
    assert_eq!(found_by_text(&store, "FULL").await, ["disk full"]);
    store.logs().index_text().await.expect("index");
    assert_eq!(found_by_text(&store, "FULL").await, ["disk full"]);
    assert_eq!(found_by_text(&store, "pil").await, ["compiling"]);
    assert_eq!(found_by_text(&store, "t").await, ["started"]);
    assert_eq!(store.logs().index_text().await.expect("index"), 0);
    drop(store);
    let indexed: i64 = Connection::open(crate::sqlite::index_file(&path))
        .and_then(|conn| {
            conn.query_row(
                "SELECT upto FROM _text_upto WHERE collection = 'log_records'",
                [],
                |row| row.get(0),
            )
        })
        .expect("the text index's mark");
    assert_eq!(indexed, 3, "every line of the file is in the index");
    let store = vupdate_store::open(&config).await.expect("opens again");
    assert_eq!(found_by_text(&store, "disk").await, ["disk full"]);
    assert_eq!(line_count(&store).await, 3);
}

/// Schema 3 as the build before the index's segments left it: the lines of
/// [`SCHEMA_2_LOGS`] in the one text index table, marked as indexed.
const SCHEMA_3_ONE_TEXT_TABLE: &str = r#"
CREATE VIRTUAL TABLE "log_records_text" USING fts5("message", content='', detail=none,
  columnsize=0, tokenize='trigram case_sensitive 1');
INSERT INTO "log_records_text" (rowid, "message") SELECT _sequence, lower("message") FROM log_records;
CREATE TABLE _text_indexed (collection TEXT PRIMARY KEY, upto INTEGER NOT NULL) STRICT;
INSERT INTO _text_indexed VALUES ('log_records', 3);
PRAGMA user_version = 3;
"#;

#[tokio::test]
async fn a_file_with_the_single_text_index_table_gets_segments_and_every_line_is_found() {
    let schema = format!("{SCHEMA_2_LOGS}{SCHEMA_3_ONE_TEXT_TABLE}");
    let (_dir, path, config, store) = open_older(&schema).await;
    assert!(
        crate::sqlite::text_index_tables(&path).is_empty(),
        "the single table is gone: {:?}",
        crate::sqlite::text_index_tables(&path)
    );
    // Found while the lines are indexed again (read past the index) and after.
    assert_eq!(found_by_text(&store, "FULL").await, ["disk full"]);
    store.logs().index_text().await.expect("index");
    assert_eq!(found_by_text(&store, "FULL").await, ["disk full"]);
    assert_eq!(found_by_text(&store, "pil").await, ["compiling"]);
    assert_eq!(found_by_text(&store, "art").await, ["started"]);
    // Service logs by day, task logs by spans of 32 days.
    let day = 1_767_225_600_000_i64 / (24 * 60 * 60 * 1000);
    assert_eq!(
        crate::sqlite::text_index_tables(&crate::sqlite::index_file(&path)),
        [
            format!("log_records_text_{day}"),
            format!("log_records_text_task_{}", day / 32)
        ]
    );
    drop(store);
    assert_eq!(
        text_tables_in_store_file(&path),
        0,
        "an older build opening the file again indexes from the start"
    );
    let store = vupdate_store::open(&config).await.expect("opens again");
    assert_eq!(store.logs().index_text().await.expect("index"), 0);
    assert_eq!(found_by_text(&store, "disk").await, ["disk full"]);
    assert_eq!(user_version(&path), 3);
}

/// Schema 3 as the build before keyed segments left it: the lines of [`SCHEMA_2_LOGS`]
/// indexed in day segments without their service's key, which `_text_segments` has no
/// columns to tell.
const SCHEMA_3_KEYLESS_SEGMENTS: &str = r#"
CREATE TABLE _text_upto (collection TEXT PRIMARY KEY, upto INTEGER NOT NULL) STRICT;
INSERT INTO _text_upto VALUES ('log_records', 3);
CREATE TABLE _text_segments (collection TEXT NOT NULL, segment TEXT NOT NULL,
  apart INTEGER NOT NULL, period INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
  PRIMARY KEY (collection, segment)) STRICT;
CREATE VIRTUAL TABLE "log_records_text_20454" USING fts5("message", content='', detail=none,
  columnsize=0, tokenize='trigram case_sensitive 1');
INSERT INTO "log_records_text_20454" (rowid, "message")
  SELECT _sequence, lower("message") FROM log_records WHERE task IS NULL;
INSERT INTO _text_segments VALUES ('log_records', 'log_records_text_20454', 0, 20454, 1, 2);
CREATE VIRTUAL TABLE "log_records_text_task_639" USING fts5("message", content='', detail=none,
  columnsize=0, tokenize='trigram case_sensitive 1');
INSERT INTO "log_records_text_task_639" (rowid, "message")
  SELECT _sequence, lower("message") FROM log_records WHERE task IS NOT NULL;
INSERT INTO _text_segments VALUES ('log_records', 'log_records_text_task_639', 1, 639, 3, 3);
PRAGMA user_version = 3;
"#;

/// The messages of `service` found by a text search for `text`, newest first.
async fn found_in_service(store: &vupdate_store::Store, service: &str, text: &str) -> Vec<String> {
    let query = LogQuery {
        service: Some(service.parse().expect("a service name")),
        text: Some(text.to_owned()),
        limit: Some(10),
        ..LogQuery::default()
    };
    found(store, query).await
}

/// The tables of the text index (and its bookkeeping) left in the store file at `path`.
fn text_tables_in_store_file(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .and_then(|conn| {
            conn.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' \
                 AND (name LIKE 'log\\_records\\_text%' ESCAPE '\\' OR name LIKE '\\_text%' ESCAPE '\\')",
                [],
                |row| row.get(0),
            )
        })
        .expect("the store file's tables")
}

/// Segments the builds before kept in the store file (indexed without the service's key)
/// leave it: the lines are indexed again, keyed, in the index's file, and every line is
/// found within a service meanwhile and after, new lines of the old day included.
#[tokio::test]
async fn a_file_with_text_segments_in_it_moves_them_to_the_index_file_keyed() {
    let schema = format!("{SCHEMA_2_LOGS}{SCHEMA_3_KEYLESS_SEGMENTS}");
    let (_dir, path, _config, store) = open_older(&schema).await;
    assert_eq!(text_tables_in_store_file(&path), 0);
    assert_eq!(
        found_in_service(&store, "worker", "FULL").await,
        ["disk full"]
    );
    assert_eq!(
        found_in_service(&store, "builder", "pil").await,
        ["compiling"]
    );
    assert!(found_in_service(&store, "builder", "full").await.is_empty());
    let worker = |seconds: i64, message: &str| vupdate_store::model::logs::LogRecord {
        service: "worker".parse().expect("a service name"),
        role: None,
        instance: "vm-1".to_owned(),
        directory: "/srv/worker".to_owned(),
        process: "42".to_owned(),
        task: None,
        time: chrono::DateTime::from_timestamp(1_767_225_600 + seconds, 0).expect("a time"),
        level: Level::Info,
        unit: "main".to_owned(),
        message: message.to_owned(),
        termination_status: None,
        source_sequence: None,
    };
    // One more line of the old day, and one of the next day.
    store
        .logs()
        .insert(vec![
            worker(10, "disk full again"),
            worker(86_400, "disk full tomorrow"),
        ])
        .await
        .expect("insert");
    store.logs().index_text().await.expect("index");
    assert_eq!(
        found_in_service(&store, "worker", "disk full").await,
        ["disk full tomorrow", "disk full again", "disk full"]
    );
    assert_eq!(
        crate::sqlite::text_index_tables(&crate::sqlite::index_file(&path)),
        [
            "log_records_text_20454",
            "log_records_text_20455",
            "log_records_text_task_639",
        ]
    );
}

/// The last build's log records (schema 3): an index of each line's source, which this
/// build keeps as a table of each source's newest line instead.
fn schema_3_with_the_source_index() -> String {
    SCHEMA_2_LOGS.replace(
        "PRAGMA user_version = 2;",
        r#"CREATE INDEX "log_records_service_instance_directory_process_role" ON "log_records"
  ("service", "instance", "directory", "process", "role");
PRAGMA user_version = 3;"#,
    )
}

/// The worker's source's newest `sourceSequence` as `store` knows it.
async fn worker_last(store: &vupdate_store::Store) -> Option<i64> {
    store
        .logs()
        .last_source_sequence(
            &"worker".parse().expect("name"),
            Some(&"eu".parse().expect("role")),
            "vm-1",
            "/srv/worker",
            "42",
        )
        .await
        .expect("last source sequence")
}

#[tokio::test]
async fn a_file_with_the_source_index_keeps_each_source_s_newest_line_in_a_table() {
    let (_dir, path, config, store) = open_older(&schema_3_with_the_source_index()).await;
    assert_eq!(worker_last(&store).await, Some(2));
    drop(store);
    assert!(
        !log_indexes(&path)
            .contains(&"log_records_service_instance_directory_process_role".to_owned()),
        "the index gave way to the table: {:?}",
        log_indexes(&path)
    );

    // An older build opens the file again: it makes its index and writes a line, and
    // knows nothing of the table.
    Connection::open(&path)
        .and_then(|conn| {
            conn.execute_batch(
                r#"CREATE INDEX "log_records_service_instance_directory_process_role" ON "log_records"
  ("service", "instance", "directory", "process", "role");
UPDATE _sequences SET value = 4 WHERE collection = 'log_records';
INSERT INTO log_records VALUES
  (4, 1767225603000, 'worker', 'vm-1', '/srv/worker', '42', NULL, 1767225603000, 'INFO', 'main',
   'written by the older build', 'eu', '{"terminationStatus":null,"sourceSequence":3}');"#,
            )
        })
        .expect("the older build's write");
    let store = vupdate_store::open(&config).await.expect("opens again");
    assert_eq!(
        worker_last(&store).await,
        Some(3),
        "the table is made again from the lines"
    );
    drop(store);
    assert_eq!(log_indexes(&path).len(), 4);
}
