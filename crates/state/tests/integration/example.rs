//! The documented example state repo validates, from disk and from a commit.

use std::path::PathBuf;

use vupdate_state::{State, StateRepo};
use vupdate_test_support::{GitRepo, Person};

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/state-repo")
}

fn check_example(state: &State) {
    let names: Vec<&str> = state.services.keys().map(|s| s.as_str()).collect();
    assert_eq!(names, ["api", "geo-db", "payment-api", "web", "worker"]);
    assert_eq!(state.profiles["self"].len(), 5);
    assert_eq!(
        state.providers["jetto"].access_token_secret,
        "jetto-access-token"
    );
    assert_eq!(state.consumers["acme"].profile, "partner");
    assert_eq!(state.tested["acme"].versions.len(), 2);
    let effective: Vec<String> = state
        .effective_client_versions()
        .iter()
        .map(|(s, v)| format!("{s}={v}"))
        .collect();
    assert_eq!(
        effective,
        [
            "api=orbit-3.5.1",
            "geo-db=jetto-2.1.0_1",
            "payment-api=orbit-1.11.4_2",
            "web=orbit-3.5.1",
            "worker=orbit-3.5.0"
        ]
    );
    let geo = state
        .build_settings(&"geo-db".parse().expect("name"))
        .expect("declared");
    assert!(
        geo.developer.is_none(),
        "geo-db is received from the provider"
    );
    let client = geo.client.expect("client settings");
    let settings: Vec<&str> = client.settings.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(settings, ["fleet-settings", "geo-settings"]);
}

#[test]
fn the_example_validates_from_its_directory() {
    let state = State::load_dir(example_dir()).unwrap_or_else(|e| panic!("{e}"));
    check_example(&state);
}

#[test]
fn the_example_validates_from_a_commit() {
    let repo = GitRepo::init();
    repo.copy_dir(&example_dir(), "");
    let commit = repo.commit("Import the example", &Person::alice());
    let state = StateRepo::open(repo.path(), "main")
        .expect("opens")
        .load(&commit)
        .unwrap_or_else(|e| panic!("{e}"));
    check_example(&state);
}
