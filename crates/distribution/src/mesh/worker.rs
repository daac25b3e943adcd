//! [`Parts`] (what every provider's workers share: the server's parts) and [`Worker`] (one
//! provider's settings, memory and connection), with the one place a provider's token is
//! read and put into a client.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use vupdate_client::{Client, ClientError};
use vupdate_state::{Author, Provider, StateRepo};
use vupdate_store::Store;

use super::board::Board;
use super::memory::MemoryFiles;
use crate::config::MeshConfig;
use crate::faults::FaultFiles;
use crate::images::ImageStore;
use crate::reconcile::ReconcileHandle;
use crate::secrets::Secrets;
use crate::watcher::{InForce, WatchTrigger};

/// How long connecting to a provider may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a provider may stay silent during a request (its subscription is pinged after
/// half of it).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's parts the mesh works with; cheap to clone.
#[derive(Clone)]
pub struct Parts {
    /// This distribution's name.
    pub distribution: String,
    /// How providers are followed.
    pub config: MeshConfig,
    /// The data directory (memory files, downloads).
    pub data_directory: PathBuf,
    /// Where providers' tokens are.
    pub secrets: Secrets,
    /// The state repo commits go to.
    pub repo: Arc<StateRepo>,
    /// The state in force.
    pub in_force: watch::Receiver<Option<InForce>>,
    /// Asks the watcher to put a new commit in force now.
    pub trigger: WatchTrigger,
    /// Version images.
    pub images: ImageStore,
    /// The store (version records, states, fault reports).
    pub store: Store,
    /// Fault report archives.
    pub fault_files: FaultFiles,
    /// The reconcile loop: builds the client versions an offer needs.
    pub reconcile: ReconcileHandle,
    /// Where each provider stands.
    pub board: Board,
}

/// Why a provider cannot be called.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The secret `accessTokenSecret` names is not set here.
    #[error(
        "secret `{0}` (accessTokenSecret) is not set on this distribution: set it with `vupdate distribution secret set {0}` or the setSecret mutation"
    )]
    NoSecret(String),
    /// The secret cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    /// The provider's URL cannot be used.
    #[error(transparent)]
    Url(#[from] ClientError),
}

/// One provider's workers' shared context.
pub struct Worker {
    /// The provider's name.
    pub name: String,
    /// Its settings in `providers.yaml`.
    pub provider: Provider,
    /// The server's parts.
    pub parts: Parts,
    /// What is kept across restarts.
    pub memory: MemoryFiles,
    /// The client the follower last connected with, for the other workers.
    client: Mutex<Option<Client>>,
}

impl Worker {
    /// The workers' context of provider `name`.
    pub fn new(name: &str, provider: Provider, parts: Parts) -> std::io::Result<Worker> {
        let memory = MemoryFiles::new(&parts.data_directory, name)?;
        Ok(Worker {
            name: name.to_owned(),
            provider,
            parts,
            memory,
            client: Mutex::new(None),
        })
    }

    /// The name the reconcile loop knows this provider's wishes by.
    pub fn source(&self) -> String {
        format!("provider {}", self.name)
    }

    /// The author of the commits and proposals that take this provider's offers.
    pub fn author(&self) -> Author {
        Author::new(
            format!("provider {}", self.name),
            format!("provider@{}", self.name),
        )
    }

    /// When the token's secret was last set (to notice a new one), `None` when unset.
    pub fn secret_set_at(&self) -> Option<DateTime<Utc>> {
        let name = &self.provider.access_token_secret;
        self.parts
            .secrets
            .info(name)
            .ok()
            .flatten()
            .map(|info| info.set_at)
    }

    /// A client of the provider with the token its secret holds now.
    pub fn connect(&self) -> Result<Client, LinkError> {
        let name = &self.provider.access_token_secret;
        let token = self
            .parts
            .secrets
            .get(name)?
            .ok_or_else(|| LinkError::NoSecret(name.clone()))?;
        let mut client = Client::builder(base_url(&self.provider.url))
            .token(token.expose())
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT);
        if let Some(pin) = self.provider.pinned_public_key {
            client = client.pinned_public_key(pin);
        }
        let client = client.build()?;
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
        Ok(client)
    }

    /// The client of the follower's last connection, or a new one.
    pub fn client(&self) -> Result<Client, LinkError> {
        let current = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match current {
            Some(client) => Ok(client),
            None => self.connect(),
        }
    }
}

/// The provider's base URL: `url` of `providers.yaml`, where a trailing `/graphql` (the
/// endpoint people paste) is dropped.
pub fn base_url(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/graphql").unwrap_or(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_graphql_endpoint_names_the_same_distribution() {
        assert_eq!(
            super::base_url("https://jetto.example.com/graphql"),
            "https://jetto.example.com"
        );
        assert_eq!(
            super::base_url("http://127.0.0.1:8000/"),
            "http://127.0.0.1:8000"
        );
        assert_eq!(super::base_url("https://h/prefix"), "https://h/prefix");
    }
}
