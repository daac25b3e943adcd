//! Every mutation checks its caller's role before anything else: anonymous callers get
//! `UNAUTHENTICATED`, callers of another role `FORBIDDEN`, and neither gets data.
//!
//! The mutations are read from the schema itself and called with arguments made up from
//! their types, so a new mutation without an entry in `ALLOWED` fails this test.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::support::Harness;

/// Who may call each mutation (`*`: anyone signed in; `-`: anyone at all).
const ALLOWED: &[(&str, &[&str])] = &[
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
];

const INTROSPECTION: &str = r#"{
  __schema {
    mutationType { fields { name type { ...T } args { name type { ...T } } } }
    types { name kind enumValues { name } inputFields { name type { ...T } } }
  }
}
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

#[tokio::test]
async fn every_mutation_refuses_callers_without_its_role() {
    let harness = Harness::start().await;
    let schema = harness.ok(&harness.admin, INTROSPECTION, json!({})).await;
    let types: BTreeMap<String, Value> = schema["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| (t["name"].as_str().expect("name").to_owned(), t.clone()))
        .collect();
    let mutations = schema["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("mutations")
        .clone();
    let table: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let callers = [
        ("admin", harness.admin.clone()),
        ("developer", harness.developer.clone()),
        ("builder", harness.builder.clone()),
        ("updater", harness.updater.clone()),
        ("consumer", harness.consumer.clone()),
    ];
    let mut checked = 0;
    for mutation in &mutations {
        let name = mutation["name"].as_str().expect("name");
        let allowed = table.get(name).unwrap_or_else(|| {
            panic!("mutation `{name}` has no entry in ALLOWED: say who may call it")
        });
        if allowed.contains(&"-") {
            continue;
        }
        let args = mutation["args"].as_array().expect("args");
        let declarations: Vec<String> = args
            .iter()
            .map(|a| {
                format!(
                    "${}: {}",
                    a["name"].as_str().expect("name"),
                    type_text(&a["type"])
                )
            })
            .collect();
        let uses: Vec<String> = args
            .iter()
            .map(|a| format!("{0}: ${0}", a["name"].as_str().expect("name")))
            .collect();
        let variables: serde_json::Map<String, Value> = args
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().expect("name").to_owned(),
                    sample(&a["type"], &types),
                )
            })
            .collect();
        let wrap = |list: &[String]| {
            if list.is_empty() {
                String::new()
            } else {
                format!("({})", list.join(", "))
            }
        };
        let query = format!(
            "mutation{} {{ {name}{}{} }}",
            wrap(&declarations),
            wrap(&uses),
            selection(&mutation["type"], &types)
        );
        let variables = Value::Object(variables);

        let (code, message) = harness.fails("", &query, variables.clone()).await;
        assert_eq!(
            code, "UNAUTHENTICATED",
            "anonymous `{name}`: {message}\n{query}\n{variables}"
        );
        let (code, _) = harness
            .fails("not-a-token", &query, variables.clone())
            .await;
        assert_eq!(code, "UNAUTHENTICATED", "`{name}` with a bad token");
        // `*`: every signed-in caller reaches the resolver, which decides (e.g. whose
        // password may be changed); only anonymous callers are refused up front.
        if allowed.contains(&"*") {
            checked += 1;
            continue;
        }
        for (role, token) in &callers {
            let may = allowed.contains(role);
            let response = harness.graphql(token, &query, variables.clone()).await;
            let code = response["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("");
            if may {
                assert!(
                    code != "FORBIDDEN" && code != "UNAUTHENTICATED",
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
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} mutations were checked");
    let missing: Vec<&&str> = table
        .keys()
        .filter(|name| !mutations.iter().any(|m| m["name"] == ***name))
        .collect();
    assert!(
        missing.is_empty(),
        "ALLOWED names mutations the schema lacks: {missing:?}"
    );
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
