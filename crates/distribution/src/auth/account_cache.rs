//! [`AccountCache`]: the accounts every request is authorised from, kept for a few seconds.
//!
//! Each request is authorised from its account as stored: at fleet size, a store round
//! trip and a decode for every report and log batch, of the same accounts again and
//! again (one per VM, or the shared `updater`). An account read is kept for at most
//! [`LIFETIME`] by the store's clock. Every change this server makes to an account (role,
//! password, token revocation, removal) drops its entry when written, and a read that was
//! under way while any account was written is not kept, so on one server a change takes
//! effect at the next request, as before. A change made by another replica sharing the
//! store is seen within [`LIFETIME`]. (A builder a dead lease holder left running is not
//! refused by its revoked token but at once by the lease its token names:
//! `leadership::fence_builder`.)

use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use lru::LruCache;
use vupdate_store::model::accounts::Account;

/// How long an account read is trusted: what another replica's revocation may take to be
/// seen here; an updater reporting every 10 s then costs at most one read per report.
pub(crate) const LIFETIME: TimeDelta = TimeDelta::seconds(10);
/// Accounts kept: one per enrolled VM at 50,000 VMs, a few hundred bytes each.
const ENTRIES: usize = 65_536;

/// Recently read accounts by name, and a count of writes.
#[derive(Debug)]
pub(crate) struct AccountCache {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    accounts: LruCache<String, (Account, DateTime<Utc>)>,
    /// Counts writes, so that a read that overlapped one is not kept.
    writes: u64,
}

/// Where a read of the store started, to keep its result only if nothing was written since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadStart(u64);

impl Default for AccountCache {
    fn default() -> Self {
        AccountCache {
            inner: Mutex::new(Inner {
                accounts: LruCache::new(NonZeroUsize::new(ENTRIES).unwrap_or(NonZeroUsize::MIN)),
                writes: 0,
            }),
        }
    }
}

impl AccountCache {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update below leaves the cache whole, even if a panic interrupted another.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The account as read less than [`LIFETIME`] before `now`, or where a read starts.
    pub(crate) fn get(&self, account: &str, now: DateTime<Utc>) -> Result<Account, ReadStart> {
        let mut inner = self.inner();
        let writes = inner.writes;
        match inner.accounts.get(account) {
            Some((record, read_at)) if now - *read_at < LIFETIME && *read_at <= now => {
                Ok(record.clone())
            }
            _ => Err(ReadStart(writes)),
        }
    }

    /// Keeps `record`, read from the store at `now` after `start`, unless an account was
    /// written meanwhile (the read may predate that write).
    pub(crate) fn keep(&self, start: ReadStart, record: &Account, now: DateTime<Utc>) {
        let mut inner = self.inner();
        if inner.writes == start.0 {
            inner
                .accounts
                .put(record.account.clone(), (record.clone(), now));
        }
    }

    /// Forgets `account`; called once its change is written.
    pub(crate) fn written(&self, account: &str) {
        let mut inner = self.inner();
        inner.writes += 1;
        inner.accounts.pop(account);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};
    use vupdate_store::model::accounts::{Account, AccountKind, AccountRole};

    use super::{AccountCache, LIFETIME};

    fn updater(generation: u64) -> Account {
        Account {
            account: "updater".to_owned(),
            name: "Updater".to_owned(),
            role: AccountRole::Updater,
            kind: AccountKind::Service {
                token_generation: generation,
            },
        }
    }

    fn ten_o_clock() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0)
            .single()
            .expect("a time")
    }

    #[test]
    fn a_read_is_kept_for_its_lifetime_and_dropped_when_written() {
        let cache = AccountCache::default();
        let now = ten_o_clock();
        let start = cache.get("updater", now).expect_err("empty");
        cache.keep(start, &updater(0), now);
        assert_eq!(cache.get("updater", now + LIFETIME / 2), Ok(updater(0)));
        assert!(cache.get("updater", now + LIFETIME).is_err());

        let later = now + LIFETIME;
        cache.keep(
            cache.get("updater", later).expect_err("stale"),
            &updater(0),
            later,
        );
        assert!(cache.get("updater", later).is_ok());
        cache.written("updater");
        assert!(cache.get("updater", later).is_err());
    }

    #[test]
    fn a_read_that_overlapped_a_write_is_not_kept() {
        let cache = AccountCache::default();
        let now = ten_o_clock();
        let start = cache.get("updater", now).expect_err("empty");
        // The revocation is written while the old record is being read.
        cache.written("updater");
        cache.keep(start, &updater(0), now);
        assert!(cache.get("updater", now).is_err());
    }
}
