//! Looking for bytes in files: where a secret must never be written.

use std::path::{Path, PathBuf};

/// Every file under `places` (followed into folders, not through symbolic links) whose
/// bytes contain `needle`, sorted.
pub fn files_containing(places: &[&Path], needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending: Vec<PathBuf> = places.iter().map(|p| p.to_path_buf()).collect();
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found.sort();
    found
}
