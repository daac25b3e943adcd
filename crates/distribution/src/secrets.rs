//! Named secrets kept on the distribution, never in Git: a provider's access token, named
//! by `accessTokenSecret` in `providers.yaml`.
//!
//! Secrets live in the store, sealed (`seal`: encrypted under a key derived from the
//! distribution's JWT key), so replicas on one store share them and a copy of the store
//! or a dump of its database holds names and times, never values. An administrator sets
//! them through GraphQL (`setSecret`) or, also while the server is stopped, with `vupdate
//! distribution secret set NAME` reading the value from stdin. Each server keeps the
//! values opened in memory and reads the store again every [`REFRESH`], so a value set
//! through another replica or the CLI applies within that time (at once through this
//! server's API). Older servers kept a file per secret, `<dataDirectory>/secrets/<name>.json`;
//! those are taken into the store at start (`legacy`).
//!
//! A value never leaves this module except through [`SecretValue::expose`], called where
//! it goes into an `Authorization` header; [`SecretValue`] prints as `SecretValue(..)`,
//! and no error, log line, task parameter or API answer carries one (`secrets` lists
//! names and times only).

mod legacy;
mod seal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use vupdate_core::version::is_distribution_name;
use vupdate_store::model::secrets::SealedSecret;
use vupdate_store::{Store, StoreError};

use crate::auth::JwtKey;
use seal::SealingKey;

/// The longest value accepted (a token is far shorter; a whole file is not a secret here).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The longest name accepted.
const MAX_NAME: usize = 64;
/// How often a server reads the secrets again from the store (changes made elsewhere).
pub const REFRESH: Duration = Duration::from_secs(2);

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
    /// The store cannot be read or written (boxed: the mesh's errors carry this one).
    #[error("secrets: {0}")]
    Store(Box<StoreError>),
    /// A stored value does not open.
    #[error("secret `{name}` is unreadable: {reason}; set it again")]
    Unreadable {
        /// The secret.
        name: String,
        /// Why (never the value).
        reason: String,
    },
    /// A value cannot be sealed (no random nonce).
    #[error("secret `{name}` cannot be sealed: {reason}")]
    Seal {
        /// The secret.
        name: String,
        /// Why.
        reason: String,
    },
    /// An older server's secret file or folder cannot be read or renamed.
    #[error("secret file {}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl From<StoreError> for SecretError {
    fn from(error: StoreError) -> SecretError {
        SecretError::Store(Box::new(error))
    }
}

impl SecretError {
    /// Whether the caller's input is at fault (a bad name or value), not the server.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            SecretError::InvalidName { .. }
                | SecretError::EmptyValue { .. }
                | SecretError::TooLarge { .. }
        )
    }
}

/// One secret as this server last read it.
#[derive(Debug, Clone)]
struct Known {
    set_at: DateTime<Utc>,
    sealed: String,
    /// The value, or why it does not open.
    value: Result<SecretValue, String>,
}

/// The secrets of one distribution; cheap to clone.
#[derive(Debug, Clone)]
pub struct Secrets {
    store: Store,
    key: Arc<SealingKey>,
    known: Arc<RwLock<BTreeMap<String, Known>>>,
    changed: watch::Sender<u64>,
}

impl Secrets {
    /// The secrets in `store`, sealed with a key derived from `jwt`; an older server's
    /// secret files under `data_directory` are taken in first.
    pub async fn open(
        store: Store,
        jwt: &JwtKey,
        data_directory: &Path,
    ) -> Result<Secrets, SecretError> {
        let (changed, _) = watch::channel(0);
        let secrets = Secrets {
            store,
            key: Arc::new(SealingKey::derive(jwt)),
            known: Arc::default(),
            changed,
        };
        legacy::import(&secrets, &data_directory.join(legacy::DIR)).await?;
        secrets.refresh().await?;
        Ok(secrets)
    }

    /// Bumps each time a secret is set or removed, here or (seen at the next refresh)
    /// through another replica or the CLI.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// What the store holds.
    pub fn description(&self) -> &str {
        self.store.description()
    }

    /// Reads every secret from the store again; bumps [`Secrets::changed`] when any
    /// was set or removed since the last read.
    pub async fn refresh(&self) -> Result<(), SecretError> {
        let stored = self.store.secrets().list().await?;
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        let same = known.len() == stored.len()
            && stored.iter().all(|secret| {
                known
                    .get(&secret.name)
                    .is_some_and(|k| k.set_at == secret.set_at && k.sealed == secret.sealed)
            });
        if same {
            return Ok(());
        }
        *known = stored
            .into_iter()
            .map(|secret| {
                let value = self.key.open(&secret.name, &secret.sealed).map(SecretValue);
                let entry = Known {
                    set_at: secret.set_at,
                    sealed: secret.sealed,
                    value,
                };
                (secret.name, entry)
            })
            .collect();
        drop(known);
        self.changed.send_modify(|count| *count += 1);
        Ok(())
    }

    /// Reads the store again every [`REFRESH`] until `stopped` turns true.
    pub async fn follow(self, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "cannot read the secrets again; the last values stay");
            }
        }
    }

    /// Sets `name` to `value` (replacing an earlier value).
    pub async fn set(&self, name: &str, value: &str) -> Result<SecretInfo, SecretError> {
        self.set_at(name, value, self.store.now()).await
    }

    /// [`Secrets::set`] with the time it was set (an older server's file keeps its own).
    async fn set_at(
        &self,
        name: &str,
        value: &str,
        set_at: DateTime<Utc>,
    ) -> Result<SecretInfo, SecretError> {
        check_name(name)?;
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
        let sealed = self
            .key
            .seal(name, value)
            .map_err(|reason| SecretError::Seal {
                name: name.to_owned(),
                reason,
            })?;
        self.store
            .secrets()
            .set(SealedSecret {
                name: name.to_owned(),
                set_at,
                sealed,
            })
            .await?;
        self.refresh().await?;
        tracing::info!(secret = name, "secret set");
        Ok(SecretInfo {
            name: name.to_owned(),
            set_at,
        })
    }

    /// Removes `name`; false when there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        let removed = self.store.secrets().remove(name).await?;
        self.refresh().await?;
        if removed {
            tracing::info!(secret = name, "secret removed");
        }
        Ok(removed)
    }

    /// The value of `name`, or `None` when it is not set.
    pub fn get(&self, name: &str) -> Result<Option<SecretValue>, SecretError> {
        check_name(name)?;
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        known
            .get(name)
            .map(|k| {
                k.value.clone().map_err(|reason| SecretError::Unreadable {
                    name: name.to_owned(),
                    reason,
                })
            })
            .transpose()
    }

    /// When `name` was set, or `None` when it is not set.
    pub fn info(&self, name: &str) -> Result<Option<SecretInfo>, SecretError> {
        check_name(name)?;
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        Ok(known.get(name).map(|k| SecretInfo {
            name: name.to_owned(),
            set_at: k.set_at,
        }))
    }

    /// Every secret's name and time, by name.
    pub fn list(&self) -> Result<Vec<SecretInfo>, SecretError> {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        Ok(known
            .iter()
            .map(|(name, k)| SecretInfo {
                name: name.clone(),
                set_at: k.set_at,
            })
            .collect())
    }
}

fn check_name(name: &str) -> Result<(), SecretError> {
    if is_secret_name(name) {
        Ok(())
    } else {
        Err(SecretError::InvalidName {
            name: name.chars().take(MAX_NAME).collect(),
        })
    }
}

/// Whether `name` can name a secret: what `accessTokenSecret` accepts in `providers.yaml`.
pub fn is_secret_name(name: &str) -> bool {
    is_distribution_name(name) && name.len() <= MAX_NAME
}

#[cfg(test)]
mod tests;
