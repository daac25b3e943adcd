//! Secrets through GraphQL: set by an administrator, listed by name and time, never shown.

use serde_json::json;

use super::support::Harness;

#[tokio::test]
async fn secrets_are_set_and_listed_without_their_values() {
    let harness = Harness::start().await;
    let set = harness
        .ok(
            &harness.admin,
            "mutation($n: String!, $v: String!) { setSecret(name: $n, value: $v) { name setAt } }",
            json!({"n": "jetto-token", "v": "tok-5ecret-77"}),
        )
        .await;
    assert_eq!(set["setSecret"]["name"], "jetto-token");
    let listed = harness
        .ok(&harness.admin, "{ secrets { name setAt } }", json!({}))
        .await;
    assert_eq!(listed["secrets"][0]["name"], "jetto-token");
    assert!(!listed.to_string().contains("tok-5ecret-77"));
    let found = vupdate_test_support::files_containing(&[harness.data.path()], "tok-5ecret-77");
    assert!(
        found.is_empty(),
        "sealed in the store: the value is in no file: {found:?}"
    );
    // Other roles may not read or write them.
    let (code, _) = harness
        .fails(&harness.developer, "{ secrets { name } }", json!({}))
        .await;
    assert_eq!(code, "FORBIDDEN");
    // A bad name is refused with a code, and the value is not in the answer.
    let response = harness
        .graphql(
            &harness.admin,
            "mutation($n: String!, $v: String!) { setSecret(name: $n, value: $v) { name } }",
            json!({"n": "a b", "v": "tok-5ecret-77"}),
        )
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "INVALID_SECRET"
    );
    assert!(
        !response.to_string().contains("tok-5ecret-77"),
        "{response}"
    );
    let removed = harness
        .ok(
            &harness.admin,
            "mutation { removeSecret(name: \"jetto-token\") }",
            json!({}),
        )
        .await;
    assert_eq!(removed["removeSecret"], true);
    let listed = harness
        .ok(&harness.admin, "{ secrets { name } }", json!({}))
        .await;
    assert_eq!(listed["secrets"], json!([]));
}
