//! The consumer's side of the mesh: following each provider of `providers.yaml`.
//!
//! ```text
//!  provider jetto ──consumerVersionsChanged / consumerVersions──► follow ──offer──► take
//!        ▲   images, version records (GET /images, developerVersionsInfo) ◄──────────┤
//!        │                                         reconcile loop: client builds ◄───┤
//!        │                             state repo: commit | vupdate/jetto/<rev> ◄────┘
//!        └── setServiceStates, PUT /faults + addFaultReport, setInstalledDesiredVersions ◄── upload
//! ```
//!
//! [`Mesh::start`] follows the state in force: each provider gets its workers when it
//! appears in `providers.yaml`, new ones when its entry changes, none once it is removed.
//! The workers of one provider ([`worker::Worker`]) are [`follow`] (the offer, with its
//! subscription, polls and backoff), [`take`] (images, client builds, and what
//! `autoUpdate` says), and, with `uploadState`, [`upload`] (states, fault reports and
//! installed versions, behind persistent cursors). They report where they stand in the
//! [`board::Board`], which `providers` and `status` read. The access token is read from
//! the secret named `accessTokenSecret` at each connection, and appears nowhere else.
//! [`remote_build`] runs the builds of services whose settings name a provider as their
//! `builder` on that provider.

pub mod board;
pub mod follow;
pub mod memory;
pub mod plan;
pub mod remote_build;
pub mod take;
pub mod upload;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vupdate_client::{Client, Offer};
use vupdate_state::{Provider, State};

use board::Board;
use plan::OfferPlan;
use worker::{LinkError, Parts, Worker};

/// One provider's running workers; dropping it stops them.
struct Running {
    provider: Provider,
    worker: Arc<Worker>,
    offers: watch::Receiver<Option<Offer>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

type Workers = Arc<Mutex<BTreeMap<String, Running>>>;

/// What the API asks of the mesh; cheap to clone.
#[derive(Clone)]
pub struct MeshHandle {
    parts: Parts,
    workers: Workers,
}

impl std::fmt::Debug for MeshHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshHandle").finish_non_exhaustive()
    }
}

/// Why a request about a provider cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// No provider of that name is followed.
    #[error("`{0}` is not a provider in providers.yaml of the state in force")]
    NoProvider(String),
    /// The provider has offered nothing yet.
    #[error("provider `{0}` has offered nothing yet (see `providers` for why)")]
    NoOffer(String),
    /// The provider cannot be called.
    #[error("provider `{provider}`: {error}")]
    Link {
        /// The provider.
        provider: String,
        /// Why.
        error: LinkError,
    },
    /// Reading what the offer needs failed.
    #[error("provider `{provider}`: {message}")]
    Read {
        /// The provider.
        provider: String,
        /// What failed.
        message: String,
    },
}

impl MeshHandle {
    /// Where each provider stands.
    pub fn board(&self) -> &Board {
        &self.parts.board
    }

    /// Whether the secret named `accessTokenSecret` is set.
    pub fn secret_set(&self, provider: &Provider) -> bool {
        matches!(
            self.parts.secrets.info(&provider.access_token_secret),
            Ok(Some(_))
        )
    }

    /// A client of `provider` with its token, for forwarding a request to it.
    pub fn client(&self, provider: &str) -> Result<Client, MeshError> {
        self.worker(provider)?
            .client()
            .map_err(|error| MeshError::Link {
                provider: provider.to_owned(),
                error,
            })
    }

    /// `provider`'s last offer and what it changes in `state`.
    pub async fn plan(
        &self,
        provider: &str,
        state: &State,
    ) -> Result<(Offer, OfferPlan), MeshError> {
        let (worker, offer) = {
            let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
            let running = workers
                .get(provider)
                .ok_or_else(|| MeshError::NoProvider(provider.to_owned()))?;
            let offer = running.offers.borrow().clone();
            (Arc::clone(&running.worker), offer)
        };
        let offer = offer.ok_or_else(|| MeshError::NoOffer(provider.to_owned()))?;
        let candidates = take::candidates(&worker, &offer.versions)
            .await
            .map_err(|message| MeshError::Read {
                provider: provider.to_owned(),
                message,
            })?;
        let plan = take::plan(state, &offer, &candidates);
        Ok((offer, plan))
    }

    fn worker(&self, provider: &str) -> Result<Arc<Worker>, MeshError> {
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider)
            .map(|running| Arc::clone(&running.worker))
            .ok_or_else(|| MeshError::NoProvider(provider.to_owned()))
    }
}

/// The running mesh; [`Mesh::shutdown`] stops every worker.
pub struct Mesh {
    handle: MeshHandle,
    task: JoinHandle<()>,
}

impl Mesh {
    /// Follows the providers of the state in force, with `parts` of the server.
    pub fn start(parts: Parts) -> Mesh {
        let handle = MeshHandle {
            parts,
            workers: Workers::default(),
        };
        let task = tokio::spawn(manage(handle.clone()));
        Mesh { handle, task }
    }

    /// A handle for the API.
    pub fn handle(&self) -> MeshHandle {
        self.handle.clone()
    }

    /// Stops every worker.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
        self.handle
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Keeps one set of workers per provider of the state in force.
async fn manage(handle: MeshHandle) {
    let mut in_force = handle.parts.in_force.clone();
    loop {
        let providers = in_force
            .borrow_and_update()
            .as_ref()
            .map(|in_force| in_force.state.providers.clone());
        if let Some(providers) = providers {
            reconcile_workers(&handle, &providers);
        }
        if in_force.changed().await.is_err() {
            return;
        }
    }
}

/// Stops the workers of providers removed or changed, starts those of new or changed ones.
fn reconcile_workers(handle: &MeshHandle, providers: &BTreeMap<String, Provider>) {
    let mut workers = handle
        .workers
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    workers.retain(|name, running| {
        let keep = providers.get(name) == Some(&running.provider);
        if !keep {
            tracing::info!(provider = %name, "provider removed or changed; stopping its workers");
            // The reconcile loop forgets what it wanted for it.
            handle
                .parts
                .reconcile
                .want_clients(&running.worker.source(), BTreeMap::new());
        }
        keep
    });
    handle
        .parts
        .board
        .retain(|name| providers.contains_key(name));
    for (name, provider) in providers {
        if workers.contains_key(name) {
            continue;
        }
        let worker = match Worker::new(name, provider.clone(), handle.parts.clone()) {
            Ok(worker) => Arc::new(worker),
            Err(error) => {
                tracing::error!(provider = %name, %error, "cannot keep the provider's memory files; not following it");
                handle.parts.board.update(name, |status| {
                    status.last_error = Some(format!("cannot keep its memory files: {error}"));
                });
                continue;
            }
        };
        tracing::info!(provider = %name, url = %provider.url, auto_update = %provider.auto_update, "following provider");
        let (offers_tx, offers) = watch::channel(None);
        let span = tracing::info_span!("provider", name = %name);
        let mut tasks = vec![
            tokio::spawn(tracing::Instrument::instrument(
                follow::follow(Arc::clone(&worker), offers_tx),
                span.clone(),
            )),
            tokio::spawn(tracing::Instrument::instrument(
                take::take(Arc::clone(&worker), offers.clone()),
                span.clone(),
            )),
        ];
        if provider.upload_state {
            tasks.push(tokio::spawn(tracing::Instrument::instrument(
                upload::upload(Arc::clone(&worker)),
                span,
            )));
        }
        workers.insert(
            name.clone(),
            Running {
                provider: provider.clone(),
                worker,
                offers,
                tasks,
            },
        );
    }
}
