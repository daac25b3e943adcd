//! The conformance suite on MongoDB, each case in its own database.
//!
//! The server is, in order: `VUPDATE_TEST_MONGODB_URL` if set; else a `mongod` on PATH;
//! else the `nx-27017` stand-in (a MongoDB wire-protocol server over SQLite, installed by
//! `scripts/install-mongo-test-server.sh`). The stand-in listens on port 0 and its log
//! says which port it got; `mongod` (which takes no port 0) is given a port that was free
//! and is started again on another when it finds it taken. Either way the port is the one
//! the server itself reports, never one merely probed, so no other process's listener is
//! mistaken for it. A server this binary starts is stopped when the binary exits: it runs
//! under a shell that kills it when the test process's end of a pipe closes. Without any
//! server the cases fail when `VUPDATE_REQUIRE_MONGODB` or `CI` is set (`scripts/test`
//! sets the first, having installed the stand-in) and are skipped, loudly, elsewhere.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use vupdate_core::log::Level;
use vupdate_store::model::logs::LogQuery;
use vupdate_store::{MongoLogs, StoreConfig};

use vupdate_test_support::servers::{self, announce};

use crate::conformance::{Ctx, fixtures, instantiate};

/// What the stand-in cannot do, and how the store and the suite deal with it.
const STAND_IN_LIMITS: &str = "  - change streams: the driver fails on the stand-in's cursor id (Int32, not Int64). The store never
    uses them (a standalone mongod refuses them too): live logs are fanned out in process.
  - TTL: not a limit. Its neosqlite layer applies TTL indexes on every read and write of the
    collection, by its own wall clock (a real server does the same every 60 s). Expiry stays the
    store's own job, run with an explicit time; the cases' clock starts at the current minute
    (fixtures::t0), since archived versions stamped more than 7 days behind the server's clock
    would be removed by the TTL index on `_archiveTime` mid-case.
  - 64-bit integers come back as Int32 when they fit: the store reads either width
    (versions::sizes_beyond_32_bits_round_trip checks a size past 32 bits).
  - `{field: null}` does not match a missing field: the store leaves absent values out and queries
    `$exists: false`, which a real server answers the same way.
  - aggregate `$min`/`$max` return dates as strings: the store uses sort + limit instead.
  - `distinct` answers number-like strings (\"100\") as numbers: the store lists values with
    `$group`, which it answers correctly (and which has no 16 MB answer limit on a real server).
  - a unique index on a field named `id` is silently not created (its SQLite layer owns `id`):
    the store keys tasks and fault reports by `task` and `fault`, the original's field names.
  Skipped cases: none; every conformance case runs against the stand-in.";

enum Server {
    Ready { url: String },
    Missing(String),
}

static SERVER: OnceLock<Server> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

fn start_server() -> Server {
    match servers::mongodb() {
        Ok((url, kind)) => {
            announce(&format!("MongoDB conformance suite: using {kind} at {url}"));
            if kind.starts_with("nx-27017") {
                announce(&format!("What the stand-in cannot do:\n{STAND_IN_LIMITS}"));
            }
            Server::Ready { url }
        }
        Err(why) => Server::Missing(why),
    }
}

fn server_url() -> Option<String> {
    match SERVER.get_or_init(start_server) {
        Server::Ready { url } => Some(url.clone()),
        Server::Missing(why) => {
            if servers::required() {
                panic!("no MongoDB server for the conformance suite: {why}");
            }
            announce(&format!(
                "\n*** SKIPPING a MongoDB conformance case: {why} ***\n"
            ));
            None
        }
    }
}

fn database_name(case: &str) -> String {
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    let short: String = case
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect();
    format!("vu{}_{n}_{short}", std::process::id())
}

async fn open_store(case: &str) -> Option<Ctx> {
    let url = server_url()?;
    let config = StoreConfig::Mongo {
        url,
        database: database_name(case),
        logs: None,
    };
    let store = vupdate_store::open(&config)
        .await
        .expect("open the MongoDB store");
    Some(Ctx::new(store, config, None))
}

instantiate!(crate::mongo::open_store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_can_live_in_their_own_database() {
    let Some(url) = server_url() else { return };
    let main = database_name("main");
    let logs = MongoLogs {
        url: url.clone(),
        database: database_name("logs"),
    };
    let split = StoreConfig::Mongo {
        url: url.clone(),
        database: main.clone(),
        logs: Some(logs),
    };
    let store = vupdate_store::open(&split).await.expect("open");
    store
        .logs()
        .insert(vec![fixtures::log(
            "api",
            "vm-1",
            Level::Info,
            0,
            "in the log database",
        )])
        .await
        .expect("insert");
    store
        .accounts()
        .add(fixtures::user(
            "bob",
            vupdate_store::model::accounts::AccountRole::Developer,
        ))
        .await
        .expect("add");

    let main_only = vupdate_store::open(&StoreConfig::Mongo {
        url,
        database: main,
        logs: None,
    })
    .await
    .expect("open");
    assert_eq!(
        main_only
            .logs()
            .count(&LogQuery::default())
            .await
            .expect("count"),
        0,
        "not in the main database"
    );
    assert!(
        main_only
            .accounts()
            .get("bob")
            .await
            .expect("get")
            .is_some(),
        "accounts are"
    );
    let reopened = vupdate_store::open(&split).await.expect("reopen");
    assert_eq!(
        reopened
            .logs()
            .count(&LogQuery::default())
            .await
            .expect("count"),
        1
    );
}
