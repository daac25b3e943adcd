//! Edits by policy: with `policy.yaml` asking for review on `main`, an API edit (and a
//! revert) goes to a branch `vupdate/edit/...` in the remote, `main` does not move, the
//! mutation answers with the commit and the branch, and `status` lists the branch until
//! it is merged.

use serde_json::{Value, json};
use vupdate_test_support::Person;

use super::support::Harness;

const SET_DEVELOPER: &str = r#"mutation($changes: [ServiceVersionChange!]!, $expected: String!, $comment: String!) {
  setDeveloperDesiredVersions(changes: $changes, expectedRevision: $expected, comment: $comment) { id summary parents proposedBranch }
}"#;

const WAITING: &str = "{ status { stateRepo { proposedEdits { branch commit { id summary } } } } }";

#[tokio::test]
async fn an_edit_under_a_pull_request_policy_makes_a_branch_not_a_commit_on_main() {
    let harness = Harness::start().await;
    harness.work.write(
        "policy.yaml",
        "# Desired state on main is reviewed.\nedits:\n  - branch: main\n    mode: pullRequest\n",
    );
    let policy = harness
        .work
        .commit("Review edits of main", &Person::alice());
    harness.push_and_hook().await;
    harness.wait_in_force(&policy).await;

    let data = harness
        .ok(
            &harness.developer,
            SET_DEVELOPER,
            json!({"changes": [{"service": "api", "version": "acme-1.0.1"}], "expected": policy, "comment": "Ship the fix for #42"}),
        )
        .await;
    let answer = &data["setDeveloperDesiredVersions"];
    let branch = answer["proposedBranch"]
        .as_str()
        .expect("a branch")
        .to_owned();
    assert!(branch.starts_with("vupdate/edit/dev/"), "{branch}");
    assert_eq!(answer["parents"], json!([policy]));
    assert_eq!(
        harness.remote.rev_parse("main"),
        policy,
        "main does not move"
    );
    assert_eq!(
        harness.remote.rev_parse(&branch),
        answer["id"].as_str().expect("id")
    );
    assert_eq!(
        harness.remote.show(&branch, "desired/developer.yaml"),
        "# pinned by the team\nversions:\n  api: acme-1.0.1\n"
    );
    let status = harness.ok(&harness.developer, WAITING, json!({})).await;
    let waiting = &status["status"]["stateRepo"]["proposedEdits"];
    assert_eq!(
        waiting,
        &json!([{"branch": branch, "commit": {"id": answer["id"], "summary": "Ship the fix for #42"}}])
    );

    // A revert is reviewed too.
    let revert: Value = harness
        .ok(
            &harness.admin,
            "mutation($r: String!, $e: String!) { revertRevision(revision: $r, expectedRevision: $e) { id proposedBranch } }",
            json!({"r": policy, "e": policy}),
        )
        .await;
    let revert_branch = revert["revertRevision"]["proposedBranch"]
        .as_str()
        .expect("a branch");
    assert!(revert_branch.starts_with("vupdate/edit/admin/"), "{revert}");
    assert_eq!(harness.remote.rev_parse("main"), policy);

    // Merged by a person: the edit no longer waits; the revert still does.
    harness.work.git(&["fetch", "origin", &branch]);
    harness.work.git(&["merge", "--ff-only", "FETCH_HEAD"]);
    harness.push_and_hook().await;
    harness
        .wait_in_force(answer["id"].as_str().expect("id"))
        .await;
    let status = harness.ok(&harness.developer, WAITING, json!({})).await;
    let waiting = status["status"]["stateRepo"]["proposedEdits"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["branch"], revert_branch);
}
