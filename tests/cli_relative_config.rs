//! Both programs started from another directory with a relative `--config`: every
//! relative path in `distribution.yaml` and `updater.yaml` is resolved once, against the
//! file's folder (a relative `dataDirectory` once made the state repo's clone land in
//! `data/data/` and the start fail blaming git). The updater runs `hello` in role `eu`,
//! and the distribution hears of it as `service: hello, role: eu` with a clean directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{GitRepo, isolate};

#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;
#[path = "support/hello.rs"]
mod hello;

use hello::{commit_hello_state, hello_source};

/// How long any wait may last: a build and an install on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(180);

fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status}");
}

/// Polls `query` until `check` accepts its data; fails with `what` and `logs` after [`LIMIT`].
async fn eventually(
    client: &Client,
    query: &str,
    what: &str,
    logs: impl Fn() -> String,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let data: Value = client.graphql(query, json!({})).await.expect(query);
        if check(&data) {
            return data;
        }
        assert!(Instant::now() < deadline, "{what}: {data:#}\n{}", logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_programs_run_from_another_directory_with_a_relative_config() {
    let root = TempDir::new().expect("dir");
    let source = hello_source();
    let remote = GitRepo::init_bare();
    let work = GitRepo::clone_from(&remote);
    commit_hello_state(&work, source.path());
    work.push("origin", "main");

    // root/dist/distribution.yaml, every path in it relative; started in root.
    let dist = root.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    std::fs::write(
        dist.join("distribution.yaml"),
        format!(
            "name: acme\nlisten: 127.0.0.1:0\ndataDirectory: ./data\nstateRepo:\n  url: {}\n  pollInterval: 1s\n\
             tokenFiles:\n  updater: data/updater.token\n",
            remote.path().display()
        ),
    )
    .expect("distribution config");
    let started = distribution::start_from(
        &dist,
        Path::new("dist/distribution.yaml"),
        Some(root.path()),
    )
    .await;
    let (mut server, admin) = (started.server, started.admin);
    assert!(
        dist.join("data/state/HEAD").is_file(),
        "cloned into data/state"
    );
    assert!(!dist.join("data/data").exists(), "and not into data/data");
    assert!(dist.join("data/updater.token").is_file());

    // root/vm/updater.yaml, also relative; started in root.
    let vm = root.path().join("vm");
    std::fs::create_dir_all(&vm).expect("vm");
    std::fs::write(
        vm.join("updater.yaml"),
        format!(
            "instance: vm-1\ndistributionUrl: {}\naccessTokenFile: ../dist/data/updater.token\n\
             workDirectory: .\nservices:\n  - service: hello\n    role: eu\npollInterval: 1s\nstateInterval: 1s\n",
            started.base
        ),
    )
    .expect("updater config");
    let updater_log = vm.join("updater.log");
    let out = std::fs::File::create(&updater_log).expect("log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    let mut updater = command
        .current_dir(root.path())
        .args(["updater", "run", "--config", "vm/updater.yaml"])
        .stdout(Stdio::from(out.try_clone().expect("log")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("start the updater");
    let logs = || {
        format!(
            "updater:\n{}\ndistribution:\n{}",
            std::fs::read_to_string(&updater_log).unwrap_or_default(),
            distribution::log(&dist)
        )
    };

    let directory = vm.join("hello-eu").display().to_string();
    let states = eventually(
        &admin,
        r#"{ serviceStates(service: "hello", role: "eu") { instance service role directory state { version } } }"#,
        "hello in role eu runs and reports",
        logs,
        |data| data["serviceStates"][0]["state"]["version"].is_string(),
    )
    .await;
    assert_eq!(
        states["serviceStates"],
        json!([{"instance": "vm-1", "service": "hello", "role": "eu", "directory": directory,
                "state": {"version": "acme-1.0.0"}}]),
        "service and role apart, the directory resolved once: {}",
        logs()
    );
    let lines = eventually(
        &admin,
        r#"{ logs(filter: {service: "hello", role: "eu"}, limit: 1) { service role directory } }"#,
        "hello's log lines arrive",
        logs,
        |data| !data["logs"].as_array().is_none_or(Vec::is_empty),
    )
    .await;
    assert_eq!(
        lines["logs"],
        json!([{"service": "hello", "role": "eu", "directory": directory}])
    );
    let status: Value = admin
        .graphql(
            r#"{ status { services { service instancesOnDesired instances { role } } } }"#,
            json!({}),
        )
        .await
        .expect("status");
    assert_eq!(
        status["status"]["services"],
        json!([{"service": "hello", "instancesOnDesired": 1, "instances": [{"role": "eu"}]}])
    );

    terminate(&mut updater);
    terminate(&mut server);
}
