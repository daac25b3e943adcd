//! A backup as one file (`backup --to FILE.zip`, `restore --from FILE.zip`): the backup
//! directory packed into a zip archive, entries stored as they are (images are zips
//! already, and stored entries can be checked and read back fast), modes kept. A file
//! hard-linked to one packed before (an image's version ref and its blob) is not packed
//! twice: `hardlinks.json` names it and the entry it is a link of, and unpacking links it
//! again.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

use super::{BackupError, io};

/// The entry that lists hard links: `[[link, target], ...]`, paths inside the archive.
const HARD_LINKS: &str = "hardlinks.json";

fn refused(file: &Path) -> impl Fn(String) -> BackupError + '_ {
    move |reason| BackupError::Refused(format!("{}: {reason}", file.display()))
}

/// Every path under `dir` (directories before what they hold), sorted, relative to it.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let path = dir.join(&relative);
        let mut children: Vec<PathBuf> = fs::read_dir(&path)
            .map_err(io("cannot list", &path))?
            .map(|entry| entry.map(|entry| relative.join(entry.file_name())))
            .collect::<Result<_, _>>()
            .map_err(io("cannot list", &path))?;
        children.sort();
        for child in children {
            if fs::symlink_metadata(dir.join(&child))
                .map_err(io("cannot read", &dir.join(&child)))?
                .is_dir()
            {
                pending.push(child.clone());
            }
            found.push(child);
        }
    }
    Ok(found)
}

/// Packs the backup directory `dir` into the new file `file` (written under a temporary
/// name and renamed, so a failure leaves no file).
pub(super) fn pack(dir: &Path, file: &Path) -> Result<(), BackupError> {
    let temporary = super::staging_path(file);
    let result = (|| {
        let out = fs::File::create(&temporary).map_err(io("cannot create", &temporary))?;
        let mut zip = zip::ZipWriter::new(out);
        let zip_error = refused(file);
        let mut first_of: HashMap<(u64, u64), String> = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        for relative in entries(dir)? {
            let path = dir.join(&relative);
            let meta = fs::symlink_metadata(&path).map_err(io("cannot read", &path))?;
            let name = relative.to_string_lossy().into_owned();
            let options = SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .unix_permissions(meta.permissions().mode() & 0o7777)
                .large_file(meta.len() >= u64::from(u32::MAX));
            if meta.is_dir() {
                zip.add_directory(name, options)
                    .map_err(|e| zip_error(e.to_string()))?;
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = first_of.get(&key) {
                    links.push((name, first.clone()));
                    continue;
                }
                first_of.insert(key, name.clone());
            }
            zip.start_file(name, options)
                .map_err(|e| zip_error(e.to_string()))?;
            let mut source = fs::File::open(&path).map_err(io("cannot read", &path))?;
            std::io::copy(&mut source, &mut zip).map_err(io("cannot pack", &path))?;
        }
        zip.start_file(
            HARD_LINKS,
            SimpleFileOptions::default().unix_permissions(0o644),
        )
        .map_err(|e| zip_error(e.to_string()))?;
        let text = serde_json::to_vec(&links).expect("pairs of strings serialize");
        zip.write_all(&text)
            .map_err(io("cannot write", &temporary))?;
        let out = zip.finish().map_err(|e| zip_error(e.to_string()))?;
        out.sync_all().map_err(io("cannot write", &temporary))?;
        // No file of that name appeared meanwhile: `link` refuses to replace one.
        fs::hard_link(&temporary, file).map_err(io("cannot write the backup file", file))?;
        Ok(())
    })();
    let _ = fs::remove_file(&temporary);
    result
}

/// Unpacks the backup file `file` into the new directory `dir` (paths that would leave
/// it are refused).
pub(super) fn unpack(file: &Path, dir: &Path) -> Result<(), BackupError> {
    let not_a_backup = refused(file);
    let opened = fs::File::open(file).map_err(io("cannot read the backup file", file))?;
    let mut zip = zip::ZipArchive::new(opened)
        .map_err(|e| not_a_backup(format!("not a backup archive ({e})")))?;
    fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let mut links: Vec<(String, String)> = Vec::new();
    for index in 0..zip.len() {
        let mut entry = zip
            .by_index(index)
            .map_err(|e| not_a_backup(format!("entry {index}: {e}")))?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(not_a_backup(format!(
                "entry {index} (`{}`) would be written outside the backup",
                entry.name().unwrap_or_default()
            )));
        };
        if relative == Path::new(HARD_LINKS) {
            links = serde_json::from_reader(&mut entry)
                .map_err(|e| not_a_backup(format!("{HARD_LINKS}: {e}")))?;
            continue;
        }
        let target = dir.join(&relative);
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o7777;
        if entry.is_dir() {
            fs::create_dir_all(&target).map_err(io("cannot create", &target))?;
        } else {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
            }
            let mut out = fs::File::create(&target).map_err(io("cannot create", &target))?;
            std::io::copy(&mut entry, &mut out).map_err(io("cannot unpack", &target))?;
        }
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))
            .map_err(io("cannot set the mode of", &target))?;
    }
    for (link, first) in links {
        let inside = |name: &str| {
            let path = Path::new(name);
            let plain = path
                .components()
                .all(|part| matches!(part, std::path::Component::Normal(_)));
            plain
                .then(|| dir.join(path))
                .ok_or_else(|| not_a_backup(format!("{HARD_LINKS}: `{name}` is not a plain path")))
        };
        let (link, first) = (inside(&link)?, inside(&first)?);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
        }
        fs::hard_link(&first, &link).map_err(io("cannot link", &link))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_directory_unpacks_with_its_modes_and_hard_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("backup");
        fs::create_dir_all(from.join("data/images/blobs")).expect("dirs");
        fs::write(from.join("data/images/blobs/abc"), b"image bytes").expect("blob");
        fs::create_dir_all(from.join("data/images/refs")).expect("dirs");
        fs::hard_link(
            from.join("data/images/blobs/abc"),
            from.join("data/images/refs/api-1.0.0"),
        )
        .expect("link");
        fs::write(from.join("jwt.key"), b"secret").expect("key");
        fs::set_permissions(from.join("jwt.key"), fs::Permissions::from_mode(0o600)).expect("mode");
        let file = dir.path().join("backup.zip");
        pack(&from, &file).expect("pack");
        assert!(
            pack(&from, &file).is_err(),
            "an existing file is never replaced"
        );

        let to = dir.path().join("unpacked");
        unpack(&file, &to).expect("unpack");
        assert_eq!(
            fs::read(to.join("data/images/refs/api-1.0.0")).expect("ref"),
            b"image bytes"
        );
        let blob = fs::metadata(to.join("data/images/blobs/abc")).expect("blob");
        let image_ref = fs::metadata(to.join("data/images/refs/api-1.0.0")).expect("ref");
        assert_eq!(
            (blob.ino(), blob.nlink()),
            (image_ref.ino(), 2),
            "linked again"
        );
        let key = fs::metadata(to.join("jwt.key")).expect("key");
        assert_eq!(key.permissions().mode() & 0o777, 0o600);

        fs::write(dir.path().join("not.zip"), b"hello").expect("write");
        let error = unpack(&dir.path().join("not.zip"), &dir.path().join("x"))
            .expect_err("not a zip")
            .to_string();
        assert!(error.contains("not a backup archive"), "{error}");
    }
}
