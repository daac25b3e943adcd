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

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use vupdate_core::log::Level;
use vupdate_store::model::logs::LogQuery;
use vupdate_store::{MongoLogs, StoreConfig};

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
/// The shell that runs the server: kept (with its stdin) until the process exits.
static RUNNING: Mutex<Option<Child>> = Mutex::new(None);
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// Writes straight to stderr, past the test harness's capture, so the notice is always seen.
fn announce(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The stand-in: `VUPDATE_NX27017` (a path), on PATH, or where
/// `scripts/install-mongo-test-server.sh` puts it.
fn stand_in() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VUPDATE_NX27017") {
        return Some(PathBuf::from(path));
    }
    on_path("nx-27017").or_else(|| {
        let venv = std::env::var_os("VUPDATE_NX27017_VENV")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".cache/vupdate/nx-27017"))
            })?;
        Some(venv.join("bin/nx-27017")).filter(|path| path.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// `path` quoted for `sh`.
fn quoted(path: &std::path::Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// Starts `server` under a shell that, when stdin closes, kills it and removes `dir`;
/// then waits until `listening` finds the port it listens on in its output. `Ok(None)`:
/// the server ended first (a port taken meanwhile, for one given a port).
fn start(
    server: &str,
    dir: &Path,
    listening: impl Fn(&str) -> Option<u16>,
) -> Result<Option<u16>, String> {
    let output = dir.join("server.out");
    let script = format!(
        // A background list reads /dev/null unless told otherwise: the watcher reads the
        // test process's pipe through fd 3.
        "exec 3<&0; {server} >{log} 2>&1 & pid=$!; \
         (cat <&3 >/dev/null; kill $pid 2>/dev/null; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; rm -rf {dir}) & \
         wait $pid",
        log = quoted(&output),
        dir = quoted(dir),
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start `{server}`: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&output).unwrap_or_default();
        if let Some(port) = listening(&text) {
            *RUNNING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(child);
            return Ok(Some(port));
        }
        if child.try_wait().is_ok_and(|ended| ended.is_some()) {
            announce(&format!("`{server}` ended before it listened:\n{text}"));
            return Ok(None);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("`{server}` did not listen within 30 s:\n{text}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The port after `marker` in a server's output (`Listening on 127.0.0.1:PORT`).
fn port_after(text: &str, marker: &str) -> Option<u16> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The URL of a server on `port` of 127.0.0.1.
fn url(port: u16) -> String {
    format!("mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=10000")
}

fn start_server() -> Server {
    if let Ok(url) = std::env::var("VUPDATE_TEST_MONGODB_URL") {
        announce("MongoDB conformance suite: using VUPDATE_TEST_MONGODB_URL");
        return Server::Ready { url };
    }
    enum Program {
        Mongod(PathBuf),
        StandIn(PathBuf),
    }
    let program = match (on_path("mongod"), stand_in()) {
        (Some(mongod), _) => Program::Mongod(mongod),
        (None, Some(stand_in)) => Program::StandIn(stand_in),
        (None, None) => {
            return Server::Missing(
                "no `mongod` on PATH and no `nx-27017` stand-in; run scripts/install-mongo-test-server.sh".to_owned(),
            );
        }
    };
    let dir = match tempfile::Builder::new()
        .prefix("vupdate-mongo-test")
        .tempdir()
    {
        Ok(dir) => dir.keep(),
        Err(e) => return Server::Missing(format!("cannot create a temporary directory: {e}")),
    };
    let started = match program {
        Program::Mongod(mongod) => {
            let data = dir.join("data");
            let _ = std::fs::create_dir_all(&data);
            // mongod takes no port 0: a port that was free, again while another took it.
            let mut started = Ok(None);
            for _ in 0..5 {
                let port = free_port();
                let command = format!(
                    "{} --dbpath {} --port {port} --bind_ip 127.0.0.1",
                    quoted(&mongod),
                    quoted(&data)
                );
                // mongod logs (as JSON) that it waits for connections once it listens.
                started = start(&command, &dir, |text| {
                    text.contains("Waiting for connections").then_some(port)
                });
                if !matches!(started, Ok(None)) {
                    break;
                }
            }
            started.map(|port| port.map(|port| (url(port), "mongod".to_owned())))
        }
        Program::StandIn(stand_in) => {
            let command = format!(
                "{} --data-dir memory -p 0 --pid-file {} --log-file {}",
                quoted(&stand_in),
                quoted(&dir.join("nx.pid")),
                quoted(&dir.join("nx.log"))
            );
            start(&command, &dir, |text| {
                port_after(text, "Listening on 127.0.0.1:")
            })
            .map(|port| port.map(|port| (url(port), "nx-27017 (a stand-in)".to_owned())))
        }
    };
    let started = started.and_then(|started| {
        started.ok_or_else(|| "the server ended before it listened (see above)".to_owned())
    });
    match started {
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
            if std::env::var_os("VUPDATE_REQUIRE_MONGODB").is_some()
                || std::env::var_os("CI").is_some()
            {
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
