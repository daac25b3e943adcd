//! Idle keep-alive connections, counted in total and per address, so that at a connection
//! limit they make room for a new client: at the total limit every idle connection is
//! asked to close, at an address's limit every idle connection of that address, as nginx
//! reuses its idle keep-alive connections when it runs out. Their clients reconnect at
//! their next request; a connection in the middle of a request is never asked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::auth::ClientKey;

/// The requests to close idle connections so far: counted, so a connection that wakes
/// late still sees a request for everyone it missed.
#[derive(Debug, Clone, Copy, Default)]
struct Asked {
    /// Requests to close every idle connection.
    all: u64,
    /// Requests to close one address's idle connections, and the latest address.
    address: u64,
    only: Option<ClientKey>,
}

/// The idle connections of one listener.
#[derive(Default)]
pub(super) struct Idle {
    count: AtomicUsize,
    by_address: Mutex<HashMap<ClientKey, usize>>,
    asked: watch::Sender<Asked>,
}

impl Idle {
    /// Idle connections in all.
    pub(super) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Idle connections of `key`.
    pub(super) fn of(&self, key: ClientKey) -> usize {
        self.counts().get(&key).copied().unwrap_or(0)
    }

    /// Counts one more idle connection of `key`.
    fn join(&self, key: ClientKey) {
        *self.counts().entry(key).or_default() += 1;
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts one idle connection of `key` fewer.
    fn leave(&self, key: ClientKey) {
        let mut counts = self.counts();
        if let Some(count) = counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&key);
            }
        }
        self.count.fetch_sub(1, Ordering::AcqRel);
    }

    /// Asks every idle connection to close.
    pub(super) fn shed_all(&self) {
        self.asked
            .send_modify(|asked| asked.all = asked.all.wrapping_add(1));
    }

    /// Asks every idle connection of `key` to close.
    pub(super) fn shed_address(&self, key: ClientKey) {
        self.asked.send_modify(|asked| {
            asked.address = asked.address.wrapping_add(1);
            asked.only = Some(key);
        });
    }

    /// Resolves once idle connections (all, or those of `key`) are asked to close while
    /// `is_idle` says this one of `key` is idle.
    async fn asked_to_close(&self, key: ClientKey, is_idle: &AtomicBool) {
        let mut asked = self.asked.subscribe();
        let mut seen = *asked.borrow_and_update();
        loop {
            if asked.changed().await.is_err() {
                return std::future::pending().await;
            }
            let now = *asked.borrow_and_update();
            let mine =
                now.all != seen.all || (now.address != seen.address && now.only == Some(key));
            seen = now;
            if mine && is_idle.load(Ordering::Acquire) {
                return;
            }
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        self.by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's place among the idle ones: counted while hyper serves it and it waits
/// between two requests.
pub(super) struct Member {
    idle: Arc<Idle>,
    key: ClientKey,
    /// Whether hyper serves it (see [`Member::serve`]): not once upgraded or ended.
    serving: AtomicBool,
    /// Whether it is counted: an answer ended and no next head started.
    is_idle: AtomicBool,
}

impl Member {
    /// A connection of `key`, not yet served.
    pub(super) fn new(idle: Arc<Idle>, key: ClientKey) -> Member {
        Member {
            idle,
            key,
            serving: AtomicBool::new(false),
            is_idle: AtomicBool::new(false),
        }
    }

    /// Marks the connection as served by hyper until the guard is dropped.
    pub(super) fn serve(&self) -> Serving<'_> {
        self.serving.store(true, Ordering::Release);
        Serving(self)
    }

    /// Counts the connection idle (an answer ended), if hyper still serves it.
    pub(super) fn set_idle(&self) {
        if self.serving.load(Ordering::Acquire) && !self.is_idle.swap(true, Ordering::AcqRel) {
            self.idle.join(self.key);
        }
    }

    /// Counts the connection busy (a head started) or gone.
    pub(super) fn set_busy(&self) {
        if self.is_idle.swap(false, Ordering::AcqRel) {
            self.idle.leave(self.key);
        }
    }

    /// Resolves once the connection is asked to close while it is idle.
    pub(super) async fn asked_to_close(&self) {
        self.idle.asked_to_close(self.key, &self.is_idle).await;
    }
}

/// A connection served by hyper; on drop it is neither served nor idle any more.
pub(super) struct Serving<'a>(&'a Member);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.serving.store(false, Ordering::Release);
        self.0.set_busy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(address: &str) -> ClientKey {
        ClientKey::of(address.parse().expect("address"))
    }

    #[test]
    fn counts_follow_joins_and_leaves_per_address() {
        let idle = Idle::default();
        let (a, b) = (key("10.0.0.1"), key("10.0.0.2"));
        idle.join(a);
        idle.join(a);
        idle.join(b);
        assert_eq!((idle.count(), idle.of(a), idle.of(b)), (3, 2, 1));
        idle.leave(a);
        idle.leave(b);
        assert_eq!((idle.count(), idle.of(a), idle.of(b)), (1, 1, 0));
    }

    #[tokio::test]
    async fn an_address_shed_reaches_its_idle_connections_only_and_a_shed_of_all_every_one() {
        let idle = std::sync::Arc::new(Idle::default());
        let (a, b) = (key("10.0.0.1"), key("10.0.0.2"));
        let yes = std::sync::Arc::new(AtomicBool::new(true));
        let waiting = |key| {
            let (idle, yes) = (idle.clone(), yes.clone());
            tokio::spawn(async move { idle.asked_to_close(key, &yes).await })
        };
        let (of_a, of_b) = (waiting(a), waiting(b));
        tokio::task::yield_now().await;
        idle.shed_address(a);
        of_a.await.expect("a's connection is asked");
        tokio::task::yield_now().await;
        assert!(
            !of_b.is_finished(),
            "b's connection is not asked for a's address"
        );
        idle.shed_all();
        of_b.await.expect("a shed of all asks b's too");
    }
}
