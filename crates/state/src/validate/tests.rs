//! The validator as a table: files in, the exact `path:line:column: message` lines out.

use super::*;
use crate::model::{EditMode, ServiceSettings};

/// A small valid repo; each case adds or replaces files.
const BASE: &[(&str, &str)] = &[
    ("vupdate.yaml", "schema: 1\n"),
    (
        "services/api.yaml",
        "developer:\n  sources:\n    - name: api\n      git: { url: \"git@example.com:api.git\", branch: main }\n",
    ),
    ("services/payment-api.yaml", "client: {}\n"),
    (
        "profiles.yaml",
        "profiles:\n  self: [api]\n  prod: [api, payment-api]\n",
    ),
];

fn files(changes: &[(&str, &str)]) -> FileSet {
    let mut set: FileSet = BASE.iter().copied().collect();
    for (path, text) in changes {
        if text.is_empty() {
            set.remove(path);
        } else {
            set.insert(*path, *text);
        }
    }
    set
}

fn problems(changes: &[(&str, &str)]) -> Vec<String> {
    match State::parse(&files(changes)) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.to_string().lines().map(str::to_owned).collect(),
    }
}

#[test]
fn the_base_repo_is_valid() {
    assert_eq!(problems(&[]), Vec::<String>::new());
}

/// A table row: what it shows, the files changed from `BASE`, the exact problems expected.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

#[test]
fn each_problem_is_reported_with_file_line_and_column() {
    let cases: &[Case] = &[
        (
            "YAML syntax error",
            &[(
                "desired/developer.yaml",
                "versions:\n  api: jetto-1.0.0\n  web: [\n",
            )],
            &["desired/developer.yaml:3:8: expected string scalar"],
        ),
        (
            "bad indentation",
            &[(
                "desired/developer.yaml",
                "versions:\n  api: jetto-1.0.0\n web: jetto-1.0.0\n",
            )],
            &[
                "desired/developer.yaml:3:2: while parsing a block mapping, did not find expected key",
            ],
        ),
        (
            "unknown service in a profile",
            &[(
                "profiles.yaml",
                "profiles:\n  self: [api]\n  prod:\n    - api\n    - mail\n",
            )],
            &[
                "profiles.yaml:5:7: unknown service `mail` in profile `prod`: there is no services/mail.yaml",
            ],
        ),
        (
            "malformed version in desired/developer.yaml",
            &[("desired/developer.yaml", "versions:\n  api: jetto-1.x\n")],
            &[
                "desired/developer.yaml:2:8: version `jetto-1.x`: build must be dot-separated numbers without leading zeros (e.g. `1.2.3`)",
            ],
        ),
        (
            "client generation in a developer version",
            &[("desired/developer.yaml", "versions:\n  api: jetto-1.0_2\n")],
            &[
                "desired/developer.yaml:2:8: version `jetto-1.0_2` has a client generation `_N`, but a developer version is expected",
            ],
        ),
        (
            "unknown field",
            &[(
                "providers.yaml",
                "providers:\n  jetto:\n    url: https://jetto.example.com\n    accessTokenSecret: jetto-token\n    accessToken: abc\n",
            )],
            &[
                "providers.yaml:5:5: unknown field `accessToken`, expected one of url, accessTokenSecret, testConsumer, uploadState, autoUpdate, pinnedPublicKey",
            ],
        ),
        (
            "unknown profile in a consumer",
            &[(
                "consumers.yaml",
                "consumers:\n  acme:\n    profile: staging\n",
            )],
            &[
                "consumers.yaml:3:14: unknown profile `staging` for consumer `acme`: profiles.yaml declares no such profile",
            ],
        ),
        (
            "unknown service in the desired list",
            &[(
                "desired/client.yaml",
                "versions:\n  api: jetto-1.0\n  mail: jetto-1.0_1\n",
            )],
            &[
                "desired/client.yaml:3:3: unknown service `mail` in desired client versions: there is no services/mail.yaml",
            ],
        ),
        (
            "unknown service in a tested mark",
            &[(
                "tested.yaml",
                "tested:\n  qa:\n    versions: { mail: jetto-1.0 }\n",
            )],
            &[
                "tested.yaml:3:17: unknown service `mail` in the versions tested by `qa`: there is no services/mail.yaml",
            ],
        ),
        (
            "duplicate source names",
            &[(
                "services/api.yaml",
                "developer:\n  sources:\n    - name: api\n      git: { url: u, branch: main }\n    - name: api\n      git: { url: v, branch: main }\n",
            )],
            &["services/api.yaml:5:13: duplicate source name `api` (already at line 3)"],
        ),
        (
            "a source named like one of common.yaml",
            &[(
                "common.yaml",
                "developer:\n  sources:\n    - name: api\n      git: { url: u, branch: main }\n",
            )],
            &[
                "services/api.yaml:3:13: source `api` is also declared in common.yaml: names are directories of the build and must stay unique once common's are added",
            ],
        ),
        (
            "private files outside the image",
            &[(
                "services/payment-api.yaml",
                "client:\n  privateFiles: [/etc/key.pem, keys/../../x, keys/ok.pem]\n",
            )],
            &[
                "services/payment-api.yaml:2:18: private file path `/etc/key.pem` must be a relative path without `..`",
                "services/payment-api.yaml:2:32: private file path `keys/../../x` must be a relative path without `..`",
            ],
        ),
        (
            "a service file name that is not a service name",
            &[("services/pay ment.yaml", "{}\n")],
            &[
                "services/pay ment.yaml: the file name is not a service name: service name `pay ment` is not valid: use letters, digits, `-`, `_` or `.`, starting with a letter or digit, at most 64 characters",
            ],
        ),
        (
            "files in services/ that are not .yaml",
            &[
                ("services/web.yml", "{}\n"),
                ("services/notes.txt", "x\n"),
                ("services/old/api.yaml", "{}\n"),
            ],
            &[
                "services/notes.txt: only `<service>.yaml` files belong in services/ (the file name is the service name)",
                "services/old/api.yaml: services/ holds only `<service>.yaml` files, no folders",
                "services/web.yml: service files end in `.yaml`: rename it to services/web.yaml",
            ],
        ),
        (
            "schema not supported",
            &[
                ("vupdate.yaml", "schema: 2\n"),
                ("profiles.yaml", "not: valid\n"),
            ],
            &["vupdate.yaml:1:9: schema 2 not supported (this vupdate reads schema 1)"],
        ),
        (
            "no marker",
            &[("vupdate.yaml", "")],
            &[
                "vupdate.yaml: missing: a state repo has `vupdate.yaml` at its root with `schema: 1`",
            ],
        ),
        (
            "a required key missing",
            &[(
                "consumers.yaml",
                "consumers:\n  acme:\n    url: https://acme.example.com\n",
            )],
            &["consumers.yaml:3:5: missing field `profile`"],
        ),
        (
            "a token pasted as a secret name and a bad url",
            &[(
                "providers.yaml",
                "providers:\n  jetto:\n    url: jetto.example.com\n    accessTokenSecret: \"abc def\"\n",
            )],
            &[
                "providers.yaml:3:10: url of provider `jetto` `jetto.example.com` must be an http:// or https:// URL",
                "providers.yaml:4:24: accessTokenSecret `abc def` must name a secret kept on the distribution (letters, digits, `.`, `_` or `-`, at most 64 characters), never hold the token itself",
            ],
        ),
        (
            "an autoUpdate that is not a mode",
            &[(
                "providers.yaml",
                "providers:\n  jetto:\n    url: https://jetto.example.com\n    accessTokenSecret: t\n    autoUpdate: always\n",
            )],
            &[
                "providers.yaml:5:17: autoUpdate `always` is not one of `commit` (commit the provider's versions), `pullRequest` (push them to a branch for review) or `off` (only show them); `true` and `false` are read as `commit` and `off`",
            ],
        ),
        (
            "a pinnedPublicKey that is not a pin",
            &[(
                "providers.yaml",
                "providers:\n  jetto:\n    url: https://jetto.example.com\n    accessTokenSecret: t\n    pinnedPublicKey: sha256//YWJj\n",
            )],
            &[
                "providers.yaml:5:22: pinnedPublicKey: `sha256//YWJj`: a SHA-256 has 32 bytes, this one 3 (44 base64 characters ending in `=`)",
            ],
        ),
        (
            "an onFailure that is not a policy, and a policy for an undeclared service",
            &[(
                "rollout.yaml",
                "onFailure: rollback\nservices:\n  api:\n    onFailure: retry\n  nope:\n    onFailure: hold\n",
            )],
            &[
                "rollout.yaml:1:12: onFailure `rollback` is not one of `revert` or `hold`",
                "rollout.yaml:4:16: onFailure `retry` is not one of `revert` or `hold`",
                "rollout.yaml:5:3: service `nope` is not declared (no services/nope.yaml)",
            ],
        ),
        (
            "an unknown key in rollout.yaml",
            &[("rollout.yaml", "onFailure: hold\nonFail: revert\n")],
            &[
                "rollout.yaml:2:1: unknown field `onFail`, expected one of onFailure, waves, services",
            ],
        ),
        (
            "invalid waves: duplicate name, empty selector, bad duration, share out of range, unknown key",
            &[(
                "rollout.yaml",
                "waves:\n  - name: canary\n    instances: [\"web-1\"]\n    healthyFor: 5 fortnights\n  - name: canary\n    labels: { ring: main }\n    maxFailures: 120%\n  - name: rest\n    healthyFor: 1m\n  - name: odd\n    instances: []\n    maxFailures: some\n    size: 3\n",
            )],
            &[
                "rollout.yaml:13:5: unknown field `size`, expected one of name, instances, labels, healthyFor, maxFailures",
            ],
        ),
        (
            "invalid waves, each refused where it is",
            &[(
                "rollout.yaml",
                "waves:\n  - name: canary\n    instances: [\"web-1\"]\n    healthyFor: 5 fortnights\n  - name: canary\n    labels: { ring: main }\n    maxFailures: 120%\n  - name: rest\n    healthyFor: 1m\n  - name: odd\n    instances: []\n    labels: { zone: \"\" }\n    maxFailures: some\nservices:\n  api:\n    waves: []\n",
            )],
            &[
                "rollout.yaml:4:17: wave `canary`: healthyFor `5 fortnights` is not a duration (unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. `30s`, `10m` or `1h`",
                "rollout.yaml:5:11: wave `canary` is named twice in this list",
                "rollout.yaml:7:18: wave `canary`: maxFailures `120%` is neither a share from `0%` to `100%` nor a count of instances such as `2`",
                "rollout.yaml:8:11: wave `rest` selects no instance: give `instances` (name patterns) and/or `labels`",
                "rollout.yaml:11:16: wave `odd`: instances is empty: name at least one pattern, or leave it out",
                "rollout.yaml:12:21: wave `odd`: label `zone` has an empty value",
                "rollout.yaml:13:18: wave `odd`: maxFailures `some` is neither a share from `0%` to `100%` nor a count of instances such as `2`",
                "rollout.yaml:16:12: waves is empty: list at least one wave, or leave `waves` out",
            ],
        ),
        (
            "an edit policy with a mode that is not one",
            &[(
                "policy.yaml",
                "edits:\n  - branch: main\n    mode: review\n  - branch: \"\"\n    mode: commit\n",
            )],
            &[
                "policy.yaml:3:11: mode `review` for branch `main` is not one of commit, pullRequest",
                "policy.yaml:4:13: branch pattern is empty",
            ],
        ),
        (
            "an edit policy with an unknown field",
            &[(
                "policy.yaml",
                "edits:\n  - branch: main\n    mode: commit\n    when: always\n",
            )],
            &["policy.yaml:4:5: unknown field `when`, expected one of branch, mode"],
        ),
        (
            "a builder that is not a provider",
            &[("common.yaml", "builder: farm\n")],
            &[
                "common.yaml:1:10: builder `farm` is not a provider of providers.yaml: a remote builder is reached as a provider (its url and access token)",
            ],
        ),
        (
            "a bad tested time",
            &[(
                "tested.yaml",
                "tested:\n  qa:\n    versions: {}\n    time: yesterday\n",
            )],
            &[
                "tested.yaml:4:11: time `yesterday` is not an RFC 3339 time such as `2026-11-25T10:30:00Z`",
            ],
        ),
        (
            "a stray file in desired/",
            &[("desired/developer.yml", "versions: {}\n")],
            &[
                "desired/developer.yml: unknown file: desired/ holds only developer.yaml and client.yaml",
            ],
        ),
    ];
    for (name, changes, expected) in cases {
        assert_eq!(problems(changes), *expected, "case: {name}");
    }
}

#[test]
fn all_problems_are_collected_not_just_the_first() {
    let found = problems(&[
        (
            "desired/developer.yaml",
            "versions:\n  api: jetto-1.x\n  mail: jetto-1.0\n",
        ),
        ("consumers.yaml", "consumers:\n  acme: { profile: nope }\n"),
        ("profiles.yaml", "profiles:\n  self: [api, api]\n"),
    ]);
    assert_eq!(found.len(), 4, "{found:#?}");
    // Sorted by file, then position.
    let files: Vec<&str> = found
        .iter()
        .map(|l| l.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        files,
        [
            "consumers.yaml",
            "desired/developer.yaml",
            "desired/developer.yaml",
            "profiles.yaml"
        ]
    );
}

#[test]
fn a_service_with_a_broken_file_is_still_declared() {
    let found = problems(&[
        ("services/api.yaml", "developer: [\n"),
        ("desired/developer.yaml", "versions:\n  api: jetto-1.0\n"),
    ]);
    assert_eq!(
        found.len(),
        1,
        "only the syntax error, no unknown-service cascade: {found:#?}"
    );
    assert!(found[0].starts_with("services/api.yaml:"), "{found:#?}");
}

#[test]
fn empty_files_and_null_values_mean_empty() {
    let state = State::parse(&files(&[
        ("desired/developer.yaml", "# nothing yet\n"),
        ("desired/client.yaml", "versions:\n"),
        ("consumers.yaml", "consumers: ~\n"),
        ("services/payment-api.yaml", ""),
        ("services/payment-api.yaml", "# received from a provider\n"),
    ]))
    .expect("valid");
    assert!(state.desired.developer.is_empty() && state.desired.client.is_empty());
    assert_eq!(state.services.len(), 2);
    assert_eq!(
        state.services[&"payment-api".parse::<ServiceName>().expect("name")],
        ServiceSettings::default()
    );
}

#[test]
fn defaults_and_merged_build_settings() {
    let state = State::parse(&files(&[
        ("common.yaml", "developer:\n  sources:\n    - name: shared\n      git: { url: s, branch: main }\n  environment: { A: common, B: common }\n  privateFiles: [keys/common.pem]\nclient:\n  macroValues: { m: common }\n"),
        ("services/api.yaml", "developer:\n  sources:\n    - name: api\n      git: { url: a, branch: dev, cloneSubmodules: false }\n      subDirectory: server\n  environment: { B: own }\n  privateFiles: [keys/api.pem]\n"),
    ]))
    .expect("valid");
    let api: ServiceName = "api".parse().expect("name");
    let merged = state.build_settings(&api).expect("declared");
    let developer = merged.developer.expect("api builds developer versions");
    let names: Vec<&str> = developer.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shared", "api"]);
    assert!(
        developer.sources[0].clone_submodules,
        "cloneSubmodules defaults to true"
    );
    assert!(!developer.sources[1].clone_submodules);
    assert_eq!(
        developer.sources[1].sub_directory.as_deref(),
        Some("server")
    );
    assert_eq!(developer.environment["A"], "common");
    assert_eq!(developer.environment["B"], "own");
    assert_eq!(developer.private_files, ["keys/common.pem", "keys/api.pem"]);
    // api has no client part of its own, common's applies.
    assert_eq!(
        merged.client.expect("common client").macro_values["m"],
        "common"
    );
    // payment-api has no developer part: it is only received from a provider.
    let payment = state
        .build_settings(&"payment-api".parse().expect("name"))
        .expect("declared");
    assert!(payment.developer.is_none());
    assert!(
        state
            .build_settings(&"mail".parse().expect("name"))
            .is_none()
    );
}

#[test]
fn auto_update_modes_and_the_first_releases_booleans() {
    let provider = |auto: &str| {
        let text = format!(
            "providers:\n  jetto:\n    url: https://jetto.example.com\n    accessTokenSecret: t\n{auto}"
        );
        let state = State::parse(&files(&[("providers.yaml", &text)])).expect("valid");
        state.providers["jetto"].auto_update
    };
    assert_eq!(provider(""), AutoUpdate::Off);
    assert_eq!(provider("    autoUpdate: commit\n"), AutoUpdate::Commit);
    assert_eq!(
        provider("    autoUpdate: pullRequest\n"),
        AutoUpdate::PullRequest
    );
    assert_eq!(provider("    autoUpdate: off\n"), AutoUpdate::Off);
    assert_eq!(provider("    autoUpdate: true\n"), AutoUpdate::Commit);
    assert_eq!(provider("    autoUpdate: false\n"), AutoUpdate::Off);
}

#[test]
fn on_failure_is_the_service_s_own_else_the_common_one_else_hold() {
    let policy = |rollout: &str, service: &str| {
        let state = State::parse(&files(&[("rollout.yaml", rollout)])).expect("valid");
        state.rollout.on_failure(&service.parse().expect("name"))
    };
    // (rollout.yaml, service, policy)
    let cases = [
        ("", "api", OnFailure::Hold),
        ("onFailure: revert\n", "api", OnFailure::Revert),
        (
            "onFailure: revert\nservices:\n  api:\n    onFailure: hold\n",
            "api",
            OnFailure::Hold,
        ),
        (
            "onFailure: revert\nservices:\n  api:\n    onFailure: hold\n",
            "payment-api",
            OnFailure::Revert,
        ),
        (
            "services:\n  payment-api:\n    onFailure: revert\n",
            "payment-api",
            OnFailure::Revert,
        ),
        (
            "services:\n  payment-api:\n    onFailure: revert\n",
            "api",
            OnFailure::Hold,
        ),
    ];
    for (rollout, service, expected) in cases {
        let rollout = if rollout.is_empty() {
            "services: {}\n"
        } else {
            rollout
        };
        assert_eq!(policy(rollout, service), expected, "{rollout} {service}");
    }
}

#[test]
fn the_first_edit_rule_matching_a_branch_applies() {
    let state = State::parse(&files(&[(
        "policy.yaml",
        "# Releases are reviewed; everything else is edited directly.\nedits:\n  - branch: release/*\n    mode: pullRequest\n  - branch: main\n    mode: pullRequest\n  - branch: \"**\"\n    mode: commit\n",
    )]))
    .expect("valid");
    let mode = |branch| state.policy.edit_mode(branch);
    assert_eq!(mode("main"), EditMode::PullRequest);
    assert_eq!(mode("release/2026-12"), EditMode::PullRequest);
    assert_eq!(mode("release/a/b"), EditMode::Commit, "`*` stops at `/`");
    assert_eq!(mode("staging"), EditMode::Commit);
    let without = State::parse(&files(&[])).expect("valid");
    assert_eq!(
        without.policy.edit_mode("main"),
        EditMode::Commit,
        "the default"
    );
}

#[test]
fn a_builder_named_by_common_applies_unless_the_service_names_its_own() {
    let providers = "providers:\n  jetto:\n    url: https://jetto.example.com\n    accessTokenSecret: t\n  farm:\n    url: https://farm.example.com\n    accessTokenSecret: f\n";
    let state = State::parse(&files(&[
        ("providers.yaml", providers),
        ("common.yaml", "builder: farm\n"),
        ("services/payment-api.yaml", "builder: jetto\nclient: {}\n"),
    ]))
    .expect("valid");
    let builder = |service: &str| {
        state
            .build_settings(&service.parse().expect("name"))
            .expect("declared")
            .builder
    };
    assert_eq!(builder("api").as_deref(), Some("farm"));
    assert_eq!(builder("payment-api").as_deref(), Some("jetto"));
}

#[test]
fn self_services_follow_their_developer_version_unless_listed() {
    let state = State::parse(&files(&[
        ("profiles.yaml", "profiles:\n  self: [api, payment-api]\n"),
        ("desired/developer.yaml", "versions:\n  api: jetto-1.2\n"),
        ("desired/client.yaml", "versions: {}\n"),
    ]))
    .expect("valid");
    let effective = state.effective_client_versions();
    let shown: Vec<String> = effective.iter().map(|(s, v)| format!("{s}={v}")).collect();
    // payment-api has neither a client nor a developer version: nothing to run.
    assert_eq!(shown, ["api=jetto-1.2"]);

    let state = State::parse(&files(&[
        ("desired/developer.yaml", "versions:\n  api: jetto-1.2\n"),
        (
            "desired/client.yaml",
            "versions:\n  api: jetto-1.1_3\n  payment-api: other-2.0\n",
        ),
    ]))
    .expect("valid");
    let shown: Vec<String> = state
        .effective_client_versions()
        .iter()
        .map(|(s, v)| format!("{s}={v}"))
        .collect();
    assert_eq!(
        shown,
        ["api=jetto-1.1_3", "payment-api=other-2.0"],
        "a listed client version wins"
    );
}

#[test]
fn desired_alone_parses_without_declared_services() {
    let set: FileSet = [("desired/developer.yaml", "versions:\n  mail: jetto-1.0\n")]
        .into_iter()
        .collect();
    let desired = Desired::parse(&set).expect("versions are fine on their own");
    assert_eq!(desired.developer.len(), 1);
    assert!(
        State::parse(&set).is_err(),
        "a whole state needs the marker and services"
    );
}

#[test]
fn waves_are_the_service_s_own_else_the_common_ones() {
    use crate::waves::MaxFailures;
    let rollout = "waves:\n  - name: canary\n    instances: [\"*-canary\"]\n    labels: { zone: eu }\n    healthyFor: 10m\n    maxFailures: 10%\n  - name: rest\n    instances: [\"*\"]\n    maxFailures: 2\nservices:\n  api:\n    waves:\n      - name: only\n        labels: { ring: canary }\n";
    let state = State::parse(&files(&[("rollout.yaml", rollout)])).expect("valid");
    let common = state.rollout.waves(&"payment-api".parse().expect("name"));
    assert_eq!(common.len(), 2);
    assert_eq!(common[0].name, "canary");
    assert_eq!(common[0].instances, ["*-canary"]);
    assert_eq!(common[0].labels.get("zone").map(String::as_str), Some("eu"));
    assert_eq!(common[0].healthy_for, std::time::Duration::from_secs(600));
    assert_eq!(common[0].max_failures, MaxFailures::Share(10));
    assert_eq!(common[1].max_failures, MaxFailures::Count(2));
    assert_eq!(common[1].healthy_for, std::time::Duration::ZERO);
    let own = state.rollout.waves(&"api".parse().expect("name"));
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].name, "only");
    assert_eq!(own[0].max_failures, MaxFailures::Count(0));
    let none = State::parse(&files(&[])).expect("valid");
    assert!(none.rollout.waves(&"api".parse().expect("name")).is_empty());
}

#[test]
fn a_providers_pin_is_read_as_the_key_it_names() {
    let pin = vupdate_core::pin::PublicKeyPin::of_public_key(b"jetto's key");
    let text = format!(
        "providers:\n  jetto:\n    url: https://jetto.example.com\n    accessTokenSecret: t\n    pinnedPublicKey: \"{pin}\"\n"
    );
    let state = State::parse(&files(&[("providers.yaml", &text)])).expect("valid");
    assert_eq!(state.providers["jetto"].pinned_public_key, Some(pin));
}
