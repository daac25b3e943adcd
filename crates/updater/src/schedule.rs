//! One clock for the updater's periodic work. State reports, desired-version polls and
//! the samples of every service's processes fall due on a grid of their interval counted
//! from one origin, so work with the same interval (or a multiple of it) falls due at the
//! same instant: an idle updater wakes once for all of it instead of once per service and
//! per task, and the supervisors due together without a cgroup share one pass over `/proc`
//! (`supervisor::tree::sample_table`). The process's grid starts at its first use, so
//! updaters started at different times keep different phases and do not report to the
//! distribution in step.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// A grid of instants: for each interval, the multiples of it after an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    origin: Instant,
}

impl Schedule {
    /// The process's schedule, shared by everything periodic in it.
    pub fn process() -> Schedule {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        Schedule {
            origin: *ORIGIN.get_or_init(Instant::now),
        }
    }

    /// A schedule whose grid starts now (tests pin their phase with it).
    pub fn starting_now() -> Schedule {
        Schedule {
            origin: Instant::now(),
        }
    }

    /// The first instant of `interval`'s grid after now: at most `interval` away, and the
    /// same instant for every caller with that interval until it passes.
    pub fn next(&self, interval: Duration) -> Instant {
        self.next_after(Instant::now(), interval)
    }

    fn next_after(&self, now: Instant, interval: Duration) -> Instant {
        let step = interval.as_nanos().max(1);
        let Some(since) = now.checked_duration_since(self.origin) else {
            // An origin in the future (another runtime's paused clock in tests).
            return now + interval;
        };
        let ticks = since.as_nanos() / step + 1;
        let offset = u64::try_from(ticks * step).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_of_one_interval_and_its_multiples_coincide() {
        let schedule = Schedule::starting_now();
        let origin = schedule.origin;
        let at = |ms: u64| origin + Duration::from_millis(ms);
        let (five, ten) = (Duration::from_secs(5), Duration::from_secs(10));
        // Due times are on the grid, never now, at most one interval away.
        assert_eq!(schedule.next_after(at(0), five), at(5_000));
        assert_eq!(schedule.next_after(at(4_999), five), at(5_000));
        assert_eq!(schedule.next_after(at(5_000), five), at(10_000));
        assert_eq!(schedule.next_after(at(7_300), five), at(10_000));
        // Work every 5 s and every 10 s wakes together at every 10 s tick.
        assert_eq!(schedule.next_after(at(7_300), ten), at(10_000));
        assert_eq!(schedule.next_after(at(12_000), ten), at(20_000));
        assert_eq!(schedule.next_after(at(17_000), five), at(20_000));
        // A zero interval still moves on.
        assert!(schedule.next_after(at(3), Duration::ZERO) > at(3));
        // Before the origin: one interval from now.
        let early = Schedule { origin: at(60_000) };
        assert_eq!(early.next_after(at(1_000), five), at(6_000));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_the_next_tick_keeps_the_pace_of_the_interval() {
        let schedule = Schedule::starting_now();
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut woke = Vec::new();
        for _ in 0..3 {
            tokio::time::sleep_until(schedule.next(interval)).await;
            woke.push(start.elapsed());
            // Work that takes a while does not shift the grid.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
        }
        let secs: Vec<u64> = woke.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [10, 20, 30]);
        assert!(Schedule::process() == Schedule::process());
    }
}
