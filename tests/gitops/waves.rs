//! Rollout waves (issue 16) with six real updaters and the real `hello` in three waves:
//! a healthy version reaches every wave in order, each wave only once the one before ran
//! it healthy for its `healthyFor`; a version failing its health check stops after the
//! first wave, the later waves never start it, and `onFailure: hold` marks it known-bad.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vupdate_test_support::Person;

use super::world::{Instance, Options, World};

/// Six instances: two labelled canaries, two named for the second wave, one named for
/// the third, and one no wave selects (so it is in the last).
const SIX: &[Instance] = &[
    Instance {
        id: "vm-1",
        service: "hello",
        labels: "{ring: canary}",
    },
    Instance {
        id: "vm-2",
        service: "hello",
        labels: "{ring: canary, zone: eu}",
    },
    Instance::new("early-1", "hello"),
    Instance::new("early-2", "hello"),
    Instance::new("late-1", "hello"),
    Instance::new("other", "hello"),
];

/// The waves, each to be healthy for 2 s before the next gets the version.
const ROLLOUT: &str = r#"# hello goes to the canaries, then early-*, then everyone else.
onFailure: hold
waves:
  - name: canary
    labels: {ring: canary}
    healthyFor: 2s
  - name: early
    instances: ["early-*"]
    healthyFor: 2s
  - name: rest
    instances: ["late-*"]
    healthyFor: 2s
"#;

/// The instances of each wave, in order.
const WAVES: [(&str, &[&str]); 3] = [
    ("canary", &["vm-1", "vm-2"]),
    ("early", &["early-1", "early-2"]),
    ("rest", &["late-1", "other"]),
];

/// A world of six updaters on acme-1.0.0 whose state repo has the waves.
async fn six_in_three_waves() -> World {
    let world = World::start_with(Options {
        instances: SIX,
        ..Options::default()
    })
    .await;
    world.work.write("rollout.yaml", ROLLOUT);
    world
        .work
        .commit("hello: roll out in three waves", &Person::bob());
    world.push().await;
    world
        .eventually("the distribution to follow the waves' commit", || async {
            let data = world.query("{ status { stateRepo { commit lastError { problems { file line message } } } } }", json!({})).await;
            let repo = &data["status"]["stateRepo"];
            assert!(repo["lastError"].is_null(), "the waves' commit is valid: {data:#}");
            (repo["commit"] == world.work.rev_parse("HEAD")).then_some(())
        })
        .await;
    world
}

/// The rollout of hello as `status` shows it, once `done` says it is.
async fn rollout_when(world: &World, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    world
        .eventually(what, || async {
            let data = world
                .query(
                    "{ status { rollouts { service fromVersion toVersion commit state currentWave haltedBecause waves { name instances updated healthy failed reachedAt promotedAt } } } }",
                    json!({}),
                )
                .await;
            let rollout = data["status"]["rollouts"]
                .as_array()?
                .iter()
                .find(|rollout| rollout["service"] == "hello")?
                .clone();
            done(&rollout).then_some(rollout)
        })
        .await
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("a time: {value}"))
}

/// When each instance started hello acme-1.1.0, from its state reports.
async fn started_1_1_0(world: &World) -> Vec<(String, DateTime<Utc>)> {
    let data = world
        .query(
            "{ serviceStates(service: \"hello\") { instance state { version startTime } } }",
            json!({}),
        )
        .await;
    data["serviceStates"]
        .as_array()
        .expect("states")
        .iter()
        .filter(|state| state["state"]["version"] == "acme-1.1.0")
        .map(|state| {
            (
                state["instance"].as_str().expect("instance").to_owned(),
                time(&state["state"]["startTime"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_version_reaches_every_wave_in_order() {
    let world = six_in_three_waves().await;
    let change = world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    let rollout = rollout_when(&world, "the rollout of hello 1.1.0 to be done", |rollout| {
        rollout["toVersion"] == "acme-1.1.0" && rollout["state"] == "done"
    })
    .await;
    assert_eq!(rollout["fromVersion"], "acme-1.0.0", "{rollout:#}");
    assert_eq!(rollout["commit"], change.as_str(), "{rollout:#}");
    assert_eq!(rollout["currentWave"], "rest", "{rollout:#}");
    let waves = rollout["waves"].as_array().expect("waves");
    let names: Vec<&str> = waves.iter().filter_map(|w| w["name"].as_str()).collect();
    assert_eq!(names, ["canary", "early", "rest"], "{rollout:#}");
    // Each wave was reached once the one before was promoted, and promoted only after its
    // instances had run the version for its healthyFor.
    let mut promoted_before: Option<DateTime<Utc>> = None;
    for (wave, (name, members)) in waves.iter().zip(WAVES) {
        let (reached, promoted) = (time(&wave["reachedAt"]), time(&wave["promotedAt"]));
        if let Some(before) = promoted_before {
            assert!(
                reached >= before,
                "{name} reached before the wave before was promoted: {rollout:#}"
            );
        }
        assert!(
            promoted - reached >= chrono::TimeDelta::seconds(2),
            "{name} promoted before healthyFor: {rollout:#}"
        );
        assert_eq!(wave["instances"], members.len(), "{name}: {rollout:#}");
        assert_eq!(wave["updated"], members.len(), "{name}: {rollout:#}");
        assert_eq!(wave["failed"], 0, "{name}: {rollout:#}");
        promoted_before = Some(promoted);
    }
    // The updaters' own reports: no instance started 1.1.0 before its wave was reached.
    let started = started_1_1_0(&world).await;
    assert_eq!(started.len(), 6, "{started:?}");
    for (wave, (name, members)) in waves.iter().zip(WAVES) {
        let reached = time(&wave["reachedAt"]);
        for member in members {
            let (_, at) = started
                .iter()
                .find(|(instance, _)| instance == member)
                .unwrap_or_else(|| panic!("{member} runs 1.1.0: {started:?}"));
            assert!(
                *at >= reached,
                "{member} of {name} started 1.1.0 at {at}, before its wave was reached at {reached}"
            );
        }
    }
    world.wait_serving("acme-1.1.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_version_stops_after_the_first_wave() {
    let world = six_in_three_waves().await;
    super::safety::push_unhealthy_source(&world);
    world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    let rollout = rollout_when(&world, "the rollout of hello 1.1.0 to halt", |rollout| {
        rollout["toVersion"] == "acme-1.1.0" && rollout["state"] == "halted"
    })
    .await;
    assert_eq!(rollout["currentWave"], "canary", "{rollout:#}");
    let because = rollout["haltedBecause"].as_str().expect("why it halted");
    assert!(
        because.contains("of wave `canary` rolled acme-1.1.0 back"),
        "{because}"
    );
    let waves = rollout["waves"].as_array().expect("waves");
    assert!(waves[0]["promotedAt"].is_null(), "{rollout:#}");
    for later in &waves[1..] {
        assert!(later["reachedAt"].is_null(), "{rollout:#}");
    }
    // onFailure: hold marks it known-bad, with the canaries that rolled it back.
    let known_bad = world
        .eventually("hello acme-1.1.0 known-bad on both canaries", || async {
            let data = world
                .query(
                    "{ knownBadVersions(service: \"hello\") { version instances } }",
                    json!({}),
                )
                .await;
            let entry = data["knownBadVersions"].as_array()?.first()?.clone();
            (entry["instances"].as_array()?.len() == 2).then_some(entry)
        })
        .await;
    assert_eq!(known_bad["version"], "acme-1.1.0");
    assert_eq!(known_bad["instances"], json!(["vm-1", "vm-2"]));
    world.wait_serving("acme-1.0.0").await;
    // The later waves never heard of 1.1.0: it never was desired for them.
    for updater in &world.updaters[2..] {
        assert!(
            !updater.log().contains("acme-1.1.0"),
            "{} never started it:\n{}",
            updater.instance,
            updater.log()
        );
    }
    let halted = rollout_when(&world, "the rollout to stay halted", |_| true).await;
    assert_eq!(halted["state"], "halted", "{halted:#}");
    assert_eq!(halted["waves"][0]["failed"], 2, "{halted:#}");
}
