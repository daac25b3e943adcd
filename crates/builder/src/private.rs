//! Private files (keys, certificates): copied from a local directory into the image.
//!
//! Their content never lives in Git; the caller fetches them from the distribution into a
//! directory laid out as in the image. Every file there is added (replacing a copied file of
//! the same path), and every path the build settings name must be among them.

use std::path::{Component, Path};

use crate::error::BuilderError;

/// Adds the files under `directory` to `build`; `named` are the paths the settings require.
pub(crate) fn add(
    directory: Option<&Path>,
    named: &[String],
    build: &Path,
) -> Result<(), BuilderError> {
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
    let Some(directory) = directory else {
        return Ok(());
    };
    for entry in walkdir::WalkDir::new(directory)
        .follow_links(true)
        .min_depth(1)
    {
        let entry = entry.map_err(|e| BuilderError::Io {
            action: "reading",
            path: e.path().unwrap_or(directory).to_path_buf(),
            error: e.into(),
        })?;
        let relative = entry
            .path()
            .strip_prefix(directory)
            .expect("walkdir yields paths under its root");
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
