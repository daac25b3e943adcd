//! Desired versions through the API: every edit is one commit in the remote state repo,
//! authored by the account with the comment as message, made on the revision the user saw.

use serde_json::json;

use super::support::Harness;

const SET_DEVELOPER: &str = r#"mutation($changes: [ServiceVersionChange!]!, $expected: String!, $comment: String!) {
  setDeveloperDesiredVersions(changes: $changes, expectedRevision: $expected, comment: $comment) { id summary author { name email } parents proposedBranch }
}"#;

#[tokio::test]
async fn an_edit_is_one_commit_by_the_account_with_the_comment() {
    let harness = Harness::start().await;
    let before = harness.remote.rev_parse("main");
    harness.wait_in_force(&before).await;
    let data = harness
        .ok(
            &harness.developer,
            SET_DEVELOPER,
            json!({"changes": [{"service": "api", "version": "acme-1.0.1"}], "expected": before, "comment": "Ship the fix for #42"}),
        )
        .await;
    let commit = data["setDeveloperDesiredVersions"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        data["setDeveloperDesiredVersions"]["parents"],
        json!([before])
    );
    // No policy.yaml: a commit on the branch, not a branch for review.
    assert_eq!(
        data["setDeveloperDesiredVersions"]["proposedBranch"],
        serde_json::Value::Null
    );
    // The commit is in the remote the team shares, not only in the server's clone.
    assert_eq!(harness.remote.rev_parse("main"), commit);
    let author = harness
        .remote
        .git(&["log", "-1", "--format=%an <%ae>|%s", "main"]);
    assert_eq!(author.trim(), "Dee Veloper <dev@acme>|Ship the fix for #42");
    // Only the version line changed; the team's comment survived.
    let file = harness.remote.show("main", "desired/developer.yaml");
    assert_eq!(file, "# pinned by the team\nversions:\n  api: acme-1.0.1\n");
    harness.wait_in_force(&commit).await;
    let desired = harness
        .ok(
            &harness.builder,
            "{ developerDesiredVersions { service version } }",
            json!({}),
        )
        .await;
    assert_eq!(
        desired["developerDesiredVersions"],
        json!([{"service": "api", "version": "acme-1.0.1"}])
    );
    // Any revision can still be read.
    let old = harness
        .ok(
            &harness.builder,
            "query($r: String!) { developerDesiredVersions(revision: $r) { version } }",
            json!({"r": before}),
        )
        .await;
    assert_eq!(old["developerDesiredVersions"][0]["version"], "acme-1.0.0");
}

#[tokio::test]
async fn a_stale_edit_is_refused_and_writes_nothing() {
    let harness = Harness::start().await;
    let seen = harness.remote.rev_parse("main");
    // Someone else pushes meanwhile.
    harness
        .work
        .write("desired/client.yaml", "versions:\n  web: acme-2.0.0\n");
    let theirs = harness
        .work
        .commit("Pin web", &vupdate_test_support::Person::bob());
    harness.work.push("origin", "main");
    let (code, message) = harness
        .fails(
            &harness.developer,
            SET_DEVELOPER,
            json!({"changes": [{"service": "api", "version": "acme-1.0.1"}], "expected": seen, "comment": "Blind edit"}),
        )
        .await;
    assert_eq!(code, "STALE", "{message}");
    assert_eq!(
        harness.remote.rev_parse("main"),
        theirs,
        "the remote is untouched"
    );
}

#[tokio::test]
async fn bad_edits_name_the_argument_and_write_nothing() {
    let harness = Harness::start().await;
    let head = harness.remote.rev_parse("main");
    let cases = [
        (
            json!([{"service": "api", "version": "not a version"}]),
            "Why",
            "changes.version",
        ),
        (
            json!([{"service": "api", "version": "acme-1.0.1"}]),
            "  ",
            "comment",
        ),
        (
            json!([{"service": "api", "version": "acme-1.0.1"}, {"service": "api", "version": null}]),
            "Twice",
            "twice",
        ),
        (
            json!([{"service": "ghost", "version": "acme-1.0.0"}]),
            "Unknown service",
            "ghost",
        ),
    ];
    for (changes, comment, named) in cases {
        let (code, message) = harness
            .fails(
                &harness.developer,
                SET_DEVELOPER,
                json!({"changes": changes, "expected": head, "comment": comment}),
            )
            .await;
        assert!(
            code == "BAD_REQUEST" || code == "INVALID_EDIT",
            "{changes}: {code} {message}"
        );
        assert!(
            message.contains(named),
            "{changes}: `{message}` should name `{named}`"
        );
    }
    assert_eq!(harness.remote.rev_parse("main"), head);
}

#[tokio::test]
async fn revert_undoes_a_revision_and_history_lists_both() {
    let harness = Harness::start().await;
    let first = harness.remote.rev_parse("main");
    let bump = harness
        .ok(
            &harness.developer,
            SET_DEVELOPER,
            json!({"changes": [{"service": "api", "version": "acme-1.0.1"}], "expected": first, "comment": "Bump api"}),
        )
        .await["setDeveloperDesiredVersions"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let revert = harness
        .ok(
            &harness.admin,
            "mutation($r: String!, $e: String!) { revertRevision(revision: $r, expectedRevision: $e) { id summary } }",
            json!({"r": bump, "e": bump}),
        )
        .await;
    assert_eq!(revert["revertRevision"]["summary"], "Revert \"Bump api\"");
    assert_eq!(
        harness.remote.show("main", "desired/developer.yaml"),
        "# pinned by the team\nversions:\n  api: acme-1.0.0\n"
    );
    let history = harness
        .ok(
            &harness.developer,
            "{ desiredVersionsHistory(limit: 10) { revision { summary } developerChanged developer { version } } }",
            json!({}),
        )
        .await;
    let summaries: Vec<&str> = history["desiredVersionsHistory"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["revision"]["summary"].as_str().expect("summary"))
        .collect();
    assert_eq!(
        summaries,
        ["Revert \"Bump api\"", "Bump api", "First state"]
    );
}

#[tokio::test]
async fn build_developer_version_commits_the_next_build_number() {
    let harness = Harness::start().await;
    let head = harness.remote.rev_parse("main");
    harness.wait_in_force(&head).await;
    let build = "mutation($e: String!, $v: String) { buildDeveloperVersion(service: \"api\", version: $v, expectedRevision: $e, comment: \"New build\") { id } }";
    let next = harness
        .ok(&harness.developer, build, json!({"e": head}))
        .await["buildDeveloperVersion"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(
        harness
            .remote
            .show("main", "desired/developer.yaml")
            .contains("api: acme-1.0.1")
    );
    let (code, message) = harness
        .fails(
            &harness.developer,
            build,
            json!({"e": next, "v": "other-1.0.0"}),
        )
        .await;
    assert_eq!(code, "BAD_REQUEST", "{message}");
    assert!(message.contains("acme"), "{message}");
}

#[tokio::test]
async fn consumers_see_their_profile_and_updaters_the_client_versions() {
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    let (code, _) = harness
        .fails(
            &harness.updater,
            "{ developerDesiredVersions { service } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    // `api` is in `self` and has no client entry: it follows its developer version.
    let client = harness
        .ok(
            &harness.updater,
            "{ clientDesiredVersions(services: [\"api\"]) { service version } }",
            json!({}),
        )
        .await;
    assert_eq!(
        client["clientDesiredVersions"],
        json!([{"service": "api", "version": "acme-1.0.0"}])
    );
    // The consumer is not in consumers.yaml: refused with a reason, never all versions.
    let (code, message) = harness
        .fails(
            &harness.consumer,
            "{ developerDesiredVersions { service } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN", "{message}");
    assert!(message.contains("consumers.yaml"), "{message}");
}

#[tokio::test]
async fn build_settings_are_read_merged_and_edited_as_a_commit() {
    let harness = Harness::start().await;
    let head = harness.remote.rev_parse("main");
    harness.wait_in_force(&head).await;
    let set = r#"mutation($e: String!) {
      setBuildSettings(service: "api", expectedRevision: $e, comment: "Build api from the release branch",
        developer: {sources: [{name: "api", url: "https://git.example.invalid/api.git", branch: "release"}],
                    macroValues: [{name: "port", value: "8080"}]}) { id }
    }"#;
    let commit =
        harness.ok(&harness.admin, set, json!({"e": head})).await["setBuildSettings"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
    assert_eq!(harness.remote.rev_parse("main"), commit);
    harness.wait_in_force(&commit).await;
    let read = harness
        .ok(
            &harness.builder,
            r#"{ buildSettings(service: "api") { developer { sources { name branch cloneSubmodules } macroValues { name value } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        read["buildSettings"]["developer"],
        json!({"sources": [{"name": "api", "branch": "release", "cloneSubmodules": true}], "macroValues": [{"name": "port", "value": "8080"}]})
    );
    let (code, message) = harness
        .fails(
            &harness.admin,
            r#"mutation($e: String!) { removeService(service: "api", expectedRevision: $e, comment: "Drop api") { id } }"#,
            json!({"e": commit}),
        )
        .await;
    assert_eq!(code, "INVALID_EDIT", "{message}");
    assert!(message.contains("desired/developer.yaml"), "{message}");
    let (code, _) = harness
        .fails(&harness.developer, set, json!({"e": commit}))
        .await;
    assert_eq!(code, "FORBIDDEN");
}

#[tokio::test]
async fn a_websocket_message_far_larger_than_the_read_buffer_arrives_whole() {
    // The server reads sockets in 1 KiB chunks (an idle subscription's memory); a message
    // of 600 KiB (the limit is 1 MiB) must still be read whole, and its answer sent.
    let harness = Harness::start().await;
    let head = harness.remote.rev_parse("main");
    harness.wait_in_force(&head).await;
    let mut socket = harness.socket(&harness.updater).await;
    let padding = format!("# {}\n", "x".repeat(600 << 10));
    let query = format!(
        "{padding}subscription {{ clientDesiredVersionsChanged(services: [\"api\"]) {{ service version revision }} }}"
    );
    socket.subscribe("big", &query, json!({})).await;
    let first = socket.next_message().await;
    assert_eq!(first["id"], "big", "{first}");
    assert_eq!(
        first["payload"]["data"]["clientDesiredVersionsChanged"],
        json!([{"service": "api", "version": "acme-1.0.0", "revision": head}]),
        "{first}"
    );
    // A large answer: the refusal of an unknown 300 KiB field name quotes the name (as an
    // `error`, or a `next` carrying `errors`, as the protocol allows).
    let name = format!("f{}", "y".repeat(300 << 10));
    socket
        .subscribe("long", &format!("subscription {{ {name} }}"), json!({}))
        .await;
    let refused = socket.next_message().await;
    assert_eq!(refused["id"], "long", "the answer to the second operation");
    assert!(refused.to_string().contains("errors") || refused["type"] == "error");
    assert!(
        refused.to_string().contains(&name),
        "the refusal quotes the whole name"
    );
}
