//! Build settings (`common.yaml`, `services/<name>.yaml`): raw to checked, with problems.

use std::collections::{BTreeMap, BTreeSet};

use serde_saphyr::Spanned;

use super::names;
use crate::model::{ClientBuild, DeveloperBuild, GitRepository, ServiceSettings};
use crate::schema::Problems;
use crate::schema::entries::Entries;
use crate::schema::raw::{RawClientBuild, RawDeveloperBuild, RawRepository, SettingsFile};

/// Checks one settings file; `common` is given for a service file, so that repository names
/// that would clash once common's are added are reported; `providers`, the names of
/// `providers.yaml` (when known), are what `builder` may name.
pub(crate) fn convert(
    path: &str,
    raw: SettingsFile,
    common: Option<&ServiceSettings>,
    providers: Option<&BTreeSet<String>>,
    problems: &mut Problems,
) -> ServiceSettings {
    let mut check = Checker { path, problems };
    let builder = raw.builder.map(|builder| {
        check.check(
            &builder.referenced,
            names::check_distribution_name(&builder.value, "builder"),
        );
        if providers.is_some_and(|providers| !providers.contains(&builder.value)) {
            let message = format!(
                "builder `{}` is not a provider of providers.yaml: a remote builder is reached as a provider (its url and access token)",
                builder.value
            );
            check.problems.at(path, &builder.referenced, message);
        }
        builder.value
    });
    let developer = raw.developer.map(|build: RawDeveloperBuild| {
        let inherited = common
            .and_then(|c| c.developer.as_ref())
            .map(|d| &d.sources[..]);
        DeveloperBuild {
            sources: check.repositories(build.sources.unwrap_or_default(), "source", inherited),
            macro_values: check.macros(build.macro_values.unwrap_or_default()),
            environment: check.environment(build.environment.unwrap_or_default()),
            private_files: check.private_files(build.private_files.unwrap_or_default()),
        }
    });
    let client = raw.client.map(|build: RawClientBuild| {
        let inherited = common
            .and_then(|c| c.client.as_ref())
            .map(|c| &c.settings[..]);
        ClientBuild {
            settings: check.repositories(build.settings.unwrap_or_default(), "settings", inherited),
            macro_values: check.macros(build.macro_values.unwrap_or_default()),
            environment: check.environment(build.environment.unwrap_or_default()),
            private_files: check.private_files(build.private_files.unwrap_or_default()),
        }
    });
    ServiceSettings {
        builder,
        developer,
        client,
    }
}

struct Checker<'a> {
    path: &'a str,
    problems: &'a mut Problems,
}

impl Checker<'_> {
    fn check(&mut self, location: &serde_saphyr::Location, result: Result<(), String>) {
        if let Err(message) = result {
            self.problems.at(self.path, location, message);
        }
    }

    fn repositories(
        &mut self,
        raw: Vec<RawRepository>,
        kind: &str,
        inherited: Option<&[GitRepository]>,
    ) -> Vec<GitRepository> {
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        let mut repositories = Vec::new();
        for repository in raw {
            let name = &repository.name;
            self.check(&name.referenced, names::check_repository_name(&name.value));
            if let Some(line) = seen.get(&name.value) {
                let message = format!(
                    "duplicate {kind} name `{}` (already at line {line})",
                    name.value
                );
                self.problems.at(self.path, &name.referenced, message);
            } else if inherited.is_some_and(|common| common.iter().any(|r| r.name == name.value)) {
                let message = format!(
                    "{kind} `{}` is also declared in common.yaml: names are directories of the build and must stay unique once common's are added",
                    name.value
                );
                self.problems.at(self.path, &name.referenced, message);
            }
            seen.insert(name.value.clone(), name.referenced.line());
            let git = &repository.git;
            if git.url.value.trim().is_empty() {
                self.problems.at(
                    self.path,
                    &git.url.referenced,
                    format!("{kind} `{}` has an empty git url", name.value),
                );
            }
            if git.branch.value.trim().is_empty() {
                let message = format!("{kind} `{}` has an empty git branch", name.value);
                self.problems.at(self.path, &git.branch.referenced, message);
            }
            if let Some(sub) = &repository.sub_directory {
                self.check(
                    &sub.referenced,
                    names::check_relative_path(&sub.value, "subDirectory"),
                );
            }
            repositories.push(GitRepository {
                name: repository.name.value,
                url: repository.git.url.value,
                branch: repository.git.branch.value,
                clone_submodules: repository.git.clone_submodules.unwrap_or(true),
                sub_directory: repository.sub_directory.map(|s| s.value),
            });
        }
        repositories
    }

    fn macros(&mut self, raw: Entries<Spanned<String>>) -> BTreeMap<String, String> {
        raw.0
            .into_iter()
            .map(|(key, value)| {
                self.check(&key.referenced, names::check_macro_name(&key.value));
                (key.value, value.value)
            })
            .collect()
    }

    fn environment(&mut self, raw: Entries<Spanned<String>>) -> BTreeMap<String, String> {
        raw.0
            .into_iter()
            .map(|(key, value)| {
                self.check(&key.referenced, names::check_environment_name(&key.value));
                (key.value, value.value)
            })
            .collect()
    }

    fn private_files(&mut self, raw: Vec<Spanned<String>>) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut files = Vec::new();
        for file in raw {
            self.check(
                &file.referenced,
                names::check_relative_path(&file.value, "private file path"),
            );
            if !seen.insert(file.value.clone()) {
                let message = format!("private file `{}` is listed twice", file.value);
                self.problems.at(self.path, &file.referenced, message);
            }
            files.push(file.value);
        }
        files
    }
}
