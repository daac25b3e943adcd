//! Named secrets kept on the distribution, never in Git: a provider's access token, named
//! by `accessTokenSecret` in `providers.yaml`.
//!
//! Each secret is one file `<dataDirectory>/secrets/<name>.json` (`{"setAt", "value"}`),
//! mode 0600 in a folder of mode 0700, written to a temporary file and renamed into place
//! so a reader never sees half a value. An administrator sets them through GraphQL
//! (`setSecret`) or, also while the server is stopped, with `vupdate distribution secret
//! set NAME` reading the value from stdin. The server reads a secret's file each time it
//! uses it, so a value set by the CLI on a running server applies at its next use.
//!
//! A value never leaves this module except through [`SecretValue::expose`], called where
//! it goes into an `Authorization` header; [`SecretValue`] prints as `SecretValue(..)`,
//! and no error, log line, task parameter or API answer carries one (`secrets` lists
//! names and times only).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use vupdate_core::version::is_distribution_name;

use crate::auth::write_private;

/// The longest value accepted (a token is far shorter; a whole file is not a secret here).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The longest name accepted.
const MAX_NAME: usize = 64;
/// What secret files end with.
const SUFFIX: &str = ".json";

/// A secret's value; it shows as `SecretValue(..)` in debug output, and has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// The value, for the one place it is used (an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(..)")
    }
}

/// What is said about a secret: its name and when it was set, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// The name.
    pub name: String,
    /// When it was last set.
    pub set_at: DateTime<Utc>,
}

/// Why a secret could not be read or written; never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The name is not a secret name.
    #[error(
        "`{name}` is not a secret name: use letters, digits, `.`, `_` or `-`, at most 64 characters"
    )]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The value is empty.
    #[error("the value of secret `{name}` is empty")]
    EmptyValue {
        /// The name.
        name: String,
    },
    /// The value is too large.
    #[error(
        "the value of secret `{name}` has {size} bytes, more than the {MAX_VALUE_BYTES} allowed"
    )]
    TooLarge {
        /// The name.
        name: String,
        /// Its size.
        size: usize,
    },
    /// A file or folder could not be read or written.
    #[error("secret store {}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A secret file is not what this module writes.
    #[error("secret file {} is unreadable ({reason}); set the secret again", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        reason: String,
    },
}

/// A secret file's content.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretFile {
    set_at: DateTime<Utc>,
    value: String,
}

/// The secrets of one data directory; cheap to clone.
#[derive(Debug, Clone)]
pub struct Secrets {
    dir: PathBuf,
    changed: watch::Sender<u64>,
}

impl Secrets {
    /// The secrets under `data_directory` (`secrets/`, created with mode 0700 when missing).
    pub fn open(data_directory: &Path) -> Result<Secrets, SecretError> {
        let dir = data_directory.join("secrets");
        let io = |error| SecretError::Io {
            path: dir.clone(),
            error,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let (changed, _) = watch::channel(0);
        Ok(Secrets { dir, changed })
    }

    /// The folder the secrets live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bumps each time this process sets or removes a secret (the CLI's changes are seen
    /// by reading [`Secrets::info`] again).
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Sets `name` to `value` (replacing an earlier value).
    pub fn set(&self, name: &str, value: &str) -> Result<SecretInfo, SecretError> {
        let path = self.path(name)?;
        if value.is_empty() {
            return Err(SecretError::EmptyValue {
                name: name.to_owned(),
            });
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(SecretError::TooLarge {
                name: name.to_owned(),
                size: value.len(),
            });
        }
        let file = SecretFile {
            set_at: chrono::Utc::now(),
            value: value.to_owned(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|error| SecretError::Corrupt {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        let temp = self
            .dir
            .join(format!("{name}{SUFFIX}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        let written = write_private(&temp, &bytes).and_then(|()| std::fs::rename(&temp, &path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(SecretError::Io { path, error });
        }
        self.changed.send_modify(|count| *count += 1);
        tracing::info!(secret = name, "secret set");
        Ok(SecretInfo {
            name: name.to_owned(),
            set_at: file.set_at,
        })
    }

    /// Removes `name`; false when there was none.
    pub fn remove(&self, name: &str) -> Result<bool, SecretError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                self.changed.send_modify(|count| *count += 1);
                tracing::info!(secret = name, "secret removed");
                Ok(true)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(SecretError::Io { path, error }),
        }
    }

    /// The value of `name`, or `None` when it is not set.
    pub fn get(&self, name: &str) -> Result<Option<SecretValue>, SecretError> {
        Ok(self.read(name)?.map(|file| SecretValue(file.value)))
    }

    /// When `name` was set, or `None` when it is not set.
    pub fn info(&self, name: &str) -> Result<Option<SecretInfo>, SecretError> {
        Ok(self.read(name)?.map(|file| SecretInfo {
            name: name.to_owned(),
            set_at: file.set_at,
        }))
    }

    /// Every secret's name and time, by name.
    pub fn list(&self) -> Result<Vec<SecretInfo>, SecretError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|error| SecretError::Io {
            path: self.dir.clone(),
            error,
        })?;
        let mut list = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            if let Some(info) = self.info(name)? {
                list.push(info);
            }
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    fn read(&self, name: &str) -> Result<Option<SecretFile>, SecretError> {
        let path = self.path(name)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(SecretError::Io { path, error }),
        };
        // serde_json's messages quote no values of a struct's fields, only positions.
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| SecretError::Corrupt {
                path,
                reason: format!("not a secret file at line {}", error.line()),
            })
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretError> {
        if !is_secret_name(name) {
            return Err(SecretError::InvalidName {
                name: name.chars().take(MAX_NAME).collect(),
            });
        }
        Ok(self.dir.join(format!("{name}{SUFFIX}")))
    }
}

/// Whether `name` can name a secret: what `accessTokenSecret` accepts in `providers.yaml`.
pub fn is_secret_name(name: &str) -> bool {
    is_distribution_name(name) && name.len() <= MAX_NAME
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_secret_is_kept_private_and_never_printed() {
        let data = tempfile::TempDir::new().expect("dir");
        let secrets = Secrets::open(data.path()).expect("open");
        let mut changed = secrets.changed();
        let info = secrets.set("jetto-token", "s3cr3t-value").expect("set");
        assert!(changed.has_changed().expect("open channel"));
        changed.mark_unchanged();
        assert_eq!(info.name, "jetto-token");
        let value = secrets.get("jetto-token").expect("read").expect("set");
        assert_eq!(value.expose(), "s3cr3t-value");
        assert_eq!(format!("{value:?}"), "SecretValue(..)");
        let file = secrets.dir().join("jetto-token.json");
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(secrets.dir())
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(
            secrets
                .list()
                .expect("list")
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            ["jetto-token"]
        );
        // A second process (the CLI) sees the same files.
        let other = Secrets::open(data.path()).expect("open again");
        other.set("jetto-token", "rotated").expect("set");
        assert_eq!(
            secrets
                .get("jetto-token")
                .expect("read")
                .expect("set")
                .expose(),
            "rotated"
        );
        assert!(secrets.remove("jetto-token").expect("remove"));
        assert!(!secrets.remove("jetto-token").expect("remove again"));
        assert!(changed.has_changed().expect("open channel"));
        assert!(secrets.get("jetto-token").expect("read").is_none());
    }

    #[test]
    fn refusals_name_the_secret_never_its_value() {
        let data = tempfile::TempDir::new().expect("dir");
        let secrets = Secrets::open(data.path()).expect("open");
        for (name, value) in [
            ("../etc", "v4lue-x"),
            ("", "v4lue-x"),
            ("ok", ""),
            ("big", &"v4lue-x".repeat(MAX_VALUE_BYTES)),
        ] {
            let error = secrets.set(name, value).expect_err(name).to_string();
            assert!(!error.contains("v4lue-x"), "{error}");
        }
        std::fs::write(secrets.dir().join("broken.json"), "{\"value\": \"v4lue-x\"")
            .expect("write");
        let error = secrets.get("broken").expect_err("corrupt").to_string();
        assert!(error.contains("broken.json"), "{error}");
        assert!(!error.contains("v4lue-x"), "{error}");
    }
}
