//! `vupdate distribution backup` of a running server holding 1,000 log lines and two
//! images (hello's developer and client image, built from its sources), a restore that
//! refuses the running server's data directory, a restore into an empty directory, and a
//! server started on it: the same accounts, versions, images and logs. The same with a
//! backup as one file (`--to FILE.zip`, `restore --from FILE.zip`).

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{Patience, isolate};

#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;
// Shared with the other end-to-end tests; this one does not ask what runs.
#[allow(dead_code)]
#[path = "support/hello.rs"]
mod hello;

use hello::{hello_config, hello_repos};

/// Two builds on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(240);
const LINES: usize = 1_000;

fn vupdate(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command.args(args).output().expect("run vupdate")
}

/// `vupdate distribution restore --config CONFIG --from BACKUP`.
fn restore(config: &std::path::Path, backup: &std::path::Path) -> Output {
    vupdate(&[
        "distribution",
        "restore",
        "--config",
        config.to_str().expect("utf-8"),
        "--from",
        backup.to_str().expect("utf-8"),
    ])
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What must be the same before the backup and after the restore.
const SAME: &str = r#"{
  accounts { account name role type mustChangePassword }
  developerVersionsInfo { service version image { digest size } }
  clientVersionsInfo { service version image { digest size } }
  logs(limit: 5000) { sequence time level unit message service role instance directory process }
}"#;

/// The bytes of an image, downloaded.
fn image(base: &str, token: &str, path: &str) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["-fsS", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{base}/images/{path}"))
        .output()
        .expect("curl");
    assert!(output.status.success(), "{}", text(&output));
    output.stdout
}

async fn add_lines(admin: &Client) {
    let now = chrono::Utc::now();
    for batch in 0..(LINES / 250) {
        let lines: Vec<Value> = (0..250)
            .map(|i| {
                let n = batch * 250 + i + 1;
                json!({"time": (now + chrono::Duration::milliseconds(n as i64)).to_rfc3339(),
                       "level": "INFO", "unit": "test", "message": format!("line {n}"),
                       "sequence": n})
            })
            .collect();
        let _: Value = admin
            .graphql(
                "mutation($l: [LogLineInput!]!) { addLogs(service: \"hello\", instance: \"vm-1\", directory: \"/srv\", process: \"42\", logs: $l) }",
                json!({"l": lines}),
            )
            .await
            .expect("addLogs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_server_restores_into_an_empty_directory() {
    let dir = TempDir::new().expect("dir");
    let repos = hello_repos();
    let config = |data: &str| hello_config(&repos.remote, data);
    let first_dir = dir.path().join("first");
    std::fs::create_dir_all(&first_dir).expect("dir");
    let first = distribution::start(&first_dir, &config("data")).await;
    let admin = &first.admin;
    Patience::up_to(LIMIT)
        .every(Duration::from_millis(300))
        .eventually_or(
            "hello's developer and client images are built",
            || async {
                let data: Value = admin.graphql(SAME, json!({})).await.ok()?;
                (data["developerVersionsInfo"].as_array()?.len() == 1
                    && data["clientVersionsInfo"].as_array()?.len() == 1)
                    .then_some(())
            },
            || async { distribution::log(&first_dir) },
        )
        .await;
    let _: Value = admin
        .graphql(
            "mutation { addUserAccount(account: \"alice\", name: \"Alice\", password: \"a long enough password\", role: DEVELOPER) { account } }",
            json!({}),
        )
        .await
        .expect("alice");
    add_lines(admin).await;
    let before: Value = admin.graphql(SAME, json!({})).await.expect("before");
    let added = before["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter(|line| line["instance"] == "vm-1")
        .count();
    assert_eq!(added, LINES, "besides the builds' own lines");

    // The backup, while the server runs.
    let backup = dir.path().join("backup");
    let config_file = first_dir.join("distribution.yaml");
    let made = vupdate(&[
        "distribution",
        "backup",
        "--config",
        config_file.to_str().expect("utf-8"),
        "--to",
        backup.to_str().expect("utf-8"),
    ]);
    assert!(made.status.success(), "{}", text(&made));
    assert!(backup.join("store.sqlite").is_file() && backup.join("jwt.key").is_file());
    assert!(!backup.join("data/state").exists(), "no Git history");
    let archive = dir.path().join("backup.zip");
    let packed = vupdate(&[
        "distribution",
        "backup",
        "--config",
        config_file.to_str().expect("utf-8"),
        "--to",
        archive.to_str().expect("utf-8"),
    ]);
    assert!(packed.status.success(), "{}", text(&packed));
    assert!(archive.is_file(), "{}", text(&packed));

    // A restore never overwrites a running server's data.
    let refused = restore(&config_file, &backup);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("a server runs on"),
        "{}",
        text(&refused)
    );

    // Into an empty directory, then started.
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(second_dir.join("data")).expect("empty data directory");
    std::fs::write(second_dir.join("distribution.yaml"), config("data")).expect("config");
    let restored = vupdate(&[
        "distribution",
        "restore",
        "--config",
        second_dir
            .join("distribution.yaml")
            .to_str()
            .expect("utf-8"),
        "--from",
        backup.to_str().expect("utf-8"),
    ]);
    assert!(restored.status.success(), "{}", text(&restored));
    let second = distribution::restart(&second_dir, &[]).await;
    let after: Value = second.admin.graphql(SAME, json!({})).await.expect("after");
    assert_eq!(after, before, "the same accounts, versions and logs");
    for kind in ["developer", "client"] {
        let path = format!("{kind}/hello/acme-1.0.0");
        assert_eq!(
            image(&second.base, &second.admin_token, &path),
            image(&first.base, &first.admin_token, &path),
            "the same {kind} image"
        );
    }
    let alice = Client::new(&second.base, None).expect("client");
    distribution::login(&alice, "alice", "a long enough password").await;

    // From the one file, into another empty directory.
    let third_dir = dir.path().join("third");
    std::fs::create_dir_all(&third_dir).expect("dir");
    std::fs::write(third_dir.join("distribution.yaml"), config("data")).expect("config");
    let unpacked = restore(&third_dir.join("distribution.yaml"), &archive);
    assert!(unpacked.status.success(), "{}", text(&unpacked));
    let leftovers: Vec<_> = std::fs::read_dir(&third_dir)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "data and the config only: {leftovers:?}"
    );
    let third = distribution::restart(&third_dir, &[]).await;
    let from_file: Value = third.admin.graphql(SAME, json!({})).await.expect("after");
    assert_eq!(from_file, before, "the same accounts, versions and logs");
    for kind in ["developer", "client"] {
        let path = format!("{kind}/hello/acme-1.0.0");
        assert_eq!(
            image(&third.base, &third.admin_token, &path),
            image(&first.base, &first.admin_token, &path),
            "the same {kind} image from the file"
        );
    }

    for mut server in [first.server, second.server, third.server] {
        distribution::terminate(&mut server);
    }
}
