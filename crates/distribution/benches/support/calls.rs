//! Requests the HTTP benches make: JSON posts (GraphQL calls, log batches) that must
//! answer without `errors`, an error tally, and an instance's state report.

use std::time::Duration;

use serde_json::{Value, json};

/// `setServiceStates`, as updaters send it.
pub const SET_STATES: &str =
    "mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }";

/// How long one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How one request ended.
pub enum Outcome {
    /// Answered without errors.
    Ok,
    /// Refused or failed, with why.
    Failed(String),
}

/// Posts one JSON body (a GraphQL operation, a `POST /logs/batches` batch) with `token` and reads
/// the whole answer; it must be a success and hold no `errors`.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: String,
) -> Result<bytes::Bytes, String> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(REQUEST_TIMEOUT);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| format!("read: {e}"))?;
    if !status.is_success() || bytes.windows(9).any(|w| w == b"\"errors\":") {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ));
    }
    Ok(bytes)
}

/// Counts errors and keeps the first few messages.
#[derive(Default)]
pub struct Errors {
    /// How many.
    pub count: usize,
    first: Vec<String>,
}

impl Errors {
    /// Counts one.
    pub fn add(&mut self, message: String) {
        self.count += 1;
        if self.first.len() < 3 {
            self.first.push(message);
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        for message in other.first {
            if self.first.len() < 3 {
                self.first.push(message);
            }
        }
    }

    /// `0 errors`, or how many and the first messages.
    pub fn summary(&self) -> String {
        if self.count == 0 {
            "0 errors".to_owned()
        } else {
            format!("{} errors (first: {})", self.count, self.first.join(" | "))
        }
    }
}

/// One state report of instance `instance`: `per_report` services, most of them on their
/// desired version, every tenth instance one version behind.
pub fn report_body(instance: usize, services: usize, per_report: usize) -> String {
    let now = chrono::Utc::now();
    let started = (now - chrono::Duration::hours(3)).to_rfc3339();
    let states: Vec<Value> = (0..per_report.min(services))
        .map(|k| {
            let n = (instance * per_report + k) % services + 1;
            let name = super::service_name(n);
            let version = if instance % 10 == 9 {
                // One minor behind the desired `1.n.0`.
                format!("{}-1.{}.0", super::DISTRIBUTION, n - 1)
            } else {
                super::desired_version(n)
            };
            json!({
                "instance": format!("vm-{instance:05}"),
                "service": name,
                "directory": format!("/srv/{name}"),
                "state": {
                    "time": now.to_rfc3339(),
                    "version": version,
                    "startTime": started,
                    "installTime": started,
                    "failuresCount": 0,
                    "lastExitCode": 0,
                },
            })
        })
        .collect();
    json!({"query": SET_STATES, "variables": {"states": states}}).to_string()
}
