//! Whose turn it is to swap: replicas sharing a store replace their programs one at a
//! time, so the others keep serving while one restarts, and a new binary that passes its
//! probe but then fails to confirm is rolled back on one replica before the next tries it.
//!
//! A turn is the store's lease [`TURN_LEASE`], taken just before the swap and kept in the
//! record ([`super::record::HeldTurn`]), so whichever process ends the swap releases it:
//! the new binary once confirmed, the previous one after a rollback, the old one when the
//! swap failed. It lasts the confirm window and [`MARGIN`], so a replica that dies in the
//! middle of its swap holds the others back for that long at most. A sole server (SQLite)
//! takes no turn.

use std::time::Duration;

use vupdate_store::{Lease, Store, StoreError};

use super::record::HeldTurn;

/// The name of the replicas' self-update lease.
pub const TURN_LEASE: &str = "self-update";

/// How much longer than the confirm window a turn lasts: the old server's stop (requests
/// in flight finish) and the new one's start before its window begins.
pub const MARGIN: Duration = Duration::from_secs(60);

/// How a server takes its turns.
#[derive(Debug, Clone)]
pub enum Turns {
    /// The one server of its store: always its turn.
    Alone,
    /// One of the replicas sharing `store`, as `holder` (its lease holder id).
    Shared {
        /// The shared store.
        store: Store,
        /// This process's holder id.
        holder: String,
    },
}

/// What asking for the turn gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// A sole server: swap at once, nothing to release.
    Alone,
    /// This replica's turn now, until released or `window` + [`MARGIN`].
    Held(HeldTurn),
    /// Another replica is swapping: its holder id.
    Busy(String),
}

impl Turns {
    /// Takes the turn for a swap whose new binary has `window` to confirm.
    pub async fn take(&self, window: Duration) -> Result<Taken, StoreError> {
        let Turns::Shared { store, holder } = self else {
            return Ok(Taken::Alone);
        };
        let leases = store.leases();
        match leases.take(TURN_LEASE, holder, window + MARGIN).await? {
            Some(lease) => Ok(Taken::Held(HeldTurn {
                holder: lease.holder,
                token: lease.token,
            })),
            None => {
                let who = leases.current(TURN_LEASE).await?;
                Ok(Taken::Busy(who.map_or_else(
                    || "another replica".to_owned(),
                    |lease| lease.holder,
                )))
            }
        }
    }

    /// Gives `turn` back so the next replica swaps at once; a turn that ended or was
    /// taken over meanwhile is left as it is.
    pub async fn release(&self, turn: &HeldTurn) -> Result<(), StoreError> {
        let Turns::Shared { store, .. } = self else {
            return Ok(());
        };
        let lease = Lease {
            name: TURN_LEASE.to_owned(),
            holder: turn.holder.clone(),
            token: turn.token,
            expires: chrono::Utc::now(),
        };
        store.leases().release(&lease).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_store(dir: &std::path::Path) -> Store {
        vupdate_store::open(&vupdate_store::StoreConfig::Sqlite {
            path: dir.join("store.sqlite"),
        })
        .await
        .expect("store")
    }

    #[tokio::test]
    async fn replicas_take_turns_one_at_a_time_and_a_released_turn_is_free_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(dir.path()).await;
        let replica = |holder: &str| Turns::Shared {
            store: store.clone(),
            holder: holder.to_owned(),
        };
        let (a, b) = (replica("a"), replica("b"));
        let window = Duration::from_secs(120);

        let Taken::Held(turn) = a.take(window).await.expect("take") else {
            panic!("the first replica gets the turn")
        };
        assert_eq!(turn.holder, "a");
        assert_eq!(
            b.take(window).await.expect("take"),
            Taken::Busy("a".into()),
            "the other waits, told who swaps"
        );
        // The new binary of `a` is another process: it releases with the recorded turn.
        replica("a, the new binary")
            .release(&turn)
            .await
            .expect("release");
        let Taken::Held(next) = b.take(window).await.expect("take") else {
            panic!("released: the other's turn at once")
        };
        assert!(next.token > turn.token, "{next:?} after {turn:?}");
        // A stale release (the turn was taken over) leaves the new holder's turn alone.
        a.release(&turn).await.expect("stale release");
        assert_eq!(a.take(window).await.expect("take"), Taken::Busy("b".into()));
    }

    #[tokio::test]
    async fn a_sole_server_always_has_the_turn() {
        assert_eq!(
            Turns::Alone
                .take(Duration::from_secs(1))
                .await
                .expect("take"),
            Taken::Alone
        );
        let turn = HeldTurn {
            holder: "x".into(),
            token: 3,
        };
        Turns::Alone
            .release(&turn)
            .await
            .expect("nothing to release");
    }
}
