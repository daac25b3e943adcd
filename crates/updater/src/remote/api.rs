//! The updater's link to the distribution: one vupdate-client [`Client`] (the access
//! token read again at each call when it lives in a file, so it can be rotated), and
//! whether the distribution answers. The second is shared by every seam: while the
//! distribution is away each caller retries with its own backoff, and the first call
//! that gets through (a state report, the subscription, a poll) wakes all the others at
//! once, so log lines flow again as soon as the server is back rather than at the end of
//! a long backoff.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use vupdate_backoff::Backoff;
use vupdate_client::{Client, ClientError};

use super::provenance::Provenance;
use crate::Error;
use crate::config::{AccessToken, UpdaterConfig};

/// How far a retried call backs off while the distribution is away.
const RETRY_INITIAL: Duration = Duration::from_millis(500);
/// The longest wait between attempts of a retried call.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Callers woken together by a comeback spread their calls over this much time.
const COMEBACK_SPREAD: Duration = Duration::from_millis(250);

/// Whether the distribution answers, and how many times it came back after an absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reachability {
    up: bool,
    comebacks: u64,
}

/// The distribution as the updater's seams reach it (no `Debug`: it holds the token).
pub struct Api {
    client: Client,
    token: AccessToken,
    last_token: Mutex<String>,
    reachability: watch::Sender<Reachability>,
    /// This VM's instance id, which every report names.
    pub instance: String,
    /// This VM's labels, which every state report carries.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The state commit this VM has converged to, for its state reports.
    pub provenance: Provenance,
}

impl Api {
    /// The link the config describes; an unreadable token or certificate file is an
    /// [`Error::Io`] naming it, a client that cannot be set up an [`Error::Client`].
    pub fn new(config: &UpdaterConfig) -> Result<Api, Error> {
        let mut builder = Client::builder(&config.distribution_url);
        if let Some(ca_file) = &config.ca_file {
            let pem = std::fs::read(ca_file).map_err(Error::io("read the `caFile`", ca_file))?;
            builder = builder.root_certificate_pem(pem);
        }
        if let Some(pin) = config.pinned_public_key {
            builder = builder.pinned_public_key(pin);
        }
        let client = builder.build().map_err(|error| Error::Client {
            url: config.distribution_url.clone(),
            error,
        })?;
        let token = config.access_token.read()?;
        Ok(Api {
            client,
            token: config.access_token.clone(),
            last_token: Mutex::new(token),
            reachability: watch::Sender::new(Reachability {
                up: true,
                comebacks: 0,
            }),
            instance: config.instance.clone(),
            labels: config.labels.clone(),
            provenance: Provenance::default(),
        })
    }

    /// The distribution's URL.
    pub fn url(&self) -> &str {
        self.client.base_url()
    }

    /// A client with the current token: read again from its file, or the last one read
    /// when the file cannot be read now (the error is logged).
    pub fn client(&self) -> Client {
        let mut last = self
            .last_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let AccessToken::File(path) = &self.token {
            match self.token.read() {
                Ok(token) if !token.is_empty() => *last = token,
                Ok(_) => {
                    tracing::error!(file = %path.display(), "the access token file is empty; using the token read before");
                }
                Err(error) => {
                    tracing::error!(%error, "using the access token read before");
                }
            }
        }
        self.client.with_token(last.clone())
    }

    /// Notes what a call's `result` says about the distribution: any answer means it is
    /// there (waking callers that wait for it), a transient error that it is away.
    pub fn observe<T>(&self, result: &Result<T, ClientError>) {
        let reached = match result {
            Ok(_) => true,
            Err(error) if error.is_transient() => false,
            // Refused: it answered.
            Err(_) => true,
        };
        self.reachability.send_if_modified(|state| {
            if state.up == reached {
                return false;
            }
            state.up = reached;
            if reached {
                state.comebacks += 1;
                tracing::info!(
                    comebacks = state.comebacks,
                    "the distribution answers again"
                );
            } else if let Err(error) = result {
                tracing::warn!(%error, "the distribution is away; retrying with backoff");
            }
            true
        });
    }

    /// How many times the distribution came back so far.
    fn comebacks(&self) -> u64 {
        self.reachability.borrow().comebacks
    }

    /// Completes once the distribution has come back more than `since` times.
    async fn back_after(&self, since: u64) {
        let mut state = self.reachability.subscribe();
        // The sender lives as long as `self`.
        let _ = state.wait_for(|state| state.comebacks > since).await;
    }

    /// Waits before the next attempt of a call that found the distribution away: the
    /// backoff's delay, or less when the distribution comes back meanwhile.
    pub async fn pause(&self, backoff: &mut Backoff) {
        let since = self.comebacks();
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = async {
                self.back_after(since).await;
                let spread = Backoff::new(COMEBACK_SPREAD, COMEBACK_SPREAD).next_delay();
                tokio::time::sleep(spread).await;
            } => {}
        }
    }

    /// Runs `call` with a fresh client until it gets an answer: transient failures are
    /// retried (backoff with jitter, cut short when the distribution comes back); a
    /// refusal is returned.
    pub async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        loop {
            let result = call(self.client()).await;
            self.observe(&result);
            match result {
                Err(error) if error.is_transient() => {
                    tracing::debug!(%error, what, "will retry");
                    self.pause(&mut backoff).await;
                }
                other => return other,
            }
        }
    }
}
