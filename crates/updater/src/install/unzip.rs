//! Unpacking a version image into a scratch directory, safely: every entry's path must
//! stay inside (no `..`, no absolute path, no symlink pointing out), the unpacked size is
//! capped by what is actually decompressed (not what the archive claims), and Unix modes
//! are kept, so executables stay executable (the original lost the bit).
//!
//! Symbolic links are made last, after every file and directory, and a link may neither
//! lie below another link nor have a target that passes through one: the kernel follows a
//! link before it applies a `..` that comes after it, so a link to `.` would otherwise
//! carry a later entry, or another link's target, outside the image.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use crate::Error;

/// The longest symbolic link target read (Linux's `PATH_MAX`); an entry claiming a longer
/// one is refused before more of it is read.
const MAX_LINK_TARGET: u64 = 4096;

/// A symbolic link entry, made once every file and directory is in place.
struct Link {
    /// The entry's name as written in the archive.
    name: String,
    /// Its path inside the image.
    relative: PathBuf,
    /// Where it points.
    target: String,
}

/// Unpacks `image` into `dest` (which must not exist; it is created) and returns the
/// number of bytes written. On error `dest` may hold part of the image: it is scratch.
pub fn unpack(image: &Path, dest: &Path, max_bytes: u64) -> Result<u64, Error> {
    let file = File::open(image).map_err(Error::io("open", image))?;
    let mut archive = zip::ZipArchive::new(file).map_err(Error::zip(image))?;
    fs::create_dir_all(dest).map_err(Error::io("create", dest))?;
    let unsafe_entry = |entry: &str, reason: &str| Error::UnsafeImage {
        image: image.to_owned(),
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    let read_error = |error: io::Error| match error.kind() {
        io::ErrorKind::InvalidData => Error::Zip {
            path: image.to_owned(),
            error: zip::result::ZipError::Io(error),
        },
        _ => Error::io("read", image)(error),
    };
    // Every link's path first, so that no entry is written below one (the kernel would
    // follow the link).
    let mut link_paths = HashSet::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(Error::zip(image))?;
        if entry.is_symlink()
            && let Some(path) = entry.enclosed_name()
        {
            link_paths.insert(path);
        }
    }
    let mut total = 0u64;
    let mut links = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(Error::zip(image))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        // An absolute name is refused even where the library would make it relative: the
        // image was built wrong, and guessing where it meant is not safe.
        let absolute = name.starts_with('/') || name.starts_with('\\');
        let Some(relative) = entry.enclosed_name().filter(|_| !absolute) else {
            return Err(unsafe_entry(
                &name,
                "its path leaves the image (absolute or `..`)",
            ));
        };
        if let Some(link) = relative
            .ancestors()
            .skip(1)
            .find(|ancestor| link_paths.contains(*ancestor))
        {
            return Err(unsafe_entry(
                &name,
                &format!("it lies below the symlink `{}`", link.display()),
            ));
        }
        let path = dest.join(&relative);
        if entry.is_dir() {
            fs::create_dir_all(&path).map_err(Error::io("create", &path))?;
            continue;
        }
        if entry.is_symlink() {
            let mut target = Vec::new();
            (&mut entry)
                .take(MAX_LINK_TARGET + 1)
                .read_to_end(&mut target)
                .map_err(read_error)?;
            if target.len() as u64 > MAX_LINK_TARGET {
                return Err(unsafe_entry(
                    &name,
                    &format!("it is a symlink whose target is longer than {MAX_LINK_TARGET} bytes"),
                ));
            }
            let Ok(target) = String::from_utf8(target) else {
                return Err(unsafe_entry(
                    &name,
                    "it is a symlink whose target is not UTF-8",
                ));
            };
            links.push(Link {
                name,
                relative,
                target,
            });
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o7777;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode | 0o600)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        let left = max_bytes.saturating_sub(total);
        // One byte past the cap tells a too-large entry from one that fits exactly.
        let copied = io::copy(&mut (&mut entry).take(left.saturating_add(1)), &mut out).map_err(
            |error| match error.kind() {
                io::ErrorKind::InvalidData => read_error(error),
                _ => Error::io("write", &path)(error),
            },
        )?;
        if copied > left {
            return Err(Error::ImageTooLarge {
                image: image.to_owned(),
                limit_bytes: max_bytes,
            });
        }
        total += copied;
        out.flush().map_err(Error::io("write", &path))?;
        // The umask may have cut bits off at creation; set the archive's mode exactly.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o600))
            .map_err(Error::io("set the mode of", &path))?;
    }
    for link in &links {
        let target = Path::new(&link.target);
        if let Err(reason) = check_link(&link.relative, target, &link_paths) {
            return Err(unsafe_entry(&link.name, &reason));
        }
        let path = dest.join(&link.relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        symlink(target, &path).map_err(Error::io("create the symlink", &path))?;
    }
    Ok(total)
}

/// Whether a symlink at `link` (relative to the image root, below no other link) pointing
/// to `target` stays inside the image, given the paths of every link of the image: the
/// reason when not.
///
/// The target is resolved from the link's directory by its words alone, which is what the
/// kernel does as long as no link lies on the way; so a target that passes through another
/// link (other than as its last part, which the kernel resolves from that link's own
/// directory) is refused.
fn check_link(link: &Path, target: &Path, links: &HashSet<PathBuf>) -> Result<(), String> {
    let outside = || {
        format!(
            "it is a symlink to `{}`, outside the image",
            target.display()
        )
    };
    let mut resolved = link.parent().map(Path::to_owned).unwrap_or_default();
    let mut components = target.components().peekable();
    while let Some(component) = components.next() {
        match component {
            Component::Normal(part) => {
                resolved.push(part);
                if components.peek().is_some() && links.contains(&resolved) {
                    return Err(format!(
                        "it is a symlink to `{}`, through the symlink `{}`",
                        target.display(),
                        resolved.display()
                    ));
                }
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if !resolved.pop() {
                    return Err(outside());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    Ok(())
}

/// Syncs every file and directory under `root`, so a rename that publishes it is durable.
pub(crate) fn sync_tree(root: &Path) -> Result<(), Error> {
    let mut stack: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let kind = entry.file_type().map_err(Error::io("stat", entry.path()))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                File::open(&path)
                    .and_then(|file| file.sync_all())
                    .map_err(Error::io("sync", &path))?;
            }
        }
        File::open(&dir)
            .and_then(|file| file.sync_all())
            .map_err(Error::io("sync", &dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn image(dir: &Path, entries: &[(&str, &[u8], u32)], links: &[(&str, &str)]) -> PathBuf {
        let path = dir.join("image.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).expect("create"));
        for (name, data, mode) in entries {
            zip.start_file(*name, SimpleFileOptions::default().unix_permissions(*mode))
                .expect("start");
            zip.write_all(data).expect("write");
        }
        for (name, target) in links {
            zip.add_symlink(*name, *target, SimpleFileOptions::default())
                .expect("link");
        }
        zip.finish().expect("finish");
        path
    }

    #[test]
    fn keeps_paths_modes_and_inside_symlinks() {
        let work = tempfile::tempdir().expect("tempdir");
        let zip = image(
            work.path(),
            &[
                ("install.json", b"{}", 0o644),
                ("bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
            ],
            &[("lib/run", "../bin/run.sh")],
        );
        let dest = work.path().join("out");
        let bytes = unpack(&zip, &dest, 1 << 20).expect("unpack");
        assert_eq!(bytes, 2 + 18);
        let mode = fs::metadata(dest.join("bin/run.sh"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_to_string(dest.join("lib/run")).expect("through the link"),
            "#!/bin/sh\necho hi\n"
        );
    }

    /// Entries (name, data, mode), symlinks (name, target), what the error names.
    type Case<'a> = (
        &'a [(&'a str, &'a [u8], u32)],
        &'a [(&'a str, &'a str)],
        &'a str,
    );

    #[test]
    fn refuses_escaping_paths_and_symlinks() {
        let table: [Case<'_>; 3] = [
            (&[("../evil", b"x", 0o644)], &[], "../evil"),
            (&[("/etc/evil", b"x", 0o644)], &[], "/etc/evil"),
            (&[], &[("sub/link", "../../outside")], "outside the image"),
        ];
        for (entries, links, expected) in table {
            let work = tempfile::tempdir().expect("tempdir");
            let zip = image(work.path(), entries, links);
            let error = unpack(&zip, &work.path().join("out"), 1 << 20).expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
            assert!(!work.path().join("evil").exists());
        }
    }

    #[test]
    fn the_cap_counts_decompressed_bytes() {
        let work = tempfile::tempdir().expect("tempdir");
        let big = vec![0u8; 4096];
        let zip = image(work.path(), &[("a", &big, 0o644), ("b", &big, 0o644)], &[]);
        assert!(unpack(&zip, &work.path().join("fits"), 8192).is_ok());
        let error = unpack(&zip, &work.path().join("over"), 8191).expect_err("too large");
        assert!(
            matches!(
                error,
                Error::ImageTooLarge {
                    limit_bytes: 8191,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn symlink_targets_are_resolved_from_the_link() {
        let links: HashSet<PathBuf> = ["l", "a/l"].into_iter().map(PathBuf::from).collect();
        let table = [
            ("a/b/link", "../c", true),
            ("a/link", "../../x", false),
            ("link", "./x", true),
            ("link", "/etc/passwd", false),
            ("a/link", "..", true),
            ("link", "l", true),
            ("link", "a/l/", true),
            ("link", "l/x", false),
            ("link", "a/l/..", false),
        ];
        for (link, target, inside) in table {
            assert_eq!(
                check_link(Path::new(link), Path::new(target), &links).is_ok(),
                inside,
                "{link} -> {target}"
            );
        }
    }

    /// Zip-slip through links (found while writing the `unzip_updater` fuzz target, kept
    /// in fuzz/regressions): `l -> .` then `l/e -> ..` made `l/e/evil` land next to the
    /// image's directory.
    #[test]
    fn a_file_cannot_leave_the_image_through_two_links() {
        let work = tempfile::tempdir().expect("tempdir");
        let zip = image(
            work.path(),
            &[("l/e/evil", b"x", 0o644)],
            &[("l", "."), ("l/e", "..")],
        );
        let inner = work.path().join("inner");
        let error = unpack(&zip, &inner.join("out"), 1 << 20).expect_err("a link below a link");
        assert!(
            error.to_string().contains("below the symlink `l/e`"),
            "{error}"
        );
        assert!(!inner.join("evil").exists());
    }

    /// Zip-slip through links: `x -> l/..` with `l -> .` pointed at the image's parent
    /// directory.
    #[test]
    fn a_link_target_cannot_pass_through_another_link() {
        let work = tempfile::tempdir().expect("tempdir");
        let zip = image(work.path(), &[], &[("l", "."), ("x", "l/..")]);
        let error = unpack(&zip, &work.path().join("out"), 1 << 20).expect_err("through a link");
        assert!(
            error.to_string().contains("through the symlink `l`"),
            "{error}"
        );
    }

    /// A link entry that decompresses to far more than a path is refused after
    /// `MAX_LINK_TARGET` bytes instead of being read whole into memory.
    #[test]
    fn a_huge_link_target_is_refused_unread() {
        let work = tempfile::tempdir().expect("tempdir");
        let target = "a/".repeat(1 << 20);
        let zip = image(work.path(), &[], &[("link", target.as_str())]);
        let error = unpack(&zip, &work.path().join("out"), 1 << 20).expect_err("too long");
        assert!(
            error.to_string().contains("longer than 4096 bytes"),
            "{error}"
        );
    }
}
