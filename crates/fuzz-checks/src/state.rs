//! The state repo's YAML files: read and validated whole ([`State::parse`]), and edited by
//! splicing ([`StateEdit::apply`]) as the CLI and the dashboard do on files people wrote.
//!
//! Both checks start from the complete example state repo (`examples/state-repo`) and
//! replace one of its files with the input, so the rest of the state is valid and the
//! fuzzed file is checked in context (its services declared, its profiles known).

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, Utc};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{Build, ClientVersion, DeveloperVersion};
use vupdate_state::{
    ClientBuild, DeveloperBuild, FileSet, GitRepository, ServiceSettings, State, StateEdit,
    client_settings_hash, service_settings_hash,
};

/// The example state repo, file by file.
const EXAMPLE: &[(&str, &str)] = &[
    (
        "vupdate.yaml",
        include_str!("../../../examples/state-repo/vupdate.yaml"),
    ),
    (
        "common.yaml",
        include_str!("../../../examples/state-repo/common.yaml"),
    ),
    (
        "profiles.yaml",
        include_str!("../../../examples/state-repo/profiles.yaml"),
    ),
    (
        "providers.yaml",
        include_str!("../../../examples/state-repo/providers.yaml"),
    ),
    (
        "consumers.yaml",
        include_str!("../../../examples/state-repo/consumers.yaml"),
    ),
    (
        "tested.yaml",
        include_str!("../../../examples/state-repo/tested.yaml"),
    ),
    (
        "desired/developer.yaml",
        include_str!("../../../examples/state-repo/desired/developer.yaml"),
    ),
    (
        "desired/client.yaml",
        include_str!("../../../examples/state-repo/desired/client.yaml"),
    ),
    (
        "services/api.yaml",
        include_str!("../../../examples/state-repo/services/api.yaml"),
    ),
    (
        "services/web.yaml",
        include_str!("../../../examples/state-repo/services/web.yaml"),
    ),
    (
        "services/worker.yaml",
        include_str!("../../../examples/state-repo/services/worker.yaml"),
    ),
    (
        "services/geo-db.yaml",
        include_str!("../../../examples/state-repo/services/geo-db.yaml"),
    ),
    (
        "services/payment-api.yaml",
        include_str!("../../../examples/state-repo/services/payment-api.yaml"),
    ),
];

/// Files the example lacks that the schema reads: a new service, and a misplaced file.
const EXTRA: &[&str] = &["services/new-service.yaml", "desired/other.yaml"];

/// The example state repo as a [`FileSet`].
fn example() -> FileSet {
    EXAMPLE.iter().copied().collect()
}

/// Input: one byte choosing the file, then its content.
///
/// A state that validates has a settings hash for every service; a problem that names a
/// line names one the file has.
pub fn check_repo(data: &[u8]) {
    let Some((&choice, content)) = data.split_first() else {
        return;
    };
    let paths: Vec<&str> = EXAMPLE
        .iter()
        .map(|(path, _)| *path)
        .chain(EXTRA.iter().copied())
        .collect();
    let path = paths[usize::from(choice) % paths.len()];
    let mut files = example();
    files.insert(path, content);
    match State::parse(&files) {
        Ok(state) => {
            for service in state.services.keys() {
                let hash = service_settings_hash(&state, service);
                assert!(
                    hash.is_some(),
                    "a declared service `{service}` has settings"
                );
            }
            let _ = client_settings_hash(state.common.client.as_ref());
        }
        Err(errors) => {
            for problem in errors.problems() {
                let (Some(position), Some(bytes)) = (problem.position, files.get(&problem.path))
                else {
                    continue;
                };
                let lines = yaml_lines(bytes);
                assert!(
                    (1..=lines).contains(&position.line) && position.column >= 1,
                    "`{problem}` points past the {lines} lines of the file"
                );
            }
        }
    }
}

/// How many lines YAML sees in a file: line breaks are `\n`, `\r\n` and a lone `\r`.
fn yaml_lines(bytes: &[u8]) -> u64 {
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(at, byte)| {
            *byte == b'\n' || (*byte == b'\r' && bytes.get(at + 1) != Some(&b'\n'))
        })
        .count();
    breaks as u64 + 1
}

/// Input: the edit (decoded with `arbitrary`), a NUL byte, then the content of the file the
/// edit changes (no NUL: the file does not exist).
///
/// An edit changes its file only; applied again it changes nothing; and when the edited
/// state validates, it says what the edit asked.
pub fn check_edit(data: &[u8]) {
    let (spec, content) = match data.iter().position(|byte| *byte == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(spec) = EditSpec::arbitrary_take_rest(Unstructured::new(spec)) else {
        return;
    };
    let edit = spec.edit();
    let path = edit.path();
    let mut files = example();
    match content {
        Some(content) => files.insert(path.as_ref(), content),
        None => files.remove(&path),
    };
    let now = DateTime::from_timestamp(1_790_000_000, 0).expect("a valid time");
    let Ok(edited) = edit.apply(&files, now) else {
        return;
    };
    let (mut before, mut after) = (files.clone(), edited.clone());
    before.remove(&path);
    after.remove(&path);
    assert!(before == after, "the edit of {path} changed another file");
    let again = edit
        .apply(&edited, now)
        .expect("a file the editor wrote can be edited again");
    assert!(
        again == edited,
        "the edit applied again changed {path}:\n{}\n-- to --\n{}",
        text(&edited, &path),
        text(&again, &path)
    );
    if let Ok(state) = State::parse(&edited) {
        check_effect(&edit, &state, now);
    }
}

fn text(files: &FileSet, path: &str) -> String {
    files
        .get(path)
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_else(|| "(no file)".to_owned())
}

/// The state after `edit` says what the edit asked.
fn check_effect(edit: &StateEdit, state: &State, now: DateTime<Utc>) {
    match edit {
        StateEdit::SetDesiredDeveloper(list) => assert_eq!(&state.desired.developer, list),
        StateEdit::SetDesiredClient(list) => assert_eq!(&state.desired.client, list),
        StateEdit::SetProfile { name, services } => {
            assert_eq!(state.profiles.get(name), Some(services));
        }
        StateEdit::RemoveProfile(name) => assert_eq!(state.profiles.get(name), None),
        StateEdit::SetTested {
            distribution,
            versions,
        } => {
            let tested = &state.tested[distribution];
            assert_eq!(&tested.versions, versions);
            assert_eq!(tested.time, Some(now.fixed_offset()));
        }
        StateEdit::SetServiceSettings { service, settings } => {
            assert_eq!(state.services.get(service), Some(settings));
        }
        StateEdit::RemoveService(service) => assert!(!state.services.contains_key(service)),
        StateEdit::SetCommon(settings) => assert_eq!(&state.common, settings),
        other => unreachable!("no such edit is generated: {other:?}"),
    }
}

/// Text that is either one of a pool of strings that YAML treats specially (or that the
/// example uses), or anything.
#[derive(Debug, Arbitrary)]
enum Text {
    Pool(u8),
    Any(String),
}

const POOL: &[&str] = &[
    "api",
    "web",
    "worker",
    "payment-api",
    "geo-db",
    "self",
    "jetto",
    "https://git.example.com/api.git",
    "main",
    "",
    " ",
    "x: y",
    "# no comment",
    "a #b",
    "- item",
    "{a: b}",
    "[1, 2]",
    "null",
    "~",
    "true",
    "no",
    "0x1F",
    "1.0",
    "'single'",
    "\"double\"",
    "two\nlines",
    "trailing\n",
    "tab\there",
    "%%macro%%",
    "&anchor",
    "*alias",
    "!tag",
    "|",
    ">",
    "@at",
    "`tick",
    "é",
    "key:",
    "?",
    "---",
    "...",
    "\\",
];

impl Text {
    fn text(&self) -> String {
        match self {
            Text::Pool(index) => POOL[usize::from(*index) % POOL.len()].to_owned(),
            Text::Any(text) => text.clone(),
        }
    }

    /// A service name: the text when it is one, else one the example declares.
    fn service(&self) -> ServiceName {
        self.text()
            .parse()
            .unwrap_or_else(|_| "api".parse().expect("a valid name"))
    }
}

#[derive(Debug, Arbitrary)]
struct VersionSpec {
    distribution: Text,
    build: Vec<u64>,
    generation: u8,
}

impl VersionSpec {
    fn developer(&self) -> DeveloperVersion {
        let distribution = self.distribution.text();
        let distribution = if vupdate_core::version::is_distribution_name(&distribution) {
            distribution
        } else {
            "jetto".to_owned()
        };
        DeveloperVersion::new(
            distribution,
            Build::new(self.build.clone()).unwrap_or_else(Build::initial),
        )
    }

    fn client(&self) -> ClientVersion {
        ClientVersion {
            developer: self.developer(),
            generation: u32::from(self.generation),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct RepositorySpec {
    name: Text,
    url: Text,
    branch: Text,
    clone_submodules: bool,
    sub_directory: Option<Text>,
}

#[derive(Debug, Arbitrary)]
struct BuildSpec {
    repositories: Vec<RepositorySpec>,
    macro_values: Vec<(Text, Text)>,
    environment: Vec<(Text, Text)>,
    private_files: Vec<Text>,
}

impl BuildSpec {
    fn repositories(&self) -> Vec<GitRepository> {
        self.repositories
            .iter()
            .map(|spec| GitRepository {
                name: spec.name.text(),
                url: spec.url.text(),
                branch: spec.branch.text(),
                clone_submodules: spec.clone_submodules,
                sub_directory: spec.sub_directory.as_ref().map(Text::text),
            })
            .collect()
    }

    fn developer(&self) -> DeveloperBuild {
        DeveloperBuild {
            sources: self.repositories(),
            macro_values: map(&self.macro_values),
            environment: map(&self.environment),
            private_files: self.private_files.iter().map(Text::text).collect(),
        }
    }

    fn client(&self) -> ClientBuild {
        ClientBuild {
            settings: self.repositories(),
            macro_values: map(&self.macro_values),
            environment: map(&self.environment),
            private_files: self.private_files.iter().map(Text::text).collect(),
        }
    }
}

fn map(pairs: &[(Text, Text)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.text(), value.text()))
        .collect()
}

#[derive(Debug, Arbitrary)]
struct SettingsSpec {
    developer: Option<BuildSpec>,
    client: Option<BuildSpec>,
    builder: Option<Text>,
}

impl SettingsSpec {
    fn settings(&self) -> ServiceSettings {
        ServiceSettings {
            developer: self.developer.as_ref().map(BuildSpec::developer),
            client: self.client.as_ref().map(BuildSpec::client),
            builder: self.builder.as_ref().map(Text::text),
        }
    }
}

/// One [`StateEdit`] of each kind, built from generated values.
#[derive(Debug, Arbitrary)]
enum EditSpec {
    DesiredDeveloper(Vec<(Text, VersionSpec)>),
    DesiredClient(Vec<(Text, VersionSpec)>),
    SetProfile(Text, Vec<Text>),
    RemoveProfile(Text),
    SetTested(Text, Vec<(Text, VersionSpec)>),
    ServiceSettings(Text, SettingsSpec),
    RemoveService(Text),
    Common(SettingsSpec),
}

impl EditSpec {
    fn edit(&self) -> StateEdit {
        match self {
            EditSpec::DesiredDeveloper(list) => StateEdit::SetDesiredDeveloper(
                list.iter()
                    .map(|(name, version)| (name.service(), version.developer()))
                    .collect(),
            ),
            EditSpec::DesiredClient(list) => StateEdit::SetDesiredClient(
                list.iter()
                    .map(|(name, version)| (name.service(), version.client()))
                    .collect(),
            ),
            EditSpec::SetProfile(name, services) => StateEdit::SetProfile {
                name: name.text(),
                services: services.iter().map(Text::service).collect::<BTreeSet<_>>(),
            },
            EditSpec::RemoveProfile(name) => StateEdit::RemoveProfile(name.text()),
            EditSpec::SetTested(distribution, versions) => StateEdit::SetTested {
                distribution: distribution.text(),
                versions: versions
                    .iter()
                    .map(|(name, version)| (name.service(), version.developer()))
                    .collect(),
            },
            EditSpec::ServiceSettings(name, settings) => StateEdit::SetServiceSettings {
                service: name.service(),
                settings: settings.settings(),
            },
            EditSpec::RemoveService(name) => StateEdit::RemoveService(name.service()),
            EditSpec::Common(settings) => StateEdit::SetCommon(settings.settings()),
        }
    }
}
