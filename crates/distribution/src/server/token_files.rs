//! `tokenFiles`: access tokens of service accounts written to files at start, so an
//! updater or builder on the same machine can authenticate without anyone copying a token
//! by hand (as k3s writes its node token). A file that exists is left alone: its token
//! stays valid until the account's tokens are revoked, and a revoked one is replaced by
//! deleting the file and restarting. An account that does not exist yet at start (a
//! consumer that `consumers.yaml` will create) gets its file when it is created.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::ServerError;
use crate::auth::AuthService;

/// Writes a token for each account of `files` whose file is missing; an account that
/// does not exist is skipped (with a warning), to be written when it is created.
pub(crate) async fn write_token_files(
    auth: &AuthService,
    files: &BTreeMap<String, PathBuf>,
) -> Result<(), ServerError> {
    for (account, path) in files {
        if path.exists() {
            continue;
        }
        if let Err(crate::auth::AuthError::NoSuchAccount { .. }) = auth.account(account).await {
            tracing::warn!(%account, file = %path.display(), "tokenFiles: no such account yet; its file is written if consumers.yaml creates it");
            continue;
        }
        let fail = |message: String| ServerError::TokenFile {
            account: account.clone(),
            path: path.clone(),
            message,
        };
        let token = auth
            .issue_access_token(account)
            .await
            .map_err(|error| fail(error.to_string()))?;
        let file = path.clone();
        tokio::task::spawn_blocking(move || write_secret(&file, &token))
            .await
            .map_err(|error| fail(error.to_string()))?
            .map_err(|error| fail(error.to_string()))?;
        tracing::info!(%account, file = %path.display(), "wrote an access token file");
    }
    Ok(())
}

/// Writes `token` readable by this user only, next to `path` first, then renamed into
/// place, so a reader never sees half a token.
fn write_secret(path: &Path, token: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}
