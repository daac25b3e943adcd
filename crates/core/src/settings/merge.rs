//! The merge itself: group overlay files by target, merge each target's layers, expand.

use std::collections::BTreeMap;

use super::defines::{parse_defines, utf8_error_position};
use super::layout::{LayerOrder, Role, check_path, role};
use super::report::{Change, FileReport, MergeReport, Source};
use super::{FileTree, Format, SettingsError, TreeId, conf, json, properties};
use crate::macros::Macros;

/// The result of a merge: the client image's files and what happened to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The merged tree: the base with every overlay applied.
    pub tree: FileTree,
    /// What was merged, added, replaced and expanded, for the build log.
    pub report: MergeReport,
}

/// One file's bytes with where they came from, for parsing and error messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layer<'a> {
    /// The tree holding the file.
    pub tree: TreeId,
    /// Its path in that tree.
    pub path: &'a str,
    /// Its content.
    pub bytes: &'a [u8],
}

impl<'a> Layer<'a> {
    /// The content as text, or an error saying it had to be text `purpose`.
    pub fn text(&self, purpose: &'static str) -> Result<&'a str, SettingsError> {
        std::str::from_utf8(self.bytes).map_err(|error| SettingsError::NotUtf8 {
            tree: self.tree,
            path: self.path.to_owned(),
            position: Some(utf8_error_position(self.bytes, &error)),
            purpose,
        })
    }

    fn source(&self) -> Source {
        Source {
            tree: self.tree,
            path: self.path.to_owned(),
        }
    }
}

/// Everything the overlays hold for one target file.
#[derive(Default)]
struct Target<'a> {
    /// Content layers, in the order they apply.
    layers: Vec<Layer<'a>>,
    /// `.defines` files, in overlay order.
    defines: Vec<Layer<'a>>,
}

/// Merges `overlays` into `base`, in order, then expands `.defines` with `macro_values`
/// taking precedence over every `.defines` value.
///
/// Pure: the inputs are not changed, and on error nothing is returned but the error. See
/// the [module documentation](super) for the rules.
pub fn merge_settings(
    base: &FileTree,
    overlays: &[FileTree],
    macro_values: &Macros,
) -> Result<Merged, SettingsError> {
    for path in base.keys() {
        check_path(TreeId::Base, path)?;
    }
    let mut targets: BTreeMap<&str, Target<'_>> = BTreeMap::new();
    let mut ignored_git_files = 0;
    for (index, overlay) in overlays.iter().enumerate() {
        let tree = TreeId::Overlay(index + 1);
        let mut layers: Vec<(&str, LayerOrder<'_>, Layer<'_>)> = Vec::new();
        for (path, bytes) in overlay {
            check_path(tree, path)?;
            let layer = Layer { tree, path, bytes };
            match role(path) {
                Role::Git => ignored_git_files += 1,
                Role::Layer { target, order } => layers.push((target, order, layer)),
                Role::Defines { target } => targets.entry(target).or_default().defines.push(layer),
            }
        }
        // Stable sort: the overlay iterates by path, so equal orders (`X.1` and `X.01`) stay
        // in path order and the result never depends on how the tree was built.
        layers.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
        for (target, _, layer) in layers {
            targets.entry(target).or_default().layers.push(layer);
        }
    }

    let mut tree = base.clone();
    let mut files = Vec::new();
    for (path, target) in &targets {
        let (bytes, report) = merge_target(path, base.get(*path), target, macro_values)?;
        tree.insert((*path).to_owned(), bytes);
        files.push(report);
    }
    check_file_directory_conflicts(&tree)?;
    Ok(Merged {
        tree,
        report: MergeReport {
            files,
            ignored_git_files,
        },
    })
}

/// The new content of `path` and its report line.
fn merge_target(
    path: &str,
    base: Option<&Vec<u8>>,
    target: &Target<'_>,
    macro_values: &Macros,
) -> Result<(Vec<u8>, FileReport), SettingsError> {
    let base_layer = base.map(|bytes| Layer {
        tree: TreeId::Base,
        path,
        bytes,
    });
    let (content, change) = match (target.layers.last(), Format::of(path)) {
        (None, _) => match base_layer {
            Some(layer) => (layer.bytes.to_vec(), Change::Kept),
            None => {
                let defines = target
                    .defines
                    .first()
                    .expect("a target has at least one layer or one .defines file");
                return Err(SettingsError::DefinesWithoutTarget {
                    tree: defines.tree,
                    path: defines.path.to_owned(),
                    target: path.to_owned(),
                });
            }
        },
        (Some(last), None) => {
            let change = if base.is_some() {
                Change::Replaced
            } else {
                Change::Added
            };
            (last.bytes.to_vec(), change)
        }
        (Some(only), Some(_)) if base.is_none() && target.layers.len() == 1 => {
            (only.bytes.to_vec(), Change::Added)
        }
        (Some(_), Some(format)) => {
            let layers: Vec<Layer<'_>> = base_layer
                .into_iter()
                .chain(target.layers.iter().copied())
                .collect();
            let merged = match format {
                Format::Json => json::merge(&layers)?,
                Format::Properties => properties::merge(&layers)?,
                Format::Hocon => conf::merge(path, &layers)?,
            };
            (merged, Change::Merged(format))
        }
    };

    let mut report = FileReport {
        path: path.to_owned(),
        change,
        sources: target.layers.iter().map(Layer::source).collect(),
        defines: target.defines.iter().map(Layer::source).collect(),
        expanded: Vec::new(),
        unexpanded: Vec::new(),
    };
    if target.defines.is_empty() {
        return Ok((content, report));
    }
    let mut values = Macros::new();
    for defines in &target.defines {
        values.extend(parse_defines(defines)?);
    }
    values.extend(macro_values.iter());
    let text = String::from_utf8(content).map_err(|error| {
        // Name the layer the content came from: the last one, or the base.
        let layer = target.layers.last().copied().or(base_layer);
        let layer = layer.expect("content comes from a layer or the base");
        SettingsError::NotUtf8 {
            tree: layer.tree,
            path: layer.path.to_owned(),
            position: Some(utf8_error_position(error.as_bytes(), &error.utf8_error())),
            purpose: "expanded",
        }
    })?;
    let expansion = values.expand_partial(&text);
    report.expanded = expansion.expanded;
    report.unexpanded = expansion.unexpanded;
    Ok((expansion.text.into_bytes(), report))
}

/// Refuses a tree where a file's path is also a directory of another file.
fn check_file_directory_conflicts(tree: &FileTree) -> Result<(), SettingsError> {
    for path in tree.keys() {
        let mut prefix_end = 0;
        while let Some(slash) = path[prefix_end..].find('/') {
            prefix_end += slash;
            let directory = &path[..prefix_end];
            if tree.contains_key(directory) {
                return Err(SettingsError::FileDirectoryConflict {
                    file: directory.to_owned(),
                    path: path.clone(),
                });
            }
            prefix_end += 1;
        }
    }
    Ok(())
}
