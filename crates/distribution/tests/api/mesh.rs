//! Two distributions in one process: `acme` provides, `mirror` consumes (its providers.yaml
//! names acme, its token a secret). What the consumer takes, how (commit, branch, by
//! hand), what it reports back, and what it does when the provider refuses its token.
//! Client builds are a copy of the developer image (the real builder is the end-to-end
//! test's business).

use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use vupdate_core::reconcile::Build;
use vupdate_distribution::images::{ImageStore, ImageVersion};
use vupdate_distribution::reconcile::{BuildFuture, BuildRunner};
use vupdate_distribution::tasks::TaskContext;
use vupdate_state::State;

use super::support::{Harness, Options, state_files};

/// Makes a client image by copying its developer image (what a client build with no
/// settings amounts to).
#[derive(Default)]
struct CopyRunner {
    images: OnceLock<ImageStore>,
}

impl BuildRunner for CopyRunner {
    fn run(&self, build: Build, _state: Arc<State>, _task: TaskContext) -> BuildFuture {
        let images = self.images.get().cloned();
        Box::pin(async move {
            let images = images.ok_or("the test has not given the image store yet")?;
            let Build::Client {
                service,
                version,
                from,
            } = build
            else {
                return Err("only client builds here".to_owned());
            };
            let developer = images
                .info(&service, &ImageVersion::Developer(from))
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no developer image")?;
            let path = images.blob_path(&developer);
            images
                .put_file(&service, &ImageVersion::Client(version), &path)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

/// A provider `acme` and a consumer `mirror` following it.
struct Pair {
    provider: Harness,
    consumer: Harness,
}

/// `acme` (consumers `mirror` and `staging`, profile `self`), and `mirror` following it
/// with `provider_entry` (the lines under `acme:` after url and secret).
async fn pair(provider_entry: &str, consumer_config: &str) -> Pair {
    let mut files = state_files("acme-1.0.0");
    files.push((
        "consumers.yaml",
        "consumers:\n  mirror:\n    profile: self\n  staging:\n    profile: self\n".to_owned(),
    ));
    let provider = Harness::start_with(Options {
        files: Some(files),
        ..Options::default()
    })
    .await;
    publish(&provider, "acme-1.0.0", false).await;
    let consumer_files = vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        ("services/api.yaml", "client: {}\n".to_owned()),
        ("desired/client.yaml", "versions: {}\n".to_owned()),
        (
            "providers.yaml",
            format!(
                "providers:\n  acme:\n    url: {}/graphql\n    accessTokenSecret: acme-token\n{provider_entry}",
                provider.base
            ),
        ),
    ];
    let runner = Arc::new(CopyRunner::default());
    // The subscription brings every change of versions; polls (which also bring new
    // revisions that change nothing) only where a test asks for them.
    let poll = if consumer_config.contains("pollInterval") {
        ""
    } else {
        "  pollInterval: 1h\n"
    };
    let consumer = Harness::start_with(Options {
        name: "mirror",
        files: Some(consumer_files),
        builder: Some(runner.clone()),
        // One consumer per test: leaking its few config lines is harmless.
        extra_config: format!("mesh:\n{poll}{consumer_config}").leak(),
        ..Options::default()
    })
    .await;
    let images = consumer
        .distribution
        .as_ref()
        .expect("running")
        .context()
        .images
        .clone();
    let _ = runner.images.set(images);
    set_secret(&consumer, &provider.consumer).await;
    Pair { provider, consumer }
}

async fn set_secret(consumer: &Harness, token: &str) {
    consumer
        .ok(
            &consumer.admin,
            "mutation($v: String!) { setSecret(name: \"acme-token\", value: $v) { name } }",
            json!({"v": token}),
        )
        .await;
}

/// Uploads and records developer image `version` of `api` on the provider; with `desire`,
/// also makes it the desired version (one commit).
async fn publish(provider: &Harness, version: &str, desire: bool) {
    let put = provider
        .client
        .put(provider.url(&format!("/images/developer/api/{version}")))
        .bearer_auth(&provider.builder)
        .body(format!("image of api {version}").into_bytes())
        .send()
        .await
        .expect("PUT");
    assert!(put.status().is_success(), "{}", put.status());
    provider
        .ok(
            &provider.builder,
            "mutation($v: String!) { addDeveloperVersionInfo(info: {service: \"api\", version: $v, buildInfo: {author: \"ci\", sources: [], time: \"2026-12-01T00:00:00Z\", comment: \"built\"}}) { version } }",
            json!({"v": version}),
        )
        .await;
    if desire {
        let tip = provider.remote.rev_parse("main");
        provider.wait_in_force(&tip).await;
        provider
            .ok(
                &provider.developer,
                "mutation($v: String!, $r: String!) { setDeveloperDesiredVersions(changes: [{service: \"api\", version: $v}], expectedRevision: $r, comment: \"ship\") { id } }",
                json!({"v": version, "r": tip}),
            )
            .await;
    }
}

const PROVIDERS: &str = "{ providers { distribution secretSet reachable connectedBy lastError tokenRefused nextAttempt offeredRevision offered { service version } offersNewer pending { service version } preparing waitingChange { branch revision versions { service version } } actedRevision upload { lastUpload lastError statesSent faultsSent } } }";

async fn provider_status(consumer: &Harness) -> Value {
    let response = consumer
        .graphql(&consumer.admin, PROVIDERS, json!({}))
        .await;
    // Right after a restart the consumer has not read its state repo yet; the callers
    // wait for a state to come, so "not yet" is no answer rather than a failure.
    if response["errors"][0]["extensions"]["code"] == "STATE_UNAVAILABLE" {
        return Value::Null;
    }
    assert!(
        response.get("errors").is_none(),
        "`providers` failed: {response:#}"
    );
    response["data"]["providers"][0].clone()
}

/// The consumer's `desired/client.yaml` at the tip of its remote.
fn desired_client(consumer: &Harness, rev: &str) -> String {
    consumer
        .remote
        .git(&["show", &format!("{rev}:desired/client.yaml")])
}

async fn wait_commit_with(consumer: &Harness, text: &str) -> String {
    consumer
        .eventually(&format!("a commit desiring `{text}`"), || async {
            desired_client(consumer, "main")
                .contains(text)
                .then(|| consumer.remote.rev_parse("main"))
        })
        .await
}

#[tokio::test]
async fn a_consumer_commits_its_providers_new_versions_authored_as_the_provider() {
    let pair = pair("    autoUpdate: commit\n", "").await;
    let (provider, consumer) = (&pair.provider, &pair.consumer);
    let first = wait_commit_with(consumer, "api: acme-1.0.0").await;
    let author = consumer
        .remote
        .git(&["log", "-1", "--format=%an <%ae>|%s", &first]);
    assert_eq!(
        author.trim(),
        format!(
            "provider acme <provider@acme>|Take acme's versions at its revision {}",
            &provider.remote.rev_parse("main")[..12]
        )
    );
    // The developer version is recorded here as acme's, with acme's build record.
    let info = consumer
        .ok(
            &consumer.admin,
            "{ developerVersionsInfo(service: \"api\") { version buildInfo { author comment } image { digest } } }",
            json!({}),
        )
        .await;
    assert_eq!(info["developerVersionsInfo"][0]["version"], "acme-1.0.0");
    assert_eq!(
        info["developerVersionsInfo"][0]["buildInfo"]["author"],
        "ci"
    );

    // A new version on the provider arrives by the subscription (polls are 1 h apart).
    publish(provider, "acme-1.0.1", true).await;
    let second = wait_commit_with(consumer, "api: acme-1.0.1").await;
    assert_eq!(
        consumer
            .remote
            .git(&["rev-parse", &format!("{second}~1")])
            .trim(),
        first
    );
    consumer.wait_in_force(&second).await;
    let status = consumer
        .eventually("nothing newer offered", || async {
            let status = provider_status(consumer).await;
            (status["offersNewer"] == false).then_some(status)
        })
        .await;
    assert_eq!(status["reachable"], true, "{status}");
    assert_eq!(status["secretSet"], true);
    assert!(
        !status.to_string().contains(&provider.consumer),
        "no token in {status}"
    );

    // A person reverts it: the same offer is not committed again (no fight).
    consumer.work.git(&["pull", "-q", "origin", "main"]);
    consumer.work.git(&["revert", "--no-edit", "HEAD"]);
    consumer.push_and_hook().await;
    let reverted = consumer.remote.rev_parse("main");
    consumer.wait_in_force(&reverted).await;
    let status = consumer
        .eventually("the offer shown as newer again", || async {
            let status = provider_status(consumer).await;
            (status["offersNewer"] == true).then_some(status)
        })
        .await;
    assert_eq!(status["pending"][0]["version"], "acme-1.0.1");
    assert_eq!(
        consumer.remote.rev_parse("main"),
        reverted,
        "not committed again"
    );
}

#[tokio::test]
async fn with_pull_requests_the_change_waits_on_a_branch_and_a_newer_one_replaces_it() {
    let pair = pair("    autoUpdate: pullRequest\n", "  pollInterval: 500ms\n").await;
    let (provider, consumer) = (&pair.provider, &pair.consumer);
    let main = consumer.remote.rev_parse("main");
    let waiting = consumer
        .eventually("a change waiting for review", || async {
            let status = provider_status(consumer).await;
            (!status["waitingChange"].is_null()).then_some(status)
        })
        .await;
    let branch = waiting["waitingChange"]["branch"]
        .as_str()
        .expect("branch")
        .to_owned();
    let revision = provider.remote.rev_parse("main");
    assert_eq!(branch, format!("vupdate/acme/{}", &revision[..12]));
    assert!(desired_client(consumer, &branch).contains("api: acme-1.0.0"));
    assert_eq!(
        consumer.remote.rev_parse("main"),
        main,
        "main is left alone"
    );

    // A provider commit that offers the same versions (seen by a poll) keeps the branch a
    // reviewer reads.
    provider
        .work
        .git(&["pull", "-q", "--ff-only", "origin", "main"]);
    provider.work.write("README.md", "acme's fleet\n");
    provider
        .work
        .commit("a note", &vupdate_test_support::Person::bob());
    provider.push_and_hook().await;
    let unrelated = provider.remote.rev_parse("main");
    let kept = consumer
        .eventually("the unrelated revision looked at", || async {
            let status = provider_status(consumer).await;
            (status["actedRevision"] == unrelated.as_str()).then_some(status)
        })
        .await;
    assert_eq!(kept["waitingChange"]["branch"], branch.as_str(), "{kept}");
    assert_eq!(
        consumer
            .remote
            .git(&["branch", "--list", "vupdate/*"])
            .trim(),
        branch,
        "the branch is not replaced by the same change"
    );

    publish(provider, "acme-1.0.1", true).await;
    let newer = consumer
        .eventually("a newer proposal", || async {
            let status = provider_status(consumer).await;
            let branch = status["waitingChange"]["branch"].as_str()?.to_owned();
            (status["waitingChange"]["versions"][0]["version"] == "acme-1.0.1").then_some(branch)
        })
        .await;
    let branches = consumer.remote.git(&["branch", "--list", "vupdate/*"]);
    assert_eq!(branches.trim(), newer, "the older branch is replaced");

    // A person merges it: nothing waits any more.
    consumer.work.git(&["fetch", "-q", "origin"]);
    consumer
        .work
        .git(&["merge", "-q", "--ff-only", &format!("origin/{newer}")]);
    consumer.push_and_hook().await;
    consumer
        .eventually("the change merged", || async {
            let status = provider_status(consumer).await;
            (status["waitingChange"].is_null() && status["offersNewer"] == false).then_some(())
        })
        .await;
}

#[tokio::test]
async fn with_auto_update_off_the_offer_is_shown_and_taken_by_hand() {
    let pair = pair("", "").await;
    let consumer = &pair.consumer;
    let status = consumer
        .eventually("the offer shown", || async {
            let status = provider_status(consumer).await;
            (status["offersNewer"] == true && status["preparing"].is_null()).then_some(status)
        })
        .await;
    assert_eq!(status["pending"][0]["version"], "acme-1.0.0");
    let tip = consumer.remote.rev_parse("main");
    assert!(
        !desired_client(consumer, &tip).contains("acme"),
        "nothing committed"
    );
    consumer.wait_in_force(&tip).await;
    let taken = consumer
        .ok(
            &consumer.developer,
            "mutation($r: String!) { takeProviderVersions(provider: \"acme\", expectedRevision: $r, comment: \"take acme 1.0.0\") { id author { name } } }",
            json!({"r": tip}),
        )
        .await;
    assert_eq!(
        taken["takeProviderVersions"]["author"]["name"],
        "Dee Veloper"
    );
    assert!(desired_client(consumer, "main").contains("api: acme-1.0.0"));
    let taken_id = taken["takeProviderVersions"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    consumer.wait_in_force(&taken_id).await;
    let (code, _) = consumer
        .fails(
            &consumer.developer,
            "mutation($r: String!) { takeProviderVersions(provider: \"acme\", expectedRevision: $r, comment: \"again\") { id } }",
            json!({"r": taken_id}),
        )
        .await;
    assert_eq!(code, "NOTHING_TO_TAKE");
}

#[tokio::test]
async fn a_test_consumer_gates_what_is_taken_to_the_versions_it_marked_tested() {
    let pair = pair("    testConsumer: staging\n    autoUpdate: commit\n", "").await;
    let (provider, consumer) = (&pair.provider, &pair.consumer);
    // Nothing is tested yet: nothing offered.
    let status = consumer
        .eventually("an empty offer", || async {
            let status = provider_status(consumer).await;
            (!status["offeredRevision"].is_null()).then_some(status)
        })
        .await;
    assert_eq!(status["offered"], json!([]), "{status}");
    // Staging marks 1.0.0 as tested (as staging's distribution does, by its token);
    // 1.0.1 is desired on the provider but not tested.
    // consumers.yaml names staging: its account exists without anyone adding it.
    let accounts = provider
        .ok(
            &provider.admin,
            "{ accounts(account: \"staging\") { type profile } }",
            json!({}),
        )
        .await;
    assert_eq!(accounts["accounts"][0]["type"], "CONSUMER");
    let staging = provider.token_of("staging").await;
    provider
        .ok(
            &staging,
            "mutation { setTestedVersions(versions: [{service: \"api\", version: \"acme-1.0.0\"}], comment: \"tested on staging\") { id } }",
            json!({}),
        )
        .await;
    publish(provider, "acme-1.0.1", true).await;
    wait_commit_with(consumer, "api: acme-1.0.0").await;
    let status = provider_status(consumer).await;
    assert_eq!(status["offered"][0]["version"], "acme-1.0.0", "{status}");
    assert!(!desired_client(consumer, "main").contains("acme-1.0.1"));
}

#[tokio::test]
async fn a_revoked_token_is_reported_not_retried_in_a_loop_and_a_new_secret_reconnects() {
    let pair = pair("    autoUpdate: commit\n", "  subscription: false\n").await;
    let (provider, consumer) = (&pair.provider, &pair.consumer);
    wait_commit_with(consumer, "api: acme-1.0.0").await;
    provider
        .ok(
            &provider.admin,
            "mutation { revokeAccessTokens(account: \"mirror\") }",
            json!({}),
        )
        .await;
    // The consumer finds out at its next poll; restart it so that poll is now.
    let mut consumer = pair.consumer;
    consumer.stop().await;
    let runner = Arc::new(CopyRunner::default());
    consumer
        .boot(Options {
            builder: Some(runner),
            ..Options::default()
        })
        .await;
    let status = consumer
        .eventually("the refusal reported", || async {
            let status = provider_status(&consumer).await;
            (status["tokenRefused"] == true).then_some(status)
        })
        .await;
    let error = status["lastError"].as_str().expect("error");
    assert!(error.contains("TOKEN_REVOKED"), "{error}");
    let next = chrono::DateTime::parse_from_rfc3339(status["nextAttempt"].as_str().expect("next"))
        .expect("time");
    assert!(
        next.with_timezone(&chrono::Utc) - chrono::Utc::now() > chrono::TimeDelta::minutes(4),
        "the next try is minutes away: {next}"
    );
    // A new token set as the secret is used at once.
    let token = provider.token_of("mirror").await;
    set_secret(&consumer, &token).await;
    consumer
        .eventually("reconnected", || async {
            let status = provider_status(&consumer).await;
            (status["tokenRefused"] == false && status["reachable"] == true).then_some(())
        })
        .await;
}

#[tokio::test]
async fn states_faults_and_installed_versions_are_uploaded_once_across_restarts() {
    let pair = pair(
        "    autoUpdate: commit\n    uploadState: true\n",
        "  uploadInterval: 200ms\n",
    )
    .await;
    let (provider, mut consumer) = (pair.provider, pair.consumer);
    wait_commit_with(&consumer, "api: acme-1.0.0").await;
    let now = chrono::Utc::now().to_rfc3339();
    let states = json!({"states": [
        {"instance": "vm-1", "service": "api", "directory": "/srv/api", "state": {"time": now, "version": "acme-1.0.0"}},
        {"instance": "vm-2", "service": "api", "directory": "/srv/api", "state": {"time": now, "version": "acme-1.0.0"}},
    ]});
    consumer
        .ok(
            &consumer.updater,
            "mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }",
            states,
        )
        .await;
    let put = consumer
        .client
        .put(consumer.url("/faults/vm1-api-0001"))
        .bearer_auth(&consumer.updater)
        .body(b"zip".to_vec())
        .send()
        .await
        .expect("PUT");
    assert!(put.status().is_success());
    consumer
        .ok(
            &consumer.updater,
            "mutation($r: FaultReportInput!) { addFaultReport(report: $r) }",
            json!({"r": {"id": "vm1-api-0001", "info": {"time": now, "instance": "vm-1", "service": "api", "serviceDirectory": "/srv/api", "state": {"time": now}, "logTail": ["boom"]}, "files": []}}),
        )
        .await;
    let data = provider
        .eventually("states, the report and installed versions", || async {
            let data = uploaded(&provider).await;
            let mirror = data["consumers"]
                .as_array()?
                .iter()
                .find(|c| c["distribution"] == "mirror")?
                .clone();
            (data["serviceStates"].as_array()?.len() == 2
                && data["faults"].as_array()?.len() == 1
                && mirror["installedVersions"][0]["version"] == "acme-1.0.0"
                && mirror["instances"].as_array()?.len() == 2)
                .then_some(data)
        })
        .await;
    assert_eq!(data["faults"][0]["id"], "vm1-api-0001");
    // Restarts of both sides send nothing twice and lose nothing. The provider comes back
    // on its address, where the consumer's providers.yaml points.
    consumer.stop().await;
    let mut provider = provider;
    let address = provider
        .distribution
        .as_ref()
        .expect("running")
        .local_addr();
    provider.stop().await;
    provider.config.listen = address;
    provider.boot(Options::default()).await;
    consumer
        .boot(Options {
            builder: Some(Arc::new(CopyRunner::default())),
            ..Options::default()
        })
        .await;
    let restarted = chrono::Utc::now();
    consumer
        .eventually("an upload round after the restarts", || async {
            // Until the restarted consumer has its state in force, it answers an error.
            let data = consumer
                .graphql(&consumer.admin, PROVIDERS, json!({}))
                .await;
            let status = data["data"]["providers"][0].clone();
            let last = status["upload"]["lastUpload"].as_str()?;
            let last = chrono::DateTime::parse_from_rfc3339(last).ok()?;
            (last > restarted).then_some(())
        })
        .await;
    let data = uploaded(&provider).await;
    assert_eq!(data["faults"].as_array().expect("faults").len(), 1);
    assert_eq!(data["serviceStates"].as_array().expect("states").len(), 2);
}

/// What the provider has of `mirror`: states, fault reports, the consumers' status.
async fn uploaded(provider: &Harness) -> Value {
    provider
        .ok(
            &provider.admin,
            "{ serviceStates(distribution: \"mirror\") { instance state { version } } faults(distribution: \"mirror\") { id } consumers { distribution installedVersions { service version } instances { instance } } }",
            json!({}),
        )
        .await
}

#[tokio::test]
async fn a_consumer_runs_builds_only_where_consumers_yaml_says_and_cancels_only_its_own() {
    let mut files = state_files("acme-1.0.0");
    files.push((
        "consumers.yaml",
        "consumers:\n  mirror:\n    profile: self\n".to_owned(),
    ));
    let provider = Harness::start_with(Options {
        files: Some(files),
        ..Options::default()
    })
    .await;
    provider
        .wait_in_force(&provider.remote.rev_parse("main"))
        .await;
    let run = "mutation($t: String!) { runBuilder(build: {kind: DEVELOPER, service: \"api\", version: \"mirror-1.0.0\", commit: \"abc123\", task: \"t-1\", author: \"a\", comment: \"c\"}, accessToken: $t) }";
    let (code, message) = provider
        .fails(&provider.consumer, run, json!({"t": "tok-of-mirror-123"}))
        .await;
    assert_eq!(code, "NO_CONSUMER_URL", "{message}");
    assert!(!message.contains("tok-of-mirror-123"));
    // The provider's own build task (api acme-1.0.0 fails: no builder here) is not the
    // consumer's to cancel or to look at.
    let task = provider
        .eventually("the provider's build task", || async {
            let data = provider
                .ok(&provider.admin, "{ tasks { id } }", json!({}))
                .await;
            data["tasks"][0]["id"].as_str().map(str::to_owned)
        })
        .await;
    for query in [
        "mutation($t: String!) { cancelTask(task: $t) }",
        "query($t: String!) { remoteBuild(task: $t) { active } }",
    ] {
        let (code, _) = provider
            .fails(&provider.consumer, query, json!({"t": task}))
            .await;
        assert_eq!(code, "NOT_FOUND", "{query}");
    }
}

#[tokio::test]
async fn an_edit_of_build_settings_that_leaves_builder_out_keeps_it() {
    let mut files = state_files("acme-1.0.0");
    files.push((
        "providers.yaml",
        "providers:\n  jetto:\n    url: http://127.0.0.1:9\n    accessTokenSecret: jetto-token\n"
            .to_owned(),
    ));
    let harness = Harness::start_with(Options {
        files: Some(files),
        ..Options::default()
    })
    .await;
    let set = |builder: &str| {
        format!(
            r#"mutation($e: String!) {{ setBuildSettings(service: "api", {builder} expectedRevision: $e, comment: "edit",
                developer: {{sources: [{{name: "api", url: "https://git.example.invalid/api.git", branch: "main"}}]}}) {{ id }} }}"#
        )
    };
    let mut tip = harness.remote.rev_parse("main");
    let mut services_api = Vec::new();
    for builder in [r#"builder: "jetto","#, "", r#"builder: "","#] {
        harness.wait_in_force(&tip).await;
        let data = harness
            .ok(&harness.admin, &set(builder), json!({"e": tip}))
            .await;
        tip = data["setBuildSettings"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        services_api.push(harness.remote.show(&tip, "services/api.yaml"));
    }
    assert!(
        services_api[0].contains("builder: jetto"),
        "{}",
        services_api[0]
    );
    // A dashboard that does not know `builder` sends none: it stays.
    assert!(
        services_api[1].contains("builder: jetto"),
        "{}",
        services_api[1]
    );
    assert!(!services_api[2].contains("builder"), "{}", services_api[2]);
}
