//! Named leases: which one of several processes sharing a store does the work that must run
//! once (a distribution's reconcile loop and expiry), or one at a time (its self-update).
//!
//! A lease has a holder, an expiry and a fencing token. Taking a lease that is free or
//! expired makes the taker its holder with a token one above the last, so the token grows
//! on every take-over and never goes back; the holder renews it (same token, later expiry)
//! well before it expires. A write only the holder may make checks that the lease still
//! has the writer's token ([`crate::Leases::check`]), so a holder that was paused past its
//! expiry, and lost the lease meanwhile, is refused instead of writing over its successor.
//!
//! `decide` is the rule, pure; SQLite applies it inside one write transaction, MongoDB
//! expresses it as conditional updates the server applies atomically.

use chrono::{DateTime, Utc};

/// A lease as stored: who holds it, with which fencing token, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name (`distribution`).
    pub name: String,
    /// The holder's id, unique per process (host, process id and start time).
    pub holder: String,
    /// Grows by one on every take-over; a renewal keeps it.
    pub token: i64,
    /// When the lease ends unless renewed.
    pub expires: DateTime<Utc>,
}

impl Lease {
    /// Whether the lease has ended at `now`, so anyone may take it.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires <= now
    }
}

/// What a caller asks of a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// Take the lease if it is free or expired.
    Take,
    /// Extend the lease held with this token; refused once another holder took it over.
    Renew(i64),
}

/// The lease after `holder` asked for it with `ask` at `now` until `until`, or `None` when
/// another holder keeps it (or took it over from `holder`).
///
/// A renewal succeeds while the stored holder and token are still the caller's, even past
/// the expiry: nobody took the lease over meanwhile, so nobody else did the work.
pub(crate) fn decide(
    current: Option<&Lease>,
    name: &str,
    holder: &str,
    ask: Ask,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<Lease> {
    let granted = |token| Lease {
        name: name.to_owned(),
        holder: holder.to_owned(),
        token,
        expires: until,
    };
    match (current, ask) {
        (None, Ask::Take) => Some(granted(1)),
        (None, Ask::Renew(_)) => None,
        (Some(lease), Ask::Take) if lease.expired_at(now) => Some(granted(lease.token + 1)),
        (Some(_), Ask::Take) => None,
        (Some(lease), Ask::Renew(token)) if lease.holder == holder && lease.token == token => {
            Some(granted(token))
        }
        (Some(_), Ask::Renew(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time")
    }

    fn held(holder: &str, token: i64, expires: i64) -> Lease {
        Lease {
            name: "distribution".to_owned(),
            holder: holder.to_owned(),
            token,
            expires: at(expires),
        }
    }

    #[test]
    fn a_free_lease_is_taken_with_token_one() {
        let lease = decide(None, "distribution", "a", Ask::Take, at(0), at(5)).expect("taken");
        assert_eq!(lease, held("a", 1, 5));
    }

    #[test]
    fn a_live_lease_is_not_taken_and_an_expired_one_is_with_the_next_token() {
        let current = held("a", 3, 5);
        assert_eq!(
            decide(Some(&current), "distribution", "b", Ask::Take, at(4), at(9)),
            None
        );
        assert_eq!(
            decide(
                Some(&current),
                "distribution",
                "b",
                Ask::Take,
                at(5),
                at(10)
            ),
            Some(held("b", 4, 10))
        );
    }

    #[test]
    fn a_renewal_keeps_the_token_and_fails_once_taken_over() {
        let current = held("a", 3, 5);
        assert_eq!(
            decide(
                Some(&current),
                "distribution",
                "a",
                Ask::Renew(3),
                at(7),
                at(12)
            ),
            Some(held("a", 3, 12)),
            "nobody took it over: late is still the holder's"
        );
        assert_eq!(
            decide(
                Some(&current),
                "distribution",
                "a",
                Ask::Renew(2),
                at(1),
                at(6)
            ),
            None,
            "an older token is a lost lease"
        );
        assert_eq!(
            decide(
                Some(&current),
                "distribution",
                "b",
                Ask::Renew(3),
                at(1),
                at(6)
            ),
            None
        );
        assert_eq!(
            decide(None, "distribution", "a", Ask::Renew(3), at(1), at(6)),
            None
        );
    }
}
