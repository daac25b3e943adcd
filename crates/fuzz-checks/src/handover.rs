//! The updater's handover file, which the process that takes over (or the previous binary,
//! when the new one fails) reads after `execve`.

use std::sync::OnceLock;

use vupdate_updater::handover::file::{HandoverFile, read};

/// The file is read from disk as the updater reads it. What reads is written again (as
/// the fallback rewrites it) without a panic and reads back as the same value; an
/// unreadable file is an error that names it.
pub fn check(data: &[u8]) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    let path = dir.path().join("handover.json");
    std::fs::write(&path, data).expect("write the handover file");
    match read(&path) {
        Ok(file) => {
            let text = serde_json::to_vec_pretty(&file).expect("a handover file read writes");
            let back: HandoverFile =
                serde_json::from_slice(&text).expect("a handover file written reads back");
            assert_eq!(back, file);
        }
        Err(error) => {
            assert!(error.to_string().contains("handover.json"), "{error}");
        }
    }
}
