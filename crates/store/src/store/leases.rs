//! [`Leases`]: taking, renewing, releasing and checking named leases ([`crate::lease`]).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::Store;
use crate::error::StoreError;
use crate::lease::{Ask, Lease};

/// Named leases.
#[derive(Debug, Clone, Copy)]
pub struct Leases<'a> {
    store: &'a Store,
}

impl<'a> Leases<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Leases { store }
    }

    fn until(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
        now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX)
    }

    /// Takes lease `name` for `holder` for `ttl` when nobody holds it or its holder let it
    /// expire (the fencing token then grows by one); `None` while another holder has it.
    pub async fn take(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let now = self.store.now();
        self.store
            .backend()
            .lease(name, holder, Ask::Take, now, Self::until(now, ttl))
            .await
    }

    /// Extends `lease` to `ttl` from now, keeping its token; `None` when another holder
    /// has taken it over (the caller must stop the work the lease guards).
    pub async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let now = self.store.now();
        self.store
            .backend()
            .lease(
                &lease.name,
                &lease.holder,
                Ask::Renew(lease.token),
                now,
                Self::until(now, ttl),
            )
            .await
    }

    /// Gives `lease` up (it expires now), so another process takes it at once instead of
    /// after its expiry; false when it had been taken over already.
    pub async fn release(&self, lease: &Lease) -> Result<bool, StoreError> {
        let now = self.store.now();
        let released = self
            .store
            .backend()
            .lease(
                &lease.name,
                &lease.holder,
                Ask::Renew(lease.token),
                now,
                now,
            )
            .await?;
        Ok(released.is_some())
    }

    /// Lease `name` as stored, expired or not; `None` when it was never taken.
    pub async fn current(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        self.store.backend().read_lease(name).await
    }

    /// The fence of a write only the lease's holder may make: `Ok` while `lease` is still
    /// held with its token and not expired, [`StoreError::LeaseLost`] otherwise.
    pub async fn check(&self, lease: &Lease) -> Result<(), StoreError> {
        self.check_held(&lease.name, &lease.holder, lease.token)
            .await
    }

    /// [`Leases::check`] of lease `name` as `holder` held it with `token`.
    pub async fn check_held(&self, name: &str, holder: &str, token: i64) -> Result<(), StoreError> {
        let now = self.store.now();
        let current = self.current(name).await?;
        match current {
            Some(stored)
                if stored.holder == holder && stored.token == token && !stored.expired_at(now) =>
            {
                Ok(())
            }
            other => Err(StoreError::LeaseLost {
                name: name.to_owned(),
                token,
                now: match other {
                    None => "nobody holds it".to_owned(),
                    Some(stored) if stored.expired_at(now) => format!(
                        "`{}` held it with token {} until {}, and nobody holds it since",
                        stored.holder, stored.token, stored.expires
                    ),
                    Some(stored) => format!(
                        "`{}` holds it with token {} until {}",
                        stored.holder, stored.token, stored.expires
                    ),
                },
            }),
        }
    }
}
