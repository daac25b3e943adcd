//! A client image made from a developer image without unpacking it: the developer image's
//! entries are checked (names inside the image, no symbolic links, the size cap), the
//! files a merge needs are read from it, and the new zip takes every other entry's
//! compressed bytes as they are, so a build that changes a few settings files neither
//! writes the image's files to disk nor compresses them again.
//!
//! The new zip is the one [`super::zip_directory`] would write of the unpacked and changed
//! tree: entries in path order (a directory before what it holds), permission bits only,
//! the fixed time stamp, a directory entry for every directory (mode 0755 where the image
//! lists none), and the same content digest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;

use sha2::{Digest, Sha256};
use zip::ZipArchive;

use super::writer::ImageWriter;
use super::{ZipFile, stop_if, write_image};
use crate::error::BuilderError;

/// The mode of a directory whose mode nothing gives (the image holds files in it without
/// listing it, or only an addition names it).
const IMPLIED_DIRECTORY_MODE: u32 = 0o755;
/// The mode of a file whose entry has none (a zip made elsewhere).
const UNSPECIFIED_FILE_MODE: u32 = 0o644;

/// An image zip opened to be repacked, its entries listed and checked.
pub struct SourceImage {
    path: PathBuf,
    archive: ZipArchive<BufReader<File>>,
    /// The image's tree: its entries by path, a directory for each parent.
    tree: BTreeMap<Vec<String>, Item>,
    /// Bytes its files may decompress to in all, and what is left of it.
    budget: u64,
    max_bytes: u64,
    buffer: Vec<u8>,
}

/// What a new image holds at a path, in [`repack`]'s additions.
#[derive(Debug)]
pub enum Addition {
    /// A file of these bytes.
    Bytes {
        /// Its path in the image (`/`-separated).
        path: String,
        /// Its content.
        bytes: Vec<u8>,
        /// Its permission bits.
        mode: u32,
    },
    /// A file copied from the local disk.
    File {
        /// Its path in the image (`/`-separated).
        path: String,
        /// Where it is read from.
        source: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory (an image's directory of that path keeps its mode).
    Directory {
        /// Its path in the image (`/`-separated).
        path: String,
    },
}

/// One path of the new image.
#[derive(Debug)]
enum Item {
    /// A directory, with the mode its entry gives, if any.
    Directory(Option<u32>),
    /// The source image's entry of this index.
    Entry {
        index: usize,
        mode: u32,
    },
    Bytes {
        bytes: Vec<u8>,
        mode: u32,
    },
    File {
        source: PathBuf,
        mode: u32,
    },
}

impl SourceImage {
    /// Opens the zip at `path` and checks its entries: each name stays inside the image,
    /// none is a symbolic link, no path is both a file and a directory. Its files may hold
    /// `max_bytes` in all (counted as they are read, since a size header may lie).
    pub fn open(path: &Path, max_bytes: u64) -> Result<SourceImage, BuilderError> {
        let fail = |reason: String| unpack_error(path, reason);
        let file = File::open(path).map_err(BuilderError::io("opening", path))?;
        let mut archive = ZipArchive::new(BufReader::new(file)).map_err(|e| fail(e.to_string()))?;
        let mut tree = BTreeMap::new();
        for index in 0..archive.len() {
            let entry = archive
                .by_index_raw(index)
                .map_err(|e| fail(e.to_string()))?;
            let name = entry
                .name()
                .map(|name| name.into_owned())
                .unwrap_or_else(|_| format!("#{index} (name not readable)"));
            let parts = entry
                .enclosed_name()
                .as_deref()
                .and_then(parts_of)
                .ok_or_else(|| {
                    fail(format!("entry `{name}` would be written outside the image"))
                })?;
            if entry.is_symlink() {
                return Err(fail(format!(
                    "entry `{name}` is a symbolic link, which images do not hold"
                )));
            }
            let mode = entry.unix_mode().map(|mode| mode & 0o777);
            let item = if entry.is_dir() {
                Item::Directory(mode)
            } else {
                Item::Entry {
                    index,
                    mode: mode.unwrap_or(UNSPECIFIED_FILE_MODE),
                }
            };
            place(&mut tree, parts, item).map_err(|path| {
                fail(format!(
                    "`{path}` is both a file and a directory in the image"
                ))
            })?;
        }
        Ok(SourceImage {
            path: path.to_path_buf(),
            archive,
            tree,
            budget: max_bytes,
            max_bytes,
            buffer: vec![0; 256 * 1024],
        })
    }

    /// The content of the image's file at `path`, if it holds one there (a file read for a
    /// merge is capped on its own; the cap counts it once, when it is copied).
    pub fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, BuilderError> {
        let Some((index, _)) = self.file_at(path) else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        self.read_entry(index, &mut bytes, false)?;
        Ok(Some(bytes))
    }

    /// The permission bits of the image's file at `path`, if it holds one there.
    pub fn file_mode(&self, path: &str) -> Option<u32> {
        self.file_at(path).map(|(_, mode)| mode)
    }

    /// The index and mode of the image's file at `path`.
    fn file_at(&self, path: &str) -> Option<(usize, u32)> {
        match parts_of(Path::new(path)).and_then(|parts| self.tree.get(&parts)) {
            Some(Item::Entry { index, mode }) => Some((*index, *mode)),
            _ => None,
        }
    }

    /// Decompresses entry `index` into `sink` within the cap (what is left of it when
    /// `counted`, and then the entry uses it up); checks its CRC-32 and returns the SHA-256
    /// of its content.
    fn read_entry(
        &mut self,
        index: usize,
        sink: &mut dyn std::io::Write,
        counted: bool,
    ) -> Result<String, BuilderError> {
        let path = self.path.clone();
        let fail = |reason: String| unpack_error(&path, reason);
        let mut entry = self
            .archive
            .by_index(index)
            .map_err(|e| fail(e.to_string()))?;
        let name = entry
            .name()
            .map(|name| name.into_owned())
            .unwrap_or_default();
        let mut hash = Sha256::new();
        let buffer = &mut self.buffer;
        // One byte past what is left of the cap, so a size header that lies cannot make a
        // larger file slip through; reading to the end checks the CRC-32.
        let mut left = if counted { self.budget } else { self.max_bytes };
        let mut limited = (&mut entry).take(left.saturating_add(1));
        loop {
            let read = limited
                .read(buffer)
                .map_err(|e| fail(format!("entry `{name}`: {e}")))?;
            if read == 0 {
                break;
            }
            if read as u64 > left {
                return Err(fail(format!(
                    "the unpacked image is larger than the limit of {} bytes",
                    self.max_bytes
                )));
            }
            left -= read as u64;
            hash.update(&buffer[..read]);
            sink.write_all(&buffer[..read])
                .map_err(|e| fail(format!("entry `{name}`: {e}")))?;
        }
        if counted {
            self.budget = left;
        }
        Ok(hex::encode(hash.finalize()))
    }
}

/// Writes `source`'s entries with `additions` in their place or among them into
/// `destination` (through `destination.partial`): see the module doc. `interrupt` stops it
/// between entries, leaving nothing behind.
pub fn repack(
    mut source: SourceImage,
    additions: Vec<Addition>,
    destination: &Path,
    interrupt: &AtomicBool,
) -> Result<ZipFile, BuilderError> {
    let mut tree = std::mem::take(&mut source.tree);
    for addition in additions {
        let (path, item) = match addition {
            Addition::Bytes { path, bytes, mode } => (path, Item::Bytes { bytes, mode }),
            Addition::File { path, source, mode } => (path, Item::File { source, mode }),
            Addition::Directory { path } => (path, Item::Directory(None)),
        };
        let parts = parts_of(Path::new(&path)).ok_or_else(|| {
            BuilderError::Settings(format!("`{path}` is not a relative path inside the image"))
        })?;
        place(&mut tree, parts, item).map_err(|clash| {
            BuilderError::Settings(format!(
                "`{path}` cannot be added to the image: `{clash}` is a file in one and a directory in the other"
            ))
        })?;
    }
    write_image(destination, |writer| {
        for (parts, item) in tree {
            stop_if(interrupt)?;
            write_item(writer, &mut source, &parts.join("/"), item)?;
        }
        Ok(())
    })
}

fn write_item(
    writer: &mut ImageWriter,
    source: &mut SourceImage,
    name: &str,
    item: Item,
) -> Result<(), BuilderError> {
    match item {
        Item::Directory(mode) => writer.directory(name, mode.unwrap_or(IMPLIED_DIRECTORY_MODE)),
        Item::Bytes { bytes, mode } => writer.file(
            name,
            mode,
            bytes.len() as u64,
            &mut bytes.as_slice(),
            Path::new(name),
        ),
        Item::File { source: path, mode } => {
            let mut file = File::open(&path).map_err(BuilderError::io("reading", &path))?;
            let len = file
                .metadata()
                .map_err(BuilderError::io("reading", &path))?
                .len();
            writer.file(name, mode, len, &mut file, &path)
        }
        Item::Entry { index, mode } => {
            let sha256 = source.read_entry(index, &mut std::io::sink(), true)?;
            let fail = |e: zip::result::ZipError| unpack_error(&source.path, e.to_string());
            let entry = source.archive.by_index_raw(index).map_err(fail)?;
            if entry.name_raw() == name.as_bytes() {
                writer.copy(entry, name, mode, &sha256)
            } else {
                // A name written another way (`./a`, `a//b`) is written again under its
                // path, so the image reads the same whatever made the source.
                drop(entry);
                let mut entry = source.archive.by_index(index).map_err(fail)?;
                let len = entry.size();
                writer.file(name, mode, len, &mut entry, &source.path)
            }
        }
    }
}

/// Puts `item` at `parts` with a directory at each parent; a directory put where there is
/// one gives its mode if it has one (a directory's entry after the entries inside it) and
/// keeps the one there otherwise. On a path that is a file where a directory is wanted or
/// the other way round, that path.
fn place(
    tree: &mut BTreeMap<Vec<String>, Item>,
    parts: Vec<String>,
    item: Item,
) -> Result<(), String> {
    for depth in 1..parts.len() {
        let parent = &parts[..depth];
        match tree.get(parent) {
            Some(Item::Directory(_)) => {}
            Some(_) => return Err(parent.join("/")),
            None => {
                tree.insert(parent.to_vec(), Item::Directory(None));
            }
        }
    }
    match (tree.get(&parts), &item) {
        (Some(Item::Directory(_)), Item::Directory(None)) => return Ok(()),
        (Some(Item::Directory(_)), Item::Directory(Some(_))) | (None, _) => {}
        (Some(Item::Directory(_)), _) | (Some(_), Item::Directory(_)) => {
            return Err(parts.join("/"));
        }
        (Some(_), _) => {}
    }
    tree.insert(parts, item);
    Ok(())
}

/// A relative path's names, or `None` if it is empty, absolute, leaves its root or is not
/// UTF-8. Its order is the zip's: a directory right before what it holds.
fn parts_of(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => parts.push(name.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then_some(parts)
}

fn unpack_error(path: &Path, reason: String) -> BuilderError {
    BuilderError::Unpack {
        path: path.to_path_buf(),
        reason,
    }
}
