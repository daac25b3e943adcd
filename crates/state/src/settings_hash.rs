//! [`client_settings_hash`]: one hash of a service's merged client build settings, the
//! half of a client version's settings stamp that Git holds (the other half, the commits of
//! the settings repositories, is only known once they are fetched).
//!
//! The builder stamps each client version record with it, and the reconcile loop compares
//! it with the state in force to see which services' client settings changed; both call
//! this one function, so the two can never disagree on what "changed" means.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use vupdate_core::service::ServiceName;

use crate::{ClientBuild, State};

/// Bumped when what the hash covers changes, so an old stamp never matches a new hash of
/// the same settings by accident (it then differs, and one check finds the content unchanged).
const FORMAT: u32 = 1;

/// What the hash covers, in a fixed field order (maps sorted by key): everything of the
/// client settings that can change the image. A settings repository's `name` is left out,
/// since it only names the folder the builder clones it into.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Hashed<'a> {
    format: u32,
    settings: Vec<HashedRepository<'a>>,
    macro_values: &'a BTreeMap<String, String>,
    environment: &'a BTreeMap<String, String>,
    private_files: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HashedRepository<'a> {
    url: &'a str,
    branch: &'a str,
    sub_directory: Option<&'a str>,
    clone_submodules: bool,
}

/// `sha256:<hex>` of the merged client build settings `settings` (as
/// [`State::build_settings`] gives them): the settings repositories in order (url, branch,
/// sub-directory, submodules), macro values, environment and private file paths. No
/// settings and empty settings make the same build, so they hash the same.
pub fn client_settings_hash(settings: Option<&ClientBuild>) -> String {
    let empty = ClientBuild::default();
    let settings = settings.unwrap_or(&empty);
    let hashed = Hashed {
        format: FORMAT,
        settings: settings
            .settings
            .iter()
            .map(|repository| HashedRepository {
                url: &repository.url,
                branch: &repository.branch,
                sub_directory: repository.sub_directory.as_deref(),
                clone_submodules: repository.clone_submodules,
            })
            .collect(),
        macro_values: &settings.macro_values,
        environment: &settings.environment,
        private_files: &settings.private_files,
    };
    let bytes = serde_json::to_vec(&hashed).expect("plain strings and maps always serialise");
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hash of `service`'s merged client settings in `state`; `None` when the state does
/// not declare the service.
pub fn service_settings_hash(state: &State, service: &ServiceName) -> Option<String> {
    let settings = state.build_settings(service)?;
    Some(client_settings_hash(settings.client.as_ref()))
}

#[cfg(test)]
mod tests {
    use crate::GitRepository;

    use super::*;

    fn repository(url: &str) -> GitRepository {
        GitRepository {
            name: "settings".to_owned(),
            url: url.to_owned(),
            branch: "main".to_owned(),
            clone_submodules: true,
            sub_directory: None,
        }
    }

    fn base() -> ClientBuild {
        ClientBuild {
            settings: vec![repository("file:///a"), repository("file:///b")],
            macro_values: BTreeMap::from([("greeting".to_owned(), "hello".to_owned())]),
            environment: BTreeMap::from([("REGION".to_owned(), "eu".to_owned())]),
            private_files: vec!["keys/a.key".to_owned()],
        }
    }

    #[test]
    fn every_setting_that_can_change_the_image_changes_the_hash() {
        let original = client_settings_hash(Some(&base()));
        assert!(original.starts_with("sha256:") && original.len() == 7 + 64);
        assert_eq!(client_settings_hash(Some(&base())), original, "stable");
        type Change = Box<dyn Fn(&mut ClientBuild)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "a macro value",
                Box::new(|s| {
                    s.macro_values.insert("greeting".into(), "hi".into());
                }),
            ),
            (
                "a new macro",
                Box::new(|s| {
                    s.macro_values.insert("other".into(), "x".into());
                }),
            ),
            ("the environment", Box::new(|s| s.environment.clear())),
            (
                "a private file",
                Box::new(|s| s.private_files.push("keys/b.key".into())),
            ),
            (
                "a branch",
                Box::new(|s| s.settings[0].branch = "release".into()),
            ),
            (
                "a url",
                Box::new(|s| s.settings[1].url = "file:///c".into()),
            ),
            (
                "a sub-directory",
                Box::new(|s| s.settings[0].sub_directory = Some("api".into())),
            ),
            (
                "submodules",
                Box::new(|s| s.settings[0].clone_submodules = false),
            ),
            ("the merge order", Box::new(|s| s.settings.swap(0, 1))),
        ];
        for (what, change) in changes {
            let mut changed = base();
            change(&mut changed);
            assert_ne!(client_settings_hash(Some(&changed)), original, "{what}");
        }
        // The folder name a repository is cloned into is not part of the image.
        let mut renamed = base();
        renamed.settings[0].name = "elsewhere".into();
        assert_eq!(client_settings_hash(Some(&renamed)), original);
    }

    #[test]
    fn no_settings_hash_as_empty_settings() {
        assert_eq!(
            client_settings_hash(None),
            client_settings_hash(Some(&ClientBuild::default()))
        );
    }
}
