//! [`StateEdit`]: the changes the CLI and the dashboard make, applied to a [`FileSet`].
//!
//! Applying an edit is pure: it returns the new files (only the touched one differs) and
//! never checks the whole state; [`StateRepo::edit`](crate::StateRepo::edit) validates the
//! result with [`State::parse`](crate::State::parse) before anything is written. Build
//! settings files are written by the `settings` module.

mod settings;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::files::FileSet;
use crate::model::{AutoUpdate, Consumer, Provider, ServiceSettings};
use crate::problems::{Problem, ValidationErrors};
use crate::validate::{
    COMMON, CONSUMERS, DESIRED_CLIENT, DESIRED_DEVELOPER, PROVIDERS, service_path,
};
use crate::yaml::{self, Op, Value};

/// A change to the state repo, made as one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateEdit {
    /// Replace the whole desired developer list (services left out are removed).
    SetDesiredDeveloper(BTreeMap<ServiceName, DeveloperVersion>),
    /// Replace the whole desired client list (services left out are removed).
    SetDesiredClient(BTreeMap<ServiceName, ClientVersion>),
    /// Create or replace a profile.
    SetProfile {
        /// The profile name.
        name: String,
        /// Its services.
        services: BTreeSet<ServiceName>,
    },
    /// Remove a profile (nothing happens if there is none).
    RemoveProfile(String),
    /// Record the developer versions a distribution tested, stamped with the edit's time.
    SetTested {
        /// The distribution that tested them.
        distribution: String,
        /// Service -> tested developer version.
        versions: BTreeMap<ServiceName, DeveloperVersion>,
    },
    /// Create or replace `services/<service>.yaml` (which declares the service): a part that
    /// is `None` is removed from the file, fields at their defaults are left out.
    SetServiceSettings {
        /// The service.
        service: ServiceName,
        /// Its own build settings (merged over `common.yaml` when used).
        settings: ServiceSettings,
    },
    /// Delete `services/<service>.yaml` (nothing happens if there is none); refused by
    /// validation while a desired list, profile or tested mark still names the service.
    RemoveService(ServiceName),
    /// Create or replace `common.yaml`, the build settings shared by every service.
    SetCommon(ServiceSettings),
    /// Create or replace a provider of `providers.yaml` (fields at their defaults are left
    /// out).
    SetProvider {
        /// The provider's distribution name.
        name: String,
        /// How this distribution follows it.
        provider: Provider,
    },
    /// Remove a provider of `providers.yaml` (nothing happens if there is none).
    RemoveProvider(String),
    /// Create or replace a consumer of `consumers.yaml`.
    SetConsumer {
        /// The consumer's distribution name (its account's name on this distribution).
        name: String,
        /// What it receives.
        consumer: Consumer,
    },
    /// Remove a consumer of `consumers.yaml` (nothing happens if there is none).
    RemoveConsumer(String),
}

impl StateEdit {
    /// The file the edit changes, relative to the repository root.
    pub fn path(&self) -> Cow<'static, str> {
        match self {
            StateEdit::SetDesiredDeveloper(_) => DESIRED_DEVELOPER.into(),
            StateEdit::SetDesiredClient(_) => DESIRED_CLIENT.into(),
            StateEdit::SetProfile { .. } | StateEdit::RemoveProfile(_) => "profiles.yaml".into(),
            StateEdit::SetTested { .. } => "tested.yaml".into(),
            StateEdit::SetServiceSettings { service, .. } | StateEdit::RemoveService(service) => {
                service_path(service).into()
            }
            StateEdit::SetCommon(_) => COMMON.into(),
            StateEdit::SetProvider { .. } | StateEdit::RemoveProvider(_) => PROVIDERS.into(),
            StateEdit::SetConsumer { .. } | StateEdit::RemoveConsumer(_) => CONSUMERS.into(),
        }
    }

    /// A one-line description, used as the default commit message.
    pub fn describe(&self) -> String {
        match self {
            StateEdit::SetDesiredDeveloper(list) => {
                format!("Set desired developer versions ({} services)", list.len())
            }
            StateEdit::SetDesiredClient(list) => {
                format!("Set desired client versions ({} services)", list.len())
            }
            StateEdit::SetProfile { name, services } => {
                format!("Set profile {name} ({} services)", services.len())
            }
            StateEdit::RemoveProfile(name) => format!("Remove profile {name}"),
            StateEdit::SetTested {
                distribution,
                versions,
            } => {
                format!(
                    "Mark {} versions as tested by {distribution}",
                    versions.len()
                )
            }
            StateEdit::SetServiceSettings { service, .. } => {
                format!("Set build settings of {service}")
            }
            StateEdit::RemoveService(service) => format!("Remove service {service}"),
            StateEdit::SetCommon(_) => "Set common build settings".to_owned(),
            StateEdit::SetProvider { name, .. } => format!("Set provider {name}"),
            StateEdit::RemoveProvider(name) => format!("Remove provider {name}"),
            StateEdit::SetConsumer { name, .. } => format!("Set consumer {name}"),
            StateEdit::RemoveConsumer(name) => format!("Remove consumer {name}"),
        }
    }

    /// The files after the edit; `now` stamps `SetTested`. Files the edit does not touch are
    /// returned unchanged. Fails only when the file to edit does not parse as YAML (or, for
    /// a build settings file, is not a mapping).
    pub fn apply(&self, files: &FileSet, now: DateTime<Utc>) -> Result<FileSet, ValidationErrors> {
        let path = self.path();
        let mut files = files.clone();
        let old = files
            .get(&path)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        let new = match self.change(now) {
            Change::Delete => {
                files.remove(&path);
                return Ok(files);
            }
            Change::Settings {
                settings,
                header,
                declares,
            } => {
                if old.is_none() && !declares && *settings == ServiceSettings::default() {
                    return Ok(files);
                }
                settings::edit(&path, old.as_deref(), settings, &header)
            }
            Change::Mapping(top_key, ops) => yaml::edit_mapping(old.as_deref(), top_key, &ops),
        }
        .map_err(|e| not_editable(&path, e.0))?;
        if let Some(new) = new {
            files.insert(path, new.into_bytes());
        }
        Ok(files)
    }

    /// What the edit does to its file.
    fn change(&self, now: DateTime<Utc>) -> Change<'_> {
        match self {
            StateEdit::SetDesiredDeveloper(list) => {
                Change::Mapping("versions", vec![replace_list(list)])
            }
            StateEdit::SetDesiredClient(list) => {
                Change::Mapping("versions", vec![replace_list(list)])
            }
            StateEdit::SetProfile { name, services } => {
                let items = services.iter().map(Value::scalar).collect();
                Change::Mapping("profiles", vec![Op::Set(name.clone(), Value::Seq(items))])
            }
            StateEdit::RemoveProfile(name) => {
                Change::Mapping("profiles", vec![Op::Remove(name.clone())])
            }
            StateEdit::SetTested {
                distribution,
                versions,
            } => {
                let versions = versions
                    .iter()
                    .map(|(s, v)| (s.to_string(), Value::scalar(v)))
                    .collect();
                let mark = Value::Map(vec![
                    ("versions".to_owned(), Value::Map(versions)),
                    (
                        "time".to_owned(),
                        Value::scalar(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    ),
                ]);
                Change::Mapping("tested", vec![Op::Set(distribution.clone(), mark)])
            }
            StateEdit::SetServiceSettings { service, settings } => Change::Settings {
                settings,
                header: format!(
                    "# Build settings of {service}: how its developer and client versions are made.\n"
                ),
                declares: true,
            },
            StateEdit::RemoveService(_) => Change::Delete,
            StateEdit::SetCommon(common) => Change::Settings {
                settings: common,
                header: "# Build settings shared by every service.\n".to_owned(),
                declares: false,
            },
            StateEdit::SetProvider { name, provider } => Change::Mapping(
                "providers",
                vec![Op::Set(name.clone(), provider_value(provider))],
            ),
            StateEdit::RemoveProvider(name) => {
                Change::Mapping("providers", vec![Op::Remove(name.clone())])
            }
            StateEdit::SetConsumer { name, consumer } => Change::Mapping(
                "consumers",
                vec![Op::Set(name.clone(), consumer_value(consumer))],
            ),
            StateEdit::RemoveConsumer(name) => {
                Change::Mapping("consumers", vec![Op::Remove(name.clone())])
            }
        }
    }
}

/// What an edit does to its file.
enum Change<'a> {
    /// Applies ops to one top-level mapping (`versions:`, `profiles:`, `tested:`).
    Mapping(&'static str, Vec<Op>),
    /// Makes a build settings file say these settings.
    Settings {
        /// What the file is to say.
        settings: &'a ServiceSettings,
        /// The comment a new file starts with.
        header: String,
        /// Whether the file's existence means something (a service file declares its
        /// service), so that an empty one is still created; `common.yaml` absent is empty.
        declares: bool,
    },
    /// Deletes the file.
    Delete,
}

/// The op that makes `versions:` exactly `list`.
fn replace_list<V: ToString>(list: &BTreeMap<ServiceName, V>) -> Op {
    Op::ReplaceAll(
        list.iter()
            .map(|(service, version)| (service.to_string(), Value::scalar(version.to_string())))
            .collect(),
    )
}

/// A provider entry as `providers.yaml` writes it; defaults are left out.
fn provider_value(provider: &Provider) -> Value {
    let mut entries = vec![
        ("url".to_owned(), Value::scalar(&provider.url)),
        (
            "accessTokenSecret".to_owned(),
            Value::scalar(&provider.access_token_secret),
        ),
    ];
    if let Some(test_consumer) = &provider.test_consumer {
        entries.push(("testConsumer".to_owned(), Value::scalar(test_consumer)));
    }
    if provider.upload_state {
        entries.push(("uploadState".to_owned(), Value::Bool(true)));
    }
    if provider.auto_update != AutoUpdate::Off {
        entries.push(("autoUpdate".to_owned(), Value::scalar(provider.auto_update)));
    }
    if let Some(pin) = &provider.pinned_public_key {
        entries.push(("pinnedPublicKey".to_owned(), Value::scalar(pin)));
    }
    Value::Map(entries)
}

/// A consumer entry as `consumers.yaml` writes it.
fn consumer_value(consumer: &Consumer) -> Value {
    let mut entries = vec![("profile".to_owned(), Value::scalar(&consumer.profile))];
    if let Some(url) = &consumer.url {
        entries.push(("url".to_owned(), Value::scalar(url)));
    }
    if let Some(test_consumer) = &consumer.test_consumer {
        entries.push(("testConsumer".to_owned(), Value::scalar(test_consumer)));
    }
    Value::Map(entries)
}

fn not_editable(path: &str, message: String) -> ValidationErrors {
    ValidationErrors::from_problems(vec![Problem {
        path: path.to_owned(),
        position: None,
        message,
    }])
    .expect("one problem")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:30:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn text(files: &FileSet, path: &str) -> String {
        String::from_utf8(files.get(path).expect("file").to_vec()).expect("utf-8")
    }

    #[test]
    fn set_desired_changes_only_the_lines_of_changed_services() {
        let files: FileSet = [(
            DESIRED_DEVELOPER,
            "# dev\nversions:\n  api: d-1.0  # keep\n  old: d-1.0\n  web: d-1.0\n",
        )]
        .into_iter()
        .collect();
        let list = [("api", "d-1.1"), ("web", "d-1.0"), ("zed", "d-2.0")]
            .into_iter()
            .map(|(s, v)| (s.parse().expect("service"), v.parse().expect("version")))
            .collect();
        let edited = StateEdit::SetDesiredDeveloper(list)
            .apply(&files, now())
            .expect("applies");
        assert_eq!(
            text(&edited, DESIRED_DEVELOPER),
            "# dev\nversions:\n  api: d-1.1  # keep\n  web: d-1.0\n  zed: d-2.0\n"
        );
    }

    #[test]
    fn set_tested_writes_a_stamped_entry_and_remove_profile_of_nothing_changes_nothing() {
        let files = FileSet::new();
        let versions = [(
            "api".parse().expect("service"),
            "d-1.0".parse().expect("version"),
        )]
        .into_iter()
        .collect();
        let edited = StateEdit::SetTested {
            distribution: "qa".into(),
            versions,
        }
        .apply(&files, now())
        .expect("applies");
        assert_eq!(
            text(&edited, "tested.yaml"),
            "tested:\n  qa:\n    versions:\n      api: d-1.0\n    time: \"2026-11-25T10:30:00Z\"\n"
        );
        let same = StateEdit::RemoveProfile("none".into())
            .apply(&edited, now())
            .expect("applies");
        assert_eq!(same, edited);
    }

    #[test]
    fn providers_and_consumers_are_written_without_their_defaults() {
        let files: FileSet = [(PROVIDERS, "# who we follow\nproviders: {}\n")]
            .into_iter()
            .collect();
        let provider = Provider {
            url: "https://jetto.example.com".into(),
            access_token_secret: "jetto-token".into(),
            test_consumer: Some("staging".into()),
            upload_state: true,
            auto_update: AutoUpdate::PullRequest,
            pinned_public_key: Some(vupdate_core::pin::PublicKeyPin::of_public_key(b"jetto")),
        };
        let pin = provider.pinned_public_key.expect("a pin").to_string();
        let edited = StateEdit::SetProvider {
            name: "jetto".into(),
            provider,
        }
        .apply(&files, now())
        .expect("applies");
        assert_eq!(
            text(&edited, PROVIDERS),
            format!(
                "# who we follow\nproviders:\n  jetto:\n    url: \"https://jetto.example.com\"\n    accessTokenSecret: jetto-token\n    testConsumer: staging\n    uploadState: true\n    autoUpdate: pullRequest\n    pinnedPublicKey: \"{pin}\"\n"
            )
        );
        let removed = StateEdit::RemoveProvider("jetto".into())
            .apply(&edited, now())
            .expect("applies");
        assert!(!text(&removed, PROVIDERS).contains("jetto"));
        let consumer = Consumer {
            profile: "partner".into(),
            url: None,
            test_consumer: None,
        };
        let edited = StateEdit::SetConsumer {
            name: "acme".into(),
            consumer,
        }
        .apply(&FileSet::new(), now())
        .expect("applies");
        assert_eq!(
            text(&edited, CONSUMERS),
            "consumers:\n  acme:\n    profile: partner\n"
        );
    }

    #[test]
    fn a_broken_file_is_reported_not_overwritten() {
        let files: FileSet = [("profiles.yaml", "profiles: [\n")].into_iter().collect();
        let error = StateEdit::RemoveProfile("x".into())
            .apply(&files, now())
            .expect_err("broken");
        assert!(
            error
                .to_string()
                .starts_with("profiles.yaml: it must parse before it can be edited"),
            "{error}"
        );
    }
}
