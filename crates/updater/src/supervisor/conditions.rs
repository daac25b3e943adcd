//! Restart conditions: memory of the whole process tree and CPU use held over a duration.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vupdate_core::update::RestartConditions;

use vupdate_process::ProcInfo;
use vupdate_process::table as proc;

/// A restart condition that a service passed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Condition {
    /// The tree's resident memory passed `maxMemoryMB`.
    #[serde(rename_all = "camelCase")]
    Memory {
        /// The resident memory measured, in bytes.
        bytes: u64,
        /// The limit, in bytes.
        limit_bytes: u64,
    },
    /// The tree's CPU use stayed above `maxCpu.percents` for `durationSec`.
    #[serde(rename_all = "camelCase")]
    Cpu {
        /// The last CPU use measured, in percent of one core.
        percents: u32,
        /// The limit, in percent of one core.
        limit_percents: u32,
        /// How long the use stayed above the limit.
        duration_ms: u64,
    },
    /// The health check (`runService.healthCheck`) failed: the reason, with the probe's
    /// evidence.
    #[serde(rename_all = "camelCase")]
    Unhealthy {
        /// Why (`health check failed 3 times in a row: GET … answered 503`).
        reason: String,
    },
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::Memory { bytes, limit_bytes } => write!(
                f,
                "memory {} MB above maxMemoryMB {}",
                bytes / (1024 * 1024),
                limit_bytes / (1024 * 1024)
            ),
            Condition::Cpu {
                percents,
                limit_percents,
                duration_ms,
            } => write!(
                f,
                "CPU {percents}% above {limit_percents}% for {} ms",
                duration_ms
            ),
            Condition::Unhealthy { reason } => f.write_str(reason),
        }
    }
}

/// CPU ticks by process, keyed by pid and start time (so a reused pid is another key).
type TickSample = HashMap<(i32, u64), u64>;

/// Checks the conditions of one run at each sample.
#[derive(Debug)]
pub(crate) struct ConditionChecker {
    conditions: RestartConditions,
    ticks_per_second: u64,
    last: Option<(Instant, TickSample)>,
    over_since: Option<Instant>,
}

impl ConditionChecker {
    /// A checker for `conditions`, with no sample yet.
    pub fn new(conditions: RestartConditions) -> Self {
        ConditionChecker {
            conditions,
            ticks_per_second: proc::clock_ticks(),
            last: None,
            over_since: None,
        }
    }

    /// The interval between checks.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.conditions.check_timeout_ms)
    }

    /// Takes a sample of the tree's members at `now` and returns the condition passed, if any.
    pub fn check(&mut self, members: &[ProcInfo], now: Instant) -> Option<Condition> {
        if let Some(limit_mb) = self.conditions.max_memory_mb {
            let bytes: u64 = members.iter().map(|info| proc::rss_bytes(info.pid)).sum();
            let limit_bytes = limit_mb.saturating_mul(1024 * 1024);
            if bytes > limit_bytes {
                return Some(Condition::Memory { bytes, limit_bytes });
            }
        }
        let max_cpu = self.conditions.max_cpu.clone()?;
        let ticks: TickSample = members
            .iter()
            .map(|info| ((info.pid, info.start_ticks), info.cpu_ticks))
            .collect();
        let previous = self.last.replace((now, ticks.clone()));
        let (then, before) = previous?;
        let elapsed = now.duration_since(then).as_secs_f64();
        if elapsed <= 0.0 {
            return None;
        }
        // A process new since the last sample spent all its ticks within the interval.
        let used: u64 = ticks
            .iter()
            .map(|(key, now_ticks)| now_ticks.saturating_sub(before.get(key).copied().unwrap_or(0)))
            .sum();
        let percents = used as f64 / self.ticks_per_second as f64 / elapsed * 100.0;
        if percents <= f64::from(max_cpu.percents) {
            self.over_since = None;
            return None;
        }
        let since = *self.over_since.get_or_insert(then);
        let held = now.duration_since(since);
        (held >= Duration::from_secs(max_cpu.duration_sec)).then(|| Condition::Cpu {
            // Above the limit, so never reported as the limit itself (20.4 % is not "20 %
            // above 20 %").
            percents: (percents.round() as u32).max(max_cpu.percents.saturating_add(1)),
            limit_percents: max_cpu.percents,
            duration_ms: held.as_millis() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vupdate_core::update::MaxCpu;

    fn member(pid: i32, cpu_ticks: u64) -> ProcInfo {
        ProcInfo {
            pid,
            ppid: 1,
            pgid: pid,
            session: pid,
            state: 'R',
            cpu_ticks,
            start_ticks: 7,
        }
    }

    fn cpu_checker(percents: u32, duration_sec: u64) -> ConditionChecker {
        let mut checker = ConditionChecker::new(RestartConditions {
            max_memory_mb: None,
            max_cpu: Some(MaxCpu {
                percents,
                duration_sec,
            }),
            make_core: false,
            check_timeout_ms: 100,
        });
        checker.ticks_per_second = 100;
        checker
    }

    #[test]
    fn cpu_must_stay_above_the_limit_for_the_whole_duration() {
        let mut checker = cpu_checker(50, 2);
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        // (second, ticks of the one process, expected trigger): 100 ticks/s is 100 %.
        let table = [
            (0, 0, false),   // first sample: no rate yet
            (1, 100, false), // 100 % for 1 s
            (2, 200, true),  // 100 % for 2 s: over
            (3, 210, false), // 10 %: the clock resets
            (4, 310, false), // 100 % for 1 s again
            (5, 410, true),
        ];
        for (second, ticks, expected) in table {
            let fired = checker.check(&[member(10, ticks)], at(second));
            assert_eq!(fired.is_some(), expected, "at {second} s: {fired:?}");
        }
    }

    #[test]
    fn cpu_of_new_and_gone_processes_is_summed_per_interval() {
        let mut checker = cpu_checker(150, 0);
        let start = Instant::now();
        assert_eq!(checker.check(&[member(1, 50)], start), None);
        // The old process used 80 ticks, a new one 90: 170 % over one second.
        let fired = checker.check(
            &[member(1, 130), member(2, 90)],
            start + Duration::from_secs(1),
        );
        assert_eq!(
            fired,
            Some(Condition::Cpu {
                percents: 170,
                limit_percents: 150,
                duration_ms: 1000
            })
        );
    }

    #[test]
    fn memory_of_this_process_passes_a_tiny_limit() {
        let mut checker = ConditionChecker::new(RestartConditions {
            max_memory_mb: Some(1),
            max_cpu: None,
            make_core: false,
            check_timeout_ms: 100,
        });
        let me = proc::read(i32::try_from(std::process::id()).expect("pid")).expect("own stat");
        match checker.check(&[me], Instant::now()) {
            Some(Condition::Memory { bytes, limit_bytes }) => {
                assert_eq!(limit_bytes, 1024 * 1024);
                assert!(bytes > limit_bytes);
            }
            other => panic!("expected a memory condition, got {other:?}"),
        }
    }
}
