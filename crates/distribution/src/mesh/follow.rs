//! Following one provider's offer: the `consumerVersionsChanged` subscription for a
//! change at once, a poll of `consumerVersions` every `mesh.pollInterval` as a safety net
//! (or alone, with `mesh.subscription: false`), and the last offer published in a watch.
//!
//! A session starts with a poll and then subscribes. It ends when the provider is away
//! (the next session starts after a doubling wait, up to [`MAX_BACKOFF`]) or refuses the
//! token (revoked, unknown, not a consumer there): that is reported in the board and tried
//! again only when the secret is set anew, or after [`REFUSED_RETRY`], never in a loop.
//! A subscription that cannot be opened while polls work is tried again after a poll
//! interval, the polls going on meanwhile. The last offer stays published while the
//! provider is away, so nothing here changes because a provider is down.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use vupdate_backoff::Backoff;
use vupdate_client::{ClientError, Offer, OfferFeed};

use super::board::Via;
use super::worker::{LinkError, Worker};

/// The first wait after the provider was away.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait while the provider is away.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a refused token waits before it is tried again without a new secret.
pub const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// How often a refused or missing secret is looked at for a new value.
const SECRET_CHECK: Duration = Duration::from_secs(2);

/// Why a session ended.
enum Ended {
    /// The provider is away (or answered an error that may pass).
    Away(String),
    /// The provider refused the token or this consumer.
    Refused(String),
    /// No usable token or URL.
    Unusable(String),
}

/// Follows `worker`'s provider until the task is dropped, publishing offers in `offers`.
pub async fn follow(worker: Arc<Worker>, offers: watch::Sender<Option<Offer>>) {
    let mut backoff = Backoff::new(INITIAL_BACKOFF, MAX_BACKOFF);
    loop {
        let secret_used = worker.secret_set_at();
        let ended = session(&worker, &offers, &mut backoff).await;
        match ended {
            Ended::Away(reason) => {
                let delay = backoff.next_delay();
                report(&worker, false, reason, delay);
                tracing::info!(provider = %worker.name, ?delay, "the provider is away; trying again");
                tokio::time::sleep(delay).await;
            }
            Ended::Refused(reason) => {
                report(&worker, true, reason.clone(), REFUSED_RETRY);
                tracing::warn!(provider = %worker.name, %reason, "the provider refused this distribution's token; waiting for a new secret");
                wait_for_secret(&worker, secret_used, REFUSED_RETRY).await;
            }
            Ended::Unusable(reason) => {
                report(&worker, false, reason.clone(), REFUSED_RETRY);
                tracing::warn!(provider = %worker.name, %reason, "cannot call the provider");
                wait_for_secret(&worker, secret_used, REFUSED_RETRY).await;
            }
        }
    }
}

/// One connection: a poll, then the subscription and the polls until something ends it.
async fn session(
    worker: &Worker,
    offers: &watch::Sender<Option<Offer>>,
    backoff: &mut Backoff,
) -> Ended {
    let client = match worker.connect() {
        Ok(client) => client,
        Err(LinkError::Url(error)) => return Ended::Unusable(format!("url: {error}")),
        Err(error) => return Ended::Unusable(error.to_string()),
    };
    let tester = worker.provider.test_consumer.as_deref();
    match client.consumer_versions(tester).await {
        Ok(offer) => publish(worker, offers, offer, Via::Poll),
        Err(error) => return ended(error),
    }
    backoff.reset();
    let config = worker.parts.config;
    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    let mut feed: Option<OfferFeed> = None;
    let mut resubscribe = config.subscription.then(tokio::time::Instant::now);
    let mut secret_changed = worker.parts.secrets.changed();
    secret_changed.mark_unchanged();
    loop {
        if let Some(at) = resubscribe
            && at <= tokio::time::Instant::now()
        {
            resubscribe = None;
            match client.follow_consumer_versions(tester).await {
                Ok(opened) => feed = Some(opened),
                Err(error) if error.is_refused() => return ended(error),
                Err(error) => {
                    tracing::info!(provider = %worker.name, %error, "no subscription; polling until the next try");
                    resubscribe = Some(tokio::time::Instant::now() + config.poll_interval);
                }
            }
        }
        let next = async {
            match feed.as_mut() {
                Some(feed) => feed.next().await,
                None => std::future::pending().await,
            }
        };
        let wake_resubscribe = async {
            match resubscribe {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = next => match event {
                Ok(Some(offer)) => publish(worker, offers, offer, Via::Subscription),
                Ok(None) => {
                    feed = None;
                    resubscribe = Some(tokio::time::Instant::now() + INITIAL_BACKOFF);
                }
                Err(error) if error.is_refused() => return ended(error),
                Err(error) => {
                    // A cut: poll at once to be sure of the offer, then subscribe again.
                    tracing::info!(provider = %worker.name, %error, "the subscription was cut");
                    feed = None;
                    match client.consumer_versions(tester).await {
                        Ok(offer) => publish(worker, offers, offer, Via::Poll),
                        Err(error) => return ended(error),
                    }
                    resubscribe = Some(tokio::time::Instant::now() + INITIAL_BACKOFF);
                }
            },
            _ = poll.tick() => match client.consumer_versions(tester).await {
                Ok(offer) => publish(worker, offers, offer, Via::Poll),
                Err(error) => return ended(error),
            },
            () = wake_resubscribe => {}
            // A new token: connect again with it.
            _ = secret_changed.changed() => {
                return Ended::Away("the access token's secret was set again; reconnecting".to_owned());
            }
        }
    }
}

/// How a failed call ends the session.
fn ended(error: ClientError) -> Ended {
    if error.is_refused() {
        Ended::Refused(format!(
            "the provider refused this distribution's access token: {error}; set a valid one (the provider issues it with issueAccessToken for its consumer account)"
        ))
    } else {
        Ended::Away(error.to_string())
    }
}

/// Publishes an offer and marks the provider reachable.
fn publish(worker: &Worker, offers: &watch::Sender<Option<Offer>>, offer: Offer, via: Via) {
    worker.parts.board.update(&worker.name, |status| {
        status.reachable = Some(true);
        status.via = Some(via);
        status.last_sync = Some(Utc::now());
        status.last_error = None;
        status.refused = false;
        status.next_attempt = None;
    });
    offers.send_if_modified(|current| {
        if current.as_ref() == Some(&offer) {
            return false;
        }
        tracing::info!(provider = %worker.name, revision = %offer.revision, services = offer.versions.len(), ?via, "offer");
        worker.parts.board.update(&worker.name, |status| {
            status.offer = Some(offer.clone());
        });
        *current = Some(offer);
        true
    });
}

/// Records a failed session in the board.
fn report(worker: &Worker, refused: bool, reason: String, next: Duration) {
    let next_attempt: DateTime<Utc> =
        Utc::now() + chrono::TimeDelta::from_std(next).unwrap_or(chrono::TimeDelta::MAX);
    worker.parts.board.update(&worker.name, |status| {
        status.reachable = Some(false);
        status.last_error = Some(reason);
        status.refused = refused;
        status.next_attempt = Some(next_attempt);
    });
}

/// Waits until the secret is set anew (through this server's API at once; through another
/// replica or the CLI at the secrets' next read of the store, every 2 s, which also says
/// so; looked at every [`SECRET_CHECK`] besides), or `longest`.
async fn wait_for_secret(worker: &Worker, used: Option<DateTime<Utc>>, longest: Duration) {
    let mut changed = worker.parts.secrets.changed();
    changed.mark_unchanged();
    let deadline = tokio::time::Instant::now() + longest;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            _ = changed.changed() => {}
            _ = tokio::time::sleep(SECRET_CHECK) => {}
        }
        let now = worker.secret_set_at();
        if now.is_some() && now != used {
            tracing::info!(provider = %worker.name, "the access token's secret was set anew; connecting");
            return;
        }
    }
}
