//! Enrolment tokens: short-lived, limited-use secrets an administrator issues so a new VM
//! can install its updater with one line (`GET /install/updater.sh`). Each use is
//! exchanged for an access token of the updater account of that VM's instance
//! (`updater@<instance>`, role Updater), so one VM's token can be revoked alone.
//!
//! A token is shown once, when it is issued; only its SHA-256 is kept (a token is 256
//! random bits, so a plain hash is as strong as a slow one), in the store, so replicas on
//! one store share them: a token issued through one replica installs through any other
//! behind the load balancer, and its uses are spent once in all (`vupdate-store`
//! `EnrolmentTokens`). Older servers kept them in `<dataDirectory>/enrolment-tokens.json`;
//! that file is taken into the store at start ([`Enrolments::import_file`]).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vupdate_store::model::enrolments::EnrolmentToken;
use vupdate_store::{EnrolmentEntry, Store, StoreError};

/// The file older servers kept the tokens' hashes in, in the data directory.
pub const FILE_NAME: &str = "enrolment-tokens.json";
/// What that file is renamed to once the store holds its tokens.
const IMPORTED: &str = "enrolment-tokens.json.imported";

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
    /// The store cannot be read or written.
    #[error("enrolment tokens: {0}")]
    Store(StoreError),
    /// No random token can be drawn (the system's random source failed).
    #[error("cannot draw a random enrolment token: {0}")]
    Random(String),
    /// An older server's token file cannot be read or renamed.
    #[error("enrolment tokens in {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

impl From<StoreError> for EnrolmentError {
    fn from(error: StoreError) -> EnrolmentError {
        EnrolmentError::Store(error)
    }
}

impl EnrolmentError {
    /// The stable code a client can act on.
    pub fn code(&self) -> &'static str {
        match self {
            EnrolmentError::Unknown => "ENROLMENT_TOKEN_UNKNOWN",
            EnrolmentError::Expired { .. } => "ENROLMENT_TOKEN_EXPIRED",
            EnrolmentError::UsedUp { .. } => "ENROLMENT_TOKEN_USED_UP",
            EnrolmentError::Invalid(_) => "INVALID_ARGUMENT",
            EnrolmentError::Store(_) | EnrolmentError::Random(_) | EnrolmentError::Io { .. } => {
                "INTERNAL"
            }
        }
    }
}

/// One issued token, without its secret, and the instances enrolled with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentRecord {
    /// The token (flat in JSON, as older servers' token file has it).
    #[serde(flatten)]
    pub token: EnrolmentToken,
    /// The instances enrolled with it so far, oldest first.
    pub enrolled: Vec<String>,
}

impl EnrolmentRecord {
    /// Whether the token is still valid at `now`, or why not.
    fn current(&self, now: DateTime<Utc>) -> Result<(), EnrolmentError> {
        if now >= self.token.expires_at {
            return Err(EnrolmentError::Expired {
                id: self.token.id.clone(),
                at: self.token.expires_at,
            });
        }
        Ok(())
    }

    /// Whether the token may enrol one more instance at `now`, or why not.
    fn usable(&self, now: DateTime<Utc>) -> Result<(), EnrolmentError> {
        self.current(now)?;
        if self.enrolled.len() >= self.token.uses as usize {
            return Err(self.used_up());
        }
        Ok(())
    }

    fn used_up(&self) -> EnrolmentError {
        EnrolmentError::UsedUp {
            id: self.token.id.clone(),
            uses: self.token.uses,
        }
    }
}

impl From<EnrolmentEntry> for EnrolmentRecord {
    fn from(entry: EnrolmentEntry) -> EnrolmentRecord {
        EnrolmentRecord {
            token: entry.token,
            enrolled: entry
                .spent
                .into_iter()
                .map(|spent| spent.instance)
                .collect(),
        }
    }
}

/// The enrolment tokens of one distribution; cheap to clone.
#[derive(Debug, Clone)]
pub struct Enrolments {
    store: Store,
    /// An older server's token file, taken into the store at start.
    legacy_file: PathBuf,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

impl Enrolments {
    /// The tokens kept in `store`, for the distribution whose data lives in `data_directory`.
    pub fn new(store: Store, data_directory: &Path) -> Enrolments {
        Enrolments {
            store,
            legacy_file: data_directory.join(FILE_NAME),
        }
    }

    /// Takes the tokens of an older server's `enrolment-tokens.json` into the store (the
    /// tokens and uses the store has already are left as they are), then renames the file
    /// `enrolment-tokens.json.imported`. Returns how many tokens the file held.
    pub async fn import_file(&self) -> Result<usize, EnrolmentError> {
        let io = |error: std::io::Error| EnrolmentError::Io {
            path: self.legacy_file.clone(),
            error,
        };
        let records: Vec<EnrolmentRecord> = match tokio::fs::read(&self.legacy_file).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| io(error.into()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(io(error)),
        };
        let tokens = self.store.enrolment_tokens();
        for record in &records {
            match tokens.add(record.token.clone()).await {
                Ok(()) | Err(StoreError::Duplicate { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            // An import cut short is finished the next time: the uses not stored yet.
            let stored = tokens
                .get(&record.token.hash)
                .await?
                .map_or(0, |e| e.spent.len());
            for instance in record.enrolled.iter().skip(stored) {
                tokens
                    .spend(&record.token, instance, record.token.issued_at)
                    .await?;
            }
        }
        tokio::fs::rename(&self.legacy_file, self.legacy_file.with_file_name(IMPORTED))
            .await
            .map_err(io)?;
        tracing::info!(tokens = records.len(), file = %self.legacy_file.display(), "took the enrolment tokens of the older token file into the store");
        Ok(records.len())
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
        getrandom::fill(&mut secret).map_err(|e| EnrolmentError::Random(e.to_string()))?;
        let token = format!("{PREFIX}{}", hex::encode(secret));
        let hash = hash(&token);
        let record = EnrolmentRecord {
            token: EnrolmentToken {
                id: hash[..12].to_owned(),
                hash,
                services,
                issued_by: issued_by.to_owned(),
                issued_at: now,
                expires_at,
                uses,
            },
            enrolled: Vec::new(),
        };
        let tokens = self.store.enrolment_tokens();
        // Tokens past their time for a day are of no use even to explain a refusal.
        tokens
            .forget_expired(now - chrono::Duration::days(1))
            .await?;
        tokens.add(record.token.clone()).await?;
        tracing::info!(id = %record.token.id, by = issued_by, uses, expires = %expires_at, "issued an enrolment token");
        Ok((token, record))
    }

    async fn find(&self, token: &str) -> Result<EnrolmentRecord, EnrolmentError> {
        let entry = self.store.enrolment_tokens().get(&hash(token)).await?;
        entry
            .map(EnrolmentRecord::from)
            .ok_or(EnrolmentError::Unknown)
    }

    /// The record of `token` if it is known and not expired at `now` (used up or not:
    /// the download it allows spends nothing, and an install run again needs it).
    pub async fn check(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrolmentRecord, EnrolmentError> {
        let record = self.find(token).await?;
        record.current(now)?;
        Ok(record)
    }

    /// Spends one use of `token` on `instance`; `decide` sees the record first and may
    /// refuse (the use is then not spent). An instance enrolling again spends a use too.
    /// Replicas sharing the store spend each use once: of two enrolments racing for the
    /// last use, one is refused as used up.
    pub async fn spend<T>(
        &self,
        token: &str,
        instance: &str,
        now: DateTime<Utc>,
        decide: impl FnOnce(&EnrolmentRecord) -> Result<T, EnrolmentError>,
    ) -> Result<(EnrolmentRecord, T), EnrolmentError> {
        let mut record = self.find(token).await?;
        record.usable(now)?;
        let decided = decide(&record)?;
        self.store
            .enrolment_tokens()
            .spend(&record.token, instance, now)
            .await?
            .ok_or_else(|| record.used_up())?;
        record.enrolled.push(instance.to_owned());
        tracing::info!(id = %record.token.id, instance, "an instance enrolled");
        Ok((record, decided))
    }

    /// Every token issued, newest first.
    pub async fn list(&self) -> Result<Vec<EnrolmentRecord>, EnrolmentError> {
        let entries = self.store.enrolment_tokens().list().await?;
        Ok(entries.into_iter().map(EnrolmentRecord::from).collect())
    }

    /// Revokes the token `id`; false when there is none.
    pub async fn revoke(&self, id: &str) -> Result<bool, EnrolmentError> {
        let revoked = self.store.enrolment_tokens().revoke(id).await?;
        if revoked {
            tracing::info!(id, "revoked an enrolment token");
        }
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + hours * 3600, 0).expect("time")
    }

    /// Enrolments on a fresh SQLite store in `dir`.
    async fn enrolments(dir: &Path) -> Enrolments {
        let config = vupdate_store::StoreConfig::Sqlite {
            path: dir.join("store.sqlite"),
        };
        let store = vupdate_store::open(&config).await.expect("store");
        Enrolments::new(store, dir)
    }

    #[tokio::test]
    async fn a_token_is_kept_hashed_and_spent_once_per_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = enrolments(dir.path()).await;
        let (token, record) = tokens
            .issue(vec!["api".into()], at(24), 1, "admin", at(0))
            .await
            .expect("issue");
        let files = |needle: &str| vupdate_test_support::files_containing(&[dir.path()], needle);
        assert!(files(&token).is_empty(), "the secret is never stored");
        assert!(!files(&record.token.hash).is_empty(), "its hash is");
        assert_eq!(
            tokens.check(&token, at(1)).await.expect("usable").token.id,
            record.token.id
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
        assert_eq!(tokens.list().await.expect("list")[0].enrolled, ["vm-1"]);
    }

    #[tokio::test]
    async fn expired_unknown_and_refused_tokens_spend_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = enrolments(dir.path()).await;
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
        let tokens = enrolments(dir.path()).await;
        for (services, expires, uses) in [
            (vec![], at(2), 1),
            (vec!["api".to_owned()], at(0), 1),
            (vec!["api".to_owned()], at(2), 0),
        ] {
            let refused = tokens.issue(services, expires, uses, "admin", at(0)).await;
            assert!(matches!(refused, Err(EnrolmentError::Invalid(_))));
        }
        assert!(tokens.list().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn an_older_server_s_token_file_is_taken_into_the_store_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The file as an older server wrote it: a token with one of its two uses spent,
        // and a used-up one.
        let token = format!("{PREFIX}{}", "ab".repeat(32));
        let used_up = format!("{PREFIX}{}", "cd".repeat(32));
        let record = |secret: &str, uses: u32, enrolled: &[&str]| EnrolmentRecord {
            token: EnrolmentToken {
                id: hash(secret)[..12].to_owned(),
                hash: hash(secret),
                services: vec!["api".to_owned()],
                issued_by: "admin".to_owned(),
                issued_at: at(0),
                expires_at: at(24),
                uses,
            },
            enrolled: enrolled.iter().map(|i| (*i).to_owned()).collect(),
        };
        let file = vec![record(&token, 2, &["vm-1"]), record(&used_up, 1, &["vm-2"])];
        std::fs::write(
            dir.path().join(FILE_NAME),
            serde_json::to_vec_pretty(&file).expect("json"),
        )
        .expect("write");
        let tokens = enrolments(dir.path()).await;
        assert_eq!(tokens.import_file().await.expect("import"), 2);
        assert!(!dir.path().join(FILE_NAME).exists());
        assert!(dir.path().join(IMPORTED).exists(), "kept, renamed");
        assert_eq!(tokens.import_file().await.expect("again"), 0);

        let mut listed = tokens.list().await.expect("list");
        listed.sort_by(|a, b| a.token.id.cmp(&b.token.id));
        let mut expected = file.clone();
        expected.sort_by(|a, b| a.token.id.cmp(&b.token.id));
        assert_eq!(listed, expected);
        assert!(matches!(
            tokens.spend(&used_up, "vm-3", at(1), |_| Ok(())).await,
            Err(EnrolmentError::UsedUp { uses: 1, .. })
        ));
        let (spent, ()) = tokens
            .spend(&token, "vm-3", at(1), |_| Ok(()))
            .await
            .expect("its second use");
        assert_eq!(spent.enrolled, ["vm-1", "vm-3"]);
    }
}
