//! Self-update of replicas: a new `distribution` version (its image the built program,
//! uploaded through one replica into the bucket) is swapped in by every replica, the
//! lease holder and the standby alike, each its own copy of the program, one at a time:
//! while the test holds the store's `self-update` lease both wait, ready; once it is
//! given back, the second stops only after the first confirmed its new binary.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{GitRepo, Patience, Person};

use super::{LIMIT, Shared, distribution, first_replica_with, log, other_replica_with, stand_ins};

/// The state: `distribution` declared (its images are uploaded) and desired at `version`.
fn state(version: Option<&str>) -> Vec<(&'static str, String)> {
    vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        (
            "services/distribution.yaml",
            "# vupdate's own server\n".to_owned(),
        ),
        ("desired/developer.yaml", "versions: {}\n".to_owned()),
        (
            "desired/client.yaml",
            match version {
                Some(version) => format!("versions:\n  distribution: {version}\n"),
                None => "versions: {}\n".to_owned(),
            },
        ),
    ]
}

fn commit(work: &GitRepo, version: Option<&str>) {
    let files = state(version);
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    work.commit_files(
        &refs,
        &format!("distribution {version:?}"),
        &Person::alice(),
    );
    work.push("origin", "main");
}

/// The time (as logged, RFC 3339 UTC with a fixed number of digits, so ordered as text)
/// of the first line of `log` that contains `what`.
fn logged_at(log: &str, what: &str) -> String {
    log.lines()
        .find(|line| line.contains(what))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `{what}` in the log:\n{log}"))
        .to_owned()
}

/// `status { selfUpdate }` of the replica at `base`, once it answers again.
async fn self_update(base: &str, token: &str) -> Option<Value> {
    let client = Client::new(base, Some(token.to_owned())).ok()?;
    let data: Value = client
        .graphql(
            "{ status { selfUpdate { runningVersion pendingVersion last { outcome message } } } }",
            json!({}),
        )
        .await
        .ok()?;
    Some(data["status"]["selfUpdate"].clone())
}

/// Starting a replica on its own copy of the program.
fn launch(program: &Path) -> distribution::Launch<'_> {
    distribution::Launch {
        program: Some(program),
        ..distribution::Launch::default()
    }
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").ino()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_swaps_in_the_new_program_one_at_a_time() {
    let Some(stand_ins) = stand_ins() else {
        return;
    };
    let shared = Shared::new(stand_ins, "selfupdate");
    let state_repo = GitRepo::init_bare();
    let work = GitRepo::clone_from(&state_repo);
    commit(&work, None);
    // Polled each second: this scenario is about the swaps, not the relay.
    let text = shared
        .config(state_repo.path())
        .replace("pollInterval: 1h", "pollInterval: 1s");

    let (dir_a, dir_b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let (program_a, program_b) = (
        distribution::program_copy(dir_a.path()),
        distribution::program_copy(dir_b.path()),
    );
    let (a, _) = first_replica_with(&dir_a, &text, &launch(&program_a)).await;
    let b = other_replica_with(&dir_b, &text, &launch(&program_b)).await;
    let replicas = [(&a, &dir_a, &program_a), (&b, &dir_b, &program_b)];
    let originals: Vec<u64> = replicas.iter().map(|(_, _, p)| inode(p)).collect();

    let program = std::fs::read(&program_a).expect("read the program");
    distribution::upload_program(&a.admin, dir_a.path(), "acme-2.0.0", &program).await;
    drop(program);

    // The test takes the turn first: both replicas get ready and wait.
    let store = vupdate_store::open(&vupdate_store::StoreConfig::Mongo {
        url: shared.mongo.clone(),
        database: shared.database.clone(),
        logs: None,
    })
    .await
    .expect("the replicas' store");
    let held = store
        .leases()
        .take("self-update", "the test", LIMIT * 4)
        .await
        .expect("take the turn")
        .expect("nobody swaps yet");
    commit(&work, Some("acme-2.0.0"));
    for (replica, dir, _) in replicas {
        Patience::up_to(LIMIT * 2)
            .eventually_or(
                &format!(
                    "the replica in {} to wait for its turn",
                    dir.path().display()
                ),
                || async {
                    log(dir)
                        .contains("self-update waits for its turn")
                        .then_some(())
                },
                || async { log(dir) },
            )
            .await;
        let status = self_update(&replica.base, &replica.admin_token)
            .await
            .expect("status");
        assert_eq!(
            status["runningVersion"],
            Value::Null,
            "not swapped: {status}"
        );
    }
    assert!(
        store
            .leases()
            .release(&held)
            .await
            .expect("give the turn back"),
        "the test still held the turn"
    );

    for (replica, dir, program) in replicas {
        let status = Patience::up_to(LIMIT * 2)
            .eventually_or(
                &format!("the replica in {} to run acme-2.0.0", dir.path().display()),
                || async {
                    let status = self_update(&replica.base, &replica.admin_token).await?;
                    (status["runningVersion"] == "acme-2.0.0").then_some(status)
                },
                || async { log(dir) },
            )
            .await;
        assert_eq!(status["last"]["outcome"], "SUCCEEDED", "{status}");
        let pid = replica.server.id();
        assert_eq!(
            inode(Path::new(&format!("/proc/{pid}/exe"))),
            inode(program),
            "the same process runs the new file"
        );
    }
    for ((_, _, program), original) in replicas.iter().zip(&originals) {
        assert_ne!(inode(program), *original, "{} replaced", program.display());
    }

    // Each new binary gave the turn back (unreleased, it would last 3 minutes).
    Patience::up_to(LIMIT)
        .eventually_or(
            "the turn to be given back",
            || async {
                let turn = store.leases().current("self-update").await.ok()??;
                turn.expired_at(chrono::Utc::now()).then_some(())
            },
            || async { format!("{}\n{}", log(&dir_a), log(&dir_b)) },
        )
        .await;

    // One at a time: the later swap began after the earlier one's new binary confirmed.
    let (log_a, log_b) = (log(&dir_a), log(&dir_b));
    let window = |log: &str| {
        (
            logged_at(log, "self-update ready: the server stops"),
            logged_at(log, "self-update confirmed"),
        )
    };
    let (mut first, mut second) = (window(&log_a), window(&log_b));
    if second.0 < first.0 {
        std::mem::swap(&mut first, &mut second);
    }
    eprintln!("swaps: first {first:?}, second {second:?}");
    assert!(
        first.1 <= second.0,
        "the second swap began at {} before the first confirmed at {}\n--- a\n{log_a}\n--- b\n{log_b}",
        second.0,
        first.1
    );
}
