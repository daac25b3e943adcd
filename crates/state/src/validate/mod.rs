//! [`State::parse`]: the whole of schema 1 checked at once, every problem collected.
//!
//! Order of work: the marker first (a repo of another schema is not read further), then the
//! set of declared services from the file names in `services/` (a service whose file has a
//! syntax error is still declared, so one typo does not cascade into "unknown service"
//! everywhere), then each file on its own, then the references between files.

mod names;
mod settings;
mod waves;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;

use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion, VersionError};

use crate::error::StateError;
use crate::files::{FileSet, MARKER};
use crate::model::{
    AutoUpdate, Consumer, Desired, EditMode, EditRule, OnFailure, Policy, Provider, Rollout,
    SCHEMA_VERSION, State, TestedVersions,
};
use crate::problems::ValidationErrors;
use crate::schema::entries::Entries;
use crate::schema::raw::{
    ConsumersFile, DesiredFile, MarkerFile, PolicyFile, ProfilesFile, ProvidersFile, RawAutoUpdate,
    RolloutFile, SettingsFile, TestedFile,
};
use crate::schema::{Problems, parse_document, parse_file};

/// Path of the desired developer versions.
pub(crate) const DESIRED_DEVELOPER: &str = "desired/developer.yaml";
/// Path of the desired client versions.
pub(crate) const DESIRED_CLIENT: &str = "desired/client.yaml";
/// Path of the build settings shared by every service.
pub(crate) const COMMON: &str = "common.yaml";
const PROFILES: &str = "profiles.yaml";
/// Path of the providers this distribution follows.
pub(crate) const PROVIDERS: &str = "providers.yaml";
/// Path of the consumers this distribution provides for.
pub(crate) const CONSUMERS: &str = "consumers.yaml";
const TESTED: &str = "tested.yaml";
const ROLLOUT: &str = "rollout.yaml";
const POLICY: &str = "policy.yaml";

/// Path of a service's own build settings.
pub(crate) fn service_path(service: &ServiceName) -> String {
    format!("services/{service}.yaml")
}

/// The build settings one file says, when it parses and has no problem of its own (the
/// checks against other files, such as names clashing with common's, are not made).
pub(crate) fn settings_file(path: &str, bytes: &[u8]) -> Option<crate::model::ServiceSettings> {
    let mut problems = Problems::new();
    let raw = parse_file::<SettingsFile>(path, bytes, &mut problems)?;
    let settings = settings::convert(path, raw, None, None, &mut problems);
    problems.list.is_empty().then_some(settings)
}

impl State {
    /// Parses and validates a state repo held in memory; every problem is reported, each
    /// with its file, line and column.
    pub fn parse(files: &FileSet) -> Result<State, ValidationErrors> {
        let mut problems = Problems::new();
        let state = parse_state(files, &mut problems);
        match ValidationErrors::from_problems(problems.list) {
            Some(errors) => Err(errors),
            None => Ok(state.expect("a state is built whenever no problem was found")),
        }
    }

    /// Loads and validates the state repo files of a directory (a work tree; `.git` and
    /// any file outside the schema are ignored).
    pub fn load_dir(path: impl AsRef<Path>) -> Result<State, StateError> {
        let path = path.as_ref();
        let files = FileSet::from_dir(path)?;
        State::parse(&files).map_err(|errors| StateError::InvalidDirectory {
            path: path.to_path_buf(),
            errors,
        })
    }
}

impl Desired {
    /// Parses only the two desired lists (syntax, service names and versions), without
    /// checking that the services are declared: history and diffs use it on revisions whose
    /// other files may not validate.
    pub fn parse(files: &FileSet) -> Result<Desired, ValidationErrors> {
        let mut problems = Problems::new();
        let desired = parse_desired(files, None, &mut problems);
        match ValidationErrors::from_problems(problems.list) {
            Some(errors) => Err(errors),
            None => Ok(desired),
        }
    }
}

fn parse_state(files: &FileSet, problems: &mut Problems) -> Option<State> {
    check_marker(files, problems)?;

    let declared = declared_services(files, problems);
    let known: BTreeSet<&str> = declared.keys().map(ServiceName::as_str).collect();
    check_desired_folder(files, problems);

    let providers = parse_providers(files, problems);
    let provider_names: BTreeSet<String> = providers.keys().cloned().collect();
    let common_raw = files
        .get(COMMON)
        .and_then(|bytes| parse_file::<SettingsFile>(COMMON, bytes, problems))
        .unwrap_or_default();
    let common = settings::convert(COMMON, common_raw, None, Some(&provider_names), problems);

    let mut services = BTreeMap::new();
    for (service, path) in &declared {
        let bytes = files.get(path).unwrap_or_default();
        let raw = parse_file::<SettingsFile>(path, bytes, problems).unwrap_or_default();
        services.insert(
            service.clone(),
            settings::convert(path, raw, Some(&common), Some(&provider_names), problems),
        );
    }

    let desired = parse_desired(files, Some(&known), problems);
    let profiles = parse_profiles(files, &known, problems);
    let consumers = parse_consumers(files, profiles.as_ref(), problems);
    let tested = parse_tested(files, &known, problems);
    let rollout = parse_rollout(files, &known, problems);
    let policy = parse_policy(files, problems);

    Some(State {
        schema: SCHEMA_VERSION,
        common,
        services,
        desired,
        profiles: profiles.unwrap_or_default(),
        providers,
        consumers,
        tested,
        rollout,
        policy,
    })
}

/// Checks `vupdate.yaml`; `None` stops validation (no marker, or another schema).
fn check_marker(files: &FileSet, problems: &mut Problems) -> Option<()> {
    let Some(bytes) = files.get(MARKER) else {
        problems.file(
            MARKER,
            format!(
                "missing: a state repo has `{MARKER}` at its root with `schema: {SCHEMA_VERSION}`"
            ),
        );
        return None;
    };
    match parse_document::<MarkerFile>(MARKER, bytes, problems)? {
        None => {
            problems.file(MARKER, format!("empty: write `schema: {SCHEMA_VERSION}`"));
            None
        }
        Some(marker) if marker.schema.value != SCHEMA_VERSION => {
            problems.at(
                MARKER,
                &marker.schema.referenced,
                format!(
                    "schema {} not supported (this vupdate reads schema {SCHEMA_VERSION})",
                    marker.schema.value
                ),
            );
            None
        }
        Some(_) => Some(()),
    }
}

/// The services declared by `services/<name>.yaml`, with their file paths.
fn declared_services(files: &FileSet, problems: &mut Problems) -> BTreeMap<ServiceName, String> {
    let mut declared = BTreeMap::new();
    for (path, _) in files.iter() {
        let Some(rest) = path.strip_prefix("services/") else {
            continue;
        };
        if rest.contains('/') {
            problems.file(
                path,
                "services/ holds only `<service>.yaml` files, no folders",
            );
            continue;
        }
        let Some(name) = rest.strip_suffix(".yaml") else {
            let message = match rest.strip_suffix(".yml") {
                Some(name) => format!("service files end in `.yaml`: rename it to services/{name}.yaml"),
                None => "only `<service>.yaml` files belong in services/ (the file name is the service name)".to_owned(),
            };
            problems.file(path, message);
            continue;
        };
        match name.parse::<ServiceName>() {
            Ok(service) => {
                declared.insert(service, path.to_owned());
            }
            Err(error) => problems.file(
                path,
                format!("the file name is not a service name: {error}"),
            ),
        }
    }
    declared
}

fn check_desired_folder(files: &FileSet, problems: &mut Problems) {
    for (path, _) in files.iter() {
        if path.starts_with("desired/") && path != DESIRED_DEVELOPER && path != DESIRED_CLIENT {
            problems.file(
                path,
                "unknown file: desired/ holds only developer.yaml and client.yaml",
            );
        }
    }
}

/// Both desired lists; `known` is the set of declared services, or `None` not to check it.
fn parse_desired(
    files: &FileSet,
    known: Option<&BTreeSet<&str>>,
    problems: &mut Problems,
) -> Desired {
    Desired {
        developer: parse_versions::<DeveloperVersion>(
            files,
            DESIRED_DEVELOPER,
            "desired developer versions",
            known,
            problems,
        ),
        client: parse_versions::<ClientVersion>(
            files,
            DESIRED_CLIENT,
            "desired client versions",
            known,
            problems,
        ),
    }
}

/// One section of the file at `path`; empty when the file or the section is missing, or
/// when the file does not parse (that is recorded in `problems`).
fn file_section<F, S>(
    files: &FileSet,
    path: &str,
    problems: &mut Problems,
    section: impl FnOnce(F) -> Option<S>,
) -> S
where
    F: DeserializeOwned + Default,
    S: Default,
{
    files
        .get(path)
        .and_then(|bytes| parse_file::<F>(path, bytes, problems))
        .and_then(section)
        .unwrap_or_default()
}

fn parse_versions<V: FromStr<Err = VersionError>>(
    files: &FileSet,
    path: &str,
    list: &str,
    known: Option<&BTreeSet<&str>>,
    problems: &mut Problems,
) -> BTreeMap<ServiceName, V> {
    let raw = file_section(files, path, problems, |file: DesiredFile| file.versions);
    version_entries(path, raw, known, &format!("in {list}"), problems)
}

/// A map of service to version from `path`: each key must be a service (one of `known`,
/// when given; `context` says where the map is), each value a `V`. An entry with a problem
/// is recorded in `problems` and left out.
fn version_entries<V: FromStr<Err = VersionError>>(
    path: &str,
    entries: Entries<Spanned<String>>,
    known: Option<&BTreeSet<&str>>,
    context: &str,
    problems: &mut Problems,
) -> BTreeMap<ServiceName, V> {
    let mut versions = BTreeMap::new();
    for (key, value) in entries.0 {
        let service = service_reference(path, &key, known, context, problems);
        let version = value
            .value
            .parse::<V>()
            .map_err(|error| problems.at(path, &value.referenced, error.to_string()))
            .ok();
        if let (Some(service), Some(version)) = (service, version) {
            versions.insert(service, version);
        }
    }
    versions
}

/// Reads a service name that refers to a declared service; problems point at `text`.
fn service_reference(
    path: &str,
    text: &serde_saphyr::Spanned<String>,
    known: Option<&BTreeSet<&str>>,
    context: &str,
    problems: &mut Problems,
) -> Option<ServiceName> {
    match text.value.parse::<ServiceName>() {
        Err(error) => {
            problems.at(path, &text.referenced, error.to_string());
            None
        }
        Ok(service) if known.is_some_and(|known| !known.contains(service.as_str())) => {
            problems.at(
                path,
                &text.referenced,
                format!(
                    "unknown service `{service}` {context}: there is no services/{service}.yaml"
                ),
            );
            None
        }
        Ok(service) => Some(service),
    }
}

/// `None` when profiles.yaml could not be read, so consumers skip their profile check.
fn parse_profiles(
    files: &FileSet,
    known: &BTreeSet<&str>,
    problems: &mut Problems,
) -> Option<BTreeMap<String, BTreeSet<ServiceName>>> {
    let raw = match files.get(PROFILES) {
        None => return Some(BTreeMap::new()),
        Some(bytes) => parse_file::<ProfilesFile>(PROFILES, bytes, problems)?,
    };
    let mut profiles = BTreeMap::new();
    for (name, services) in raw.profiles.unwrap_or_default().0 {
        if let Err(message) = names::check_profile_name(&name.value) {
            problems.at(PROFILES, &name.referenced, message);
        }
        let mut members = BTreeSet::new();
        for item in services.unwrap_or_default() {
            let context = format!("in profile `{}`", name.value);
            if let Some(service) =
                service_reference(PROFILES, &item, Some(known), &context, problems)
                && !members.insert(service.clone())
            {
                problems.at(
                    PROFILES,
                    &item.referenced,
                    format!(
                        "service `{service}` is listed twice in profile `{}`",
                        name.value
                    ),
                );
            }
        }
        profiles.insert(name.value, members);
    }
    Some(profiles)
}

fn parse_providers(files: &FileSet, problems: &mut Problems) -> BTreeMap<String, Provider> {
    let raw = file_section(files, PROVIDERS, problems, |file: ProvidersFile| {
        file.providers
    });
    let mut providers = BTreeMap::new();
    for (name, provider) in raw.0 {
        let mut check = |location: &serde_saphyr::Location, result: Result<(), String>| {
            if let Err(message) = result {
                problems.at(PROVIDERS, location, message);
            }
        };
        check(
            &name.referenced,
            names::check_distribution_name(&name.value, "provider"),
        );
        let what = format!("url of provider `{}`", name.value);
        check(
            &provider.url.referenced,
            names::check_http_url(&provider.url.value, &what),
        );
        let secret = &provider.access_token_secret;
        check(&secret.referenced, names::check_secret_name(&secret.value));
        if let Some(test_consumer) = &provider.test_consumer {
            let result = names::check_distribution_name(&test_consumer.value, "testConsumer");
            check(&test_consumer.referenced, result);
        }
        let auto_update = match provider.auto_update {
            None => AutoUpdate::Off,
            Some(raw) => match auto_update(&raw.value) {
                Ok(mode) => mode,
                Err(message) => {
                    problems.at(PROVIDERS, &raw.referenced, message);
                    AutoUpdate::Off
                }
            },
        };
        let pinned_public_key =
            provider
                .pinned_public_key
                .and_then(|pin| match pin.value.parse() {
                    Ok(pin) => Some(pin),
                    Err(message) => {
                        problems.at(
                            PROVIDERS,
                            &pin.referenced,
                            format!("pinnedPublicKey: {message}"),
                        );
                        None
                    }
                });
        providers.insert(
            name.value,
            Provider {
                url: provider.url.value,
                access_token_secret: provider.access_token_secret.value,
                test_consumer: provider.test_consumer.map(|t| t.value),
                upload_state: provider.upload_state.unwrap_or(false),
                auto_update,
                pinned_public_key,
            },
        );
    }
    providers
}

/// `autoUpdate` as written: a mode, or the first release's boolean (`true` is `commit`,
/// `false` is `off`, as they meant then).
fn auto_update(raw: &RawAutoUpdate) -> Result<AutoUpdate, String> {
    match raw {
        RawAutoUpdate::Flag(true) => Ok(AutoUpdate::Commit),
        RawAutoUpdate::Flag(false) => Ok(AutoUpdate::Off),
        RawAutoUpdate::Mode(text) => text.parse().map_err(|_| {
            format!(
                "autoUpdate `{text}` is not one of `commit` (commit the provider's versions), `pullRequest` (push them to a branch for review) or `off` (only show them); `true` and `false` are read as `commit` and `off`"
            )
        }),
    }
}

fn parse_consumers(
    files: &FileSet,
    profiles: Option<&BTreeMap<String, BTreeSet<ServiceName>>>,
    problems: &mut Problems,
) -> BTreeMap<String, Consumer> {
    let raw = file_section(files, CONSUMERS, problems, |file: ConsumersFile| {
        file.consumers
    });
    let names_declared: BTreeSet<String> =
        raw.0.iter().map(|(name, _)| name.value.clone()).collect();
    let mut consumers = BTreeMap::new();
    for (name, consumer) in raw.0 {
        if let Err(message) = names::check_distribution_name(&name.value, "consumer") {
            problems.at(CONSUMERS, &name.referenced, message);
        }
        let profile = &consumer.profile;
        if profiles.is_some_and(|profiles| !profiles.contains_key(&profile.value)) {
            problems.at(
                CONSUMERS,
                &profile.referenced,
                format!(
                    "unknown profile `{}` for consumer `{}`: profiles.yaml declares no such profile",
                    profile.value, name.value
                ),
            );
        }
        if let Some(url) = &consumer.url {
            let what = format!("url of consumer `{}`", name.value);
            if let Err(message) = names::check_http_url(&url.value, &what) {
                problems.at(CONSUMERS, &url.referenced, message);
            }
        }
        if let Some(test_consumer) = &consumer.test_consumer
            && (!names_declared.contains(&test_consumer.value) || test_consumer.value == name.value)
        {
            problems.at(
                CONSUMERS,
                &test_consumer.referenced,
                format!(
                    "testConsumer `{}` of consumer `{}` must name another consumer of consumers.yaml",
                    test_consumer.value, name.value
                ),
            );
        }
        consumers.insert(
            name.value,
            Consumer {
                profile: consumer.profile.value,
                url: consumer.url.map(|u| u.value),
                test_consumer: consumer.test_consumer.map(|t| t.value),
            },
        );
    }
    consumers
}

fn parse_tested(
    files: &FileSet,
    known: &BTreeSet<&str>,
    problems: &mut Problems,
) -> BTreeMap<String, TestedVersions> {
    let raw = file_section(files, TESTED, problems, |file: TestedFile| file.tested);
    let mut tested = BTreeMap::new();
    for (distribution, mark) in raw.0 {
        if let Err(message) = names::check_distribution_name(&distribution.value, "distribution") {
            problems.at(TESTED, &distribution.referenced, message);
        }
        let context = format!("in the versions tested by `{}`", distribution.value);
        let versions = version_entries::<DeveloperVersion>(
            TESTED,
            mark.versions.unwrap_or_default(),
            Some(known),
            &context,
            problems,
        );
        let time = mark.time.and_then(|time| {
            chrono::DateTime::parse_from_rfc3339(&time.value)
                .map_err(|_| {
                    problems.at(
                        TESTED,
                        &time.referenced,
                        format!(
                            "time `{}` is not an RFC 3339 time such as `2026-11-25T10:30:00Z`",
                            time.value
                        ),
                    )
                })
                .ok()
        });
        tested.insert(distribution.value, TestedVersions { versions, time });
    }
    tested
}

fn parse_rollout(files: &FileSet, known: &BTreeSet<&str>, problems: &mut Problems) -> Rollout {
    let Some(raw) = files
        .get(ROLLOUT)
        .and_then(|bytes| parse_file::<RolloutFile>(ROLLOUT, bytes, problems))
    else {
        return Rollout::default();
    };
    let policy = |value: Option<Spanned<String>>, problems: &mut Problems| {
        let value = value?;
        match value.value.as_str() {
            "hold" => Some(OnFailure::Hold),
            "revert" => Some(OnFailure::Revert),
            other => {
                problems.at(
                    ROLLOUT,
                    &value.referenced,
                    format!("onFailure `{other}` is not one of `revert` or `hold`"),
                );
                None
            }
        }
    };
    let on_failure = policy(raw.on_failure, problems).unwrap_or_default();
    let common_waves = raw
        .waves
        .map(|list| waves::convert(ROLLOUT, list, problems))
        .unwrap_or_default();
    let mut services = BTreeMap::new();
    let mut service_waves = BTreeMap::new();
    for (name, service) in raw.services.unwrap_or_default().0 {
        if !known.contains(name.value.as_str()) {
            problems.at(
                ROLLOUT,
                &name.referenced,
                format!(
                    "service `{}` is not declared (no services/{}.yaml)",
                    name.value, name.value
                ),
            );
            continue;
        }
        let Ok(service_name) = name.value.parse::<ServiceName>() else {
            continue;
        };
        if let Some(list) = service.waves {
            service_waves.insert(
                service_name.clone(),
                waves::convert(ROLLOUT, list, problems),
            );
        }
        if let Some(own) = policy(service.on_failure, problems) {
            services.insert(service_name, own);
        }
    }
    Rollout {
        on_failure,
        services,
        waves: common_waves,
        service_waves,
    }
}

fn parse_policy(files: &FileSet, problems: &mut Problems) -> Policy {
    let raw = file_section(files, POLICY, problems, |file: PolicyFile| file.edits);
    let mut edits = Vec::new();
    for rule in raw {
        let branch = rule.branch;
        if branch.value.is_empty() {
            problems.at(POLICY, &branch.referenced, "branch pattern is empty");
        }
        let mode = EditMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == rule.mode.value);
        let Some(mode) = mode else {
            problems.at(
                POLICY,
                &rule.mode.referenced,
                format!(
                    "mode `{}` for branch `{}` is not one of commit, pullRequest",
                    rule.mode.value, branch.value
                ),
            );
            continue;
        };
        edits.push(EditRule {
            branch: branch.value,
            mode,
        });
    }
    Policy { edits }
}

#[cfg(test)]
mod tests;
