//! Client builds: a developer image overlaid with the client's settings repositories.
//!
//! The settings repositories are checked out; the developer image is opened (entry names
//! checked, size capped, modes kept) and only the files the overlays touch are read from
//! it for the core merge ([`merge_settings`]); the client image is the developer image's
//! entries with the merged files and private files in their place
//! ([`image::repack`]): the rest is copied as it is compressed, never unpacked to disk nor
//! compressed again. `%%version%%` in `.defines`-expanded files is the
//! developer version, so the content does not depend on the generation it is stored as.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use vupdate_core::log::Level;
use vupdate_core::macros::Macros;
use vupdate_core::service::ServiceName;
use vupdate_core::settings::{FileTree, merge_settings};
use vupdate_core::version::ClientVersion;
use vupdate_state::model::ClientBuild;

use crate::developer::checkout_all;
use crate::error::BuilderError;
use crate::image::{Addition, SourceImage};
use crate::log::{BuildLog, UNIT_BUILD};
use crate::{
    Builder, BuiltImage, SourceCommit, blocking, check_cancelled, image, private, remove_dir,
    remove_file,
};

/// The mode of a merged file that is in neither the image nor an overlay under its name.
const DEFAULT_MODE: u32 = 0o644;

/// What to build: a client version of a service from a developer image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The service.
    pub service: ServiceName,
    /// The client version to build (names the zip; see [`crate::next_client_version`]).
    pub version: ClientVersion,
    /// The developer image of `version.developer`, a local zip.
    pub developer_image: PathBuf,
    /// The client build settings; `None`: the image is only repackaged with private files.
    pub settings: Option<ClientBuild>,
    /// A directory holding the private files at their image paths, if any.
    pub private_files: Option<PathBuf>,
}

impl Builder {
    /// The directory of `service`'s client builds.
    pub fn client_directory(&self, service: &ServiceName) -> PathBuf {
        self.directory
            .join("client")
            .join("services")
            .join(service.as_str())
    }

    /// Builds a client version: checks the settings repositories out, merges them over the
    /// developer image's files, and repacks the image with them and the private files.
    pub async fn build_client(
        &self,
        request: ClientRequest,
        log: Arc<dyn BuildLog>,
        cancel: CancellationToken,
    ) -> Result<BuiltImage, BuilderError> {
        let span = tracing::info_span!("build_client", service = %request.service, version = %request.version);
        let result = self
            .client_steps(&request, log.as_ref(), &cancel)
            .instrument(span)
            .await;
        match &result {
            Ok(image) => log.line(
                Level::Info,
                UNIT_BUILD,
                &format!(
                    "client version {} of {} built: {} ({} bytes, sha256 {})",
                    request.version,
                    request.service,
                    image.zip.path.display(),
                    image.zip.size,
                    image.zip.sha256
                ),
            ),
            Err(error) => log.line(Level::Error, UNIT_BUILD, &error.to_string()),
        }
        result
    }

    async fn client_steps(
        &self,
        request: &ClientRequest,
        log: &dyn BuildLog,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BuilderError> {
        let settings = request.settings.clone().unwrap_or_default();
        let service_directory = self.client_directory(&request.service);
        let zip_path =
            service_directory.join(format!("{}-{}.zip", request.service, request.version));

        remove_file(&zip_path)?;
        let checkouts = checkout_all(
            &settings.settings,
            &service_directory.join("settings"),
            log,
            cancel,
        )
        .await?;
        check_cancelled(cancel, "merging settings")?;
        let mut macros: Macros = settings
            .macro_values
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        macros.insert("version", request.version.developer.to_string());

        log.line(
            Level::Info,
            UNIT_BUILD,
            &format!(
                "reading developer image {}",
                request.developer_image.display()
            ),
        );
        let (interrupt, _stop) = crate::sources::interrupt_flag(cancel);
        let (image, changes, report) = {
            let image_path = request.developer_image.clone();
            let limit = self.options.max_unpacked_bytes;
            let overlays: Vec<PathBuf> = checkouts
                .iter()
                .map(|checkout| checkout.directory.clone())
                .collect();
            blocking("merging settings", move || {
                let mut image = SourceImage::open(&image_path, limit)?;
                let (changes, report) = merge(&mut image, &overlays, &macros)?;
                Ok((image, changes, report))
            })
            .await
            .map_err(|error| match error {
                BuilderError::Merge { error: source, .. } => BuilderError::Merge {
                    overlays: describe_overlays(&checkouts),
                    error: source,
                },
                other => other,
            })?
        };
        for line in report.lines() {
            log.line(Level::Info, UNIT_BUILD, line);
        }
        let zip = {
            let private_directory = request.private_files.clone();
            let private_named = settings.private_files.clone();
            blocking("zipping", move || {
                std::fs::create_dir_all(&service_directory)
                    .map_err(BuilderError::io("creating directory", &service_directory))?;
                // Where builds before this one unpacked the developer image.
                remove_dir(&service_directory.join("build"))?;
                let mut additions = changes;
                additions.extend(private::additions(
                    private_directory.as_deref(),
                    &private_named,
                )?);
                image::repack(image, additions, &zip_path, &interrupt)
            })
            .await?
        };
        Ok(BuiltImage {
            zip,
            sources: checkouts.iter().map(SourceCommit::from).collect(),
        })
    }
}

/// `overlay #1 = `name` (url), ...`: what the merge error's overlay numbers mean.
fn describe_overlays(checkouts: &[crate::sources::Checkout]) -> String {
    if checkouts.is_empty() {
        return "no settings repositories".to_owned();
    }
    checkouts
        .iter()
        .enumerate()
        .map(|(index, checkout)| {
            format!(
                "overlay #{} is `{}` ({})",
                index + 1,
                checkout.name,
                checkout.url
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Merges the overlay directories over `image`: the files that changed, each with the
/// image's mode (an overlay's for a file the image lacks), and the merge report as text.
fn merge(
    image: &mut SourceImage,
    overlays: &[PathBuf],
    macros: &Macros,
) -> Result<(Vec<Addition>, String), BuilderError> {
    let mut trees = Vec::with_capacity(overlays.len());
    let mut modes: BTreeMap<String, u32> = BTreeMap::new();
    for overlay in overlays {
        let (tree, overlay_modes) = read_tree(overlay)?;
        modes.extend(overlay_modes);
        trees.push(tree);
    }
    let base = read_touched(image, &trees)?;
    let merged = merge_settings(&base, &trees, macros).map_err(|source| BuilderError::Merge {
        overlays: String::new(),
        error: Box::new(source),
    })?;
    let report = merged.report.to_string();
    let changes = merged
        .tree
        .into_iter()
        .filter(|(path, bytes)| base.get(path) != Some(bytes))
        .map(|(path, bytes)| {
            let mode = image
                .file_mode(&path)
                .or_else(|| modes.get(&path).copied())
                .unwrap_or(DEFAULT_MODE);
            Addition::Bytes { path, bytes, mode }
        })
        .collect();
    Ok((changes, report))
}

/// The files under `root` (without `.git`), with their modes.
fn read_tree(root: &Path) -> Result<(FileTree, BTreeMap<String, u32>), BuilderError> {
    let mut tree = FileTree::new();
    let mut modes = BTreeMap::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .filter_entry(|entry| entry.file_name() != ".git");
    for entry in walk {
        let entry = entry.map_err(BuilderError::walk(root))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let relative = relative_name(root, entry.path())?;
        let bytes =
            std::fs::read(entry.path()).map_err(BuilderError::io("reading", entry.path()))?;
        let mode = entry
            .metadata()
            .map_err(BuilderError::walk(entry.path()))?
            .permissions()
            .mode()
            & 0o7777;
        modes.insert(relative.clone(), mode);
        tree.insert(relative, bytes);
    }
    Ok((tree, modes))
}

/// The image files an overlay path may merge into, expand or replace: the path itself,
/// the path without `.defines`, and the path without a numeric `.N` suffix.
fn targets_of(path: &str) -> impl Iterator<Item = &str> {
    let defines = path.strip_suffix(".defines");
    let layer = path
        .rsplit_once('.')
        .filter(|(_, digits)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .map(|(target, _)| target);
    std::iter::once(path).chain(defines).chain(layer)
}

/// The image's files that some overlay names, read into a tree.
fn read_touched(image: &mut SourceImage, overlays: &[FileTree]) -> Result<FileTree, BuilderError> {
    let wanted: BTreeSet<&str> = overlays
        .iter()
        .flat_map(|tree| tree.keys())
        .flat_map(|path| targets_of(path))
        .collect();
    let mut base = FileTree::new();
    for path in wanted {
        if let Some(bytes) = image.read(path)? {
            base.insert(path.to_owned(), bytes);
        }
    }
    Ok(base)
}

fn relative_name(root: &Path, path: &Path) -> Result<String, BuilderError> {
    let relative = path
        .strip_prefix(root)
        .expect("walkdir yields paths under its root");
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|part| part.as_os_str().to_str())
        .collect();
    parts.map(|parts| parts.join("/")).ok_or_else(|| {
        BuilderError::Settings(format!(
            "settings file `{}` does not have a UTF-8 name",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_paths_name_their_targets() {
        let cases: &[(&str, &[&str])] = &[
            ("a.json", &["a.json"]),
            ("conf/a.json.2", &["conf/a.json.2", "conf/a.json"]),
            ("run.sh.defines", &["run.sh.defines", "run.sh"]),
            ("lib/libssl.so.1", &["lib/libssl.so.1", "lib/libssl.so"]),
        ];
        for (path, expected) in cases {
            assert_eq!(targets_of(path).collect::<Vec<_>>(), *expected, "{path}");
        }
    }
}
