//! Every query, mutation and subscription checks its caller's role before anything else:
//! anonymous callers and callers with a bad token get `UNAUTHENTICATED`, callers of another
//! role `FORBIDDEN`, and neither gets data.
//!
//! The operations are read from the schema itself and called with arguments made up from
//! their types (queries and mutations over HTTP, subscriptions over the WebSocket), so a
//! new field without an entry in its table fails these tests.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::support::Harness;

/// Who may call a field: `-` anyone at all; `*` anyone signed in (the resolver decides);
/// otherwise the roles named.
type Table = &'static [(&'static str, &'static [&'static str])];

/// Who may call each mutation.
const MUTATIONS: Table = &[
    ("login", &["-"]),
    ("changePassword", &["*"]),
    ("addUserAccount", &["admin"]),
    ("addServiceAccount", &["admin"]),
    ("addConsumerAccount", &["admin"]),
    ("changeAccountRole", &["admin"]),
    ("removeAccount", &["admin"]),
    ("issueAccessToken", &["admin"]),
    ("revokeAccessTokens", &["admin"]),
    ("setServiceProfile", &["admin"]),
    ("removeServiceProfile", &["admin"]),
    ("setBuildSettings", &["admin"]),
    ("removeService", &["admin"]),
    ("setDeveloperDesiredVersions", &["admin", "developer"]),
    ("setClientDesiredVersions", &["admin", "developer"]),
    ("revertRevision", &["admin", "developer"]),
    ("buildDeveloperVersion", &["admin", "developer"]),
    ("retryFailedBuilds", &["admin", "developer"]),
    ("rebuildClientVersion", &["admin", "developer"]),
    ("setTestedVersions", &["admin", "developer", "consumer"]),
    ("addDeveloperVersionInfo", &["admin", "builder"]),
    ("addClientVersionInfo", &["admin", "builder"]),
    ("removeDeveloperVersion", &["admin", "developer"]),
    ("removeClientVersion", &["admin", "developer"]),
    ("cancelTask", &["admin", "developer", "consumer"]),
    ("setServiceStates", &["admin", "updater", "consumer"]),
    ("addLogs", &["admin", "updater", "builder"]),
    ("addFaultReport", &["admin", "updater", "consumer"]),
    ("issueEnrolmentToken", &["admin"]),
    ("revokeEnrolmentToken", &["admin"]),
    // The enrolment token in the arguments is the credential.
    ("enrolUpdater", &["-"]),
    ("setSecret", &["admin"]),
    ("removeSecret", &["admin"]),
    ("setInstalledDesiredVersions", &["consumer"]),
    ("setConsumer", &["admin"]),
    ("removeConsumer", &["admin"]),
    ("setProvider", &["admin"]),
    ("removeProvider", &["admin"]),
    ("takeProviderVersions", &["admin", "developer"]),
    ("setProviderTestedVersions", &["admin", "developer"]),
    ("runBuilder", &["consumer"]),
    ("clearKnownBadVersion", &["admin", "developer"]),
];

/// Who may call each query.
const QUERIES: Table = &[
    ("ping", &["-"]),
    ("distributionInfo", &["-"]),
    ("enrolmentTokens", &["admin"]),
    ("whoAmI", &["*"]),
    ("accounts", &["admin"]),
    ("services", &["admin", "developer", "builder"]),
    ("buildSettings", &["admin", "developer", "builder"]),
    ("lastSourceCommit", &["admin", "developer"]),
    ("serviceProfiles", &["admin", "developer"]),
    ("status", &["admin", "developer", "builder"]),
    ("plan", &["admin", "developer"]),
    ("instanceCommits", &["admin", "developer"]),
    (
        "developerDesiredVersions",
        &["admin", "developer", "builder", "consumer"],
    ),
    (
        "clientDesiredVersions",
        &["admin", "developer", "builder", "updater"],
    ),
    ("desiredVersionsHistory", &["admin", "developer"]),
    ("testedVersions", &["admin", "developer", "consumer"]),
    (
        "developerVersionsInfo",
        &["admin", "developer", "builder", "consumer"],
    ),
    ("clientVersionsInfo", &["admin", "developer", "builder"]),
    ("tasks", &["admin", "developer"]),
    ("taskTypes", &["admin", "developer"]),
    ("taskServices", &["admin", "developer"]),
    ("serviceStates", &["admin", "developer", "updater"]),
    ("logs", &["admin", "developer"]),
    ("logValues", &["admin", "developer"]),
    ("logsTimeRange", &["admin", "developer"]),
    ("faults", &["admin", "developer"]),
    ("faultDistributions", &["admin", "developer"]),
    ("faultServices", &["admin", "developer"]),
    ("faultRoles", &["admin", "developer"]),
    ("knownBadVersions", &["admin", "developer"]),
    ("secrets", &["admin"]),
    ("consumerVersions", &["admin", "developer", "consumer"]),
    ("consumers", &["admin", "developer"]),
    ("providers", &["admin", "developer"]),
    ("providerTestedVersions", &["admin", "developer"]),
    ("remoteBuild", &["admin", "developer", "consumer"]),
];

/// Who may call each subscription.
const SUBSCRIPTIONS: Table = &[
    (
        "clientDesiredVersionsChanged",
        &["admin", "developer", "builder", "updater"],
    ),
    ("logs", &["admin", "developer", "consumer"]),
    ("statusChanged", &["admin", "developer", "builder"]),
    (
        "consumerVersionsChanged",
        &["admin", "developer", "consumer"],
    ),
];

const INTROSPECTION: &str = r#"{
  __schema {
    queryType { fields { ...F } }
    mutationType { fields { ...F } }
    subscriptionType { fields { ...F } }
    types { name kind enumValues { name } inputFields { name type { ...T } } }
  }
}
fragment F on __Field { name type { ...T } args { name type { ...T } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"#;

/// A value of GraphQL type `ty` that passes validation.
fn sample(ty: &Value, types: &BTreeMap<String, Value>) -> Value {
    match ty["kind"].as_str().expect("kind") {
        "NON_NULL" => sample(&ty["ofType"], types),
        "LIST" => json!([]),
        _ => {
            let name = ty["name"].as_str().expect("named type");
            let definition = &types[name];
            match definition["kind"].as_str().expect("kind") {
                "ENUM" => definition["enumValues"][0]["name"].clone(),
                "INPUT_OBJECT" => {
                    let fields = definition["inputFields"].as_array().expect("fields");
                    Value::Object(
                        fields
                            .iter()
                            .filter(|f| f["type"]["kind"] == "NON_NULL")
                            .map(|f| {
                                (
                                    f["name"].as_str().expect("name").to_owned(),
                                    sample(&f["type"], types),
                                )
                            })
                            .collect(),
                    )
                }
                _ => match name {
                    "Int" => json!(1),
                    "Float" => json!(1.5),
                    "Boolean" => json!(true),
                    "DateTime" => json!("2026-01-01T00:00:00Z"),
                    _ => json!("x"),
                },
            }
        }
    }
}

/// The GraphQL text of a type reference, for variable declarations.
fn type_text(ty: &Value) -> String {
    match ty["kind"].as_str().expect("kind") {
        "NON_NULL" => format!("{}!", type_text(&ty["ofType"])),
        "LIST" => format!("[{}]", type_text(&ty["ofType"])),
        _ => ty["name"].as_str().expect("name").to_owned(),
    }
}

/// Whether the innermost type of `ty` is an object (so the call needs a selection).
fn selection(ty: &Value, types: &BTreeMap<String, Value>) -> &'static str {
    let mut ty = ty;
    while !ty["ofType"].is_null() {
        ty = &ty["ofType"];
    }
    let name = ty["name"].as_str().unwrap_or_default();
    match types.get(name).and_then(|t| t["kind"].as_str()) {
        Some("OBJECT") => " { __typename }",
        _ => "",
    }
}

/// The root types, and how their operations travel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    Query,
    Mutation,
    Subscription,
}

impl Root {
    fn introspection_key(self) -> &'static str {
        match self {
            Root::Query => "queryType",
            Root::Mutation => "mutationType",
            Root::Subscription => "subscriptionType",
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            Root::Query => "query",
            Root::Mutation => "mutation",
            Root::Subscription => "subscription",
        }
    }
}

/// One field called with made-up arguments.
struct Call {
    name: String,
    query: String,
    variables: Value,
}

/// Every field of `root`, as a call.
fn calls(schema: &Value, root: Root) -> Vec<Call> {
    let types: BTreeMap<String, Value> = schema["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| (t["name"].as_str().expect("name").to_owned(), t.clone()))
        .collect();
    let fields = schema["__schema"][root.introspection_key()]["fields"]
        .as_array()
        .expect("fields");
    fields
        .iter()
        .map(|field| {
            let name = field["name"].as_str().expect("name").to_owned();
            let args = field["args"].as_array().expect("args");
            let arg = |a: &Value| a["name"].as_str().expect("name").to_owned();
            let declarations: Vec<String> = args
                .iter()
                .map(|a| format!("${}: {}", arg(a), type_text(&a["type"])))
                .collect();
            let uses: Vec<String> = args.iter().map(|a| format!("{0}: ${0}", arg(a))).collect();
            let variables: serde_json::Map<String, Value> = args
                .iter()
                .map(|a| (arg(a), sample(&a["type"], &types)))
                .collect();
            let wrap = |list: &[String]| {
                if list.is_empty() {
                    String::new()
                } else {
                    format!("({})", list.join(", "))
                }
            };
            Call {
                query: format!(
                    "{}{} {{ {name}{}{} }}",
                    root.keyword(),
                    wrap(&declarations),
                    wrap(&uses),
                    selection(&field["type"], &types)
                ),
                name,
                variables: Value::Object(variables),
            }
        })
        .collect()
}

/// The first answer to `call` from a caller with `token` (anonymous when empty): the
/// error code (empty when none) and the whole answer.
async fn answer(harness: &Harness, root: Root, token: &str, call: &Call) -> (String, Value) {
    let answer = if root == Root::Subscription {
        let mut socket = harness.socket(token).await;
        socket
            .subscribe("1", &call.query, call.variables.clone())
            .await;
        let message = socket.next_message().await;
        match message["type"].as_str() {
            Some("next") => message["payload"].clone(),
            Some("error") => json!({"errors": message["payload"], "data": null}),
            _ => panic!("`{}`: unexpected answer {message}", call.name),
        }
    } else {
        harness
            .graphql(token, &call.query, call.variables.clone())
            .await
    };
    let code = answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (code, answer)
}

/// Calls every field of `root` as every caller and checks each answer against `table`.
async fn check_every_field(harness: &Harness, root: Root, table: Table) {
    let schema = harness.ok(&harness.admin, INTROSPECTION, json!({})).await;
    let calls = calls(&schema, root);
    let table: BTreeMap<&str, &[&str]> = table.iter().copied().collect();
    let callers = [
        ("admin", harness.admin.clone()),
        ("developer", harness.developer.clone()),
        ("builder", harness.builder.clone()),
        ("updater", harness.updater.clone()),
        ("consumer", harness.consumer.clone()),
    ];
    let refused = |code: &str| code == "FORBIDDEN" || code == "UNAUTHENTICATED";
    for call in &calls {
        let name = call.name.as_str();
        let allowed = table
            .get(name)
            .unwrap_or_else(|| panic!("`{name}` has no entry in the table: say who may call it"));
        if allowed.contains(&"-") {
            let (code, response) = answer(harness, root, "", call).await;
            assert!(
                !refused(&code),
                "public `{name}` refused anonymous: {response:#}"
            );
            continue;
        }
        for token in ["", "not-a-token"] {
            let (code, response) = answer(harness, root, token, call).await;
            assert_eq!(
                code, "UNAUTHENTICATED",
                "`{name}` with token `{token}`: {response:#}\n{}\n{}",
                call.query, call.variables
            );
            assert!(
                response["data"].is_null(),
                "`{name}` gave data: {response:#}"
            );
        }
        // `*`: every signed-in caller reaches the resolver, which decides (e.g. whose
        // password may be changed).
        if allowed.contains(&"*") {
            continue;
        }
        for (role, token) in &callers {
            let (code, response) = answer(harness, root, token, call).await;
            if allowed.contains(role) {
                assert!(
                    !refused(&code),
                    "`{name}` refused {role}, who may call it: {response:#}"
                );
            } else {
                assert_eq!(code, "FORBIDDEN", "`{name}` as {role}: {response:#}");
                assert!(
                    response["data"].is_null(),
                    "`{name}` gave {role} data: {response:#}"
                );
            }
        }
    }
    let missing: Vec<&&str> = table
        .keys()
        .filter(|name| !calls.iter().any(|call| call.name == ***name))
        .collect();
    assert!(
        missing.is_empty(),
        "the table names fields the schema lacks: {missing:?}"
    );
}

#[tokio::test]
async fn every_mutation_refuses_callers_without_its_role() {
    let harness = Harness::start().await;
    check_every_field(&harness, Root::Mutation, MUTATIONS).await;
}

#[tokio::test]
async fn every_query_refuses_callers_without_its_role() {
    let harness = Harness::start().await;
    check_every_field(&harness, Root::Query, QUERIES).await;
}

#[tokio::test]
async fn every_subscription_refuses_callers_without_its_role() {
    let harness = Harness::start().await;
    // Stored lines make a `logs` subscription from line 1 answer at once for those who
    // may follow logs, so every caller gets a first answer to judge.
    harness
        .ok(
            &harness.updater,
            r#"mutation { addLogs(service: "api", instance: "vm", directory: "/d", process: "1", logs: [
                {time: "2026-01-01T00:00:00Z", level: "INFO", unit: "U", message: "one"},
                {time: "2026-01-01T00:00:01Z", level: "INFO", unit: "U", message: "two"},
                {time: "2026-01-01T00:00:02Z", level: "INFO", unit: "U", message: "three"}]) }"#,
            json!({}),
        )
        .await;
    check_every_field(&harness, Root::Subscription, SUBSCRIPTIONS).await;
}

#[tokio::test]
async fn a_pending_password_change_allows_nothing_else() {
    let harness = Harness::start().await;
    harness
        .ok(
            &harness.admin,
            r#"mutation { addUserAccount(account: "new", name: "New", role: DEVELOPER, password: "a temporary password") { account } }"#,
            json!({}),
        )
        .await;
    let pending = harness.login("new", "a temporary password").await;
    let (code, _) = harness
        .fails(
            &pending,
            "{ developerDesiredVersions { service } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "PASSWORD_CHANGE_REQUIRED");
    let me = harness
        .ok(
            &pending,
            "{ whoAmI { account mustChangePassword } }",
            json!({}),
        )
        .await;
    assert_eq!(me["whoAmI"]["mustChangePassword"], true);
    harness
        .ok(
            &pending,
            r#"mutation { changePassword(oldPassword: "a temporary password", newPassword: "a brand new password") }"#,
            json!({}),
        )
        .await;
    let fresh = harness.login("new", "a brand new password").await;
    // Answered once the server has looked at the state repo (STATE_UNAVAILABLE before).
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    harness
        .ok(
            &fresh,
            "{ developerDesiredVersions { service } }",
            json!({}),
        )
        .await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_account_look_the_same() {
    let harness = Harness::start().await;
    let query =
        "mutation($a: String!) { login(account: $a, password: \"wrong password!\") { token } }";
    let (known, known_message) = harness.fails("", query, json!({"a": "dev"})).await;
    let (unknown, unknown_message) = harness.fails("", query, json!({"a": "nobody"})).await;
    assert_eq!(known, "INVALID_CREDENTIALS");
    assert_eq!((known, known_message), (unknown, unknown_message));
}
