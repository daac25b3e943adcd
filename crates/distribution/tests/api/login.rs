//! Password checks under attack: failed logins make the account and the address wait
//! longer each time (a correct password resets them), and a flood beyond the hashing
//! threads and their queue is refused at once instead of hashed hundreds at a time.

use serde_json::{Value, json};
use vupdate_distribution::auth::PasswordCost;

use super::support::{Harness, Options, PASSWORD};

const LOGIN: &str =
    "mutation($a: String!, $p: String!) { login(account: $a, password: $p) { token } }";

/// The error code of an answer ("" when it has none).
fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// Logs in as `account` with `password` from `address`; the status, `Retry-After` and answer.
async fn login(
    harness: &Harness,
    address: &str,
    account: &str,
    password: &str,
) -> (u16, Option<String>, Value) {
    harness
        .graphql_from(address, LOGIN, json!({"a": account, "p": password}))
        .await
}

/// Fails `times` logins of `account` from `address` with a wrong password.
async fn fail(harness: &Harness, address: &str, account: &str, times: usize) {
    for n in 0..times {
        let (_, _, answer) = login(harness, address, account, "a wrong password!").await;
        assert_eq!(
            code(&answer),
            "INVALID_CREDENTIALS",
            "failure {n} of `{account}`: {answer}"
        );
    }
}

/// A harness whose third failure in a row makes the account or address wait an hour.
async fn strict() -> Harness {
    Harness::start_with(Options {
        extra_config: "limits:\n  login:\n    freeFailures: 2\n    baseDelay: 1h\n    maxDelay: 2h\n",
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn an_account_that_failed_too_often_waits_whatever_the_address_and_password() {
    let harness = strict().await;
    // Three addresses, one failure each: none of them is throttled, the account is.
    for address in ["127.0.0.4", "127.0.0.5", "127.0.0.6"] {
        fail(&harness, address, "dev", 1).await;
    }
    let (status, retry_after, answer) = login(&harness, "127.0.0.7", "dev", PASSWORD).await;
    assert_eq!(code(&answer), "TOO_MANY_REQUESTS", "{answer}");
    assert_eq!(status, 429, "{answer}");
    assert_eq!(retry_after.as_deref(), Some("3600"));
    assert_eq!(answer["errors"][0]["extensions"]["retryAfterSeconds"], 3600);
    let message = answer["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("`dev`") && message.contains("try again in 1h"),
        "{message}"
    );
    assert!(answer["data"].is_null(), "{answer}");
    // Another account from the same addresses is not concerned.
    let (_, _, answer) = login(&harness, "127.0.0.4", "admin", PASSWORD).await;
    assert!(answer["errors"].is_null(), "{answer}");
}

#[tokio::test]
async fn an_address_that_failed_too_often_waits_whatever_the_account() {
    let harness = strict().await;
    for account in ["nobody", "nobody-else", "dev"] {
        fail(&harness, "127.0.0.3", account, 1).await;
    }
    let (status, _, answer) = login(&harness, "127.0.0.3", "admin", PASSWORD).await;
    assert_eq!(
        (status, code(&answer)),
        (429, "TOO_MANY_REQUESTS"),
        "{answer}"
    );
    let message = answer["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("from 127.0.0.3"), "{message}");
    // The same account from another address logs in.
    let (status, _, answer) = login(&harness, "127.0.0.8", "admin", PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["data"]["login"]["token"].is_string(), "{answer}");
}

#[tokio::test]
async fn a_correct_password_resets_the_count() {
    let harness = strict().await;
    fail(&harness, "127.0.0.9", "dev", 2).await;
    let (_, _, answer) = login(&harness, "127.0.0.9", "dev", PASSWORD).await;
    assert!(answer["errors"].is_null(), "{answer}");
    // Two free failures again, and the third is still checked (and counted)...
    fail(&harness, "127.0.0.9", "dev", 3).await;
    // ...after which the account waits.
    let (_, _, answer) = login(&harness, "127.0.0.9", "dev", PASSWORD).await;
    assert_eq!(code(&answer), "TOO_MANY_REQUESTS", "{answer}");
}

#[tokio::test]
async fn wrong_current_passwords_in_change_password_count_as_failed_logins() {
    let harness = strict().await;
    let change = "mutation($o: String!) { changePassword(oldPassword: $o, newPassword: \"another long password\") }";
    for _ in 0..3 {
        let answer = harness
            .graphql(&harness.developer, change, json!({"o": "not my password"}))
            .await;
        assert_eq!(code(&answer), "INVALID_CREDENTIALS", "{answer}");
    }
    let answer = harness
        .graphql(&harness.developer, change, json!({"o": PASSWORD}))
        .await;
    assert_eq!(code(&answer), "TOO_MANY_REQUESTS", "{answer}");
    let (_, _, answer) = login(&harness, "127.0.0.10", "dev", PASSWORD).await;
    assert_eq!(code(&answer), "TOO_MANY_REQUESTS", "{answer}");
}

/// A harness with one hashing thread, one waiting place, hashes at the production cost
/// (tens of ms), and a throttle that does not get in the way: only the pool can refuse.
async fn one_hashing_thread() -> Harness {
    Harness::start_with(Options {
        extra_config: "limits:\n  login:\n    hashWorkers: 1\n    hashQueue: 1\n    freeFailures: 100000\n",
        password_cost: PasswordCost::DEFAULT,
        ..Options::default()
    })
    .await
}

/// Rounds of 12 wrong logins at once (of `account`, or of a new unknown account each
/// when `None`) from 127.0.0.2, until one round finds the single hashing thread and its
/// queue taken; every answer of every round. A round keeps the thread busy long enough
/// for most logins to find it taken; a loaded machine may spread a round out, so a few
/// rounds are allowed before the test gives up.
async fn flood_until_refused(
    harness: &Harness,
    account: Option<&str>,
) -> Vec<(u16, Option<String>, Value)> {
    let mut all = Vec::new();
    for round in 0..5 {
        let calls = (0..12).map(|n| async move {
            let unknown = format!("nobody-{round}-{n}");
            login(harness, "127.0.0.2", account.unwrap_or(&unknown), "wrong!").await
        });
        let answers = futures::future::join_all(calls).await;
        for (_, _, answer) in &answers {
            assert!(
                matches!(code(answer), "TOO_MANY_REQUESTS" | "INVALID_CREDENTIALS"),
                "{answer}"
            );
        }
        all.extend(answers);
        if all
            .iter()
            .any(|(_, _, answer)| code(answer) == "TOO_MANY_REQUESTS")
        {
            return all;
        }
    }
    panic!("12 logins at once never found the single hashing thread and its queue busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_past_the_hashing_queue_is_refused_at_once() {
    let harness = one_hashing_thread().await;
    let answers = flood_until_refused(&harness, None).await;
    let (status, retry_after, answer) = answers
        .iter()
        .find(|(_, _, answer)| code(answer) == "TOO_MANY_REQUESTS")
        .expect("a refusal");
    assert_eq!(*status, 429, "{answer}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let message = answer["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("checking 1 passwords with 1 more waiting"),
        "{message}"
    );
}

/// How many times the store has read the `accounts` collection, from `/metrics`.
async fn account_reads(harness: &Harness) -> u64 {
    let metrics = harness
        .client
        .get(harness.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    let prefix = "vupdate_store_operation_duration_seconds_count{operation=\"find\",collection=\"accounts\",outcome=\"ok\"} ";
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .map_or(0, |count| count.parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_refused_by_the_hashing_pool_never_reads_the_store() {
    // Each login read its account before the pool could refuse it: a flood of refused
    // logins cost a blocking thread (and its memory) apiece.
    let harness = one_hashing_thread().await;
    let before = account_reads(&harness).await;
    let answers = flood_until_refused(&harness, Some("dev")).await;
    let after = account_reads(&harness).await;
    let checked = answers
        .iter()
        .filter(|(_, _, answer)| code(answer) == "INVALID_CREDENTIALS")
        .count() as u64;
    assert!(checked < answers.len() as u64, "some were refused");
    assert_eq!(
        after - before,
        checked,
        "{} logins, {checked} checked against the stored hash",
        answers.len()
    );
}
