//! `vupdate status` end to end: the built binary against a real distribution that built
//! hello `acme-1.0.0`, with instances reporting: the table and the hosts not on the commit;
//! `--wait` ends 0 once every host runs it, 3 when its timeout passes, and 4 at once when
//! the desired version is known-bad.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use vupdate_client::{ServiceStateReport, StateReport};
use vupdate_test_support::{Patience, isolate};

#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;
#[allow(dead_code)]
#[path = "support/hello.rs"]
mod hello;

/// Two builds on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(240);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `vupdate status --distribution BASE ARGS...` with `token`.
fn status(base: &str, token: &str, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    let output = command
        .args(["status", "--distribution", base])
        .args(args)
        .env("VUPDATE_TOKEN", token)
        .output()
        .expect("vupdate runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn report(
    instance: &str,
    version: &str,
    commit: Option<&str>,
    failed: Option<&str>,
) -> ServiceStateReport {
    ServiceStateReport {
        state_commit: commit.map(str::to_owned),
        labels: Default::default(),
        instance: instance.to_owned(),
        service: "hello".to_owned(),
        role: None,
        directory: format!("/srv/{instance}/hello"),
        state: StateReport {
            time: chrono::Utc::now(),
            install_time: None,
            start_time: None,
            version: Some(version.to_owned()),
            update_to_version: None,
            update_error: None,
            failures_count: None,
            last_exit_code: None,
            failed_version: failed.map(str::to_owned),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_fleet_and_wait_ends_by_what_it_finds() {
    let dir = tempfile::TempDir::new().expect("dir");
    let repos = hello::hello_repos();
    let mut started =
        distribution::start(dir.path(), &hello::hello_config(&repos.remote, "data")).await;
    let admin = &started.admin;
    let commit = Patience::up_to(LIMIT)
        .every(Duration::from_millis(300))
        .eventually_or(
            "hello's images are built",
            || async {
                let data: Value = admin
                    .graphql(
                        "{ status { stateRepo { commit } services { clientImage } } }",
                        json!({}),
                    )
                    .await
                    .ok()?;
                let built = data["status"]["services"][0]["clientImage"] == true;
                built.then(|| {
                    data["status"]["stateRepo"]["commit"]
                        .as_str()
                        .map(str::to_owned)
                })?
            },
            || async { distribution::log(dir.path()) },
        )
        .await;
    let short = &commit[..12];
    let (base, token) = (started.base.as_str(), started.admin_token.as_str());

    // One host on the commit: arrived.
    admin
        .set_service_states(&[report("vm-1", "acme-1.0.0", Some(&commit), None)])
        .await
        .expect("states stored");
    let arrived = status(base, token, &["--wait", "--timeout", "60s"]);
    assert_eq!(arrived.code, Some(0), "{}", arrived.stderr);
    assert!(
        arrived
            .stdout
            .starts_with(&format!("acme: state commit {short} of main, synced\n")),
        "{}",
        arrived.stdout
    );
    assert!(
        arrived.stdout.contains("hello    synced  acme-1.0.0  1/1"),
        "{}",
        arrived.stdout
    );

    // A second host on an older version, from an updater that does not say its commit.
    admin
        .set_service_states(&[report("vm-2", "acme-0.9.0", None, None)])
        .await
        .expect("states stored");
    let now = status(base, token, &[]);
    assert_eq!(now.code, Some(0), "{}", now.stderr);
    assert!(now.stdout.contains("1/2"), "{}", now.stdout);
    assert!(
        now.stdout
            .contains(&format!("hosts not on {short}: vm-2 (commit unknown)")),
        "{}",
        now.stdout
    );
    let json = status(base, token, &["--format", "json"]);
    let fleet: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(fleet["notOnTarget"][0]["instance"], "vm-2", "{fleet:#}");
    let timed_out = status(base, token, &["--wait", "--timeout", "3s"]);
    assert_eq!(timed_out.code, Some(3), "{}", timed_out.stderr);
    assert!(
        timed_out
            .stderr
            .contains("hello: 1 of 2 instances run acme-1.0.0; vm-2 (acme-0.9.0)"),
        "{}",
        timed_out.stderr
    );

    // vm-2 rolled acme-1.0.0 back: known-bad, held back, so no waiting it out.
    admin
        .set_service_states(&[report("vm-2", "acme-0.9.0", None, Some("acme-1.0.0"))])
        .await
        .expect("states stored");
    let stuck = status(base, token, &["--wait", "--timeout", "120s"]);
    assert_eq!(stuck.code, Some(4), "{}", stuck.stderr);
    assert!(
        stuck
            .stderr
            .contains("cannot get there without a new commit")
            && stuck.stderr.contains("hello: acme-1.0.0 is known-bad"),
        "{}",
        stuck.stderr
    );
    assert!(
        stuck.stdout.contains("known-bad versions:"),
        "{}",
        stuck.stdout
    );

    // A wrong token is an error, not a wait.
    let refused = status(base, "not-a-token", &["--wait", "--timeout", "60s"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    distribution::terminate(&mut started.server);
}
