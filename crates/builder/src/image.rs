//! Image zips: write a directory as a zip (streamed, unix modes kept, content digest and
//! file hash computed on the way), and [`repack`] one into another with files changed.
//!
//! Entries are written in path order with a fixed time stamp, so the same files give the
//! same zip bytes. A file that is already compressed (an archive, media, a model), told by
//! deflating its first chunk, is stored as it is: deflating it again cost seconds per
//! hundred MB for no gain. The zip goes to `<name>.partial` and is renamed into place only
//! once complete, so a crash or cancellation never leaves a half image under the final
//! name.

mod repack;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::BuilderError;
pub use repack::{Addition, SourceImage, repack};
use writer::ImageWriter;

/// Files from this size on are probed; a smaller one is deflated whatever it holds.
const PROBE_FROM: u64 = 64 * 1024;
/// The share of its size a probed chunk must deflate to at most for the file to be
/// deflated; above it the file is stored.
const DEFLATED_AT_MOST: f64 = 0.95;

/// A finished image zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipFile {
    /// Where it is.
    pub path: PathBuf,
    /// SHA-256 of the zip file, hex.
    pub sha256: String,
    /// Size of the zip file in bytes.
    pub size: u64,
    /// SHA-256 over the image's paths, modes and file contents, hex: equal for equal
    /// content, whatever the zip library does with the bytes.
    pub content_digest: String,
}

/// Zips the tree under `root` into `destination` (through `destination.partial`).
/// Blocking; `interrupt` stops it between files, leaving nothing behind.
pub fn zip_directory(
    root: &Path,
    destination: &Path,
    interrupt: &AtomicBool,
) -> Result<ZipFile, BuilderError> {
    write_image(destination, |writer| write_tree(root, writer, interrupt))
}

/// Writes the zip `fill` makes to `destination` through `destination.partial`, renamed
/// into place once whole and removed if anything fails.
fn write_image(
    destination: &Path,
    fill: impl FnOnce(&mut ImageWriter) -> Result<(), BuilderError>,
) -> Result<ZipFile, BuilderError> {
    let partial = partial_path(destination);
    let written = ImageWriter::create(&partial).and_then(|mut writer| {
        fill(&mut writer)?;
        writer.finish()
    });
    match written {
        Ok(written) => {
            std::fs::rename(&partial, destination).map_err(BuilderError::io(
                "renaming the finished image to",
                destination,
            ))?;
            Ok(ZipFile {
                path: destination.to_path_buf(),
                ..written
            })
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    destination.with_file_name(name)
}

/// A cancelled zip, if `interrupt` is set (checked between entries).
fn stop_if(interrupt: &AtomicBool) -> Result<(), BuilderError> {
    if interrupt.load(Ordering::Relaxed) {
        return Err(BuilderError::Cancelled {
            step: "zip".to_owned(),
        });
    }
    Ok(())
}

/// Every directory and file under `root`, in path order.
fn write_tree(
    root: &Path,
    writer: &mut ImageWriter,
    interrupt: &AtomicBool,
) -> Result<(), BuilderError> {
    let walk = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walk {
        stop_if(interrupt)?;
        let entry =
            entry.map_err(|e| writer.zip_error(format!("reading {}: {e}", root.display())))?;
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir yields paths under its root");
        let name = relative.to_str().ok_or_else(|| {
            writer.zip_error(format!("`{}` is not a UTF-8 path", relative.display()))
        })?;
        let metadata = entry
            .metadata()
            .map_err(|e| writer.zip_error(format!("reading {}: {e}", entry.path().display())))?;
        // Permission bits only: set-id bits from a build tree have no business in an image.
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777;
        if metadata.is_dir() {
            writer.directory(name, mode)?;
        } else {
            let mut source = std::fs::File::open(entry.path())
                .map_err(BuilderError::io("reading", entry.path()))?;
            writer.file(name, mode, metadata.len(), &mut source, entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
