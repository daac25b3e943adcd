//! Which replica runs the work that must run once: the reconcile loop (builds and client
//! generations), expiry and the recovery of interrupted tasks. (Self-update runs on every
//! replica, one at a time, under a lease of its own: `self_update::turn`.)
//!
//! On SQLite one server owns the store (the data directory is locked), so the lease is
//! held for good ([`Leadership::sole`]). On MongoDB, replicas share the store's
//! `distribution` lease ([`Leadership::keep`]): the holder renews it every
//! `lease.renewEvery`, a standby replica tries to take it as often, and takes it once the
//! holder stopped renewing for `lease.ttl`. A holder that cannot renew (the store away)
//! gives the work up before its lease can have ended, so two replicas never both think they
//! hold it. A write only the holder may make calls [`Leadership::fence`] first: it is
//! refused once the lease was taken over or ran out, whatever this process believes (a
//! replica paused past its lease wakes up still believing it holds). Fenced: the start of
//! every build task, the commit of a new client generation, every expiry run. A build's
//! image and version record come from the builder through the API, on whichever replica
//! they reach, with a Builder token the holder issued under its lease: each passes
//! [`fence_builder`], the same check of that lease, so a dead or paused holder's builder is
//! refused by every replica from the moment its lease ends (the take-over also revokes
//! the token). Not fenced: known-bad marks and their reverts, made by
//! whichever replica an updater's report reaches (a revert is a commit pushed by Git's
//! compare-and-swap, so two replicas' reverts cannot both land).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;
use vupdate_store::{Lease, Store, StoreError};

use crate::auth::{IssuedUnder, Principal};
use crate::config::LeaseConfig;

/// The name of the lease the replicas of one distribution share.
pub const LEASE_NAME: &str = "distribution";

/// The fence of a write by a lease holder's builder (an image upload, a version record, a
/// batch of its task's log),
/// on whichever replica it reaches: `Ok` while the lease its token was issued under is
/// still the store's, with that token, not expired; [`StoreError::LeaseLost`] otherwise.
/// Other principals pass: their writes are not a holder's.
pub async fn fence_builder(store: &Store, principal: &Principal) -> Result<(), StoreError> {
    let Some(IssuedUnder { holder, token }) = &principal.lease else {
        return Ok(());
    };
    store.leases().check_held(LEASE_NAME, holder, *token).await
}

/// This replica's view of the lease: cheap to clone, shared by every part it gates.
#[derive(Debug, Clone)]
pub struct Leadership {
    held: watch::Receiver<Option<Lease>>,
    /// The store the lease lives in; `None` for the sole server of a SQLite store.
    store: Option<Store>,
    /// The sender of a sole server's or a [`Leadership::prepared`] view's lease, kept so
    /// its receivers never see a closed channel.
    _sender: Option<std::sync::Arc<watch::Sender<Option<Lease>>>>,
}

impl Leadership {
    /// Held for good: the one server of a SQLite store (token 0, never expires).
    pub fn sole(holder: &str) -> Leadership {
        let lease = Lease {
            name: LEASE_NAME.to_owned(),
            holder: holder.to_owned(),
            token: 0,
            expires: chrono::DateTime::<chrono::Utc>::MAX_UTC,
        };
        let (sender, held) = watch::channel(Some(lease));
        Leadership {
            held,
            store: None,
            _sender: Some(std::sync::Arc::new(sender)),
        }
    }

    /// Takes and keeps the lease in `store` for `holder` until `stopped` turns true, then
    /// releases it so another replica takes over at once. The task ends after the release.
    pub fn keep(
        store: Store,
        holder: String,
        config: LeaseConfig,
        stopped: watch::Receiver<bool>,
    ) -> (Leadership, tokio::task::JoinHandle<()>) {
        let (sender, held) = watch::channel(None);
        let keeper = Keeper {
            store: store.clone(),
            holder: holder.clone(),
            config,
            held: sender,
        };
        let task = tokio::spawn(
            keeper
                .run(stopped)
                .instrument(tracing::info_span!("lease", %holder)),
        );
        (
            Leadership {
                held,
                store: Some(store),
                _sender: None,
            },
            task,
        )
    }

    /// The lease, while this replica holds it.
    pub fn current(&self) -> Option<Lease> {
        self.held.borrow().clone()
    }

    /// Whether this replica holds the lease now.
    pub fn is_held(&self) -> bool {
        self.held.borrow().is_some()
    }

    /// A receiver that sees every take-over and loss.
    pub fn subscribe(&self) -> watch::Receiver<Option<Lease>> {
        self.held.clone()
    }

    /// The fence before a write only the holder may make: `Ok` while the store still has
    /// this replica's lease with its token; [`StoreError::LeaseLost`] otherwise.
    pub async fn fence(&self) -> Result<(), StoreError> {
        let Some(lease) = self.current() else {
            return Err(StoreError::LeaseLost {
                name: LEASE_NAME.to_owned(),
                token: 0,
                now: "this replica does not hold it".to_owned(),
            });
        };
        match &self.store {
            None => Ok(()),
            Some(store) => store.leases().check(&lease).await,
        }
    }

    /// A view of this lease that turns held only once `prepare` ended after each
    /// take-over, and lost as soon as the lease is: for work that must not start before
    /// the take-over's set-up (the reconcile loop waits for the predecessor's tasks to be
    /// failed and the builders' tokens to be issued, or its first build would fail for want
    /// of a token, or be failed as the predecessor's). The task ends at `stopped`.
    pub fn prepared<P, F>(
        &self,
        stopped: watch::Receiver<bool>,
        mut prepare: P,
    ) -> (Leadership, tokio::task::JoinHandle<()>)
    where
        P: FnMut(Lease) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (sender, held) = watch::channel(None);
        let sender = std::sync::Arc::new(sender);
        let (base, kept) = (self.clone(), std::sync::Arc::clone(&sender));
        let task = tokio::spawn(async move {
            base.while_held(stopped, |lease| {
                let (prepared, sender) = (prepare(lease.clone()), std::sync::Arc::clone(&kept));
                async move {
                    // Lost (this future dropped) or stopped: no longer held.
                    let _lost = Unhold(std::sync::Arc::clone(&sender));
                    prepared.await;
                    sender.send_replace(Some(lease));
                    std::future::pending::<()>().await;
                }
            })
            .await;
            kept.send_replace(None);
        });
        let view = Leadership {
            held,
            store: self.store.clone(),
            _sender: Some(sender),
        };
        (view, task)
    }

    /// Runs `work` whenever this replica holds the lease: started at each take-over with
    /// the lease, dropped (cancelled) when the lease is lost, until `stopped`.
    pub async fn while_held<W, F>(&self, mut stopped: watch::Receiver<bool>, mut work: W)
    where
        W: FnMut(Lease) -> F,
        F: Future<Output = ()>,
    {
        let mut held = self.held.clone();
        loop {
            let taken = async {
                held.wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|lease| lease.clone())
            };
            let lease = tokio::select! {
                lease = taken => match lease {
                    Some(lease) => lease,
                    // The keeper ended (shutdown): no more holding.
                    None => return,
                },
                () = stop_requested(&mut stopped) => return,
            };
            let token = lease.token;
            let mut watched = held.clone();
            let lost = async move {
                let _ = watched
                    .wait_for(|now| now.as_ref().map(|l| l.token) != Some(token))
                    .await
                    .map(|_| ());
            };
            tokio::pin!(lost);
            tokio::select! {
                () = work(lease) => {
                    // Work that ends by itself (at a stop)
                    // ran to completion for this lease: nothing more until it is lost.
                    tokio::select! {
                        () = &mut lost => {}
                        () = stop_requested(&mut stopped) => return,
                    }
                }
                () = &mut lost => {}
                () = stop_requested(&mut stopped) => return,
            }
        }
    }
}

/// Marks a [`Leadership::prepared`] view not held when dropped (its lease was lost).
struct Unhold(std::sync::Arc<watch::Sender<Option<Lease>>>);

impl Drop for Unhold {
    fn drop(&mut self) {
        self.0.send_replace(None);
    }
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// This process's holder id: the instance name, the process id and the start time, so a
/// restarted server is a new holder that waits for its old lease to end.
pub fn holder_id(instance: &str) -> String {
    format!(
        "{instance}/{}/{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    )
}

/// The task behind [`Leadership::keep`].
struct Keeper {
    store: Store,
    holder: String,
    config: LeaseConfig,
    held: watch::Sender<Option<Lease>>,
}

impl Keeper {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.config.renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When the last successful take or renewal was sent: the lease lasts `ttl` from
        // about then, by the store's clock.
        let mut confirmed = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop_requested(&mut stopped) => break,
            }
            let sent = Instant::now();
            let current = self.held.borrow().clone();
            let leases = self.store.leases();
            match current {
                None => match leases.take(LEASE_NAME, &self.holder, self.config.ttl).await {
                    Ok(Some(lease)) => {
                        tracing::info!(
                            token = lease.token,
                            "took the lease: this replica runs the reconcile loop and expiry"
                        );
                        confirmed = sent;
                        self.held.send_replace(Some(lease));
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "cannot take the lease; trying again"),
                },
                Some(lease) => match leases.renew(&lease, self.config.ttl).await {
                    Ok(Some(renewed)) => {
                        confirmed = sent;
                        self.held.send_replace(Some(renewed));
                    }
                    Ok(None) => {
                        tracing::warn!(
                            token = lease.token,
                            "lost the lease to another replica; stopping the work it guards"
                        );
                        self.held.send_replace(None);
                    }
                    Err(error) => {
                        // Give the work up before the lease can have ended: the next
                        // renewal would come too late to be sure.
                        if confirmed.elapsed() + self.config.renew_every >= self.config.ttl {
                            tracing::warn!(%error, "cannot renew the lease before it ends; stopping the work it guards");
                            self.held.send_replace(None);
                        } else {
                            tracing::warn!(%error, "cannot renew the lease; trying again");
                        }
                    }
                },
            }
        }
        let last = self.held.send_replace(None);
        if let Some(lease) = last {
            match self.store.leases().release(&lease).await {
                Ok(_) => tracing::info!(token = lease.token, "released the lease"),
                Err(error) => {
                    tracing::warn!(%error, "cannot release the lease; another replica takes it when it ends")
                }
            }
        }
    }
}

/// How long a standby replica may wait for a dead holder's lease at most: its ttl plus one
/// renewal period (when its next attempt comes).
pub fn take_over_bound(config: &LeaseConfig) -> Duration {
    config.ttl + config.renew_every
}

#[cfg(test)]
mod tests;
