//! Following the state repo: only valid commits are put in force, an invalid one is
//! reported with file and line, and the Git webhook (a token's, or a Git host's signed with the
//! push webhook secret) makes the distribution look at once.

use serde_json::json;
use vupdate_test_support::Person;

use super::support::Harness;

#[tokio::test]
async fn an_invalid_commit_is_reported_and_the_previous_one_stays_in_force() {
    let harness = Harness::start().await;
    let good = harness.remote.rev_parse("main");
    harness.wait_in_force(&good).await;
    harness.work.write(
        "desired/developer.yaml",
        "versions:\n  api: acme-1.0.1\n  ghost: acme-1.0.0\n",
    );
    let bad = harness
        .work
        .commit("Add a service that does not exist", &Person::bob());
    harness.push_and_hook().await;
    let status = harness
        .eventually("the bad commit reported", || async {
            let data = harness
                .ok(
                    &harness.developer,
                    "{ status { stateRepo { commit tip lastError { commit problems { file line column message } } } } }",
                    json!({}),
                )
                .await;
            (data["status"]["stateRepo"]["tip"] == json!(bad)).then_some(data)
        })
        .await;
    let repo = &status["status"]["stateRepo"];
    assert_eq!(
        repo["commit"],
        json!(good),
        "the last valid commit stays in force"
    );
    assert_eq!(repo["lastError"]["commit"], json!(bad));
    let problem = &repo["lastError"]["problems"][0];
    assert_eq!(problem["file"], "desired/developer.yaml");
    assert_eq!(problem["line"], 3);
    assert!(
        problem["message"]
            .as_str()
            .expect("message")
            .contains("ghost"),
        "{problem}"
    );
    // Updaters keep getting the versions of the commit in force.
    let client = harness
        .ok(
            &harness.updater,
            "{ clientDesiredVersions { service version } }",
            json!({}),
        )
        .await;
    assert_eq!(client["clientDesiredVersions"][0]["version"], "acme-1.0.0");

    // The next valid commit clears the error and comes into force.
    harness
        .work
        .write("desired/developer.yaml", "versions:\n  api: acme-1.0.1\n");
    let fixed = harness.work.commit("Fix the state", &Person::bob());
    harness.push_and_hook().await;
    harness.wait_in_force(&fixed).await;
    let data = harness
        .ok(
            &harness.developer,
            "{ status { stateRepo { lastError { commit } } } }",
            json!({}),
        )
        .await;
    assert!(data["status"]["stateRepo"]["lastError"].is_null());
}

#[tokio::test]
async fn the_webhook_makes_the_distribution_fetch_at_once() {
    // The poll interval is an hour: only the hook can bring the new commit in.
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    harness
        .work
        .write("desired/developer.yaml", "versions:\n  api: acme-1.0.5\n");
    let pushed = harness.work.commit("Bump api", &Person::alice());
    harness.work.push("origin", "main");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_ne!(
        harness.commit_in_force().await.as_deref(),
        Some(pushed.as_str()),
        "no fetch without the hook"
    );
    let refused = harness
        .client
        .post(harness.url("/hooks/git"))
        .bearer_auth(&harness.updater)
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    harness.push_and_hook().await;
    harness.wait_in_force(&pushed).await;
}

/// A Git host's push webhook needs no vupdate token: one signed with the secret the
/// distribution made at start (GitHub's `X-Hub-Signature-256`, or GitLab's token) brings
/// the commit in at once; an unsigned or wrongly signed one is refused and brings nothing.
#[tokio::test]
async fn a_git_host_s_signed_webhook_makes_the_distribution_fetch_at_once() {
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    let secret_file = &harness.config.state_repo.webhook_secret_file;
    let secret = std::fs::read_to_string(secret_file).expect("the secret is made at start");
    let secret = secret.trim();
    let body = r#"{"ref":"refs/heads/main","after":"0000000"}"#;
    let hook = |header: Option<(&'static str, String)>| {
        let mut request = harness
            .client
            .post(harness.url("/hooks/git"))
            .header("content-type", "application/json")
            .body(body);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { request.send().await.expect("POST /hooks/git") }
    };
    let signature = |key: &str| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
        format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&key, body.as_bytes()))
        )
    };

    harness
        .work
        .write("desired/developer.yaml", "versions:\n  api: acme-1.0.6\n");
    let pushed = harness.work.commit("Bump api", &Person::alice());
    harness.work.push("origin", "main");
    for refused in [
        hook(None).await,
        hook(Some(("x-hub-signature-256", signature("not the secret")))).await,
        hook(Some(("x-gitlab-token", format!("{secret}x")))).await,
    ] {
        assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
        let answer: serde_json::Value =
            serde_json::from_slice(&refused.bytes().await.expect("body")).expect("JSON error");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&secret_file.display().to_string()),
            "{answer}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_ne!(
        harness.commit_in_force().await.as_deref(),
        Some(pushed.as_str()),
        "no fetch for a refused hook"
    );
    let signed = hook(Some(("x-hub-signature-256", signature(secret)))).await;
    assert_eq!(signed.status(), reqwest::StatusCode::ACCEPTED);
    harness.wait_in_force(&pushed).await;

    harness
        .work
        .write("desired/developer.yaml", "versions:\n  api: acme-1.0.7\n");
    let pushed = harness.work.commit("Bump api again", &Person::alice());
    harness.work.push("origin", "main");
    let gitlab = hook(Some(("x-gitlab-token", secret.to_owned()))).await;
    assert_eq!(gitlab.status(), reqwest::StatusCode::ACCEPTED);
    harness.wait_in_force(&pushed).await;
}
