//! `vupdate updater run` against a real distribution, both from the built binary: a
//! service prints 100,000 sequence-numbered lines while the distribution is stopped for
//! 30 s and started again on the same data; every line reaches the distribution exactly
//! once, and the service's rotated `writeLogs` files hold every line too.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{GitRepo, Person, isolate};

// Shared with tests/gitops, which uses all of it.
#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;

const LINES: u64 = 100_000;
const OUTAGE: Duration = Duration::from_secs(30);
/// How long any wait may last (a loaded 2-core machine is slow).
const LIMIT: Duration = Duration::from_secs(240);

const UPDATE_JSON: &str = r#"{
  "update": [
    {
      "service": "gen",
      "build": {
        "copyFiles": [{ "sourceFile": "gen.py", "destinationFile": "gen.py" }]
      },
      "install": {
        "runService": {
          "command": "python3",
          "args": ["gen.py", "100000"],
          "writeLogs": { "directory": "log", "filePrefix": "gen", "maxFileSizeMB": 1, "maxFilesCount": 50 },
          "uploadLogs": true
        }
      }
    }
  ]
}
"#;

/// 100,000 numbered lines at about 5,000 a second, then quiet (an exit would restart it).
const GEN_PY: &str = r#"import datetime, sys, time
n = int(sys.argv[1])
for i in range(1, n + 1):
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    print(f"{now} INFO gen line {i}")
    if i % 500 == 0:
        sys.stdout.flush()
        time.sleep(0.1)
sys.stdout.flush()
time.sleep(3600)
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn vupdate(args: &[&str], log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command
        .args(args)
        .stdout(Stdio::from(out.try_clone().expect("log")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("start vupdate")
}

fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status}");
}

/// The number of the newest `gen` line the distribution holds.
async fn newest_number(client: &Client) -> Option<u64> {
    let data: Value = client
        .graphql(
            "{ logs(filter: {service: \"gen\"}, limit: 1) { message } }",
            json!({}),
        )
        .await
        .ok()?;
    data["logs"][0]["message"]
        .as_str()?
        .strip_prefix("line ")?
        .parse()
        .ok()
}

/// The numbers of the `gen` lines the distribution holds, in the order it stored them.
async fn stored_numbers(client: &Client) -> Vec<u64> {
    let mut newest_first = Vec::new();
    // Pages come newest first; each next one is `before` the oldest line so far.
    let mut before: Option<i64> = None;
    loop {
        let data: Value = client
            .graphql(
                "query($b: Int) { logs(before: $b, filter: {service: \"gen\"}, limit: 10000) { sequence message } }",
                json!({"b": before}),
            )
            .await
            .expect("logs");
        let page = data["logs"].as_array().expect("lines").clone();
        let Some(oldest) = page.last() else {
            newest_first.reverse();
            return newest_first;
        };
        before = Some(oldest["sequence"].as_i64().expect("a sequence"));
        newest_first.extend(page.iter().filter_map(|line| {
            line["message"]
                .as_str()?
                .strip_prefix("line ")?
                .parse::<u64>()
                .ok()
        }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_lines_arrive_once_each_through_rotation_and_a_30_s_outage() {
    let dir = TempDir::new().expect("dir");
    let source = GitRepo::init();
    source.commit_files(
        &[("update.json", UPDATE_JSON), ("gen.py", GEN_PY)],
        "gen",
        &Person::alice(),
    );
    let state = GitRepo::init();
    let gen_yaml = format!(
        "developer:\n  sources:\n    - name: gen\n      git:\n        url: {}\n        branch: main\n",
        source.path().display()
    );
    state.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/gen.yaml", &gen_yaml),
            ("profiles.yaml", "profiles:\n  self: [gen]\n"),
            ("desired/developer.yaml", "versions:\n  gen: acme-1.0.0\n"),
        ],
        "Run gen",
        &Person::bob(),
    );
    // A fixed port: the updater finds the distribution again at the same address.
    let port = free_port();
    let config = format!(
        "name: acme\nlisten: 127.0.0.1:{port}\nstateRepo:\n  path: {}\n  pollInterval: 1s\ntokenFiles:\n  updater: updater.token\n",
        state.path().display()
    );
    let started = distribution::start(dir.path(), &config).await;
    let (mut server, admin) = (started.server, started.admin);

    let vm = dir.path().join("vm");
    std::fs::create_dir_all(&vm).expect("vm");
    std::fs::write(
        vm.join("updater.yaml"),
        format!(
            "instance: vm-1\ndistributionUrl: http://127.0.0.1:{port}\naccessTokenFile: ../updater.token\nworkDirectory: .\nservices: [gen]\npollInterval: 1h\nstateInterval: 1s\n"
        ),
    )
    .expect("updater config");
    let updater_log = vm.join("updater.log");
    let config_arg = vm.join("updater.yaml");
    let mut updater = vupdate(
        &[
            "updater",
            "run",
            "--config",
            config_arg.to_str().expect("path"),
        ],
        &updater_log,
    );

    // The first lines arrive; then the distribution goes away for 30 s mid-stream.
    let deadline = Instant::now() + LIMIT;
    while newest_number(&admin).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "no line arrived\nupdater:\n{}\ndistribution:\n{}",
            std::fs::read_to_string(&updater_log).unwrap_or_default(),
            distribution::log(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    terminate(&mut server);
    tokio::time::sleep(OUTAGE).await;
    let config_file = dir.path().join("distribution.yaml");
    let mut server = vupdate(
        &[
            "distribution",
            "run",
            "--config",
            config_file.to_str().expect("path"),
        ],
        &distribution::log_path(dir.path()),
    );

    // The spool sends in order: once the last line is there, every line was sent.
    let deadline = Instant::now() + LIMIT;
    while newest_number(&admin).await != Some(LINES) {
        assert!(
            Instant::now() < deadline,
            "the last line never arrived (newest: {:?})\nupdater:\n{}",
            newest_number(&admin).await,
            std::fs::read_to_string(&updater_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let numbers = stored_numbers(&admin).await;
    let expected: Vec<u64> = (1..=LINES).collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted.len() as u64,
        LINES,
        "{} lines stored, {} distinct\nupdater:\n{}",
        numbers.len(),
        {
            let mut distinct = sorted.clone();
            distinct.dedup();
            distinct.len()
        },
        std::fs::read_to_string(&updater_log).unwrap_or_default()
    );
    assert!(sorted == expected, "every line once, none missing");
    assert!(numbers == expected, "stored in the order printed");

    // The rotated files hold every line as well.
    let logs = vm.join("gen/current/log");
    let files: Vec<_> = std::fs::read_dir(&logs)
        .expect("the writeLogs directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert!(files.len() > 1, "rotated: {files:?}");
    let in_files: usize = files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .expect("log file")
                .lines()
                .filter(|line| line.contains(" gen line "))
                .count()
        })
        .sum();
    assert_eq!(in_files as u64, LINES);

    terminate(&mut updater);
    terminate(&mut server);
}
