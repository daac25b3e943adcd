//! `statusChanged`: a push to whoever shows `status` (the dashboard's overview), so it
//! asks again when something it shows may have changed instead of polling every second.
//!
//! It wakes on the watcher's status (fetch, tip, invalid commit), the state in force, the
//! reconcile loop (builds planned, started, ended), images stored and state reports
//! written, and says only "changed": the subscriber reads `status` itself. The first
//! change after a quiet spell goes out at once; more within [`THROTTLE`] of it are sent as
//! one, so a busy fleet (every updater reports every 10 s) costs a subscriber at most one
//! `status` read per [`THROTTLE`].

use std::pin::Pin;
use std::time::Duration;

use async_graphql::{Context, Subscription};
use futures::{FutureExt as _, Stream, StreamExt as _};
use tokio::time::Instant;
use tokio_stream::wrappers::WatchStream;

use super::context::{api, require};
use crate::auth::Role;

/// The shortest time between two changes sent to one subscriber.
pub const THROTTLE: Duration = Duration::from_secs(1);

/// Subscriptions to the status.
#[derive(Default)]
pub struct StatusSubscription;

#[Subscription]
impl StatusSubscription {
    /// A number at once (0), then a larger one each time `status` may have changed: the
    /// state repo, the state in force, builds, images or reported states (at most one a
    /// second). It carries no status: read `status` when it comes.
    async fn status_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = i64>> {
        require(ctx, &[Role::Administrator, Role::Developer, Role::Builder])?;
        let context = api(ctx);
        let sources: Vec<Pin<Box<dyn Stream<Item = ()> + Send>>> = vec![
            WatchStream::from_changes(context.watch_status.clone())
                .map(drop)
                .boxed(),
            WatchStream::from_changes(context.reconcile.subscribe())
                .map(drop)
                .boxed(),
            WatchStream::from_changes(context.images.stored())
                .map(drop)
                .boxed(),
            WatchStream::from_changes(context.state_reports.written())
                .map(drop)
                .boxed(),
        ];
        // The feed ends when the state watcher does (the server stops), whatever the rest do.
        let changes = futures::stream::select_all(sources)
            .take_until(ended(WatchStream::from_changes(context.in_force.clone())));
        let start = Feed {
            changes: changes.boxed(),
            count: 0,
            last: None,
        };
        Ok(futures::stream::unfold(start, |mut feed| async move {
            if feed.last.is_some() {
                feed.changes.next().await?;
                if let Some(wait) = feed
                    .last
                    .and_then(|last| THROTTLE.checked_sub(last.elapsed()))
                {
                    tokio::time::sleep(wait).await;
                }
                // What came while waiting is in the one change sent now.
                while let Some(Some(())) = feed.changes.next().now_or_never() {}
                feed.count += 1;
            }
            feed.last = Some(Instant::now());
            Some((feed.count, feed))
        }))
    }
}

/// One subscriber's feed: the merged changes, the count sent, when the last was sent.
struct Feed {
    changes: Pin<Box<dyn Stream<Item = ()> + Send>>,
    count: i64,
    last: Option<Instant>,
}

/// Resolves when `stream` ends; each value it yields before is a change of the state in
/// force, which the watcher's status also shows.
async fn ended<S: Stream + Unpin>(mut stream: S) {
    while stream.next().await.is_some() {}
}
