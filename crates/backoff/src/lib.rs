//! Exponential backoff with jitter, for everything vupdate retries while something it
//! needs is away (the distribution for an updater or a builder, a state remote for the
//! distribution): each delay is drawn between half and all of a ceiling that doubles
//! after each failure up to a maximum, so a fleet of updaters that lost the same server
//! does not come back in lockstep.
//!
//! The crate only computes delays; callers sleep (and cut a sleep short) as they need.
//! It depends on `getrandom` alone, so the updater and the client can use it without any
//! server crate, and the pure core stays without randomness.

use std::time::Duration;

/// The delays between attempts of one kind of call.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays from about `initial`, doubling, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            failures: 0,
        }
    }

    /// The delay before the next attempt, after one more failure in a row: between half
    /// and all of [`ceiling`] for that many failures.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        jittered(
            ceiling(self.initial, self.max, self.failures),
            random_fraction(),
        )
    }

    /// After a success: the next failure waits about `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The delay ceiling after `failures` failures in a row (1 for the first): `initial`,
/// doubled for each further failure, never above `max`. Without jitter, for a caller
/// whose delays must be exact (a local restart resumed by another process).
pub fn ceiling(initial: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    initial.saturating_mul(1u32 << doublings).min(max)
}

/// A delay between half of `ceiling` and all of it, `fraction` (0 to 1) of the way.
fn jittered(ceiling: Duration, fraction: f64) -> Duration {
    ceiling.mul_f64(0.5 + 0.5 * fraction.clamp(0.0, 1.0))
}

/// A random number from 0 to 1; without randomness (never on Linux) the clock's
/// nanoseconds still spread updaters apart.
fn random_fraction() -> f64 {
    let bits = getrandom::u32().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.subsec_nanos())
            .unwrap_or_default()
    });
    f64::from(bits) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_within_their_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let ceilings = [500, 1000, 2000, 4000, 4000, 4000];
        for ceiling in ceilings {
            let delay = backoff.next_delay();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} not within [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn ceilings_double_from_the_first_failure_and_stop_at_the_maximum() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let ceilings: Vec<u128> = (0..7)
            .map(|failures| ceiling(initial, max, failures).as_millis())
            .collect();
        assert_eq!(ceilings, [100, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(ceiling(initial, max, u32::MAX), max);
        assert_eq!(ceiling(Duration::ZERO, max, 9), Duration::ZERO);
        assert_eq!(ceiling(Duration::from_secs(60), max, 1), max);
    }

    #[test]
    fn jitter_spans_half_to_all_of_the_ceiling() {
        let ceiling = Duration::from_secs(10);
        assert_eq!(jittered(ceiling, 0.0), Duration::from_secs(5));
        assert_eq!(jittered(ceiling, 1.0), ceiling);
        assert_eq!(jittered(ceiling, 7.0), ceiling);
        assert_eq!(jittered(ceiling, 0.5), Duration::from_millis(7500));
    }

    #[test]
    fn an_initial_delay_above_the_maximum_is_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(2));
        assert!(backoff.next_delay() <= Duration::from_secs(2));
    }
}
