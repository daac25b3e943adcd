//! [`Metrics`]: what `/metrics` serves in the Prometheus text format: HTTP requests and
//! their durations, tasks started, running and ended, the reconcile lag, and the duration
//! of every store operation.
//!
//! Counting happens where the thing happens (a middleware for requests, the task manager
//! for tasks, the store's observer for store calls); the reconcile lag is computed when
//! scraped, from when the commit in force arrived and whether the loop has caught up.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vupdate_store::StoreObserver;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of a request duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// Labels of a task count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    r#type: String,
}

/// Labels of an ended task.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskEndLabels {
    r#type: String,
    status: String,
}

/// Labels of a store operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    operation: String,
    collection: String,
    outcome: String,
}

/// Durations from 0.1 ms to about 6.5 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

/// The server's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    tasks_started: Family<TaskLabels, Counter>,
    tasks_ended: Family<TaskEndLabels, Counter>,
    tasks_running: Gauge,
    store_seconds: Family<StoreLabels, Histogram, fn() -> Histogram>,
    reconcile_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// The commit in force, since when, and whether the loop has caught up with it.
    reconcile: Mutex<Option<(String, Instant, bool)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics, registered under the `vupdate_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("vupdate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let request_seconds =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            request_seconds.clone(),
        );
        let tasks_started = Family::<TaskLabels, Counter>::default();
        registry.register("tasks_started", "Tasks started", tasks_started.clone());
        let tasks_ended = Family::<TaskEndLabels, Counter>::default();
        registry.register("tasks_ended", "Tasks ended, by status", tasks_ended.clone());
        let tasks_running = Gauge::default();
        registry.register("tasks_running", "Tasks running now", tasks_running.clone());
        let store_seconds =
            Family::<StoreLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "store_operation_duration_seconds",
            "Time of a store operation",
            store_seconds.clone(),
        );
        let reconcile_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "reconcile_lag_seconds",
            "Seconds since the commit in force arrived while the reconcile loop has not caught up with it (0 when it has)",
            reconcile_lag.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                request_seconds,
                tasks_started,
                tasks_ended,
                tasks_running,
                store_seconds,
                reconcile_lag,
                reconcile: Mutex::new(None),
            }),
        }
    }

    /// Counts an answered request; `route` is the matched route pattern, never the raw path.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.inner
            .request_seconds
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a started task.
    pub fn task_started(&self, task_type: &str) {
        self.inner
            .tasks_started
            .get_or_create(&TaskLabels {
                r#type: task_type.to_owned(),
            })
            .inc();
        self.inner.tasks_running.inc();
    }

    /// Counts an ended task.
    pub fn task_ended(&self, task_type: &str, succeeded: bool) {
        let status = if succeeded { "succeeded" } else { "failed" };
        self.inner
            .tasks_ended
            .get_or_create(&TaskEndLabels {
                r#type: task_type.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.inner.tasks_running.dec();
    }

    /// Notes the reconcile loop's position: the commit in force and whether every build
    /// it needs is done.
    pub fn reconcile(&self, commit: Option<&str>, synced: bool) {
        let mut state = self
            .inner
            .reconcile
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (commit, state.as_mut()) {
            (None, _) => *state = None,
            (Some(commit), Some((known, _, done))) if known == commit => *done = synced,
            (Some(commit), _) => *state = Some((commit.to_owned(), Instant::now(), synced)),
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let lag = match &*self
            .inner
            .reconcile
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some((_, since, false)) => since.elapsed().as_secs_f64(),
            _ => 0.0,
        };
        self.inner.reconcile_lag.set(lag);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl StoreObserver for Metrics {
    fn operation(
        &self,
        operation: &'static str,
        collection: &'static str,
        elapsed: Duration,
        ok: bool,
    ) {
        self.inner
            .store_seconds
            .get_or_create(&StoreLabels {
                operation: operation.to_owned(),
                collection: collection.to_owned(),
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vupdate_store::StoreObserver as _;

    use super::Metrics;

    #[test]
    fn every_family_is_rendered_with_its_labels() {
        let metrics = Metrics::new();
        metrics.request("POST", "/graphql", 200, Duration::from_millis(3));
        metrics.task_started("BuildDeveloperVersion");
        metrics.task_ended("BuildDeveloperVersion", false);
        metrics.operation("insert", "log_records", Duration::from_micros(250), true);
        metrics.reconcile(Some("abc"), false);
        let text = metrics.render();
        for expected in [
            r#"vupdate_http_requests_total{method="POST",route="/graphql",status="200"} 1"#,
            r#"vupdate_http_request_duration_seconds_count{method="POST",route="/graphql"} 1"#,
            r#"vupdate_tasks_started_total{type="BuildDeveloperVersion"} 1"#,
            r#"vupdate_tasks_ended_total{type="BuildDeveloperVersion",status="failed"} 1"#,
            "vupdate_tasks_running 0",
            r#"vupdate_store_operation_duration_seconds_count{operation="insert",collection="log_records",outcome="ok"} 1"#,
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
        assert!(text.contains("vupdate_reconcile_lag_seconds "), "{text}");
        metrics.reconcile(Some("abc"), true);
        assert!(
            metrics
                .render()
                .contains("vupdate_reconcile_lag_seconds 0.0")
        );
    }
}
