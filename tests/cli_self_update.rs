//! The distribution's self-update, end to end, on a copy of the built `vupdate` (the
//! program a self-update replaces) serving a state repo whose service `slow` builds until
//! the test opens a gate file, so a build is in flight at the swap:
//!
//! - a new `distribution` version whose `bin/vupdate` fails its probe (a shell script
//!   that exits 3) is never swapped in: the same binary serves on, and `status` shows
//!   `PROBE_FAILED` with the script's message and the version refused;
//! - the next desired version, whose `bin/vupdate` is the built program itself, is
//!   swapped in and executed in the same process: same pid and port, the new file is the
//!   running executable, `<binary>.previous` is the old one, the store (accounts, the
//!   session token) is intact, and the build that was in flight is run again by the new
//!   process and finishes; a client polling `/health` through the swap is never refused,
//!   and the test prints the longest stall it saw;
//! - a swapped-in binary that dies before it confirms (stopped at a crash point and
//!   killed) is rolled back by the next start, as systemd would start it: the previous
//!   binary is put back and runs, and `status` says why; a swap killed between its
//!   marker and its rename leaves the old binary, which the next start runs.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{GitRepo, Patience, Person};

#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;

/// A swap, a build and a restart on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(180);

/// The source of `slow`: its build waits for the file named by its argument (at most
/// five minutes), so the test decides when a build in flight may end.
fn slow_source(gate: &Path) -> GitRepo {
    let update = json!({"update": [{
        "service": "slow",
        "build": {
            "buildCommands": [{
                "command": "sh",
                "args": ["-c", "i=0; while [ ! -e \"$0\" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done; test -e \"$0\" && echo built > out.txt", gate.to_str().expect("utf-8")],
                "exitCode": 0
            }],
            "copyFiles": [{"sourceFile": "out.txt", "destinationFile": "out.txt"}]
        },
        "install": {"runService": {"command": "true"}}
    }]});
    let source = GitRepo::init();
    source.commit_files(
        &[("update.json", &update.to_string())],
        "slow, a service whose build the test lets end",
        &Person::alice(),
    );
    source
}

/// The state files: `slow` acme-1.0.0, and `distribution` at `version` when given.
fn state(source: &Path, version: Option<&str>) -> Vec<(&'static str, String)> {
    vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        (
            "services/slow.yaml",
            format!(
                "developer:\n  sources:\n    - name: slow\n      git:\n        url: {}\n        branch: main\n",
                source.display()
            ),
        ),
        // Declared with no build settings: its images are uploaded by the test.
        (
            "services/distribution.yaml",
            "# vupdate's own server\n".to_owned(),
        ),
        ("profiles.yaml", "profiles:\n  self: [slow]\n".to_owned()),
        (
            "desired/developer.yaml",
            "versions:\n  slow: acme-1.0.0\n".to_owned(),
        ),
        (
            "desired/client.yaml",
            match version {
                Some(version) => format!("versions:\n  distribution: {version}\n"),
                None => "versions: {}\n".to_owned(),
            },
        ),
    ]
}

/// Commits and pushes the state with `distribution` at `version`.
fn desire(work: &GitRepo, source: &Path, version: &str) {
    let files = state(source, Some(version));
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    work.commit_files(&refs, &format!("distribution {version}"), &Person::alice());
    work.push("origin", "main");
}

async fn status(admin: &Client) -> Value {
    let data: Value = admin
        .graphql(
            "{ status { services { service developerImage builds { target version state task } }
               selfUpdate { programVersion runningVersion desiredVersion pendingVersion refusedVersion
                            last { version fromVersion outcome message } } } }",
            json!({}),
        )
        .await
        .expect("status");
    data["status"].clone()
}

/// The task of `slow`'s developer build while it runs.
fn running_build(status: &Value) -> Option<String> {
    status["services"]
        .as_array()?
        .iter()
        .find(|s| s["service"] == "slow")?["builds"]
        .as_array()?
        .iter()
        .find(|b| b["target"] == "developer" && b["state"] == "RUNNING")?["task"]
        .as_str()
        .map(str::to_owned)
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").ino()
}

/// What a client polling `/health` saw.
#[derive(Debug, Default)]
struct Polls {
    answered: u64,
    refused: u64,
    failed: u64,
    /// The slowest answer (a request that waited through the swap).
    longest: Duration,
}

/// Polls `GET /health` on `address` back to back until `stop` is set.
fn poll_health(address: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Polls> {
    std::thread::spawn(move || {
        let mut polls = Polls::default();
        while !stop.load(Ordering::Relaxed) {
            let began = Instant::now();
            let answer = TcpStream::connect_timeout(&address, Duration::from_secs(5)).and_then(
                |mut stream| {
                    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
                    stream.write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")?;
                    let mut text = String::new();
                    stream.read_to_string(&mut text)?;
                    Ok(text)
                },
            );
            match answer {
                Ok(text)
                    if text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200") =>
                {
                    polls.answered += 1;
                    polls.longest = polls.longest.max(began.elapsed());
                }
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                    polls.refused += 1
                }
                _ => polls.failed += 1,
            }
            // A pace, not a wait for anything: about 200 requests a second.
            std::thread::sleep(Duration::from_millis(5));
        }
        polls
    })
}

struct Setup {
    dir: TempDir,
    program: PathBuf,
    gate: PathBuf,
    source: GitRepo,
    _remote: GitRepo,
    work: GitRepo,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = distribution::program_copy(dir.path());
    let gate = dir.path().join("gate");
    let source = slow_source(&gate);
    let remote = GitRepo::init_bare();
    let work = GitRepo::clone_from(&remote);
    let files = state(source.path(), None);
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    work.commit_files(&refs, "slow 1.0.0", &Person::alice());
    work.push("origin", "main");
    std::fs::write(
        dir.path().join("distribution.yaml"),
        format!(
            "name: acme\nlisten: 127.0.0.1:0\ndataDirectory: data\nstateRepo:\n  url: {}\n  pollInterval: 1s\n",
            remote.path().display()
        ),
    )
    .expect("config");
    Setup {
        dir,
        program,
        gate,
        source,
        _remote: remote,
        work,
    }
}

async fn start(setup: &Setup, env: &[(&str, &str)]) -> distribution::Started {
    let launch = distribution::Launch {
        program: Some(&setup.program),
        env,
        ..distribution::Launch::default()
    };
    distribution::start_with(
        setup.dir.path(),
        &setup.dir.path().join("distribution.yaml"),
        &launch,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_distribution_version_takes_over_the_process_and_a_bad_one_never_does() {
    let setup = setup();
    let dir = setup.dir.path();
    let started = start(&setup, &[]).await;
    let mut server = started.server;
    let admin = started.admin;
    let pid = server.id();
    let log = || async { distribution::log(dir) };
    let original = inode(&setup.program);
    let _: Value = admin
        .graphql(
            "mutation($p: String!) { addUserAccount(account: \"alice\", name: \"Alice\", role: DEVELOPER, password: $p, mustChangePassword: false) { account } }",
            json!({"p": distribution::PASSWORD}),
        )
        .await
        .expect("a user in the store");

    let first_build = Patience::up_to(LIMIT)
        .eventually_or(
            "slow's build to run",
            || async { running_build(&status(&admin).await) },
            log,
        )
        .await;

    // A binary that cannot run here: never swapped in, the reason in status.
    let bad = "#!/bin/sh\necho 'simulated: this build cannot read the store' >&2\nexit 3\n";
    distribution::upload_program(&admin, dir, "acme-1.5.0", bad.as_bytes()).await;
    desire(&setup.work, setup.source.path(), "acme-1.5.0");
    let refused = Patience::up_to(LIMIT)
        .eventually_or(
            "the probe of acme-1.5.0 to fail",
            || async {
                let status = status(&admin).await;
                (status["selfUpdate"]["refusedVersion"] == "acme-1.5.0").then_some(status)
            },
            log,
        )
        .await;
    let last = &refused["selfUpdate"]["last"];
    assert_eq!(last["outcome"], "PROBE_FAILED", "{refused:#}");
    let message = last["message"].as_str().expect("message");
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(
        message.contains("simulated: this build cannot read the store"),
        "{message}"
    );
    assert_eq!(refused["selfUpdate"]["runningVersion"], Value::Null);
    assert_eq!(refused["selfUpdate"]["desiredVersion"], "acme-1.5.0");
    assert_eq!(
        inode(&setup.program),
        original,
        "the binary was not touched"
    );
    assert!(
        server.try_wait().expect("wait").is_none(),
        "the server runs on"
    );
    assert_eq!(
        running_build(&refused).as_deref(),
        Some(first_build.as_str())
    );

    // The built program as a new version: swapped in while slow's build runs.
    let address: SocketAddr = started
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let stop = Arc::new(AtomicBool::new(false));
    let poller = poll_health(address, Arc::clone(&stop));
    let program = std::fs::read(&setup.program).expect("read the program");
    distribution::upload_program(&admin, dir, "acme-2.0.0", &program).await;
    drop(program);
    desire(&setup.work, setup.source.path(), "acme-2.0.0");
    let swapped = Patience::up_to(LIMIT)
        .eventually_or(
            "acme-2.0.0 to serve",
            || async {
                // Between the processes the request waits in the socket's backlog.
                let client = Client::new(&started.base, Some(started.admin_token.clone())).ok()?;
                let status: Value = client
                    .graphql(
                        "{ status { selfUpdate { runningVersion last { outcome message } } } }",
                        json!({}),
                    )
                    .await
                    .ok()?;
                (status["status"]["selfUpdate"]["runningVersion"] == "acme-2.0.0").then_some(status)
            },
            log,
        )
        .await;
    stop.store(true, Ordering::Relaxed);
    let polls = poller.join().expect("poller");
    println!(
        "self-update swap seen from GET /health: {} answered, {} refused, {} failed, longest answer {} ms",
        polls.answered,
        polls.refused,
        polls.failed,
        polls.longest.as_millis()
    );
    println!(
        "self-update outcome: {}",
        swapped["status"]["selfUpdate"]["last"]["message"]
    );
    assert_eq!(
        swapped["status"]["selfUpdate"]["last"]["outcome"],
        "SUCCEEDED"
    );
    assert_eq!(
        polls.refused, 0,
        "the port never refused a connection: {polls:?}"
    );
    assert_eq!(polls.failed, 0, "every request was answered: {polls:?}");

    // The same process runs the new file; the old one is kept beside it.
    assert!(
        server.try_wait().expect("wait").is_none(),
        "the same process serves"
    );
    assert_eq!(server.id(), pid);
    let running = inode(Path::new(&format!("/proc/{pid}/exe")));
    assert_eq!(
        running,
        inode(&setup.program),
        "the new file is the running program"
    );
    assert_ne!(running, original);
    let previous = setup.program.with_file_name("vupdate.previous");
    assert_eq!(
        inode(&previous),
        original,
        "the old binary is kept as .previous"
    );

    // The store is intact: the session issued before the swap works, alice logs in.
    let anonymous = Client::new(&started.base, None).expect("client");
    distribution::login(&anonymous, "alice", distribution::PASSWORD).await;

    // The build in flight was cancelled with the old process and runs again in the new one.
    let second_build = Patience::up_to(LIMIT)
        .eventually_or(
            "slow's build to run again",
            || async { running_build(&status(&admin).await).filter(|task| *task != first_build) },
            log,
        )
        .await;
    std::fs::write(&setup.gate, b"go").expect("open the gate");
    Patience::up_to(LIMIT)
        .eventually_or(
            "slow's image",
            || async {
                let status = status(&admin).await;
                let slow = status["services"]
                    .as_array()?
                    .iter()
                    .find(|s| s["service"] == "slow")?
                    .clone();
                (slow["developerImage"] == true).then_some(())
            },
            log,
        )
        .await;
    let ended = Patience::up_to(LIMIT)
        .eventually_or(
            "the build run again to end",
            || async {
                let data: Value = admin
                    .graphql(
                        "query($id: String!) { tasks(id: $id) { terminationStatus } }",
                        json!({"id": second_build}),
                    )
                    .await
                    .ok()?;
                data["tasks"][0]["terminationStatus"].as_bool()
            },
            log,
        )
        .await;
    assert!(ended, "the build run again succeeded");
    let swaps = distribution::log(dir)
        .matches("self-update ready: the server stops")
        .count();
    assert_eq!(swaps, 1, "one swap, never a second while confirming");
    distribution::terminate(&mut server);
}

/// Swaps in the built program as `acme-2.0.0` on a server armed to stop at the crash
/// point `point`, kills it there, starts it again as systemd would, and returns the
/// restarted server's `status`, with whether the program file was the original at each
/// step (at the kill, after the restart).
async fn killed_at(point: &str) -> (Value, bool, bool) {
    let setup = setup();
    std::fs::write(&setup.gate, b"go").expect("builds end at once");
    let dir = setup.dir.path();
    // Armed in the old process and the new one (the environment is kept by `execve`).
    let crash = [("VUPDATE_CRASH_POINT", point)];
    let started = start(&setup, &crash).await;
    let mut server = started.server;
    let log = || async { distribution::log(dir) };
    let original = inode(&setup.program);
    let program = std::fs::read(&setup.program).expect("read the program");
    distribution::upload_program(&started.admin, dir, "acme-2.0.0", &program).await;
    drop(program);
    desire(&setup.work, setup.source.path(), "acme-2.0.0");
    let announcement = vupdate_crashpoint::announcement(point);
    Patience::up_to(LIMIT)
        .eventually_or(
            &format!("the server to stop at {point}"),
            || async { distribution::log(dir).contains(&announcement).then_some(()) },
            log,
        )
        .await;
    let original_at_kill = inode(&setup.program) == original;
    server.kill().expect("kill");
    server.wait().expect("reap");

    let launch = distribution::Launch {
        program: Some(&setup.program),
        ..distribution::Launch::default()
    };
    let restarted = distribution::spawn(dir, &dir.join("distribution.yaml"), &launch)
        .into_started()
        .await;
    let mut server = restarted.server;
    let original_after = inode(&setup.program) == original;
    let status = status(&restarted.admin).await;
    distribution::terminate(&mut server);
    (status, original_at_kill, original_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_binary_that_dies_before_confirming_is_rolled_back_at_the_next_start() {
    let (status, original_at_kill, original_after) = killed_at("self-update.before-confirm").await;
    assert!(!original_at_kill, "the new binary was in place");
    assert!(original_after, "the previous binary is back and runs");
    let update = &status["selfUpdate"];
    assert_eq!(update["last"]["outcome"], "ROLLED_BACK", "{status:#}");
    assert_eq!(update["last"]["version"], "acme-2.0.0");
    let message = update["last"]["message"].as_str().expect("message");
    assert!(message.contains("before it confirmed"), "{message}");
    assert_eq!(update["refusedVersion"], "acme-2.0.0", "not tried again");
    assert_eq!(update["runningVersion"], Value::Null);
    assert_eq!(update["pendingVersion"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_killed_between_its_marker_and_its_rename_leaves_the_old_binary_running() {
    let (status, original_at_kill, original_after) = killed_at("self-update.marker-written").await;
    assert!(original_at_kill && original_after, "the old binary stays");
    let update = &status["selfUpdate"];
    assert_eq!(update["last"]["outcome"], "ROLLED_BACK", "{status:#}");
    let message = update["last"]["message"].as_str().expect("message");
    assert!(message.contains("swap was cut"), "{message}");
    assert_eq!(update["refusedVersion"], "acme-2.0.0", "not tried again");
    assert_eq!(update["pendingVersion"], Value::Null);
}
