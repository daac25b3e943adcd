//! [`StateEdit`]: the changes the CLI and the dashboard make, applied to a [`FileSet`].
//!
//! Applying an edit is pure: it returns the new files (only the touched ones differ) and
//! never checks the whole state; [`StateRepo::edit`](crate::StateRepo::edit) validates the
//! result with [`State::parse`](crate::State::parse) before anything is written.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::files::FileSet;
use crate::problems::{Problem, ValidationErrors};
use crate::validate::{DESIRED_CLIENT, DESIRED_DEVELOPER};
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
}

impl StateEdit {
    /// The file the edit changes.
    pub fn path(&self) -> &'static str {
        match self {
            StateEdit::SetDesiredDeveloper(_) => DESIRED_DEVELOPER,
            StateEdit::SetDesiredClient(_) => DESIRED_CLIENT,
            StateEdit::SetProfile { .. } | StateEdit::RemoveProfile(_) => "profiles.yaml",
            StateEdit::SetTested { .. } => "tested.yaml",
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
        }
    }

    /// The files after the edit; `now` stamps `SetTested`. Files the edit does not touch are
    /// returned unchanged. Fails only when the file to edit does not parse as YAML.
    pub fn apply(&self, files: &FileSet, now: DateTime<Utc>) -> Result<FileSet, ValidationErrors> {
        let path = self.path();
        let old = files
            .get(path)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        let (top_key, ops) = self.ops(now);
        let new = yaml::edit_mapping(old.as_deref(), top_key, &ops)
            .map_err(|e| not_editable(path, e.0))?;
        let mut files = files.clone();
        if let Some(new) = new {
            files.insert(path, new.into_bytes());
        }
        Ok(files)
    }

    fn ops(&self, now: DateTime<Utc>) -> (&'static str, Vec<Op>) {
        match self {
            StateEdit::SetDesiredDeveloper(list) => ("versions", vec![replace_list(list)]),
            StateEdit::SetDesiredClient(list) => ("versions", vec![replace_list(list)]),
            StateEdit::SetProfile { name, services } => {
                let items = services.iter().map(Value::scalar).collect();
                ("profiles", vec![Op::Set(name.clone(), Value::Seq(items))])
            }
            StateEdit::RemoveProfile(name) => ("profiles", vec![Op::Remove(name.clone())]),
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
                ("tested", vec![Op::Set(distribution.clone(), mark)])
            }
        }
    }
}

/// The op that makes `versions:` exactly `list`.
fn replace_list<V: ToString>(list: &BTreeMap<ServiceName, V>) -> Op {
    Op::ReplaceAll(
        list.iter()
            .map(|(service, version)| (service.to_string(), Value::scalar(version.to_string())))
            .collect(),
    )
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
