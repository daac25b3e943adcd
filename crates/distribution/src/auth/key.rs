//! The HS256 signing key: random bytes in a file created once with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::AuthError;

/// The length of a new key; shorter key files are refused.
const KEY_LEN: usize = 32;

/// The secret that signs and verifies every token.
#[derive(Clone)]
pub struct JwtKey {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKey(..)")
    }
}

fn key_error(path: &Path, reason: impl std::fmt::Display) -> AuthError {
    AuthError::Key {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

impl JwtKey {
    /// A fresh random key (not stored anywhere).
    pub fn generate() -> Result<JwtKey, AuthError> {
        let mut bytes = vec![0; KEY_LEN];
        getrandom::fill(&mut bytes)
            .map_err(|e| AuthError::Internal(format!("no random bytes for a JWT key: {e}")))?;
        Ok(JwtKey { bytes })
    }

    /// Reads the key at `path`, or creates it there (mode 0600) when missing; an existing
    /// key is never overwritten, so two servers starting at once end up with the same one.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<JwtKey, AuthError> {
        let path = path.as_ref();
        let fresh = Self::generate()?;
        let (bytes, created) =
            read_or_create_private(path, &fresh.bytes).map_err(|e| key_error(path, e))?;
        if created {
            tracing::info!(path = %path.display(), "created a new JWT signing key");
        } else {
            warn_if_readable_by_others(path, "the JWT key file");
        }
        Self::checked(path, bytes)
    }

    fn checked(path: &Path, bytes: Vec<u8>) -> Result<JwtKey, AuthError> {
        if bytes.len() < KEY_LEN {
            return Err(key_error(
                path,
                format!(
                    "the key has {} bytes, at least {KEY_LEN} are needed (delete the file to create a new key; every token is then invalid)",
                    bytes.len()
                ),
            ));
        }
        Ok(JwtKey { bytes })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The bytes of the secret file at `path`, or `fresh` written there (with its directory)
/// when it is missing, and whether it was. The file is written to a temporary name with
/// mode 0600 and linked into place, so a reader never sees half a secret and an existing
/// one is never overwritten (two servers starting at once end up with the same secret).
pub(crate) fn read_or_create_private(
    path: &Path,
    fresh: &[u8],
) -> std::io::Result<(Vec<u8>, bool)> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok((bytes, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = temp_name(path);
    // A temporary file left by a crash of a process with the same id is stale.
    let _ = std::fs::remove_file(&temp);
    let written = write_private(&temp, fresh).and_then(|()| {
        // A hard link fails when the name exists, unlike rename: never overwrite a secret.
        std::fs::hard_link(&temp, path)
    });
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => Ok((fresh.to_vec(), true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((std::fs::read(path)?, false))
        }
        Err(e) => Err(e),
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to a new file `path` only its owner can read, synced to disk.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Warns (once, at start) when `what`, a secret file, can be read by other users: anyone
/// who reads the JWT key can sign tokens for any account.
pub(crate) fn warn_if_readable_by_others(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "{what} is readable by other users; run `chmod 600` on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}
