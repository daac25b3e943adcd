//! Safe changes (issue 16) with real updaters and the real `hello`: a version that runs
//! but fails its health check is rolled back on every instance and recorded as
//! known-bad, with the instances, the reason and its fault reports as evidence.

use serde_json::json;
use vupdate_test_support::Person;

use super::world::World;

/// `hello`'s health check: GET `/health` on the port it wrote; a non-2xx answer or no
/// answer makes `urlopen` raise, so the probe exits 1.
const HEALTH_CHECK: &str = r#""healthCheck": {
            "command": {
              "command": "python3",
              "args": ["-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:' + open('port').read().strip() + '/health', timeout=1)"]
            },
            "intervalMs": 200,
            "timeoutMs": 2000,
            "startWindowMs": 3000
          },
          "uploadLogs": true,"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_its_health_check_is_rolled_back_and_marked_known_bad() {
    let world = World::start().await;
    // hello 1.1.0 gains a health check and answers 503 on /health: it runs, but is never
    // healthy.
    let update = world.source.read("update.json");
    assert!(update.contains(r#""uploadLogs": true,"#), "{update}");
    world.source.write(
        "update.json",
        &update.replacen(r#""uploadLogs": true,"#, HEALTH_CHECK, 1),
    );
    let serve = world.source.read("serve.py");
    let unhealthy = serve.replacen(
        "    def do_GET(self):\n",
        "    def do_GET(self):\n        if self.path == '/health':\n            self.send_response(503)\n            self.send_header('Content-Length', '0')\n            self.end_headers()\n            return\n",
        1,
    );
    assert_ne!(unhealthy, serve, "serve.py has no do_GET to change");
    world.source.write("serve.py", &unhealthy);
    world.source.commit(
        "hello: a health check, and a /health that fails",
        &Person::alice(),
    );
    world.push_source();
    world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;

    let known_bad = world
        .eventually("hello acme-1.1.0 known-bad on both instances with its fault reports", || async {
            let data = world
                .query(
                    "{ knownBadVersions(service: \"hello\") { service version reason instances faultIds recordedAt } }",
                    json!({}),
                )
                .await;
            let entry = data["knownBadVersions"].as_array()?.first()?.clone();
            let instances = entry["instances"].as_array()?.len();
            let faults = entry["faultIds"].as_array()?.len();
            (instances == 2 && faults >= 2).then_some(entry)
        })
        .await;
    assert_eq!(known_bad["service"], "hello", "{known_bad:#}");
    assert_eq!(known_bad["version"], "acme-1.1.0", "{known_bad:#}");
    let reason = known_bad["reason"].as_str().expect("reason");
    assert!(
        reason.contains("failed its health check")
            && reason.contains("not healthy within its start window of 3000 ms"),
        "{reason}"
    );
    // The evidence is the fault reports of 1.1.0, each saying why the run was ended.
    let faults = world
        .query(
            "{ faults(service: \"hello\") { id state { version } } }",
            json!({}),
        )
        .await;
    for id in known_bad["faultIds"].as_array().expect("ids") {
        let fault = faults["faults"]
            .as_array()
            .expect("faults")
            .iter()
            .find(|fault| &fault["id"] == id)
            .unwrap_or_else(|| panic!("fault {id} is listed: {faults:#}"));
        assert_eq!(fault["state"]["version"], "acme-1.1.0", "{fault:#}");
    }
    // Both instances are back on the version that worked, and `status` names it.
    world.wait_serving("acme-1.0.0").await;
    let status = world
        .query(
            "{ status { knownBadVersions { service version instances } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        status["status"]["knownBadVersions"][0]["version"], "acme-1.1.0",
        "{status:#}"
    );
}
