//! Secrets of older servers, one file per secret in `<dataDirectory>/secrets/<name>.json`
//! (`{"setAt", "value"}`, mode 0600): taken into the store at start, then renamed
//! `<name>.json.imported`. A secret the store has from a later time keeps that value (a
//! replica that imported earlier, or a value set since). The folder stays: `tokenFiles`
//! may write there.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{SecretError, Secrets};

/// The folder, in the data directory.
pub(super) const DIR: &str = "secrets";
/// What a secret file's name ends with.
const SUFFIX: &str = ".json";

/// A secret file's content.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretFile {
    set_at: DateTime<Utc>,
    value: String,
}

/// Takes every secret file in `dir` into `secrets`; returns how many were taken.
pub(super) async fn import(secrets: &Secrets, dir: &Path) -> Result<usize, SecretError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| SecretError::Io { path, error }
    };
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(io(dir)(error)),
    };
    let stored = secrets.store.secrets().list().await?;
    let mut taken = 0;
    while let Some(entry) = entries.next_entry().await.map_err(io(dir))? {
        let path = entry.path();
        let Some(name) = secret_name(&path) else {
            continue;
        };
        let bytes = tokio::fs::read(&path).await.map_err(io(&path))?;
        // serde_json's messages quote no values of a struct's fields, only positions.
        let file: SecretFile = match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(file = %path.display(), line = error.line(), "skipping a file in the secrets folder that is not a secret file");
                continue;
            }
        };
        let newer = stored
            .iter()
            .any(|secret| secret.name == name && secret.set_at >= file.set_at);
        if !newer {
            secrets.set_at(&name, &file.value, file.set_at).await?;
            taken += 1;
        }
        let mut imported = path.clone().into_os_string();
        imported.push(".imported");
        tokio::fs::rename(&path, PathBuf::from(imported))
            .await
            .map_err(io(&path))?;
    }
    if taken > 0 {
        tracing::info!(secrets = taken, folder = %dir.display(), "took the older secret files into the store, sealed; the files are renamed *.json.imported, delete them once this server runs");
    }
    Ok(taken)
}

/// The secret a file in the folder holds, by its name.
fn secret_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.strip_suffix(SUFFIX)?;
    super::is_secret_name(name).then(|| name.to_owned())
}
