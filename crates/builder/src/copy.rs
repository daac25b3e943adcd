//! `copyFiles`: sources into the build directory, with `except` and `settings` macros.
//!
//! `sourceFile` is relative to the first repository's directory and may reach a sibling
//! repository as `../<name>/...`, but never leaves the `source/` directory. A directory is
//! copied recursively (without `.git`); `except` names paths under it (a file, or a directory and all it
//! holds) that are left out. Files are hard-linked where no macro is expanded in them
//! (a build directory is only read, then zipped) and copied where linking is impossible;
//! either way they keep their mode bits, so executables stay executable. Where `settings`
//! is given, `%%name%%` of those names is expanded in every UTF-8 copied file; other macros
//! are left for the client build, and files that are not UTF-8 are copied as they are.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use vupdate_core::macros::Macros;
use vupdate_core::update::CopyFile;

use crate::error::BuilderError;

/// Copies every entry of `copy_files` from `base` (the first repository's directory, inside
/// `source_root`) into `build`.
pub fn copy_files(
    copy_files: &[CopyFile],
    source_root: &Path,
    base: &Path,
    build: &Path,
    interrupt: &AtomicBool,
) -> Result<(), BuilderError> {
    for (index, entry) in copy_files.iter().enumerate() {
        let source = resolve(index, &entry.source_file, source_root, base)?;
        let destination = build.join(&entry.destination_file);
        let macros = entry.macros();
        let except: Vec<PathBuf> = entry
            .except
            .iter()
            .map(|path| normalize(Path::new(path)))
            .collect();
        if source.is_dir() {
            // A repository's `.git` is never part of an image.
            let walk = walkdir::WalkDir::new(&source)
                .follow_links(true)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|item| item.file_name() != ".git");
            for item in walk {
                if interrupt.load(Ordering::Relaxed) {
                    return Err(BuilderError::Cancelled {
                        step: format!("copyFiles[{index}]"),
                    });
                }
                let item = item.map_err(BuilderError::walk(&source))?;
                let relative = item
                    .path()
                    .strip_prefix(&source)
                    .expect("walkdir yields paths under its root");
                if except
                    .iter()
                    .any(|skip| relative.starts_with(skip) && !skip.as_os_str().is_empty())
                {
                    continue;
                }
                let target = destination.join(relative);
                if item.file_type().is_dir() {
                    std::fs::create_dir_all(&target)
                        .map_err(BuilderError::io("creating directory", &target))?;
                } else {
                    copy_file(item.path(), &target, &macros)?;
                }
            }
        } else {
            copy_file(&source, &destination, &macros)?;
        }
    }
    Ok(())
}

/// The source path of `copyFiles[index]`, checked to exist inside `source_root`.
fn resolve(
    index: usize,
    source_file: &str,
    source_root: &Path,
    base: &Path,
) -> Result<PathBuf, BuilderError> {
    let problem = |problem| BuilderError::CopySource {
        index,
        source_file: source_file.to_owned(),
        problem,
    };
    if Path::new(source_file).is_absolute() {
        return Err(problem(
            "is absolute: give a path relative to the first source repository",
        ));
    }
    let path = normalize(&base.join(source_file));
    if !path.starts_with(source_root) {
        return Err(problem("leaves the source directory"));
    }
    if !path.exists() {
        return Err(problem("does not exist after the build commands"));
    }
    Ok(path)
}

/// Removes `.` and resolves `..` lexically (sources are fresh checkouts, so no symlink
/// tricks are expected, and the result is still checked against the source root).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn copy_file(source: &Path, target: &Path, macros: &Macros) -> Result<(), BuilderError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(BuilderError::io("creating directory", parent))?;
    }
    if target.exists() {
        std::fs::remove_file(target).map_err(BuilderError::io("replacing", target))?;
    }
    if !macros.is_empty() {
        let bytes = std::fs::read(source).map_err(BuilderError::io("reading", source))?;
        if let Ok(text) = String::from_utf8(bytes) {
            let (expanded, _left_for_client) = macros.expand_known(&text);
            std::fs::write(target, expanded).map_err(BuilderError::io("writing", target))?;
            let mode = std::fs::metadata(source)
                .map_err(BuilderError::io("reading", source))?
                .permissions()
                .mode();
            return std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))
                .map_err(BuilderError::io("setting the mode of", target));
        }
    }
    if std::fs::hard_link(source, target).is_err() {
        // Another file system, or links not allowed: copy (std keeps the permissions).
        std::fs::copy(source, target).map_err(BuilderError::io("copying to", target))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots() {
        let cases = [
            ("/s/api/./bin", "/s/api/bin"),
            ("/s/api/../web/x", "/s/web/x"),
            ("/s/api/../../etc", "/etc"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize(Path::new(input)),
                PathBuf::from(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn sources_must_stay_inside_and_exist() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().join("source");
        let base = root.join("api");
        std::fs::create_dir_all(&base).expect("mkdir");
        std::fs::create_dir_all(root.join("web")).expect("mkdir");
        assert!(resolve(0, "../web", &root, &base).is_ok());
        let error = resolve(1, "../../x", &root, &base).expect_err("escapes");
        assert_eq!(
            error.to_string(),
            "copyFiles[1]: sourceFile `../../x` leaves the source directory"
        );
        let error = resolve(2, "missing", &root, &base).expect_err("missing");
        assert!(error.to_string().contains("does not exist"), "{error}");
    }
}
