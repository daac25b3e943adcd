//! [`Patience`]: waiting in a test for something another process or task does, by looking
//! again at a fixed pace up to a limit, then failing with what was waited for (and, when
//! the caller gives one, a report of the system's state). Never a sleep that hopes.

use std::future::Future;
use std::time::Duration;

/// How long a test waits for something, and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// The longest wait before the test fails.
    pub limit: Duration,
    /// The pause between two looks.
    pub every: Duration,
}

impl Patience {
    /// Up to `limit`, looking every 50 ms.
    pub const fn up_to(limit: Duration) -> Patience {
        Patience {
            limit,
            every: Duration::from_millis(50),
        }
    }

    /// The same limit, looking every `every`.
    pub const fn every(self, every: Duration) -> Patience {
        Patience { every, ..self }
    }

    /// Calls `check` until it gives a value; panics naming `what` after the limit.
    pub async fn eventually<T, F, Fut>(self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        self.eventually_or(what, check, || async { String::new() })
            .await
    }

    /// [`Patience::eventually`], with `report` (the server's log, a status) in the
    /// panic message when the limit passes.
    pub async fn eventually_or<T, F, Fut, R, RFut>(self, what: &str, mut check: F, report: R) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
        R: FnOnce() -> RFut,
        RFut: Future<Output = String>,
    {
        let deadline = tokio::time::Instant::now() + self.limit;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if tokio::time::Instant::now() >= deadline {
                let report = report().await;
                panic!(
                    "timed out after {:?} waiting for {what}{}{report}",
                    self.limit,
                    if report.is_empty() { "" } else { "\n" }
                );
            }
            tokio::time::sleep(self.every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_value_comes_once_the_check_gives_one() {
        let looks = AtomicU32::new(0);
        let value = Patience::up_to(Duration::from_secs(1))
            .eventually("the third look", || async {
                (looks.fetch_add(1, Ordering::SeqCst) == 2).then_some("ready")
            })
            .await;
        assert_eq!(value, "ready");
        assert_eq!(looks.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting for nothing\nthe report")]
    async fn the_limit_fails_with_the_report() {
        Patience::up_to(Duration::from_secs(1))
            .every(Duration::from_millis(100))
            .eventually_or(
                "nothing",
                || async { None::<()> },
                || async { "the report".to_owned() },
            )
            .await;
    }
}
