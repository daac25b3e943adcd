//! Step 1 of a self-update: the desired `distribution` client image, its SHA-256 checked
//! against its ref, gives its `bin/vupdate`, written executable next to the running
//! binary (same file system, so the swap is a rename).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_images::{ImageStore, ImageVersion};

use super::{SERVICE, SelfUpdateError};

/// Where the binary of `version` is staged beside `binary`.
pub fn staged_path(binary: &Path, version: &str) -> PathBuf {
    let mut name = binary
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_else(|| "vupdate".into());
    name.push(format!(".new-{version}"));
    binary.with_file_name(name)
}

/// Verifies the image of `version`, takes its binary out beside `binary` (mode 0755) and
/// returns its path; `Ok(None)` while the version has no image yet.
pub async fn stage(
    images: &ImageStore,
    version: &ClientVersion,
    binary: &Path,
) -> Result<Option<PathBuf>, SelfUpdateError> {
    let service: ServiceName = SERVICE.parse().expect("a valid service name");
    let image = ImageVersion::Client(version.clone());
    let fail = |error: String| SelfUpdateError::Stage {
        version: version.to_string(),
        error,
    };
    if images
        .info(&service, &image)
        .await
        .map_err(|e| fail(e.to_string()))?
        .is_none()
    {
        return Ok(None);
    }
    // Re-hashed now: a blob changed on disk since it was stored is never run.
    let info = images
        .verify(&service, &image)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let zip = images
        .local_blob(&service, &image, &info)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let target = staged_path(binary, &version.to_string());
    let taken = target.clone();
    let arch = tokio::task::spawn_blocking(move || {
        // A file left by an earlier try is taken out again: it may be half written.
        let _ = std::fs::remove_file(&taken);
        crate::install::take_out(&zip, &taken)
    })
    .await
    .map_err(|e| fail(e.to_string()))?
    .map_err(|e| fail(format!("cannot write {}: {e}", target.display())))?;
    match arch {
        _ if !target.exists() => Err(fail(format!(
            "the image holds no {}",
            crate::install::UPDATER_BINARY
        ))),
        // A script is allowed (a wrapper); a program for another machine is not.
        Some(arch) if arch != std::env::consts::ARCH => Err(fail(format!(
            "its {} is a program for {arch}, this machine is {}",
            crate::install::UPDATER_BINARY,
            std::env::consts::ARCH
        ))),
        _ => {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| fail(format!("cannot make {} executable: {e}", target.display())))?;
            Ok(Some(target))
        }
    }
}
