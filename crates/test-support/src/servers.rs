//! Test servers this suite does not own, started for a test binary and stopped with it:
//! a MongoDB (`mongod`, or the `nx-27017` stand-in that
//! `scripts/install-mongo-test-server.sh` installs) and an S3 stand-in (moto's server,
//! `scripts/install-s3-test-server.sh`).
//!
//! Each runs under a shell that kills it when the test process's end of a pipe closes, so
//! nothing outlives the binary. A server's port is the one it reports itself (port 0, or
//! a free port tried again), never one merely probed.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shells that run the servers: kept (with their stdin) until the process exits.
static RUNNING: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Writes straight to stderr, past the test harness's capture, so the notice is always seen.
pub fn announce(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A program on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
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
            RUNNING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(child);
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

/// A MongoDB server for tests: `VUPDATE_TEST_MONGODB_URL`, else a `mongod` on PATH, else
/// the nx-27017 stand-in. `Ok((url, kind))`, or why none could be had.
pub fn mongodb() -> Result<(String, String), String> {
    if let Ok(url) = std::env::var("VUPDATE_TEST_MONGODB_URL") {
        return Ok((url, "VUPDATE_TEST_MONGODB_URL".to_owned()));
    }
    enum Program {
        Mongod(PathBuf),
        StandIn(PathBuf),
    }
    let program = match (on_path("mongod"), stand_in()) {
        (Some(mongod), _) => Program::Mongod(mongod),
        (None, Some(stand_in)) => Program::StandIn(stand_in),
        (None, None) => {
            return Err(
                "no `mongod` on PATH and no `nx-27017` stand-in; run scripts/install-mongo-test-server.sh".to_owned(),
            );
        }
    };
    let dir = match tempfile::Builder::new()
        .prefix("vupdate-mongo-test")
        .tempdir()
    {
        Ok(dir) => dir.keep(),
        Err(e) => return Err(format!("cannot create a temporary directory: {e}")),
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
    started.and_then(|started| {
        started.ok_or_else(|| "the server ended before it listened (see above)".to_owned())
    })
}

/// The moto stand-in: `VUPDATE_MOTO_SERVER` (a path), on PATH, or where
/// `scripts/install-s3-test-server.sh` puts it.
fn moto() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VUPDATE_MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    on_path("moto_server").or_else(|| {
        let venv = std::env::var_os("VUPDATE_MOTO_VENV")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/vupdate/moto"))
            })?;
        Some(venv.join("bin/moto_server")).filter(|path| path.is_file())
    })
}

/// An S3 endpoint for tests: `VUPDATE_TEST_S3_URL`, else moto's server on a port of its
/// own. `Ok((url, kind))`, or why none could be had. Any access key signs for moto.
pub fn s3() -> Result<(String, String), String> {
    if let Ok(url) = std::env::var("VUPDATE_TEST_S3_URL") {
        return Ok((url, "VUPDATE_TEST_S3_URL".to_owned()));
    }
    let Some(moto) = moto() else {
        return Err("no moto_server S3 stand-in; run scripts/install-s3-test-server.sh".to_owned());
    };
    let dir = tempfile::Builder::new()
        .prefix("vupdate-s3-test")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?
        .keep();
    let command = format!("{} -H 127.0.0.1 -p 0", quoted(&moto));
    let port = start(&command, &dir, |text| {
        port_after(text, "Running on http://127.0.0.1:")
    })?
    .ok_or_else(|| "moto_server ended before it listened (see above)".to_owned())?;
    Ok((
        format!("http://127.0.0.1:{port}"),
        "moto (a stand-in)".to_owned(),
    ))
}

/// Whether a test that needs stand-ins must fail rather than skip without them (CI, or
/// `scripts/test`, which installs them).
pub fn required() -> bool {
    std::env::var_os("VUPDATE_REQUIRE_MONGODB").is_some() || std::env::var_os("CI").is_some()
}
