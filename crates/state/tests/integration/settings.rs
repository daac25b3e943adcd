//! Build settings edited as commits: service files and `common.yaml` set, created and
//! removed; one-line diffs in commented files; invalid and stale edits write nothing.

use vupdate_state::{
    ClientBuild, DeveloperBuild, GitRepository, ServiceSettings, StateEdit, StateError, StateRepo,
};
use vupdate_test_support::{GitRepo, Person};

use crate::fixture::{self, carol};

/// `services/api.yaml` as a person writes it: comments, a flow mapping, an explicit default.
const API: &str = "\
# The public API, built here.
developer:
  sources:
    - name: api                 # holds update.json
      git:
        url: \"git@example.com:api.git\"
        branch: main            # the release branch
      subDirectory: server
  macroValues:
    port: \"8080\"
  privateFiles: []              # none yet
client:
  settings:
    - name: api-settings
      git: { url: \"git@example.com:settings.git\", branch: main }
";

/// The fixture with the commented `services/api.yaml`; returns the repo and its tip.
fn repo() -> (GitRepo, String) {
    let (repo, _) = fixture::repo();
    let tip = repo.commit_files(
        &[("services/api.yaml", API)],
        "Describe api",
        &Person::alice(),
    );
    (repo, tip)
}

fn api() -> vupdate_core::service::ServiceName {
    "api".parse().expect("service name")
}

fn git(name: &str, url: &str) -> GitRepository {
    GitRepository {
        name: name.into(),
        url: url.into(),
        branch: "main".into(),
        clone_submodules: true,
        sub_directory: None,
    }
}

/// The settings `API` says.
fn api_settings() -> ServiceSettings {
    let mut source = git("api", "git@example.com:api.git");
    source.sub_directory = Some("server".into());
    ServiceSettings {
        builder: None,
        developer: Some(DeveloperBuild {
            sources: vec![source],
            macro_values: [("port".to_owned(), "8080".to_owned())].into(),
            ..DeveloperBuild::default()
        }),
        client: Some(ClientBuild {
            settings: vec![git("api-settings", "git@example.com:settings.git")],
            ..ClientBuild::default()
        }),
    }
}

fn developer(settings: &mut ServiceSettings) -> &mut DeveloperBuild {
    settings.developer.as_mut().expect("developer part")
}

#[test]
fn changing_one_setting_is_one_commit_with_the_author_and_a_one_line_diff() {
    let (repo, tip) = repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    assert_eq!(
        state_repo.load(&tip).expect("loads").services[&api()],
        api_settings(),
        "the fixture says what api_settings() says"
    );
    let mut settings = api_settings();
    developer(&mut settings).sources[0].branch = "release-3".into();
    let revision = state_repo
        .edit(
            StateEdit::SetServiceSettings {
                service: api(),
                settings: settings.clone(),
            },
            &tip,
            &carol(),
            "Build api from release-3\n\nThe 3.x line.",
        )
        .expect("edit");

    assert_eq!(revision.parents, std::slice::from_ref(&tip));
    assert_eq!(revision.author, carol());
    assert_eq!(repo.rev_parse("main"), revision.id);
    assert_eq!(
        repo.git(&["rev-list", "--count", &format!("{tip}..main")])
            .trim(),
        "1"
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", "main"])
            .trim_end(),
        "Carol Operator <carol@example.com>|Carol Operator <carol@example.com>|Build api from release-3\n\nThe 3.x line."
    );
    assert_eq!(
        repo.changed_lines(&tip, &revision.id),
        [
            "-        branch: main            # the release branch",
            "+        branch: release-3            # the release branch"
        ]
    );
    assert_eq!(
        repo.show("main", "services/api.yaml"),
        API.replace("branch: main  ", "branch: release-3  "),
        "comments, the flow mapping and the explicit default survive"
    );
    assert_eq!(
        state_repo.load("main").expect("loads").services[&api()],
        settings
    );
    assert_eq!(
        repo.status(),
        "",
        "the checked-out work tree follows the branch"
    );
}

#[test]
fn settings_already_there_make_no_commit() {
    let (repo, tip) = repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let edit = StateEdit::SetServiceSettings {
        service: api(),
        settings: api_settings(),
    };
    let revision = state_repo
        .edit(edit, &tip, &carol(), "same")
        .expect("no-op");
    assert_eq!(revision.id, tip);
    assert_eq!(repo.rev_parse("main"), tip);
    // The same for common.yaml, which the fixture does not have: empty settings are its default.
    let revision = state_repo
        .edit(
            StateEdit::SetCommon(ServiceSettings::default()),
            &tip,
            &carol(),
            "same",
        )
        .expect("no-op");
    assert_eq!(revision.id, tip);
}

#[test]
fn a_new_service_and_common_settings_get_files_with_a_header() {
    let (repo, tip) = repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let queue: vupdate_core::service::ServiceName = "queue".parse().expect("name");
    let received_only = ServiceSettings::default();
    let first = state_repo
        .edit(
            StateEdit::SetServiceSettings {
                service: queue.clone(),
                settings: received_only,
            },
            &tip,
            &carol(),
            "Declare queue",
        )
        .expect("edit");
    assert_eq!(
        repo.show("main", "services/queue.yaml"),
        "# Build settings of queue: how its developer and client versions are made.\n"
    );
    let common = ServiceSettings {
        builder: None,
        developer: Some(DeveloperBuild {
            environment: [("GRADLE_OPTS".to_owned(), "-Xmx2g".to_owned())].into(),
            ..DeveloperBuild::default()
        }),
        client: None,
    };
    let second = state_repo
        .edit(
            StateEdit::SetCommon(common),
            &first.id,
            &carol(),
            "Common env",
        )
        .expect("edit");
    assert_eq!(
        repo.show("main", "common.yaml"),
        "# Build settings shared by every service.\ndeveloper:\n  environment:\n    GRADLE_OPTS: \"-Xmx2g\"\n"
    );
    let state = state_repo.load(&second.id).expect("loads");
    assert!(state.services.contains_key(&queue));
    let merged = state.build_settings(&api()).expect("declared");
    assert_eq!(
        merged.developer.expect("developer part").environment["GRADLE_OPTS"],
        "-Xmx2g"
    );
    assert_eq!(
        repo.git(&["rev-list", "--count", &format!("{tip}..main")])
            .trim(),
        "2"
    );
}

#[test]
fn a_part_set_to_none_is_removed_from_the_file() {
    let (repo, tip) = repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let mut settings = api_settings();
    settings.client = None;
    let revision = state_repo
        .edit(
            StateEdit::SetServiceSettings {
                service: api(),
                settings,
            },
            &tip,
            &carol(),
            "api has no client settings",
        )
        .expect("edit");
    assert_eq!(
        repo.changed_lines(&tip, &revision.id),
        [
            "-client:",
            "-  settings:",
            "-    - name: api-settings",
            "-      git: { url: \"git@example.com:settings.git\", branch: main }",
        ]
    );
}

#[test]
fn an_invalid_setting_writes_nothing_and_names_the_file_and_field() {
    let (repo, tip) = repo();
    let objects_before = repo.git(&["count-objects"]);
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let mut settings = api_settings();
    developer(&mut settings).sources[0].url = String::new();
    developer(&mut settings)
        .private_files
        .push("../etc/key.pem".into());
    let error = state_repo
        .edit(
            StateEdit::SetServiceSettings {
                service: api(),
                settings,
            },
            &tip,
            &carol(),
            "Break api",
        )
        .expect_err("invalid");
    let StateError::InvalidEdit { parent, errors } = &error else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(parent, &tip);
    assert_eq!(
        errors.to_string(),
        "services/api.yaml:6:14: source `api` has an empty git url\n\
         services/api.yaml:11:18: private file path `../etc/key.pem` must be a relative path without `..`"
    );
    assert_eq!(repo.rev_parse("main"), tip);
    assert_eq!(
        repo.git(&["count-objects"]),
        objects_before,
        "no blob, tree or commit was written"
    );
    assert_eq!(repo.status(), "");
}

#[test]
fn removing_a_service_that_is_still_named_is_refused_with_where() {
    let (repo, tip) = repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let error = state_repo
        .edit(StateEdit::RemoveService(api()), &tip, &carol(), "Drop api")
        .expect_err("still named");
    let StateError::InvalidEdit { errors, .. } = &error else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(
        errors.to_string(),
        "desired/developer.yaml:3:3: unknown service `api` in desired developer versions: there is no services/api.yaml\n\
         profiles.yaml:2:10: unknown service `api` in profile `self`: there is no services/api.yaml\n\
         profiles.yaml:3:13: unknown service `api` in profile `partner`: there is no services/api.yaml"
    );
    assert_eq!(repo.rev_parse("main"), tip);
    assert!(repo.read("services/api.yaml").contains("api-settings"));
}

#[test]
fn removing_a_service_nothing_names_deletes_its_file() {
    let (repo, _) = fixture::repo();
    let tip = repo.commit_files(&[("services/spare.yaml", "")], "Spare", &Person::alice());
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let spare: vupdate_core::service::ServiceName = "spare".parse().expect("name");
    let revision = state_repo
        .edit(
            StateEdit::RemoveService(spare.clone()),
            &tip,
            &carol(),
            "No spare",
        )
        .expect("edit");
    assert_eq!(
        repo.git(&["diff", "--name-status", &tip, &revision.id]),
        "D\tservices/spare.yaml\n"
    );
    assert!(!repo.path().join("services/spare.yaml").exists());
    assert!(
        !state_repo
            .load("main")
            .expect("loads")
            .services
            .contains_key(&spare)
    );
    // Removing it again changes nothing and makes no commit.
    let again = state_repo
        .edit(
            StateEdit::RemoveService(spare),
            &revision.id,
            &carol(),
            "again",
        )
        .expect("no-op");
    assert_eq!(again.id, revision.id);
}

#[test]
fn a_stale_expected_parent_is_refused() {
    let (repo, tip) = repo();
    let newer = repo.commit_files(
        &[("services/api.yaml", &API.replace("8080", "9090"))],
        "Someone else",
        &Person::bob(),
    );
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let mut settings = api_settings();
    developer(&mut settings).sources[0].branch = "release-3".into();
    let error = state_repo
        .edit(
            StateEdit::SetServiceSettings {
                service: api(),
                settings,
            },
            &tip,
            &carol(),
            "Based on an old view",
        )
        .expect_err("stale");
    match error {
        StateError::Stale { expected, actual } => {
            assert_eq!((expected, actual), (tip, newer.clone()))
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(repo.rev_parse("main"), newer);
    assert!(repo.read("services/api.yaml").contains("9090"));
}
