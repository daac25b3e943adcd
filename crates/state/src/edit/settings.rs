//! Build settings files (`common.yaml`, `services/<name>.yaml`) written from a
//! [`ServiceSettings`]: the schema's field names, fields at their defaults left out so files
//! stay minimal, and explicit defaults a person already wrote kept, so an edit touches only
//! the values that change.

use std::collections::BTreeMap;

use crate::model::{ClientBuild, DeveloperBuild, GitRepository, ServiceSettings};
use crate::validate;
use crate::yaml::{self, NotEditable, Value};

// The schema's field names (see `crate::schema::raw`); the round-trip tests hold them to it.
const BUILDER: &str = "builder";
const DEVELOPER: &str = "developer";
const CLIENT: &str = "client";
const SOURCES: &str = "sources";
const SETTINGS: &str = "settings";
const MACRO_VALUES: &str = "macroValues";
const ENVIRONMENT: &str = "environment";
const PRIVATE_FILES: &str = "privateFiles";
const NAME: &str = "name";
const GIT: &str = "git";
const URL: &str = "url";
const BRANCH: &str = "branch";
const CLONE_SUBMODULES: &str = "cloneSubmodules";
const SUB_DIRECTORY: &str = "subDirectory";

/// The file at `path` (`old`: its text, `None` when there is none) made to say `settings`;
/// `Ok(None)` when it already says exactly that. A new file starts with `new_header`.
pub(crate) fn edit(
    path: &str,
    old: Option<&str>,
    settings: &ServiceSettings,
    new_header: &str,
) -> Result<Option<String>, NotEditable> {
    // Compared as settings, not as YAML: `port: 8080` and `port: "8080"` say the same.
    if let Some(old) = old
        && validate::settings_file(path, old.as_bytes()).as_ref() == Some(settings)
    {
        return Ok(None);
    }
    let current = match old {
        Some(old) => yaml::read_root(old)?,
        None => Vec::new(),
    };
    let mut target = document(settings);
    keep_explicit_defaults(&mut target, &current);
    yaml::edit_document(old, &target, new_header)
}

/// The root mapping of a settings file: `builder`, `developer`, then `client`, each when
/// present.
pub(crate) fn document(settings: &ServiceSettings) -> Vec<(String, Value)> {
    let mut root = Vec::new();
    if let Some(builder) = &settings.builder {
        root.push((BUILDER.to_owned(), Value::scalar(builder)));
    }
    if let Some(build) = &settings.developer {
        root.push((DEVELOPER.to_owned(), developer(build)));
    }
    if let Some(build) = &settings.client {
        root.push((CLIENT.to_owned(), client(build)));
    }
    root
}

fn developer(build: &DeveloperBuild) -> Value {
    build_part(
        (SOURCES, &build.sources),
        &build.macro_values,
        &build.environment,
        &build.private_files,
    )
}

fn client(build: &ClientBuild) -> Value {
    build_part(
        (SETTINGS, &build.settings),
        &build.macro_values,
        &build.environment,
        &build.private_files,
    )
}

/// A `developer:` or `client:` mapping; an empty field is left out.
fn build_part(
    (repositories_key, repositories): (&str, &[GitRepository]),
    macro_values: &BTreeMap<String, String>,
    environment: &BTreeMap<String, String>,
    private_files: &[String],
) -> Value {
    let mut entries = Vec::new();
    if !repositories.is_empty() {
        let items = repositories.iter().map(repository).collect();
        entries.push((repositories_key.to_owned(), Value::Seq(items)));
    }
    for (key, map) in [(MACRO_VALUES, macro_values), (ENVIRONMENT, environment)] {
        if !map.is_empty() {
            let map = map.iter().map(|(k, v)| (k.clone(), Value::scalar(v)));
            entries.push((key.to_owned(), Value::Map(map.collect())));
        }
    }
    if !private_files.is_empty() {
        let files = private_files.iter().map(Value::scalar).collect();
        entries.push((PRIVATE_FILES.to_owned(), Value::Seq(files)));
    }
    Value::Map(entries)
}

/// `name`, `git: {url, branch, cloneSubmodules}` (only when false), `subDirectory` (when set).
fn repository(repository: &GitRepository) -> Value {
    let mut git = vec![
        (URL.to_owned(), Value::scalar(&repository.url)),
        (BRANCH.to_owned(), Value::scalar(&repository.branch)),
    ];
    if !repository.clone_submodules {
        git.push((CLONE_SUBMODULES.to_owned(), Value::Bool(false)));
    }
    let mut entries = vec![
        (NAME.to_owned(), Value::scalar(&repository.name)),
        (GIT.to_owned(), Value::Map(git)),
    ];
    if let Some(sub_directory) = &repository.sub_directory {
        entries.push((SUB_DIRECTORY.to_owned(), Value::scalar(sub_directory)));
    }
    Value::Map(entries)
}

/// Adds to `target` the fields of `current` that it leaves out but that only say the default
/// (`client:` with nothing, `macroValues: {}`, `privateFiles: []`, `cloneSubmodules: true`…),
/// so that an edit does not remove lines that mean nothing different.
fn keep_explicit_defaults(target: &mut Vec<(String, Value)>, current: &[(String, Value)]) {
    for (part, repositories) in [(DEVELOPER, SOURCES), (CLIENT, SETTINGS)] {
        let Some(old) = current.iter().find(|(k, _)| k == part).map(|(_, v)| v) else {
            continue;
        };
        let Some(new) = entry_mut(target, part) else {
            if *old == Value::Null {
                target.push((part.to_owned(), Value::Null));
            }
            continue;
        };
        let fields = [repositories, MACRO_VALUES, ENVIRONMENT, PRIVATE_FILES];
        keep_if(new, old, &fields, is_empty);
        if let (Some(Value::Seq(new_items)), Some(Value::Seq(old_items))) = (
            map_mut(new).and_then(|m| entry_mut(m, repositories)),
            old.get(repositories),
        ) {
            for new_item in new_items {
                let name = new_item.get(NAME).cloned();
                if let Some(old_item) = old_items.iter().find(|o| o.get(NAME) == name.as_ref()) {
                    keep_repository_defaults(new_item, old_item);
                }
            }
        }
    }
}

fn keep_repository_defaults(new: &mut Value, old: &Value) {
    keep_if(new, old, &[SUB_DIRECTORY], |v| *v == Value::Null);
    if let (Some(new_git), Some(old_git)) =
        (map_mut(new).and_then(|m| entry_mut(m, GIT)), old.get(GIT))
    {
        keep_if(new_git, old_git, &[CLONE_SUBMODULES], |v| {
            matches!(v, Value::Null | Value::Bool(true))
        });
    }
}

/// Copies into the mapping `new` each of `fields` that `old` has, `new` lacks, and `default` accepts.
fn keep_if(new: &mut Value, old: &Value, fields: &[&str], default: impl Fn(&Value) -> bool) {
    let Some(new) = map_mut(new) else {
        return;
    };
    for field in fields {
        if let Some(value) = old.get(field)
            && default(value)
            && !new.iter().any(|(k, _)| k == field)
        {
            new.push(((*field).to_owned(), value.clone()));
        }
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Seq(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
        Value::Bool(_) | Value::Scalar(_) => false,
    }
}

fn map_mut(value: &mut Value) -> Option<&mut Vec<(String, Value)>> {
    match value {
        Value::Map(entries) => Some(entries),
        _ => None,
    }
}

fn entry_mut<'a>(entries: &'a mut [(String, Value)], key: &str) -> Option<&'a mut Value> {
    entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests;
