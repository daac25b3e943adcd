//! The scenario of issue 14, step by step; every step checks what runs (the version each
//! VM's `hello` answers with, the settings file it has), not only what the API says.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_test_support::{GitRepo, MAIN, Person};

use super::world::{Node, Vm, eventually, free_port, settings_repo};
use crate::hello::hello_source;

/// How long jetto stays away: 8 s by default to keep the suite short, the issue's 30 s
/// with `VUPDATE_TEST_OUTAGE_SECS=30` (the behaviour shown is the same: the consumers
/// keep running, back off, and catch up).
fn outage() -> Duration {
    let secs = std::env::var("VUPDATE_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    Duration::from_secs(secs)
}

const PROVIDERS: &str = "{ providers { distribution reachable tokenRefused lastError nextAttempt offered { service version } waitingChange { branch versions { service version } } upload { lastUpload lastError } } }";

/// A consumer's state: hello declared with client settings from `settings`, following
/// jetto at `jetto_base` as `entry` says.
fn consumer_files(
    settings: &GitRepo,
    jetto_base: &str,
    entry: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        (
            "services/hello.yaml",
            format!(
                "client:\n  settings:\n    - name: site\n      git:\n        url: {}\n        branch: main\n",
                settings.path().display()
            ),
        ),
        ("desired/client.yaml", "versions: {}\n".to_owned()),
        (
            "providers.yaml",
            format!(
                "providers:\n  jetto:\n    url: {jetto_base}/graphql\n    accessTokenSecret: jetto-token\n    uploadState: true\n{entry}"
            ),
        ),
    ]
}

/// Consumers poll every 2 s beside the subscription and upload every second.
const CONSUMER_CONFIG: &str = "mesh:\n  pollInterval: 2s\n  uploadInterval: 1s\n";

/// Makes `version` of hello desired on jetto (one commit on the tip of its state repo,
/// as a person who just pulled), which jetto then builds.
async fn release(jetto: &Node, version: &str) {
    let commit = jetto.remote.rev_parse(MAIN);
    jetto
        .query(
            "mutation($v: String!, $r: String!) { setDeveloperDesiredVersions(changes: [{service: \"hello\", version: $v}], expectedRevision: $r, comment: \"release\") { id } }",
            json!({"v": version, "r": commit}),
        )
        .await;
}

async fn provider(node: &Node) -> Value {
    node.query(PROVIDERS, json!({})).await["providers"][0].clone()
}

/// Everything that might explain a failure.
fn logs(nodes: &[&Node], vms: &[&Vm]) -> String {
    let mut text = String::new();
    for node in nodes {
        text.push_str(&format!("--- {} ---\n{}\n", node.name, node.log()));
    }
    for vm in vms {
        let log = std::fs::read_to_string(&vm.log).unwrap_or_default();
        text.push_str(&format!("--- {} ---\n{log}\n", vm.work.display()));
    }
    text
}

/// Waits until `vm` serves `version` with `site` as its settings file.
async fn wait_serving(vm: &Vm, version: &str, site: &str, explain: impl Fn() -> String) {
    eventually(
        &format!("{} serving {version}", vm.work.display()),
        explain,
        || async {
            (vm.serving().as_deref() == Some(version)
                && vm.file("site.txt").as_deref().map(str::trim) == Some(site))
            .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_flows_provider_staging_tested_production_with_outage_revocation_and_no_leaks() {
    let root = TempDir::new().expect("dir");
    let root = root.path();
    let source = hello_source();

    // jetto, the provider.
    let jetto_files = vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        (
            "services/hello.yaml",
            format!(
                "developer:\n  sources:\n    - name: hello\n      git:\n        url: {}\n        branch: main\n",
                source.path().display()
            ),
        ),
        (
            "profiles.yaml",
            "profiles:\n  self: [hello]\n  partner: [hello]\n".to_owned(),
        ),
        (
            "desired/developer.yaml",
            "versions:\n  hello: jetto-1.0.0\n".to_owned(),
        ),
        (
            "consumers.yaml",
            "consumers:\n  staging:\n    profile: partner\n  production:\n    profile: partner\n"
                .to_owned(),
        ),
    ];
    let jetto = Node::start(root, "jetto", free_port(), &jetto_files, "", &[]).await;
    let staging_token = jetto.consumer_token("staging").await;
    let production_token = jetto.consumer_token("production").await;

    // staging: its token set with the CLI before its first start.
    let staging_site = settings_repo("staging");
    let staging = Node::start(
        root,
        "staging",
        free_port(),
        &consumer_files(&staging_site, &jetto.base, "    autoUpdate: commit\n"),
        CONSUMER_CONFIG,
        &[("jetto-token", &staging_token)],
    )
    .await;
    // production: its token set through the API once it runs.
    let production_site = settings_repo("production");
    let production = Node::start(
        root,
        "production",
        free_port(),
        &consumer_files(
            &production_site,
            &jetto.base,
            "    testConsumer: staging\n    autoUpdate: pullRequest\n",
        ),
        CONSUMER_CONFIG,
        &[],
    )
    .await;
    production
        .query(
            "mutation($v: String!) { setSecret(name: \"jetto-token\", value: $v) { name } }",
            json!({"v": production_token}),
        )
        .await;
    let staging_vm = Vm::start(root, &staging, "staging-vm");
    let production_vm = Vm::start(root, &production, "production-vm");
    let explain = || {
        logs(
            &[&jetto, &staging, &production],
            &[&staging_vm, &production_vm],
        )
    };

    // 1. jetto's first version reaches staging: built as a client version with
    //    staging's settings, committed as jetto, run by staging's updater.
    wait_serving(&staging_vm, "jetto-1.0.0", "staging", explain).await;
    let author = staging.remote.git(&["log", "-1", "--format=%an|%s", MAIN]);
    assert!(
        author.starts_with("provider jetto|Take jetto's versions at its revision "),
        "{author}"
    );

    // 2. jetto builds a new version; staging takes and runs it.
    release(&jetto, "jetto-1.0.1").await;
    wait_serving(&staging_vm, "jetto-1.0.1", "staging", explain).await;

    // 3. staging marks what it runs as tested on jetto (forwarded, recorded as staging).
    let marked = staging
        .query(
            "mutation { setProviderTestedVersions(provider: \"jetto\", comment: \"passed staging\") }",
            json!({}),
        )
        .await;
    assert!(marked["setProviderTestedVersions"].as_str().is_some());
    let tested = jetto.remote.git(&["show", "main:tested.yaml"]);
    assert!(
        tested.contains("staging:") && tested.contains("hello: jetto-1.0.1"),
        "{tested}"
    );

    // 4. jetto builds an untested newer version: staging runs it, production's branch
    //    holds exactly the tested one.
    release(&jetto, "jetto-1.0.2").await;
    wait_serving(&staging_vm, "jetto-1.0.2", "staging", explain).await;
    let branch = eventually("a branch on production", explain, || async {
        let status = provider(&production).await;
        status["waitingChange"]["branch"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let proposed = production
        .remote
        .git(&["show", &format!("{branch}:desired/client.yaml")]);
    assert!(proposed.contains("hello: jetto-1.0.1"), "{proposed}");
    assert!(!proposed.contains("jetto-1.0.2"), "{proposed}");
    assert_eq!(
        production_vm.serving(),
        None,
        "nothing runs before the merge"
    );

    // 5. A person merges it: production's updater runs the tested version. The proposal
    //    is named after jetto's commit, so a later jetto commit may replace the branch
    //    between reading and fetching it: merge whichever is waiting then.
    eventually("the waiting branch merged", explain, || {
        let (production, first) = (&production, branch.clone());
        async move {
            let waiting = provider(production).await["waitingChange"]["branch"]
                .as_str()
                .map_or(first, str::to_owned);
            let work = &production.work;
            work.git(&["fetch", "-q", "--prune", "origin"]);
            let merged = work.run(
                &[
                    "merge",
                    "-q",
                    "--no-ff",
                    "-m",
                    "Merge jetto's tested versions",
                    &format!("origin/{waiting}"),
                ],
                &[],
            );
            merged.status.success().then_some(())
        }
    })
    .await;
    production.push_and_hook();
    wait_serving(&production_vm, "jetto-1.0.1", "production", explain).await;

    // 6. jetto shows both consumers' instances and installed versions.
    let consumers = eventually("both consumers reported", explain, || async {
        let data = jetto
            .query(
                "{ status { consumers { distribution installedVersions { service version } instances { instance version } } } }",
                json!({}),
            )
            .await;
        let consumers = data["status"]["consumers"].as_array()?.clone();
        let reported = |name: &str, version: &str| {
            consumers.iter().any(|c| {
                c["distribution"] == name
                    && c["installedVersions"][0]["version"] == version
                    && c["instances"]
                        .as_array()
                        .is_some_and(|i| i.iter().any(|i| i["version"] == version))
            })
        };
        (reported("staging", "jetto-1.0.2") && reported("production", "jetto-1.0.1"))
            .then_some(consumers)
    })
    .await;
    println!("jetto's consumers: {consumers:?}");
    let states = jetto
        .query(
            "{ serviceStates(distribution: \"production\") { instance state { version } } }",
            json!({}),
        )
        .await;
    assert_eq!(states["serviceStates"][0]["instance"], "production-vm");

    // 7. jetto stops; a release is pushed to its state repo meanwhile. The consumers keep
    //    running; when jetto is back, it builds the release and staging catches up.
    jetto.stop();
    jetto.work.git(&["pull", "-q", "origin", MAIN]);
    jetto.work.write(
        "desired/developer.yaml",
        "versions:\n  hello: jetto-1.0.3\n",
    );
    jetto
        .work
        .commit("release 1.0.3 while away", &Person::bob());
    jetto.work.push("origin", MAIN);
    let away = outage();
    let until = tokio::time::Instant::now() + away;
    while tokio::time::Instant::now() < until {
        assert_eq!(staging_vm.serving().as_deref(), Some("jetto-1.0.2"));
        assert_eq!(production_vm.serving().as_deref(), Some("jetto-1.0.1"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = provider(&staging).await;
    assert_eq!(status["reachable"], false, "{status}");
    jetto.restart();
    let back = std::time::Instant::now();
    wait_serving(&staging_vm, "jetto-1.0.3", "staging", explain).await;
    println!(
        "figure: jetto back after a {away:?} outage to staging serving its release (build included): {:?}",
        back.elapsed()
    );

    // 8. jetto revokes production's token: reported, not retried in a loop.
    jetto
        .query(
            "mutation { revokeAccessTokens(account: \"production\") }",
            json!({}),
        )
        .await;
    let status = eventually("the revocation reported", explain, || async {
        let status = provider(&production).await;
        (status["tokenRefused"] == true).then_some(status)
    })
    .await;
    assert!(
        status["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("TOKEN_REVOKED")),
        "{status}"
    );
    let refusals = || {
        production
            .log()
            .matches("the provider refused this distribution's token")
            .count()
    };
    let before = refusals();
    // Polls run every 2 s: a loop would refuse again several times in 6 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(refusals(), before, "tried again without a new token");
    assert_eq!(refusals(), 1);
    assert_eq!(production_vm.serving().as_deref(), Some("jetto-1.0.1"));

    // 9. No secret value anywhere: not in an answer, a file (the store holds it sealed) or Git.
    let answers = collect_answers(&[&jetto, &staging, &production]).await;
    let mut places: Vec<&Path> = vec![&jetto.dir, &staging.dir, &production.dir];
    places.extend([staging_vm.work.as_path(), production_vm.work.as_path()]);
    for (name, secret) in [
        ("staging", &staging_token),
        ("production", &production_token),
    ] {
        assert!(
            !answers.contains(secret.as_str()),
            "{name}'s token in an API answer"
        );
        let found = vupdate_test_support::files_containing(&places, secret);
        assert!(
            found.is_empty(),
            "{name}'s token is in no file (its store holds it sealed): {found:?}"
        );
        for node in [&jetto, &staging, &production] {
            let history = node.remote.git(&["log", "-p", "--all"]);
            assert!(
                !history.contains(secret.as_str()),
                "{name}'s token in {}'s Git",
                node.name
            );
        }
    }
}

/// The answers of the queries people and dashboards make, on every node.
async fn collect_answers(nodes: &[&Node]) -> String {
    let queries = [
        "{ status { stateRepo { commit lastError { commit } fetchError } services { service sync builds { message } } consumers { distribution } providers { distribution lastError upload { lastError } } } }",
        PROVIDERS,
        "{ secrets { name setAt } }",
        "{ tasks(limit: 1000) { id type parameters { name value } } }",
        "{ logs(limit: 10000) { message } }",
        "{ consumers { distribution installedVersions { version } } }",
        "{ accounts { account name type url } }",
    ];
    let mut answers = String::new();
    for node in nodes {
        for query in queries {
            answers.push_str(&node.query(query, json!({})).await.to_string());
        }
    }
    answers
}
