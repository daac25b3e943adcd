//! [`LoginThrottle`]: failed password checks slow down further attempts, per account and
//! per client address, with an exponential delay.
//!
//! After `free_failures` failures, each further failure makes the account (and the
//! address) wait `base_delay × 2^(n-1)`, at most `max_delay`, before a password is checked
//! again; an attempt while waiting is refused at once, without hashing, with the time left.
//! A correct password resets both. A record is forgotten `max_delay` after its wait ended,
//! and at most `max_tracked` accounts and as many addresses are remembered (the least
//! recently failed go first), so the throttle's memory is bounded whatever an attacker sends.
//!
//! Addresses are throttled by what one client controls: an IPv4 address, or the /64
//! network of an IPv6 address. The decisions are pure functions of the `now` passed in.

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::AuthError;

/// When failed password checks start to wait, and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before any wait; default 5.
    pub free_failures: u32,
    /// The first wait; each further failure doubles it; default 1 s.
    pub base_delay: Duration,
    /// The longest wait; default 5 minutes.
    pub max_delay: Duration,
    /// How many accounts, and how many addresses, are remembered; default 10,000.
    pub max_tracked: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5 * 60),
            max_tracked: 10_000,
        }
    }
}

impl ThrottlePolicy {
    /// The wait after the `failures`-th failure in a row (zero while within the free ones).
    pub fn delay_after(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.free_failures).filter(|n| *n > 0) else {
            return Duration::ZERO;
        };
        // 2^(over-1), saturating long before it could overflow.
        let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }
}

/// Whose attempts are counted: an IPv4 address or an IPv6 /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a client at `address` (an IPv4-mapped IPv6 address is its IPv4 one).
    pub fn of(address: IpAddr) -> ClientKey {
        match address {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from(network)))
                }
            },
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Failures in a row of one account or address.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// No password is checked before this.
    wait_until: Instant,
}

/// Remembered failures, the least recently failed dropped first past the bound.
struct Tracker<K: Hash + Eq> {
    entries: LruCache<K, Failures>,
}

impl<K: Hash + Eq> Tracker<K> {
    fn new(capacity: NonZeroUsize) -> Self {
        Tracker {
            entries: LruCache::new(capacity),
        }
    }

    /// The wait left for `key` at `now`; forgets a record whose wait ended `forget` ago.
    fn wait_left(&mut self, key: &K, now: Instant, forget: Duration) -> Duration {
        let Some(failures) = self.entries.peek(key) else {
            return Duration::ZERO;
        };
        if now >= failures.wait_until + forget {
            self.entries.pop(key);
            return Duration::ZERO;
        }
        failures.wait_until.saturating_duration_since(now)
    }

    fn fail(&mut self, key: K, now: Instant, policy: &ThrottlePolicy) {
        let count = match self.entries.get(&key) {
            Some(old) if now < old.wait_until + policy.max_delay => old.count.saturating_add(1),
            _ => 1,
        };
        let wait_until = now + policy.delay_after(count);
        self.entries.put(key, Failures { count, wait_until });
    }

    fn forget(&mut self, key: &K) {
        self.entries.pop(key);
    }
}

/// Failed password checks per account and per client address.
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    accounts: Mutex<Tracker<String>>,
    addresses: Mutex<Tracker<ClientKey>>,
}

impl fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl LoginThrottle {
    /// An empty throttle.
    pub fn new(policy: ThrottlePolicy) -> LoginThrottle {
        let capacity = NonZeroUsize::new(policy.max_tracked).unwrap_or(NonZeroUsize::MIN);
        LoginThrottle {
            policy,
            accounts: Mutex::new(Tracker::new(capacity)),
            addresses: Mutex::new(Tracker::new(capacity)),
        }
    }

    /// Refuses an attempt on `account` from `from` while either must still wait, saying
    /// which and for how long.
    pub fn check(
        &self,
        account: &str,
        from: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), AuthError> {
        let forget = self.policy.max_delay;
        let account_wait = lock(&self.accounts).wait_left(&account.to_owned(), now, forget);
        let (address_wait, key) = match from.map(ClientKey::of) {
            Some(key) => (
                lock(&self.addresses).wait_left(&key, now, forget),
                Some(key),
            ),
            None => (Duration::ZERO, None),
        };
        if account_wait.is_zero() && address_wait.is_zero() {
            return Ok(());
        }
        let reason = match key {
            Some(key) if address_wait > account_wait => {
                format!("too many failed password checks from {key}")
            }
            _ => format!("too many failed password checks for `{account}`"),
        };
        Err(AuthError::TooManyRequests {
            reason,
            retry_after: account_wait.max(address_wait),
        })
    }

    /// Counts a wrong password for `account` from `from`.
    pub fn failed(&self, account: &str, from: Option<IpAddr>, now: Instant) {
        lock(&self.accounts).fail(account.to_owned(), now, &self.policy);
        if let Some(address) = from {
            lock(&self.addresses).fail(ClientKey::of(address), now, &self.policy);
        }
    }

    /// A correct password: `account` and `from` start afresh.
    pub fn succeeded(&self, account: &str, from: Option<IpAddr>) {
        lock(&self.accounts).forget(&account.to_owned());
        if let Some(address) = from {
            lock(&self.addresses).forget(&ClientKey::of(address));
        }
    }

    /// How many accounts and addresses are remembered now.
    pub fn tracked(&self) -> (usize, usize) {
        (
            lock(&self.accounts).entries.len(),
            lock(&self.addresses).entries.len(),
        )
    }
}

/// A tracker's lock; a panic elsewhere leaves counts that are still valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    use super::{ClientKey, LoginThrottle, ThrottlePolicy};
    use crate::auth::AuthError;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            free_failures: 2,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_tracked: 3,
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("address"))
    }

    fn wait(result: Result<(), AuthError>) -> Option<(Duration, String)> {
        match result {
            Ok(()) => None,
            Err(AuthError::TooManyRequests {
                retry_after,
                reason,
            }) => Some((retry_after, reason)),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn delays_double_after_the_free_failures_up_to_the_cap() {
        let p = policy();
        let secs: Vec<u64> = (0..=10).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(secs, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.delay_after(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn an_account_waits_after_its_free_failures_and_a_success_resets_it() {
        let throttle = LoginThrottle::new(policy());
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(wait(throttle.check("admin", None, t0)).is_none());
            throttle.failed("admin", None, t0);
        }
        assert!(wait(throttle.check("admin", None, t0)).is_none());
        throttle.failed("admin", None, t0);
        let (left, reason) = wait(throttle.check("admin", None, t0)).expect("waits");
        assert_eq!(left, Duration::from_secs(1));
        assert!(reason.contains("`admin`"), "{reason}");
        // Half-way through, half is left; other accounts are not concerned.
        let half = t0 + Duration::from_millis(500);
        assert_eq!(
            wait(throttle.check("admin", None, half)).expect("waits").0,
            Duration::from_millis(500)
        );
        assert!(wait(throttle.check("dev", None, half)).is_none());
        // After the wait, the next failure doubles it.
        let t1 = t0 + Duration::from_secs(1);
        assert!(wait(throttle.check("admin", None, t1)).is_none());
        throttle.failed("admin", None, t1);
        assert_eq!(
            wait(throttle.check("admin", None, t1)).expect("waits").0,
            Duration::from_secs(2)
        );
        throttle.succeeded("admin", None);
        assert!(wait(throttle.check("admin", None, t1)).is_none());
    }

    #[test]
    fn an_address_waits_whatever_account_it_tries() {
        let throttle = LoginThrottle::new(ThrottlePolicy {
            max_tracked: 100,
            ..policy()
        });
        let t0 = Instant::now();
        for account in ["a", "b", "c"] {
            throttle.failed(account, ip("10.0.0.1"), t0);
        }
        let (left, reason) = wait(throttle.check("d", ip("10.0.0.1"), t0)).expect("waits");
        assert_eq!(left, Duration::from_secs(1));
        assert!(reason.contains("from 10.0.0.1"), "{reason}");
        assert!(wait(throttle.check("d", ip("10.0.0.2"), t0)).is_none());
        // One IPv6 client owns a /64: its neighbours wait with it.
        for n in 1..=3 {
            throttle.failed(&format!("x{n}"), ip(&format!("2001:db8::{n}")), t0);
        }
        let (_, reason) = wait(throttle.check("y", ip("2001:db8::ffff:1"), t0)).expect("waits");
        assert!(reason.contains("2001:db8::/64"), "{reason}");
        assert!(wait(throttle.check("y", ip("2001:db8:0:1::1"), t0)).is_none());
    }

    #[test]
    fn records_are_forgotten_after_a_quiet_while_and_bounded_in_number() {
        let throttle = LoginThrottle::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            throttle.failed("admin", None, t0);
        }
        // The wait (1 s) ended, then max_delay (60 s) passed: a fresh start.
        let later = t0 + Duration::from_secs(62);
        assert!(wait(throttle.check("admin", None, later)).is_none());
        throttle.failed("admin", None, later);
        assert!(
            wait(throttle.check("admin", None, later)).is_none(),
            "one failure is free again"
        );
        for n in 0..10 {
            throttle.failed(&format!("account-{n}"), ip(&format!("10.0.0.{n}")), later);
        }
        assert_eq!(throttle.tracked(), (3, 3));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("address");
        assert_eq!(ClientKey::of(mapped).to_string(), "10.1.2.3");
    }
}
