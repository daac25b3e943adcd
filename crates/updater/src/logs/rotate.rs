//! `writeLogs`: `<prefix>.log`, rotated by size to `<prefix>-1.log` (newest) …
//! `<prefix>-(N-1).log`, so at most `maxFilesCount` files exist.
//!
//! Rotation renames and reopens: a file is never copied then truncated, so no line is
//! lost or doubled and a reader holding the old file keeps reading it to its end.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use vupdate_core::update::WriteLogs;

use crate::Error;

/// A log file that rotates by size and keeps a bounded number of files.
#[derive(Debug)]
pub struct RotatingFile {
    directory: PathBuf,
    prefix: String,
    max_bytes: u64,
    max_files: u32,
    file: BufWriter<File>,
    size: u64,
}

impl RotatingFile {
    /// Opens (appending) `<directory>/<prefix>.log`; rotates past `max_bytes` and keeps at
    /// most `max_files` files (at least 1).
    pub fn open(
        directory: &Path,
        prefix: &str,
        max_bytes: u64,
        max_files: u32,
    ) -> Result<Self, Error> {
        fs::create_dir_all(directory).map_err(Error::io("create", directory))?;
        let path = directory.join(format!("{prefix}.log"));
        let (file, size) = open_append(&path)?;
        Ok(RotatingFile {
            directory: directory.to_owned(),
            prefix: prefix.to_owned(),
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
            file,
            size,
        })
    }

    /// Opens the files `settings` describes, its directory taken relative to `base`.
    pub fn from_settings(base: &Path, settings: &WriteLogs) -> Result<Self, Error> {
        RotatingFile::open(
            &base.join(&settings.directory),
            &settings.file_prefix,
            settings.max_file_size_mb.saturating_mul(1024 * 1024),
            settings.max_files_count,
        )
    }

    /// The file written now.
    pub fn current_path(&self) -> PathBuf {
        self.directory.join(format!("{}.log", self.prefix))
    }

    /// Appends `text` and a newline, rotating first when it would pass the size.
    pub fn write_line(&mut self, text: &str) -> Result<(), Error> {
        let len = text.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let path = self.current_path();
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"))
            .map_err(Error::io("write", path))?;
        self.size += len;
        Ok(())
    }

    /// Writes buffered lines to the file.
    pub fn flush(&mut self) -> Result<(), Error> {
        let path = self.current_path();
        self.file.flush().map_err(Error::io("write", path))
    }

    fn numbered(&self, index: u32) -> PathBuf {
        self.directory.join(format!("{}-{index}.log", self.prefix))
    }

    /// The log files of `prefix` in `directory` now: `<prefix>.log` and every
    /// `<prefix>-N.log`, newest first.
    pub fn files(directory: &Path, prefix: &str) -> Vec<PathBuf> {
        let mut numbered: Vec<(u32, PathBuf)> = fs::read_dir(directory)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name = entry.file_name();
                let index = name
                    .to_str()?
                    .strip_prefix(prefix)?
                    .strip_prefix('-')?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()?;
                Some((index, entry.path()))
            })
            .collect();
        numbered.sort();
        let current = directory.join(format!("{prefix}.log"));
        current
            .exists()
            .then_some(current)
            .into_iter()
            .chain(numbered.into_iter().map(|(_, path)| path))
            .collect()
    }

    fn rotate(&mut self) -> Result<(), Error> {
        self.flush()?;
        let current = self.current_path();
        let kept = self.max_files - 1;
        // The oldest file (and any past the count, left by a larger count before) goes
        // first, then each moves one place down.
        let mut index = kept.max(1);
        while self.numbered(index).exists() {
            let old = self.numbered(index);
            fs::remove_file(&old).map_err(Error::io("remove", old))?;
            index += 1;
        }
        for index in (1..kept).rev() {
            let from = self.numbered(index);
            if from.exists() {
                let to = self.numbered(index + 1);
                fs::rename(&from, &to).map_err(Error::io("rename", from))?;
            }
        }
        if kept == 0 {
            fs::remove_file(&current).map_err(Error::io("remove", &current))?;
        } else {
            fs::rename(&current, self.numbered(1)).map_err(Error::io("rename", &current))?;
        }
        let (file, size) = open_append(&current)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<(BufWriter<File>, u64), Error> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    let size = file
        .metadata()
        .map_err(Error::io("read the size of", path))?
        .len();
    Ok((BufWriter::with_capacity(64 * 1024, file), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(directory)
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn keeps_at_most_max_files_newest_first() {
        // (max files, lines of 10 bytes written with a 25-byte limit, files expected)
        let table: [(u32, usize, &[&str]); 4] = [
            (1, 7, &["svc.log"]),
            (2, 7, &["svc-1.log", "svc.log"]),
            (3, 2, &["svc.log"]),
            (3, 20, &["svc-1.log", "svc-2.log", "svc.log"]),
        ];
        for (max_files, lines, expected) in table {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut file = RotatingFile::open(dir.path(), "svc", 25, max_files).expect("open");
            for index in 0..lines {
                file.write_line(&format!("line {index:04}")).expect("write");
            }
            file.flush().expect("flush");
            assert_eq!(
                names(dir.path()),
                expected,
                "max files {max_files}, {lines} lines"
            );
            // Two lines per file: the current file holds the last one or two lines.
            let current = fs::read_to_string(dir.path().join("svc.log")).expect("read");
            let last = format!("line {:04}\n", lines - 1);
            assert!(current.ends_with(&last), "{current:?}");
            if max_files >= 2 && lines > 2 {
                let previous = fs::read_to_string(dir.path().join("svc-1.log")).expect("read");
                let first_current = lines - current.lines().count();
                assert!(previous.ends_with(&format!("line {:04}\n", first_current - 1)));
            }
        }
    }

    #[test]
    fn reopening_appends_and_counts_the_existing_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = RotatingFile::open(dir.path(), "a", 30, 2).expect("open");
        file.write_line("0123456789012345678").expect("write");
        file.flush().expect("flush");
        drop(file);
        let mut file = RotatingFile::open(dir.path(), "a", 30, 2).expect("reopen");
        // 20 bytes are there: 20 + 17 passes the 30-byte limit, so the file rotates first.
        file.write_line("second line here").expect("write");
        file.flush().expect("flush");
        assert_eq!(
            fs::read_to_string(dir.path().join("a.log")).expect("read"),
            "second line here\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("a-1.log")).expect("read"),
            "0123456789012345678\n"
        );
    }
}
