//! Build settings files, case by case (`before`, settings, exact `after`), and as properties:
//! settings written and read back are the same settings, from a new file or from any other
//! settings' file, comments or not.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use super::*;

const PATH: &str = "services/api.yaml";
const HEADER: &str = "# Build settings of api.\n";

fn repo(name: &str, url: &str, branch: &str) -> GitRepository {
    GitRepository {
        name: name.into(),
        url: url.into(),
        branch: branch.into(),
        clone_submodules: true,
        sub_directory: None,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn check(before: Option<&str>, settings: &ServiceSettings, after: &str) {
    let edited = edit(PATH, before, settings, HEADER)
        .expect("editable")
        .unwrap_or_else(|| before.unwrap_or_default().to_owned());
    assert_eq!(
        edited,
        after,
        "\n--- before:\n{}\n--- got:\n{edited}",
        before.unwrap_or("<none>")
    );
    assert_eq!(
        validate::settings_file(PATH, edited.as_bytes()).as_ref(),
        Some(settings),
        "reads back as the settings:\n{edited}"
    );
}

/// The lines only in `before` and the lines only in `after`.
fn changed_lines(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let only = |a: &str, b: &str| -> Vec<String> {
        let mut rest: Vec<&str> = b.lines().collect();
        a.lines()
            .filter(|line| match rest.iter().position(|x| x == line) {
                Some(i) => {
                    rest.remove(i);
                    false
                }
                None => true,
            })
            .map(str::to_owned)
            .collect()
    };
    (only(before, after), only(after, before))
}

/// The settings of `COMMENTED`.
fn commented_settings() -> ServiceSettings {
    let mut api = repo("api", "git@git.example.com:orbit/api.git", "main");
    api.clone_submodules = false;
    api.sub_directory = Some("server".into());
    ServiceSettings {
        builder: None,
        developer: Some(DeveloperBuild {
            sources: vec![
                api,
                repo("docs", "https://git.example.com/docs.git", "main"),
            ],
            macro_values: map(&[("port", "8080"), ("zone", "eu")]),
            environment: map(&[("GRADLE_OPTS", "-Xmx2g")]),
            private_files: vec!["keys/api-signing.pem".into()],
        }),
        client: Some(ClientBuild {
            settings: vec![repo("api-settings", "u", "main")],
            ..ClientBuild::default()
        }),
    }
}

/// A file as a person writes it: comments, flow style here and there, explicit defaults.
const COMMENTED: &str = "\
# The public API.
developer:            # built here
  sources:
    # the server first: it holds update.json
    - name: api
      git:
        url: \"git@git.example.com:orbit/api.git\"
        branch: main      # the release branch
        cloneSubmodules: false
      subDirectory: server
    - name: docs
      git: { url: \"https://git.example.com/docs.git\", branch: main, cloneSubmodules: true }
  macroValues:
    port: 8080        # unquoted, still the string \"8080\"
    zone: eu
  environment:
    GRADLE_OPTS: \"-Xmx2g\"
  privateFiles: [keys/api-signing.pem]
client:
  settings:
    - name: api-settings
      git: { url: u, branch: main }
  macroValues: {}     # nothing yet
  privateFiles: []
";

#[test]
fn a_new_file_has_a_header_and_only_what_differs_from_the_defaults() {
    check(
        None,
        &commented_settings(),
        "\
# Build settings of api.
developer:
  sources:
    - name: api
      git:
        url: \"git@git.example.com:orbit/api.git\"
        branch: main
        cloneSubmodules: false
      subDirectory: server
    - name: docs
      git:
        url: \"https://git.example.com/docs.git\"
        branch: main
  macroValues:
    port: \"8080\"
    zone: eu
  environment:
    GRADLE_OPTS: \"-Xmx2g\"
  privateFiles:
    - keys/api-signing.pem
client:
  settings:
    - name: api-settings
      git:
        url: u
        branch: main
",
    );
    // Parts that are present but empty are written, so the service stays buildable.
    let empty = ServiceSettings {
        builder: None,
        developer: Some(DeveloperBuild::default()),
        client: None,
    };
    check(None, &empty, "# Build settings of api.\ndeveloper: {}\n");
    // Neither part: a file that only declares the service.
    check(
        None,
        &ServiceSettings::default(),
        "# Build settings of api.\n",
    );
}

#[test]
fn settings_already_in_the_file_change_nothing() {
    let unchanged = edit(PATH, Some(COMMENTED), &commented_settings(), HEADER).expect("editable");
    assert_eq!(unchanged, None);
}

#[test]
fn one_changed_value_in_a_commented_file_is_one_changed_line() {
    for (change, old_line, new_line) in [
        (
            (|s: &mut ServiceSettings| {
                dev(s).sources[0].branch = "release-3".into();
            }) as fn(&mut ServiceSettings),
            "        branch: main      # the release branch",
            "        branch: release-3      # the release branch",
        ),
        (
            |s| {
                dev(s).macro_values.insert("port".into(), "9090".into());
            },
            "    port: 8080        # unquoted, still the string \"8080\"",
            "    port: \"9090\"        # unquoted, still the string \"8080\"",
        ),
        (
            |s| {
                dev(s).sources[1].branch = "next".into();
            },
            "      git: { url: \"https://git.example.com/docs.git\", branch: main, cloneSubmodules: true }",
            "      git: {url: \"https://git.example.com/docs.git\", branch: next, cloneSubmodules: true}",
        ),
    ] {
        let mut settings = commented_settings();
        change(&mut settings);
        let expected = COMMENTED.replace(old_line, new_line);
        check(Some(COMMENTED), &settings, &expected);
        assert_eq!(
            changed_lines(COMMENTED, &expected),
            (vec![old_line.to_owned()], vec![new_line.to_owned()])
        );
    }
}

fn dev(settings: &mut ServiceSettings) -> &mut DeveloperBuild {
    settings.developer.as_mut().expect("developer part")
}

#[test]
fn entries_and_items_are_added_and_removed_line_by_line_keeping_comments() {
    let mut settings = commented_settings();
    dev(&mut settings).sources[0].clone_submodules = true;
    dev(&mut settings).sources[0].sub_directory = None;
    dev(&mut settings)
        .macro_values
        .insert("region".into(), "north".into());
    dev(&mut settings).environment.clear();
    dev(&mut settings)
        .sources
        .push(repo("web", "git@git.example.com:orbit/web.git", "main"));
    check(
        Some(COMMENTED),
        &settings,
        &COMMENTED
            .replace("        cloneSubmodules: false\n", "")
            .replace("      subDirectory: server\n", "")
            .replace("    zone: eu\n", "    region: north\n    zone: eu\n")
            .replace("  environment:\n    GRADLE_OPTS: \"-Xmx2g\"\n", "")
            .replace(
                "cloneSubmodules: true }\n",
                "cloneSubmodules: true }\n    - name: web\n      git:\n        url: \"git@git.example.com:orbit/web.git\"\n        branch: main\n",
            ),
    );
}

#[test]
fn a_part_set_to_none_goes_and_a_new_part_is_added_after_the_other() {
    let mut settings = commented_settings();
    settings.client = None;
    let developer_only = &COMMENTED[..COMMENTED.find("client:").expect("client part")];
    check(Some(COMMENTED), &settings, developer_only);
    // And back: `client` is added after `developer`, in the schema's order.
    check(
        Some(developer_only),
        &commented_settings(),
        &format!(
            "{developer_only}client:\n  settings:\n    - name: api-settings\n      git:\n        url: u\n        branch: main\n"
        ),
    );
    // Both parts gone: the file's header comment stays; the service stays declared.
    check(
        Some(COMMENTED),
        &ServiceSettings::default(),
        "# The public API.\n",
    );
}

#[test]
fn a_file_that_is_not_yaml_or_not_a_mapping_is_refused() {
    for (text, message) in [
        ("developer: [\n", "it must parse before it can be edited"),
        ("- developer\n", "it must hold a mapping of keys"),
    ] {
        let error = edit(PATH, Some(text), &commented_settings(), HEADER).expect_err("refused");
        assert!(error.0.starts_with(message), "{text:?}: {error:?}");
    }
}

// --- Properties: any settings, written and read back.

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._-]{0,8}"
}

/// Text YAML has to quote: any characters, from a set rich in YAML's special ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        "[ -~]{0,12}",
        any::<String>(),
        prop::sample::select(vec![
            "true", "no", "~", "null", "0x1F", "1.10", "8080", "-Xmx2g", "#x", "a: b", "'q'",
            " lead", "trail ", "*alias", "&anchor", "!tag", "%%v%%", "[x]", "{y}", "- z",
        ])
        .prop_map(str::to_owned),
    ]
}

fn non_blank() -> impl Strategy<Value = String> {
    text().prop_filter("not blank", |t| !t.trim().is_empty())
}

fn relative_path() -> impl Strategy<Value = String> {
    "[a-z]{1,5}(/[a-z0-9][a-z0-9.]{0,4}){0,2}"
}

fn repositories() -> impl Strategy<Value = Vec<GitRepository>> {
    let repository = (
        non_blank(),
        non_blank(),
        any::<bool>(),
        prop::option::of(relative_path()),
    );
    (btree_set(name(), 0..4), vec(repository, 4)).prop_map(|(names, details)| {
        names
            .into_iter()
            .zip(details)
            .map(
                |(name, (url, branch, clone_submodules, sub_directory))| GitRepository {
                    name,
                    url,
                    branch,
                    clone_submodules,
                    sub_directory,
                },
            )
            .collect()
    })
}

/// Repositories, macro values, environment and private files: what both parts hold.
type Parts = (
    Vec<GitRepository>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    Vec<String>,
);

fn parts() -> impl Strategy<Value = Parts> {
    (
        repositories(),
        btree_map("[A-Za-z0-9_.-]{1,8}", text(), 0..4),
        btree_map("[A-Za-z_][A-Za-z0-9_]{0,8}", text(), 0..4),
        btree_set(relative_path(), 0..4).prop_map(|files| files.into_iter().collect()),
    )
}

fn settings() -> impl Strategy<Value = ServiceSettings> {
    let developer =
        parts().prop_map(
            |(sources, macro_values, environment, private_files)| DeveloperBuild {
                sources,
                macro_values,
                environment,
                private_files,
            },
        );
    let client =
        parts().prop_map(
            |(settings, macro_values, environment, private_files)| ClientBuild {
                settings,
                macro_values,
                environment,
                private_files,
            },
        );
    let builder = prop::option::of(prop::sample::select(vec!["jetto", "build-farm.eu"]));
    (
        builder,
        prop::option::of(developer),
        prop::option::of(client),
    )
        .prop_map(|(builder, developer, client)| ServiceSettings {
            builder: builder.map(str::to_owned),
            developer,
            client,
        })
}

fn written(before: Option<&str>, settings: &ServiceSettings) -> String {
    edit(PATH, before, settings, HEADER)
        .expect("editable")
        .unwrap_or_else(|| before.unwrap_or_default().to_owned())
}

/// `text` with a comment at the end of every line and between lines, as a person might add.
fn with_comments(text: &str) -> String {
    text.lines()
        .map(|line| format!("{line}  # note\n# between\n"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn settings_written_read_back_the_same(settings in settings()) {
        let text = written(None, &settings);
        prop_assert_eq!(validate::settings_file(PATH, text.as_bytes()), Some(settings.clone()), "{}", text);
        prop_assert_eq!(edit(PATH, Some(&text), &settings, HEADER).expect("editable"), None);
    }

    #[test]
    fn any_settings_file_edited_to_other_settings_reads_back_as_those(
        old in settings(),
        new in settings(),
        comments in any::<bool>(),
    ) {
        let mut before = written(None, &old);
        if comments {
            before = with_comments(&before);
        }
        let after = written(Some(&before), &new);
        prop_assert_eq!(
            validate::settings_file(PATH, after.as_bytes()),
            Some(new),
            "--- before:\n{}\n--- after:\n{}", before, after
        );
        if comments && !after.trim().is_empty() {
            prop_assert!(after.starts_with("# Build settings of api.  # note\n"), "{}", after);
        }
    }
}
