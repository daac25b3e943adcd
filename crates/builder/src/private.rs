//! Private files (keys, certificates): copied from a local directory into the image.
//!
//! Their content never lives in Git; the caller fetches them from the distribution into a
//! directory laid out as in the image. Every file there is added (replacing a copied file of
//! the same path), and every path the build settings name must be among them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use crate::error::BuilderError;
use crate::image::Addition;

/// Adds the files under `directory` to `build`; `named` are the paths the settings require.
pub(crate) fn add(
    directory: Option<&Path>,
    named: &[String],
    build: &Path,
) -> Result<(), BuilderError> {
    check_named(directory, named)?;
    let Some(directory) = directory else {
        return Ok(());
    };
    for entry in walk(directory) {
        let (entry, relative) = entry?;
        let target = build.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(BuilderError::io("creating directory", &target))?;
            continue;
        }
        if target.exists() {
            // It may be a hard link to a source file: replace the link, not the source.
            std::fs::remove_file(&target).map_err(BuilderError::io("replacing", &target))?;
        }
        std::fs::copy(entry.path(), &target)
            .map_err(BuilderError::io("copying a private file to", &target))?;
    }
    Ok(())
}

/// The files and directories under `directory` as additions to an image, each file with its
/// mode; `named` are the paths the settings require.
pub(crate) fn additions(
    directory: Option<&Path>,
    named: &[String],
) -> Result<Vec<Addition>, BuilderError> {
    check_named(directory, named)?;
    let Some(directory) = directory else {
        return Ok(Vec::new());
    };
    let mut additions = Vec::new();
    for entry in walk(directory) {
        let (entry, relative) = entry?;
        let path = relative
            .to_str()
            .ok_or_else(|| {
                BuilderError::Settings(format!(
                    "private file `{}` does not have a UTF-8 name",
                    entry.path().display()
                ))
            })?
            .to_owned();
        if entry.file_type().is_dir() {
            additions.push(Addition::Directory { path });
            continue;
        }
        let metadata = entry.metadata().map_err(BuilderError::walk(directory))?;
        additions.push(Addition::File {
            path,
            source: entry.path().to_path_buf(),
            mode: metadata.permissions().mode() & 0o777,
        });
    }
    Ok(additions)
}

/// Every path in `named` is a relative path inside the image and a file in `directory`.
fn check_named(directory: Option<&Path>, named: &[String]) -> Result<(), BuilderError> {
    let missing_from = directory.unwrap_or(Path::new("(no private files directory was given)"));
    for path in named {
        let inside = !path.is_empty()
            && Path::new(path)
                .components()
                .all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(BuilderError::Settings(format!(
                "private file `{path}` must be a relative path inside the image (no `..`, not absolute)"
            )));
        }
        let present = directory.is_some_and(|directory| directory.join(path).is_file());
        if !present {
            return Err(BuilderError::PrivateFileMissing {
                path: path.clone(),
                directory: missing_from.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// The entries under `directory` (links followed), each with its path relative to it.
fn walk(
    directory: &Path,
) -> impl Iterator<Item = Result<(walkdir::DirEntry, std::path::PathBuf), BuilderError>> + '_ {
    walkdir::WalkDir::new(directory)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .map(move |entry| {
            let entry = entry.map_err(BuilderError::walk(directory))?;
            let relative = entry
                .path()
                .strip_prefix(directory)
                .expect("walkdir yields paths under its root")
                .to_path_buf();
            Ok((entry, relative))
        })
}
