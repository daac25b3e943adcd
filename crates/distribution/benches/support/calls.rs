//! Requests the HTTP benches make: JSON posts (GraphQL calls, log batches) that must
//! answer without `errors`, an error tally, and an instance's state report.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use vupdate_core::error_chain::Chain;

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
    // The whole chain: reqwest's own text ("error sending request") leaves out the cause.
    let response = request
        .send()
        .await
        .map_err(|e| format!("send: {}", Chain(&e)))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("read: {}", Chain(&e)))?;
    if !status.is_success() || bytes.windows(9).any(|w| w == b"\"errors\":") {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ));
    }
    Ok(bytes)
}

/// Counts errors by cause and keeps the first few messages.
#[derive(Default)]
pub struct Errors {
    /// How many.
    pub count: usize,
    first: Vec<String>,
    by_cause: BTreeMap<String, usize>,
}

impl Errors {
    /// Counts one.
    pub fn add(&mut self, message: String) {
        self.count += 1;
        *self.by_cause.entry(cause(&message)).or_default() += 1;
        if self.first.len() < 3 {
            self.first.push(message);
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        for (cause, count) in other.by_cause {
            *self.by_cause.entry(cause).or_default() += count;
        }
        for message in other.first {
            if self.first.len() < 3 {
                self.first.push(message);
            }
        }
    }

    /// `0 errors`, or how many, the commonest causes and the first messages.
    pub fn summary(&self) -> String {
        if self.count == 0 {
            return "0 errors".to_owned();
        }
        let mut causes: Vec<_> = self.by_cause.iter().collect();
        causes.sort_by(|a, b| b.1.cmp(a.1));
        let causes: Vec<String> = causes
            .iter()
            .take(4)
            .map(|(cause, count)| format!("{count} {cause}"))
            .collect();
        format!(
            "{} errors (by cause: {}; first: {})",
            self.count,
            causes.join(", "),
            self.first.join(" | ")
        )
    }
}

/// What an error message of [`post_json`] comes down to: a failed send's or read's innermost
/// cause (`Connection reset by peer (os error 104)`), an answer's status and code.
fn cause(message: &str) -> String {
    let cause = if message.contains("send: ") || message.contains("read: ") {
        message.rsplit(": ").next().unwrap_or(message).to_owned()
    } else if let Some(at) = message.find("HTTP ") {
        let status = message[at..].split(": ").next().unwrap_or(message);
        let code = message
            .split_once("\"code\":\"")
            .and_then(|(_, rest)| rest.split('"').next());
        match code {
            Some(code) => format!("{status} {code}"),
            None => status.to_owned(),
        }
    } else {
        message.to_owned()
    };
    cause.chars().take(80).collect()
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
