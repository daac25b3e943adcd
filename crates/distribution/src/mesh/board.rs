//! [`Board`]: where each provider stands, as the workers last saw it, for `providers`
//! and `status`. It holds no token: what the API shows of a provider comes from here and
//! from `providers.yaml`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use vupdate_client::Offer;
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

use super::memory::Proposal;

/// How the last offer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The `consumerVersionsChanged` subscription.
    Subscription,
    /// A poll of `consumerVersions`.
    Poll,
}

/// The upload side of one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadStatus {
    /// When states, fault reports and installed versions were last sent in full.
    pub last_upload: Option<DateTime<Utc>>,
    /// Why the last upload failed, if it did.
    pub last_error: Option<String>,
    /// State records sent since this server started.
    pub states_sent: u64,
    /// Fault reports sent since this server started.
    pub faults_sent: u64,
}

/// One provider as the workers see it.
#[derive(Debug, Clone, Default)]
pub struct ProviderStatus {
    /// Whether the last attempt reached it (`None`: not tried yet).
    pub reachable: Option<bool>,
    /// How the last offer arrived.
    pub via: Option<Via>,
    /// When an offer last arrived.
    pub last_sync: Option<DateTime<Utc>>,
    /// The last error, if the last attempt failed (never with a token in it).
    pub last_error: Option<String>,
    /// Whether the provider refused the access token (revoked, unknown, not a consumer):
    /// tried again only when the secret changes, or after a long wait.
    pub refused: bool,
    /// When the next attempt is due, while away or refused.
    pub next_attempt: Option<DateTime<Utc>>,
    /// The last offer.
    pub offer: Option<Offer>,
    /// What the offer changes here now (the provider offers other versions).
    pub pending: BTreeMap<ServiceName, ClientVersion>,
    /// Offered services this distribution does not declare.
    pub undeclared: Vec<ServiceName>,
    /// Why the offer is not taken yet (images downloading or building), if so.
    pub preparing: Option<String>,
    /// The proposal waiting for review (`autoUpdate: pullRequest`).
    pub waiting: Option<Proposal>,
    /// The provider's revision whose offer was last acted on: committed, proposed, or
    /// found to propose the same change as the branch already waiting.
    pub acted: Option<String>,
    /// The commit that last took an offer, and when.
    pub last_taken: Option<(String, DateTime<Utc>)>,
    /// The upload side.
    pub upload: UploadStatus,
}

/// Every provider's status; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Board(Arc<Mutex<BTreeMap<String, ProviderStatus>>>);

impl Board {
    /// Changes `provider`'s status (created when new).
    pub fn update(&self, provider: &str, change: impl FnOnce(&mut ProviderStatus)) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        change(map.entry(provider.to_owned()).or_default());
    }

    /// `provider`'s status, if it has one.
    pub fn get(&self, provider: &str) -> Option<ProviderStatus> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider)
            .cloned()
    }

    /// Forgets providers no longer in `providers.yaml`.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|name, _| keep(name));
    }
}
