//! Image archives (zip) as the updater unpacks them before an install and the builder
//! repacks a developer image in a client build: entry names that leave the image,
//! symbolic links (and links through links), directories named like files, sizes that
//! lie, archives that decompress to far more than they weigh.
//!
//! An input is a zero byte and the archive's raw bytes, or another byte and a compact
//! description of entries (`Reader`) that is written as a zip and then damaged at chosen
//! offsets: random bytes rarely make a readable archive, while described entries reach
//! every branch of an unpacker.
//!
//! Each input is unpacked into `out/`, eight directories deep in a fresh temporary
//! directory, so that an entry escaping by a few levels lands where the check sees it.
//! An unpacker that lets entries escape much further writes outside that directory:
//! `scripts/fuzz` runs these targets with the file system read-only outside a private
//! `/tmp`.

use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// The unpacked size limit given to the unpackers; described entries may be four times
/// larger.
pub const MAX_UNPACKED: u64 = 1 << 20;

/// The largest entry a description makes (a run of one byte deflates to almost nothing).
const MAX_ENTRY: u32 = 4 << 20;

/// How deep `out/` lies below the temporary directory.
const DEPTH: &[&str] = &["1", "2", "3", "4", "5", "6", "7", "8"];

/// The updater: what it unpacks stays inside, symbolic links included (wherever they
/// point, through other links or not); regular files keep their owner's read and write;
/// the byte count it returns is what the files hold, within the limit.
pub fn check_updater(data: &[u8]) {
    let Some(sandbox) = Sandbox::new(data) else {
        return;
    };
    let result =
        vupdate_updater::install::unzip::unpack(&sandbox.image, &sandbox.out, MAX_UNPACKED);
    let found = sandbox.inspect();
    if let Ok(bytes) = result {
        assert!(
            bytes <= MAX_UNPACKED,
            "{bytes} bytes unpacked past the limit"
        );
        assert_eq!(found.file_bytes, bytes, "the count is what the files hold");
    }
    for mode in found.file_modes {
        assert_eq!(
            mode & 0o600,
            0o600,
            "a file the updater cannot read or write back"
        );
    }
}

/// The builder, repacking an image for a client build: nothing is written but its zip;
/// the zip it makes names only paths inside the image, holds no symbolic link and no more
/// than the limit, and reads back whole; a repack that fails leaves no zip.
pub fn check_builder(data: &[u8]) {
    let Some(sandbox) = Sandbox::new(data) else {
        return;
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    let result = vupdate_builder::image::SourceImage::open(&sandbox.image, MAX_UNPACKED)
        .and_then(|image| vupdate_builder::image::repack(image, Vec::new(), &sandbox.out, &never));
    let found = sandbox.inspect();
    assert_eq!(found.symlinks, 0, "the builder made a symbolic link");
    let Ok(zip) = result else {
        assert!(!found.out_exists, "a failed repack left its zip");
        return;
    };
    let file = fs::File::open(&zip.path).expect("the repacked zip");
    let mut archive = zip::ZipArchive::new(file).expect("the repacked zip reads");
    let mut total = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).expect("a repacked entry");
        assert!(!entry.is_symlink(), "the repacked image holds a link");
        let name = entry.name().expect("a UTF-8 name").into_owned();
        let path = entry.enclosed_name();
        assert_eq!(
            path.as_deref().and_then(Path::to_str),
            Some(name.trim_end_matches('/')),
            "a repacked name that is not its own path"
        );
        total += std::io::copy(&mut entry, &mut std::io::sink()).expect("the entry reads back");
    }
    assert!(
        total <= MAX_UNPACKED,
        "{total} bytes repacked past the limit"
    );
}

/// One entry of a described archive.
#[derive(Debug)]
struct EntrySpec {
    name: String,
    kind: KindSpec,
    mode: u32,
    deflate: bool,
    zip64: bool,
}

#[derive(Debug)]
enum KindSpec {
    File(ContentSpec),
    Directory,
    Symlink(String),
}

#[derive(Debug)]
enum ContentSpec {
    Bytes(Vec<u8>),
    Run { byte: u8, length: u32 },
}

/// Path parts that matter to an unpacker: `..`, `.`, empty, names reused for links.
const NAME_PARTS: &[&str] = &["a", "b", "l", "..", ".", "", "bin", "run.sh", "\\", "C:"];

/// Reads a description, a few bytes per entry so that mutations stay local:
///
/// - a head byte: bits 0-1 the kind (file, directory, link, or damage), bit 2 deflate,
///   bit 3 zip64, bit 4 a long run of one byte as the content;
/// - damage: two bytes of offset (little-endian, modulo the archive's length), the value;
/// - otherwise the name (see [`Reader::path`]) and two bytes of Unix mode; then a link's
///   target (a path), or a file's content: a length byte and the bytes, or for a run the
///   byte and a count of 64 KiB blocks.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn take(&mut self, count: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(count.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }

    /// A count byte (bit 7: absolute; bit 6: text; bits 0-5: n), then n text bytes or n
    /// parts, each a byte choosing from [`NAME_PARTS`], joined with `/`.
    fn path(&mut self) -> String {
        let count = self.byte().unwrap_or(0);
        let n = usize::from(count & 0x3f);
        let path = if count & 0x40 != 0 {
            String::from_utf8_lossy(self.take(n)).into_owned()
        } else {
            self.take(n)
                .iter()
                .map(|part| NAME_PARTS[usize::from(*part) % NAME_PARTS.len()])
                .collect::<Vec<_>>()
                .join("/")
        };
        if count & 0x80 != 0 {
            format!("/{path}")
        } else {
            path
        }
    }

    /// The entries and the damage of a description.
    fn archive(mut self) -> (Vec<EntrySpec>, Vec<(u16, u8)>) {
        let (mut entries, mut damage) = (Vec::new(), Vec::new());
        while let Some(head) = self.byte() {
            if head & 3 == 3 {
                damage.push((self.u16(), self.byte().unwrap_or(0)));
                continue;
            }
            let name = self.path();
            let mode = u32::from(self.u16());
            let kind = match head & 3 {
                0 if head & 0x10 != 0 => KindSpec::File(ContentSpec::Run {
                    byte: self.byte().unwrap_or(0),
                    length: (u32::from(self.byte().unwrap_or(0)) + 1) * (64 << 10),
                }),
                0 => {
                    let length = usize::from(self.byte().unwrap_or(0));
                    KindSpec::File(ContentSpec::Bytes(self.take(length).to_vec()))
                }
                1 => KindSpec::Directory,
                _ => KindSpec::Symlink(self.path()),
            };
            entries.push(EntrySpec {
                name,
                kind,
                mode,
                deflate: head & 4 != 0,
                zip64: head & 8 != 0,
            });
        }
        (entries, damage)
    }
}

/// A described archive's bytes; `None` when the writer refuses to finish it.
fn write_archive(description: &[u8]) -> Option<Vec<u8>> {
    let (entries, damage) = Reader(description).archive();
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for entry in &entries {
        // An entry the writer refuses (a name used twice) is left out.
        let _ = entry.write(&mut writer);
    }
    let mut bytes = writer.finish().ok()?.into_inner();
    if !bytes.is_empty() {
        for (offset, value) in damage {
            let at = usize::from(offset) % bytes.len();
            bytes[at] = value;
        }
    }
    Some(bytes)
}

impl EntrySpec {
    fn write(&self, writer: &mut ZipWriter<Cursor<Vec<u8>>>) -> zip::result::ZipResult<()> {
        let method = if self.deflate {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .unix_permissions(self.mode)
            .large_file(self.zip64);
        match &self.kind {
            KindSpec::Directory => writer.add_directory(self.name.as_str(), options),
            KindSpec::Symlink(target) => writer.add_symlink(self.name.as_str(), target, options),
            KindSpec::File(content) => {
                writer.start_file(self.name.as_str(), options)?;
                match content {
                    ContentSpec::Bytes(bytes) => writer.write_all(bytes)?,
                    ContentSpec::Run { byte, length } => {
                        let chunk = [*byte; 64 * 1024];
                        let mut left = (*length).min(MAX_ENTRY);
                        while left > 0 {
                            let now = left.min(chunk.len() as u32);
                            writer.write_all(&chunk[..now as usize])?;
                            left -= now;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// A temporary directory holding the image and, deep inside, where it is unpacked.
struct Sandbox {
    root: tempfile::TempDir,
    image: PathBuf,
    out: PathBuf,
}

/// What an unpack left in the sandbox.
struct Found {
    out_exists: bool,
    file_bytes: u64,
    file_modes: Vec<u32>,
    symlinks: usize,
}

impl Sandbox {
    fn new(data: &[u8]) -> Option<Sandbox> {
        let bytes = match data.split_first()? {
            (0, raw) => raw.to_vec(),
            (_, description) => write_archive(description)?,
        };
        let root = tempfile::tempdir().expect("a temporary directory");
        let deep = DEPTH
            .iter()
            .fold(root.path().to_owned(), |path, part| path.join(part));
        fs::create_dir_all(&deep).expect("create the sandbox");
        let image = root.path().join("image.zip");
        fs::write(&image, bytes).expect("write the image");
        let out = deep.join("out");
        Some(Sandbox { root, image, out })
    }

    /// Walks the whole sandbox without following links: panics on anything outside
    /// `out/` that was not there before, and on a symbolic link under `out/` that resolves
    /// outside it.
    fn inspect(&self) -> Found {
        let mut found = Found {
            out_exists: self.out.exists(),
            file_bytes: 0,
            file_modes: Vec::new(),
            symlinks: 0,
        };
        let mut expected: Vec<PathBuf> = vec![self.image.clone()];
        let mut chain = self.root.path().to_owned();
        for part in DEPTH {
            chain.push(part);
            expected.push(chain.clone());
        }
        let canonical_out = fs::canonicalize(&self.out).ok();
        let mut stack = vec![self.root.path().to_owned()];
        while let Some(dir) = stack.pop() {
            // The unpacked modes may deny the owner; the walk and the clean-up need access.
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
            for entry in fs::read_dir(&dir).expect("list a sandbox directory") {
                let path = entry.expect("a directory entry").path();
                let inside = path.starts_with(&self.out);
                assert!(
                    inside || expected.contains(&path),
                    "`{}` was written outside the unpacked image",
                    path.display()
                );
                let meta = fs::symlink_metadata(&path).expect("stat");
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.file_type().is_symlink() {
                    found.symlinks += 1;
                    let out = canonical_out.as_ref().expect("links are under out/");
                    assert!(
                        resolves_inside(&path, out),
                        "link `{}` -> `{}` leaves the image",
                        path.display(),
                        fs::read_link(&path).expect("readlink").display()
                    );
                } else if inside {
                    found.file_bytes += meta.len();
                    found.file_modes.push(meta.permissions().mode());
                }
            }
        }
        found
    }
}

/// Whether the link at `link` resolves inside `out` (canonical): followed by the system
/// when its target exists, else resolved from its directory without further links.
fn resolves_inside(link: &Path, out: &Path) -> bool {
    if let Ok(target) = fs::canonicalize(link) {
        return target.starts_with(out);
    }
    let Some(Ok(mut resolved)) = link.parent().map(fs::canonicalize) else {
        return false;
    };
    let Ok(target) = fs::read_link(link) else {
        return false;
    };
    for component in target.components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => resolved = PathBuf::from("/"),
        }
    }
    resolved.starts_with(out)
}
