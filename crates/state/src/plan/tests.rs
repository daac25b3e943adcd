//! The planner as a table: two small states and facts in, the plan's rows out.

use super::*;
use crate::files::FileSet;

const API: &str = "developer:\n  sources:\n    - name: api\n      git: { url: \"git@example.com:api.git\", branch: main }\n";
const WEB: &str = "developer:\n  sources:\n    - name: web\n      git: { url: \"git@example.com:web.git\", branch: main }\n";

fn state<T: AsRef<str>>(files: &[(&str, T)]) -> State {
    let mut set: FileSet = [("vupdate.yaml", "schema: 1\n")].into_iter().collect();
    for (path, text) in files {
        set.insert(*path, text.as_ref());
    }
    State::parse(&set).expect("a valid test state")
}

/// Two services in `self`, `api` also in acme's profile, both desired.
fn base() -> State {
    state(&with("versions:\n  api: orbit-1.0.0\n  web: orbit-2.0.0\n"))
}

/// The files of [`base`] with `desired` as `desired/developer.yaml`.
fn with(desired: &str) -> Vec<(&'static str, String)> {
    vec![
        ("services/api.yaml", API.to_owned()),
        ("services/web.yaml", WEB.to_owned()),
        (
            "profiles.yaml",
            "profiles:\n  self: [api, web]\n  partner: [api]\n".to_owned(),
        ),
        (
            "consumers.yaml",
            "consumers:\n  acme: { profile: partner }\n".to_owned(),
        ),
        ("desired/developer.yaml", desired.to_owned()),
    ]
}

fn name(text: &str) -> ServiceName {
    text.parse().expect("service name")
}

fn instance(instance: &str, service: &str, role: Option<&str>, version: &str) -> InstanceFact {
    InstanceFact {
        instance: instance.to_owned(),
        service: name(service),
        role: role.map(str::to_owned),
        version: Some(version.parse().expect("client version")),
    }
}

#[test]
fn an_unchanged_state_plans_nothing() {
    let plan = Plan::compute(Ok(&base()), Ok(&base()), &Facts::default());
    assert!(plan.valid);
    assert!(plan.services.is_empty(), "{plan:?}");
    assert_eq!(plan.unknown.len(), 3, "{:?}", plan.unknown);
}

#[test]
fn a_version_change_names_images_instances_consumers_and_known_bad_versions() {
    let head = state(&with("versions:\n  api: orbit-1.0.1\n  web: jetto-2.0.1\n"));
    let facts = Facts {
        distribution: Some("orbit".to_owned()),
        images: Some(Images {
            developer: [(name("api"), "orbit-1.0.1".parse().expect("version"))].into(),
            client: BTreeSet::new(),
        }),
        instances: Some(vec![
            instance("vm-2", "api", None, "orbit-1.0.0"),
            instance("vm-1", "api", None, "orbit-1.0.0"),
            instance("vm-3", "api", Some("eu"), "orbit-1.0.1"),
            instance("vm-4", "api", Some("eu"), "orbit-1.0.0"),
        ]),
        known_bad: Some(vec![KnownBad {
            service: name("api"),
            version: "orbit-1.0.1".parse().expect("version"),
            reason: "rolled back on vm-3: health check failed".to_owned(),
        }]),
    };
    let plan = Plan::compute(Ok(&base()), Ok(&head), &facts);
    assert!(plan.unknown.is_empty(), "{:?}", plan.unknown);
    let api = &plan.services[0];
    assert_eq!(api.service, "api");
    assert_eq!(api.change, Change::Changed);
    assert_eq!(api.developer_image, Some(ImageNeed::Present));
    assert_eq!(api.client_image, Some(ImageNeed::Build));
    assert_eq!(
        api.instances,
        Some(vec![
            RoleUpdate {
                role: None,
                instances: vec!["vm-1".into(), "vm-2".into()]
            },
            RoleUpdate {
                role: Some("eu".into()),
                instances: vec!["vm-4".into()]
            },
        ])
    );
    assert_eq!(api.consumers, ["acme"]);
    assert_eq!(api.known_bad.len(), 1);
    let web = &plan.services[1];
    assert_eq!(
        web.developer_image,
        Some(ImageNeed::Download),
        "another distribution built it"
    );
    assert_eq!(web.instances, Some(Vec::new()));
    assert!(web.consumers.is_empty(), "acme's profile leaves web out");
    assert_eq!(plan.known_bad_count(), 1);
}

#[test]
fn renames_removals_and_profiles_are_told_apart() {
    let head = state(&[
        ("services/api.yaml", API),
        // web's settings under a new name: a rename, its version follows.
        ("services/frontend.yaml", WEB),
        (
            "profiles.yaml",
            "profiles:\n  self: [frontend]\n  partner: [api]\n",
        ),
        (
            "desired/developer.yaml",
            "versions:\n  api: orbit-1.0.0\n  frontend: orbit-2.0.0\n",
        ),
    ]);
    let plan = Plan::compute(Ok(&base()), Ok(&head), &Facts::default());
    let rows: Vec<(&str, Change, Option<&str>)> = plan
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.change, s.renamed_from.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [
            ("api", Change::Changed, None),
            ("frontend", Change::Renamed, Some("web"))
        ]
    );
    let frontend = &plan.services[1];
    assert_eq!(
        frontend.developer, None,
        "the same version under the new name"
    );
    assert_eq!(plan.services[0].profiles_left, ["self"]);
    assert_eq!(plan.profiles.len(), 1);
    assert_eq!(plan.profiles[0].added, ["frontend"]);
    assert_eq!(plan.profiles[0].removed, ["api", "web"]);

    let removed = state(&[
        ("services/api.yaml", API),
        (
            "profiles.yaml",
            "profiles:\n  self: [api]\n  partner: [api]\n",
        ),
        (
            "consumers.yaml",
            "consumers:\n  acme: { profile: partner }\n",
        ),
        ("desired/developer.yaml", "versions:\n  api: orbit-1.0.0\n"),
    ]);
    let plan = Plan::compute(Ok(&base()), Ok(&removed), &Facts::default());
    let web = &plan.services[0];
    assert_eq!((web.service.as_str(), web.change), ("web", Change::Removed));
    assert_eq!(web.developer.as_ref().and_then(|c| c.to.clone()), None);
    assert_eq!(web.developer_image, None, "nothing to build for a removal");
    assert_eq!(
        web.instances, None,
        "instances not known without a distribution"
    );
}

#[test]
fn an_invalid_head_plans_only_its_problems() {
    let mut set: FileSet = [("vupdate.yaml", "schema: 1\n")].into_iter().collect();
    set.insert("desired/developer.yaml", "versions:\n  api: nonsense\n");
    let errors = State::parse(&set).expect_err("invalid");
    let plan = Plan::compute(Ok(&base()), Err(&errors), &Facts::default());
    assert!(!plan.valid);
    assert!(plan.services.is_empty());
    assert_eq!(plan.problems[0].path, "desired/developer.yaml");
    assert_eq!(plan.problems[0].line, Some(2));
    let text = render::text(&plan, "a", "b");
    assert!(text.contains("desired/developer.yaml:2:"), "{text}");
}

#[test]
fn a_change_of_a_service_with_waves_names_the_wave_it_starts_with() {
    let mut files = with("versions:\n  api: orbit-1.0.1\n  web: orbit-2.0.1\n");
    files.push((
        "rollout.yaml",
        "waves:\n  - name: canary\n    labels: {ring: canary}\n  - name: rest\n    instances: [\"*\"]\nservices:\n  web:\n    waves:\n      - name: only\n        instances: [\"web-*\"]\n"
            .to_owned(),
    ));
    let plan = Plan::compute(Ok(&base()), Ok(&state(&files)), &Facts::default());
    assert_eq!(plan.services[0].waves, ["canary", "rest"]);
    assert_eq!(plan.services[1].waves, ["only"]);
    let text = render::text(&plan, "base", "head");
    assert!(
        text.contains("goes out by waves: `canary` first, then `rest`"),
        "{text}"
    );
    assert!(
        render::markdown(&plan, "base", "head").contains("> `web` goes out by waves: `only` only"),
        "{}",
        render::markdown(&plan, "base", "head")
    );
    // Without a version change there is nothing to roll out.
    let unchanged = Plan::compute(
        Ok(&base()),
        Ok(&state(&with(
            "versions:\n  api: orbit-1.0.0\n  web: orbit-2.0.0\n",
        ))),
        &Facts::default(),
    );
    assert!(unchanged.services.is_empty());
}

#[test]
fn text_and_markdown_name_ten_instances_of_a_role_and_count_the_rest() {
    let head = state(&with("versions:\n  api: orbit-1.0.1\n  web: jetto-2.0.0\n"));
    let facts = Facts {
        instances: Some(
            (0..2500)
                .map(|i| instance(&format!("vm-{i:04}"), "api", None, "orbit-1.0.0"))
                .collect(),
        ),
        ..Facts::default()
    };
    let plan = Plan::compute(Ok(&base()), Ok(&head), &facts);
    let named = "vm-0000, vm-0001, vm-0002, vm-0003, vm-0004, vm-0005, vm-0006, vm-0007, \
                 vm-0008, vm-0009 and 2490 more (2500 in all)";
    for out in [
        render::text(&plan, "base", "head"),
        render::markdown(&plan, "base", "head"),
    ] {
        assert!(out.contains(named), "{out}");
        assert!(!out.contains("vm-0010"), "{out}");
    }
    let all = plan.services[0]
        .instances
        .as_ref()
        .expect("instances known");
    assert_eq!(
        all[0].instances.len(),
        2500,
        "the plan itself keeps them all"
    );
}
