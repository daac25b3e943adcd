//! The restart policy: exponential backoff between the starts of a service that faults,
//! reset once a run has stayed up long enough, and never giving up for good. The delay
//! spaces starts (as the original updater kept starts at least a second apart): a run
//! that outlived it restarts at once.

use std::time::Duration;

/// How restarts after a fault are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The least time between the start of a run that faulted first after a stable run and
    /// the next start.
    pub initial_delay: Duration,
    /// The longest delay: doubling stops here, and restarts go on at this pace for ever.
    pub max_delay: Duration,
    /// A run that lasts this long is stable: the next fault starts again from
    /// `initial_delay` and the failures in a row go back to zero.
    pub stable_after: Duration,
    /// This many failures in a row make the service a crash loop in its status.
    pub crash_loop_after: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            crash_loop_after: 3,
        }
    }
}

impl RestartPolicy {
    /// The delay before restarting after the `failures_in_row`-th fault in a row (1 for the
    /// first): `initial_delay * 2^(n-1)`, capped at `max_delay`. No jitter: a restart is
    /// local to this VM, and a tracker handed over to a new updater process resumes at the
    /// same delay.
    pub fn delay(&self, failures_in_row: u32) -> Duration {
        vupdate_backoff::ceiling(self.initial_delay, self.max_delay, failures_in_row)
    }
}

/// The faults in a row of one service and the delays they earn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartTracker {
    policy: RestartPolicy,
    failures_in_row: u32,
}

impl RestartTracker {
    /// No fault yet.
    pub fn new(policy: RestartPolicy) -> Self {
        RestartTracker {
            policy,
            failures_in_row: 0,
        }
    }

    /// Goes on from `failures_in_row` faults in a row (a run handed over by the previous
    /// updater process).
    pub fn resume(policy: RestartPolicy, failures_in_row: u32) -> Self {
        RestartTracker {
            policy,
            failures_in_row,
        }
    }

    /// Records a fault of a run that lasted `uptime` and returns the delay before the
    /// next start: a stable run first resets the count.
    pub fn on_fault(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.policy.stable_after {
            self.failures_in_row = 0;
        }
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.policy.delay(self.failures_in_row)
    }

    /// Records that the running service reached the stable uptime.
    pub fn on_stable(&mut self) {
        self.failures_in_row = 0;
    }

    /// Faults without a stable run between.
    pub fn failures_in_row(&self) -> u32 {
        self.failures_in_row
    }

    /// Whether the faults in a row make a crash loop.
    pub fn crash_loop(&self) -> bool {
        self.failures_in_row >= self.policy.crash_loop_after.max(1)
    }

    /// The policy.
    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stable_run_resets_the_delay_and_the_crash_loop() {
        let policy = RestartPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            stable_after: Duration::from_secs(5),
            crash_loop_after: 3,
        };
        let mut tracker = RestartTracker::new(policy);
        let short = Duration::from_millis(100);
        // (uptime of the run that failed, delay expected, crash loop after it)
        let table = [
            (short, 10, false),
            (short, 20, false),
            (short, 40, true),
            (short, 50, true),
            (Duration::from_secs(6), 10, false),
            (short, 20, false),
        ];
        for (index, (uptime, delay, crash_loop)) in table.into_iter().enumerate() {
            assert_eq!(
                tracker.on_fault(uptime),
                Duration::from_millis(delay),
                "fault {index}"
            );
            assert_eq!(tracker.crash_loop(), crash_loop, "fault {index}");
        }
        tracker.on_stable();
        assert_eq!(
            (tracker.failures_in_row(), tracker.crash_loop()),
            (0, false)
        );
    }

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_cap() {
        let policy = RestartPolicy::default();
        let delays: Vec<u64> = (1..=12)
            .map(|n| policy.delay(n).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(30));
        assert_eq!(policy.delay(0), Duration::from_millis(100));
    }
}
