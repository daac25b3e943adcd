//! Provenance with real updaters: each host reports the state commit it converged to,
//! and `instanceCommits(notOn:)` lists the hosts not yet on a commit (a descendant counts
//! as on it), before a push converges and not after.

use serde_json::{Value, json};
use vupdate_test_support::MAIN;

use super::world::World;

const COMMITS: &str =
    "query($notOn: String) { instanceCommits(notOn: $notOn) { instance stateCommit } }";

/// `(instance, stateCommit)` of every host, or of those not on `not_on`.
async fn commits(world: &World, not_on: Option<&str>) -> Vec<(String, Option<String>)> {
    let data = world.query(COMMITS, json!({ "notOn": not_on })).await;
    data["instanceCommits"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|host: &Value| {
            (
                host["instance"].as_str().expect("instance").to_owned(),
                host["stateCommit"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_host_reports_the_commit_it_converged_to_and_not_on_lists_the_laggards() {
    let world = World::start().await;
    let first = world.remote.rev_parse(MAIN);
    let hosts = world.updaters.len();
    world
        .eventually("every host to report the first commit", || async {
            let all = commits(&world, None).await;
            (all.len() == hosts
                && all
                    .iter()
                    .all(|(_, c)| c.as_deref() == Some(first.as_str())))
            .then_some(())
        })
        .await;
    assert!(commits(&world, Some(&first)).await.is_empty());

    let second = world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    // 1.1.0 has to be built first: no host can be on the new commit yet.
    let lagging = commits(&world, Some(&second)).await;
    assert_eq!(lagging.len(), hosts, "{lagging:?}");
    assert!(
        lagging
            .iter()
            .all(|(_, c)| c.as_deref() == Some(first.as_str())),
        "{lagging:?}"
    );

    world.wait_serving("acme-1.1.0").await;
    world
        .eventually("every host to report the new commit", || async {
            commits(&world, Some(&second))
                .await
                .is_empty()
                .then_some(())
        })
        .await;
    let all = commits(&world, None).await;
    assert!(
        all.iter()
            .all(|(_, c)| c.as_deref() == Some(second.as_str())),
        "{all:?}"
    );
    assert!(
        commits(&world, Some(&first)).await.is_empty(),
        "a host on a descendant of a commit is on it"
    );
}
