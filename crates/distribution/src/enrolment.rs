//! Enrolment tokens: short-lived, limited-use secrets an administrator issues so a new VM
//! can install its updater with one line (`GET /install/updater.sh`). Each use is
//! exchanged for an access token of the updater account of that VM's instance
//! (`updater@<instance>`, role Updater), so one VM's token can be revoked alone.
//!
//! A token is shown once, when it is issued; only its SHA-256 is kept (a token is 256
//! random bits, so a plain hash is as strong as a slow one), in
//! `<dataDirectory>/enrolment-tokens.json`, rewritten whole (temporary file, fsync,
//! rename) under one lock, so a crash leaves the old or the new list, never half of one.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file that holds the tokens' hashes, in the data directory.
pub const FILE_NAME: &str = "enrolment-tokens.json";

/// What every token starts with, so a leaked one is recognisable (and greppable).
const PREFIX: &str = "vue_";

/// Why an enrolment token cannot be used; each has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    /// No token with this value was ever issued here (or it was revoked).
    #[error(
        "this enrolment token is not known to this distribution (mistyped, revoked, or issued by another one)"
    )]
    Unknown,
    /// The token's time is over.
    #[error("enrolment token {id} expired at {at}; ask an administrator for a new one")]
    Expired {
        /// The token's id.
        id: String,
        /// When it expired.
        at: DateTime<Utc>,
    },
    /// Every use of the token is spent.
    #[error(
        "enrolment token {id} is used up (it allowed {uses} installs); ask an administrator for a new one"
    )]
    UsedUp {
        /// The token's id.
        id: String,
        /// How many uses it had.
        uses: u32,
    },
    /// The request is wrong (a service the token does not allow, a bad argument).
    #[error("{0}")]
    Invalid(String),
    /// The token file cannot be read or written.
    #[error("enrolment tokens in {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

impl EnrolmentError {
    /// The stable code a client can act on.
    pub fn code(&self) -> &'static str {
        match self {
            EnrolmentError::Unknown => "ENROLMENT_TOKEN_UNKNOWN",
            EnrolmentError::Expired { .. } => "ENROLMENT_TOKEN_EXPIRED",
            EnrolmentError::UsedUp { .. } => "ENROLMENT_TOKEN_USED_UP",
            EnrolmentError::Invalid(_) => "INVALID_ARGUMENT",
            EnrolmentError::Io { .. } => "INTERNAL",
        }
    }
}

/// One issued token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentRecord {
    /// A short id (the first 12 hex digits of the hash), for lists and logs.
    pub id: String,
    /// The SHA-256 of the token, hex.
    pub hash: String,
    /// The services a VM enrolled with it may run (`name` or `name-role`).
    pub services: Vec<String>,
    /// Who issued it.
    pub issued_by: String,
    /// When.
    pub issued_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// How many enrolments it allows.
    pub uses: u32,
    /// The instances enrolled with it so far, oldest first.
    pub enrolled: Vec<String>,
}

impl EnrolmentRecord {
    /// Whether the token is still valid at `now`, or why not.
    fn current(&self, now: DateTime<Utc>) -> Result<(), EnrolmentError> {
        if now >= self.expires_at {
            return Err(EnrolmentError::Expired {
                id: self.id.clone(),
                at: self.expires_at,
            });
        }
        Ok(())
    }

    /// Whether the token may enrol one more instance at `now`, or why not.
    fn usable(&self, now: DateTime<Utc>) -> Result<(), EnrolmentError> {
        self.current(now)?;
        if self.enrolled.len() >= self.uses as usize {
            return Err(EnrolmentError::UsedUp {
                id: self.id.clone(),
                uses: self.uses,
            });
        }
        Ok(())
    }
}

/// The enrolment tokens of one distribution; cheap to clone.
#[derive(Debug, Clone)]
pub struct Enrolments {
    path: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

impl Enrolments {
    /// The tokens kept in `data_directory`.
    pub fn new(data_directory: &Path) -> Enrolments {
        Enrolments {
            path: data_directory.join(FILE_NAME),
            lock: Arc::default(),
        }
    }

    fn io(&self, error: std::io::Error) -> EnrolmentError {
        EnrolmentError::Io {
            path: self.path.clone(),
            error,
        }
    }

    fn read(&self) -> Result<Vec<EnrolmentRecord>, EnrolmentError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| self.io(error.into())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(self.io(error)),
        }
    }

    fn write(&self, records: &[EnrolmentRecord]) -> Result<(), EnrolmentError> {
        let bytes = serde_json::to_vec_pretty(records).map_err(|e| self.io(e.into()))?;
        let temporary = self.path.with_extension("json.tmp");
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        })();
        written.map_err(|error| self.io(error))
    }

    /// Issues a token for `services`, valid until `expires_at` for `uses` enrolments;
    /// returns the token (shown once, never stored) and its record.
    pub async fn issue(
        &self,
        services: Vec<String>,
        expires_at: DateTime<Utc>,
        uses: u32,
        issued_by: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, EnrolmentRecord), EnrolmentError> {
        if services.is_empty() {
            return Err(EnrolmentError::Invalid(
                "services: name at least one service the VM will run".to_owned(),
            ));
        }
        if uses == 0 {
            return Err(EnrolmentError::Invalid(
                "uses: a token must allow at least one enrolment".to_owned(),
            ));
        }
        if expires_at <= now {
            return Err(EnrolmentError::Invalid(
                "expires: the token would already be expired".to_owned(),
            ));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| self.io(std::io::Error::other(e.to_string())))?;
        let token = format!("{PREFIX}{}", hex::encode(secret));
        let hash = hash(&token);
        let record = EnrolmentRecord {
            id: hash[..12].to_owned(),
            hash,
            services,
            issued_by: issued_by.to_owned(),
            issued_at: now,
            expires_at,
            uses,
            enrolled: Vec::new(),
        };
        let _guard = self.lock.lock().await;
        let mut records = self.read()?;
        // Tokens past their time for a day are of no use even to explain a refusal.
        records.retain(|r| r.expires_at + chrono::Duration::days(1) > now);
        records.push(record.clone());
        self.write(&records)?;
        tracing::info!(id = %record.id, by = issued_by, uses, expires = %expires_at, "issued an enrolment token");
        Ok((token, record))
    }

    /// The record of `token` if it is known and not expired at `now` (used up or not:
    /// the download it allows spends nothing, and an install run again needs it).
    pub async fn check(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrolmentRecord, EnrolmentError> {
        let _guard = self.lock.lock().await;
        let record = self
            .read()?
            .into_iter()
            .find(|r| r.hash == hash(token))
            .ok_or(EnrolmentError::Unknown)?;
        record.current(now)?;
        Ok(record)
    }

    /// Spends one use of `token` on `instance`; `decide` sees the record first and may
    /// refuse (the use is then not spent). An instance enrolling again spends a use too.
    pub async fn spend<T>(
        &self,
        token: &str,
        instance: &str,
        now: DateTime<Utc>,
        decide: impl FnOnce(&EnrolmentRecord) -> Result<T, EnrolmentError>,
    ) -> Result<(EnrolmentRecord, T), EnrolmentError> {
        let _guard = self.lock.lock().await;
        let mut records = self.read()?;
        let record = records
            .iter_mut()
            .find(|r| r.hash == hash(token))
            .ok_or(EnrolmentError::Unknown)?;
        record.usable(now)?;
        let decided = decide(record)?;
        record.enrolled.push(instance.to_owned());
        let record = record.clone();
        self.write(&records)?;
        tracing::info!(id = %record.id, instance, "an instance enrolled");
        Ok((record, decided))
    }

    /// Every token issued, newest first.
    pub async fn list(&self) -> Result<Vec<EnrolmentRecord>, EnrolmentError> {
        let _guard = self.lock.lock().await;
        let mut records = self.read()?;
        records.reverse();
        Ok(records)
    }

    /// Revokes the token `id`; false when there is none.
    pub async fn revoke(&self, id: &str) -> Result<bool, EnrolmentError> {
        let _guard = self.lock.lock().await;
        let mut records = self.read()?;
        let before = records.len();
        records.retain(|r| r.id != id);
        if records.len() == before {
            return Ok(false);
        }
        self.write(&records)?;
        tracing::info!(id, "revoked an enrolment token");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + hours * 3600, 0).expect("time")
    }

    #[tokio::test]
    async fn a_token_is_kept_hashed_and_spent_once_per_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = Enrolments::new(dir.path());
        let (token, record) = tokens
            .issue(vec!["api".into()], at(24), 1, "admin", at(0))
            .await
            .expect("issue");
        let file = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("file");
        assert!(!file.contains(&token), "the secret is never stored");
        assert!(file.contains(&record.hash));
        assert_eq!(
            tokens.check(&token, at(1)).await.expect("usable").id,
            record.id
        );
        tokens
            .spend(&token, "vm-1", at(1), |_| Ok(()))
            .await
            .expect("spend");
        assert!(matches!(
            tokens.spend(&token, "vm-2", at(1), |_| Ok(())).await,
            Err(EnrolmentError::UsedUp { uses: 1, .. })
        ));
        assert!(tokens.check(&token, at(1)).await.is_ok(), "downloads go on");
    }

    #[tokio::test]
    async fn expired_unknown_and_refused_tokens_spend_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = Enrolments::new(dir.path());
        let (token, _) = tokens
            .issue(vec!["api".into()], at(2), 2, "admin", at(0))
            .await
            .expect("issue");
        assert!(matches!(
            tokens.check(&token, at(2)).await,
            Err(EnrolmentError::Expired { .. })
        ));
        assert!(matches!(
            tokens.check("vue_nope", at(1)).await,
            Err(EnrolmentError::Unknown)
        ));
        let refused = tokens
            .spend(&token, "vm-1", at(1), |_| -> Result<(), _> {
                Err(EnrolmentError::Invalid("no".into()))
            })
            .await;
        assert!(refused.is_err());
        assert!(tokens.list().await.expect("list")[0].enrolled.is_empty());
    }

    #[tokio::test]
    async fn bad_requests_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = Enrolments::new(dir.path());
        for (services, expires, uses) in [
            (vec![], at(2), 1),
            (vec!["api".to_owned()], at(0), 1),
            (vec!["api".to_owned()], at(2), 0),
        ] {
            let refused = tokens.issue(services, expires, uses, "admin", at(0)).await;
            assert!(matches!(refused, Err(EnrolmentError::Invalid(_))));
        }
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
