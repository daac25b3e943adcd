//! A remote builder: `orbit`'s settings name its provider `jetto` as the builder of
//! `hello`, so jetto's builder builds orbit's developer and client versions with orbit's
//! settings at orbit's commit; the images come back to orbit, the build lines stream into
//! orbit's tasks, and orbit's updater runs the result.

use serde_json::json;
use tempfile::TempDir;

use super::world::{Node, Vm, eventually, free_port};
use crate::hello::hello_source;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_builder_is_its_provider_is_built_there_and_runs_here() {
    let root = TempDir::new().expect("dir");
    let root = root.path();
    let source = hello_source();
    let orbit_port = free_port();

    let jetto_files = vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        ("services/hello.yaml", String::new()),
        (
            "profiles.yaml",
            "profiles:\n  partner: [hello]\n".to_owned(),
        ),
        (
            "consumers.yaml",
            format!(
                "consumers:\n  orbit:\n    profile: partner\n    url: http://127.0.0.1:{orbit_port}\n"
            ),
        ),
    ];
    let jetto = Node::start(root, "jetto", free_port(), &jetto_files, "", &[]).await;
    let token = jetto.consumer_token("orbit").await;

    let orbit_files = vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        (
            "services/hello.yaml",
            format!(
                "builder: jetto\ndeveloper:\n  sources:\n    - name: hello\n      git:\n        url: {}\n        branch: main\n",
                source.path().display()
            ),
        ),
        ("profiles.yaml", "profiles:\n  self: [hello]\n".to_owned()),
        (
            "desired/developer.yaml",
            "versions:\n  hello: orbit-1.0.0\n".to_owned(),
        ),
        (
            "providers.yaml",
            format!(
                "providers:\n  jetto:\n    url: {}\n    accessTokenSecret: jetto-token\n",
                jetto.base
            ),
        ),
    ];
    let orbit = Node::start(
        root,
        "orbit",
        orbit_port,
        &orbit_files,
        "",
        &[("jetto-token", &token)],
    )
    .await;
    let vm = Vm::start(root, &orbit, "orbit-vm");
    let explain = || {
        format!(
            "--- jetto ---\n{}\n--- orbit ---\n{}\n--- vm ---\n{}",
            jetto.log(),
            orbit.log(),
            std::fs::read_to_string(&vm.log).unwrap_or_default()
        )
    };
    eventually("orbit-vm serving orbit-1.0.0", explain, || async {
        (vm.serving().as_deref() == Some("orbit-1.0.0")).then_some(())
    })
    .await;

    // jetto ran both builds as tasks for orbit; no parameter carries orbit's token.
    let tasks = jetto
        .query(
            "{ tasks(type: \"RunBuilderForConsumer\") { id terminationStatus parameters { name value } } }",
            json!({}),
        )
        .await;
    let tasks = tasks["tasks"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    for task in &tasks {
        assert_eq!(task["terminationStatus"], true, "{task}");
        for parameter in task["parameters"].as_array().expect("parameters") {
            let value = parameter["value"].as_str().unwrap_or_default();
            assert!(!value.starts_with("eyJ"), "a token as parameter: {task}");
        }
    }
    // orbit's developer build task holds the lines of jetto's builder.
    let build = orbit
        .query(
            "{ tasks(type: \"BuildDeveloperVersion\") { id terminationStatus } }",
            json!({}),
        )
        .await;
    let id = build["tasks"][0]["id"].as_str().expect("task").to_owned();
    assert_eq!(build["tasks"][0]["terminationStatus"], true);
    let log = orbit
        .query(
            "query($t: String!) { logs(filter: {task: $t}, limit: 1000) { unit message } }",
            json!({"t": id}),
        )
        .await;
    let text = log["logs"].to_string();
    assert!(text.contains("asking jetto to build it"), "{text}");
    assert!(
        text.contains("building developer version orbit-1.0.0 of hello from state commit"),
        "the remote builder's own lines: {text}"
    );
    let record = orbit
        .query(
            "{ developerVersionsInfo(service: \"hello\") { version buildInfo { sources { commit } } } }",
            json!({}),
        )
        .await;
    assert_eq!(record["developerVersionsInfo"][0]["version"], "orbit-1.0.0");
}
