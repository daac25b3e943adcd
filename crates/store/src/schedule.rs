//! Running expiry on a schedule written as a standard 5-field crontab expression
//! (`minute hour day-of-month month day-of-week`, weekdays 0–7 with 0 and 7 Sunday, so
//! `1-5` is Monday to Friday), evaluated in UTC.

use std::future::Future;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::error::StoreError;
use crate::expiry::{ExpiryPolicy, ExpiryReport};
use crate::store::Store;

/// A cron expression that is not a valid 5-field crontab schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid schedule `{expression}`: {reason} (expected 5 fields: minute hour day-of-month month day-of-week, e.g. `0 3 * * *`)"
)]
pub struct ScheduleError {
    /// The expression as given.
    pub expression: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed 5-field crontab schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ScheduleError {
            expression: expression.to_owned(),
            reason,
        };
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(error(format!("it has {fields} fields")));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expression).map_err(|e| error(e.to_string()))?;
        Ok(Schedule {
            expression: expression.to_owned(),
            cron,
        })
    }
}

impl Schedule {
    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first time strictly after `time` that the schedule fires.
    pub fn next_after(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&time, false).ok()
    }
}

/// Runs [`Store::expire`] with `policy` at every time `schedule` fires (the store's clock
/// says when it is), until `shutdown` completes. Each run passes `fence` first (the
/// replicas' lease: a holder that lost it removes nothing, and the run fails with
/// [`StoreError::LeaseLost`]). Each run's outcome goes to `on_run` with the time it was
/// scheduled for: the caller deletes the removed fault reports' archives and counts what
/// was removed. A failed run is logged and retried at the next firing.
pub async fn run_expiry<F>(
    store: Store,
    policy: ExpiryPolicy,
    schedule: Schedule,
    mut fence: impl FnMut() -> F + Send,
    mut on_run: impl FnMut(DateTime<Utc>, Result<ExpiryReport, StoreError>) + Send,
    shutdown: impl Future<Output = ()>,
) where
    F: Future<Output = Result<(), StoreError>> + Send,
{
    tokio::pin!(shutdown);
    loop {
        let now = store.now();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(
                schedule = schedule.expression(),
                "the expiry schedule never fires again"
            );
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
        if store.now() < next {
            // Woken early (the clock and the timer disagree): wait for the rest.
            continue;
        }
        let outcome = match fence().await {
            Ok(()) => store.expire(&policy, next).await,
            Err(refused) => Err(refused),
        };
        if let Err(error) = &outcome {
            tracing::warn!(%error, "store expiry failed; retrying at the next scheduled time");
        }
        on_run(next, outcome);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn weekdays_one_to_five_are_monday_to_friday_at_three() {
        let schedule: Schedule = "0 3 * * 1-5".parse().expect("valid");
        // 2026-11-27 is a Friday: after its 03:00, the next firing is Monday 2026-11-30.
        assert_eq!(at(2026, 11, 27, 0, 0).weekday(), Weekday::Fri);
        let mut time = at(2026, 11, 27, 0, 0);
        let mut fired = Vec::new();
        for _ in 0..6 {
            time = schedule.next_after(time).expect("fires");
            fired.push((time.weekday(), time.hour(), time.minute()));
        }
        use Weekday::*;
        assert_eq!(
            fired,
            [
                (Fri, 3, 0),
                (Mon, 3, 0),
                (Tue, 3, 0),
                (Wed, 3, 0),
                (Thu, 3, 0),
                (Fri, 3, 0)
            ]
        );
        assert!(!fired.iter().any(|(day, ..)| matches!(day, Sat | Sun)));
    }

    #[test]
    fn zero_and_seven_are_sunday() {
        for expression in ["30 1 * * 0", "30 1 * * 7"] {
            let schedule: Schedule = expression.parse().expect("valid");
            let next = schedule.next_after(at(2026, 11, 25, 12, 0)).expect("fires");
            assert_eq!(
                (next.weekday(), next.day(), next.hour(), next.minute()),
                (Weekday::Sun, 29, 1, 30)
            );
        }
    }

    #[test]
    fn refuses_anything_but_five_fields() {
        for expression in [
            "0 0 3 * * 1-5",
            "0 3 * *",
            "",
            "61 3 * * *",
            "0 3 * * MON-FRI-",
        ] {
            let error = expression.parse::<Schedule>().expect_err(expression);
            assert!(error.to_string().contains("expected 5 fields"), "{error}");
        }
    }

    /// A clock that follows tokio's (paused) time from a fixed start.
    struct TokioClock {
        base: DateTime<Utc>,
        start: tokio::time::Instant,
    }

    impl crate::Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            self.base + chrono::TimeDelta::from_std(self.start.elapsed()).expect("short test")
        }
    }

    /// A SQLite store in `dir` on a clock following tokio's from `base`, holding one
    /// service log line 30 days old.
    async fn store_with_an_old_line(dir: &tempfile::TempDir, base: DateTime<Utc>) -> Store {
        let config = crate::StoreConfig::Sqlite {
            path: dir.path().join("store.sqlite"),
        };
        let clock = TokioClock {
            base,
            start: tokio::time::Instant::now(),
        };
        let store = crate::open(&config)
            .await
            .expect("open")
            .with_clock(std::sync::Arc::new(clock));
        let old_line = crate::model::logs::LogRecord {
            service: "api".parse().expect("name"),
            role: None,
            instance: "vm".into(),
            directory: "/srv".into(),
            process: "1".into(),
            task: None,
            time: base - chrono::TimeDelta::days(30),
            level: vupdate_core::log::Level::Info,
            unit: "main".into(),
            message: "old".into(),
            termination_status: None,
            source_sequence: None,
        };
        store.logs().insert(vec![old_line]).await.expect("insert");
        store
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_expires_on_weekdays_only_and_stops_on_shutdown() {
        let dir = tempfile::tempdir().expect("temporary directory");
        // Thursday noon.
        let store = store_with_an_old_line(&dir, at(2026, 11, 26, 12, 0)).await;
        let (runs, mut ran) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_expiry(
            store.clone(),
            ExpiryPolicy::default(),
            "0 3 * * 1-5".parse().expect("valid"),
            || async { Ok(()) },
            move |at, outcome| {
                let _ = runs.send((at, outcome.expect("expiry runs")));
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let mut fired = Vec::new();
        for _ in 0..3 {
            let (time, report) = ran.recv().await.expect("a run");
            fired.push((time.weekday(), time.day(), time.hour(), time.minute()));
            if fired.len() == 1 {
                assert_eq!(report.service_logs, 1, "the first run removed the old line");
            } else {
                assert!(report.is_empty());
            }
        }
        use Weekday::*;
        assert_eq!(fired, [(Fri, 27, 3, 0), (Mon, 30, 3, 0), (Tue, 1, 3, 0)]);
        stop.send(()).expect("the loop is running");
        task.await.expect("the loop ends on shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_fenced_off_by_a_lost_lease_removes_nothing() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = store_with_an_old_line(&dir, at(2026, 11, 26, 12, 0)).await;
        // This replica held the lease; another took it over while it was paused.
        let ttl = std::time::Duration::from_secs(60);
        let mine = store
            .leases()
            .take("distribution", "mine", ttl)
            .await
            .expect("take")
            .expect("taken");
        assert!(store.leases().release(&mine).await.expect("release"));
        store
            .leases()
            .take("distribution", "other", ttl)
            .await
            .expect("take")
            .expect("taken over");

        let (runs, mut ran) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let fenced = store.clone();
        let task = tokio::spawn(run_expiry(
            store.clone(),
            ExpiryPolicy::default(),
            "0 3 * * *".parse().expect("valid"),
            move || {
                let (store, mine) = (fenced.clone(), mine.clone());
                async move { store.leases().check(&mine).await }
            },
            move |_, outcome| {
                let _ = runs.send(outcome);
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let refused = ran.recv().await.expect("a run");
        assert!(
            matches!(&refused, Err(StoreError::LeaseLost { token: 1, now, .. }) if now.contains("`other`")),
            "{refused:?}"
        );
        let left = store
            .logs()
            .query(&crate::model::logs::LogQuery::default())
            .await
            .expect("query");
        assert_eq!(left.len(), 1, "the fenced run removed nothing");
        stop.send(()).expect("the loop is running");
        task.await.expect("the loop ends on shutdown");
    }
}
