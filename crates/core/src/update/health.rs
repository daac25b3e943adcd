//! `runService.healthCheck`: how the updater tells that a running service answers.
//!
//! A check is one probe (an HTTP GET that must answer 2xx, a TCP connect, or a command
//! that must exit with its `exitCode`, 0 by default) run every `intervalMs`, each bounded
//! by `timeoutMs`. `healthyAfter` passes in a row make a run healthy; a new version is kept
//! only when its run is healthy within `startWindowMs` of its start. Once healthy,
//! `unhealthyAfter` failures in a row make the updater restart the run, as a fault.

use serde::{Deserialize, Serialize};

use super::command::{Command, expand_field};
use crate::macros::{MacroError, Macros};

/// The default `intervalMs`: how often the probe runs.
pub const DEFAULT_INTERVAL_MS: u64 = 2000;
/// The default `timeoutMs`: how long one probe may take before it counts as failed.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// The default `healthyAfter`: passes in a row that make a run healthy.
pub const DEFAULT_HEALTHY_AFTER: u32 = 1;
/// The default `unhealthyAfter`: failures in a row that restart a healthy run.
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 3;
/// The default `startWindowMs`: how long a new run has to become healthy.
pub const DEFAULT_START_WINDOW_MS: u64 = 30_000;

/// What one probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// GET this URL (`http://` or `https://`); a 2xx answer passes.
    Http(String),
    /// Connect to this `host:port`; a connection passes.
    Tcp(String),
    /// Run this command in `current/`; its `exitCode` (0 when left out) and `outputMatch`
    /// pass.
    Command(Box<Command>),
}

/// A service's health check, as written in `install.json` (`runService.healthCheck`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawHealthCheck")]
pub struct HealthCheck {
    /// The URL of an HTTP probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// The `host:port` of a TCP probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// The command of a command probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// Milliseconds between the starts of two probes (at least 1).
    pub interval_ms: u64,
    /// Milliseconds one probe may take (at least 1).
    pub timeout_ms: u64,
    /// Passes in a row that make a run healthy (at least 1).
    pub healthy_after: u32,
    /// Failures in a row that restart a healthy run (at least 1).
    pub unhealthy_after: u32,
    /// Milliseconds a run has from its start to become healthy (at least 1).
    pub start_window_ms: u64,
}

/// `healthCheck` as read, before the one-probe rule is checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawHealthCheck {
    #[serde(default)]
    http: Option<String>,
    #[serde(default)]
    tcp: Option<String>,
    #[serde(default)]
    command: Option<Command>,
    #[serde(
        default = "default_interval_ms",
        deserialize_with = "super::check::positive_u64"
    )]
    interval_ms: u64,
    #[serde(
        default = "default_timeout_ms",
        deserialize_with = "super::check::positive_u64"
    )]
    timeout_ms: u64,
    #[serde(
        default = "default_healthy_after",
        deserialize_with = "super::check::positive_u32"
    )]
    healthy_after: u32,
    #[serde(
        default = "default_unhealthy_after",
        deserialize_with = "super::check::positive_u32"
    )]
    unhealthy_after: u32,
    #[serde(
        default = "default_start_window_ms",
        deserialize_with = "super::check::positive_u64"
    )]
    start_window_ms: u64,
}

fn default_interval_ms() -> u64 {
    DEFAULT_INTERVAL_MS
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_healthy_after() -> u32 {
    DEFAULT_HEALTHY_AFTER
}
fn default_unhealthy_after() -> u32 {
    DEFAULT_UNHEALTHY_AFTER
}
fn default_start_window_ms() -> u64 {
    DEFAULT_START_WINDOW_MS
}

impl TryFrom<RawHealthCheck> for HealthCheck {
    type Error = String;

    fn try_from(raw: RawHealthCheck) -> Result<Self, String> {
        let given = [raw.http.is_some(), raw.tcp.is_some(), raw.command.is_some()]
            .into_iter()
            .filter(|given| *given)
            .count();
        if given != 1 {
            return Err(format!(
                "give exactly one probe, `http`, `tcp` or `command` ({given} given)"
            ));
        }
        if let Some(url) = &raw.http {
            check_url(url).map_err(|message| format!("http: {message}"))?;
        }
        if let Some(address) = &raw.tcp {
            check_address(address).map_err(|message| format!("tcp: {message}"))?;
        }
        Ok(HealthCheck {
            http: raw.http,
            tcp: raw.tcp,
            command: raw.command,
            interval_ms: raw.interval_ms,
            timeout_ms: raw.timeout_ms,
            healthy_after: raw.healthy_after,
            unhealthy_after: raw.unhealthy_after,
            start_window_ms: raw.start_window_ms,
        })
    }
}

/// An HTTP probe's URL: `http://` or `https://` and a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{url}` names no host"));
    }
    Ok(())
}

/// A TCP probe's address: `host:port` (a macro may stand for the port until expanded).
pub fn check_address(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.is_empty() => Ok(()),
        _ => Err(format!("`{address}` is not `host:port`")),
    }
}

impl HealthCheck {
    /// A check with the given probe and every other field at its default.
    pub fn new(probe: Probe) -> Self {
        let (http, tcp, command) = match probe {
            Probe::Http(url) => (Some(url), None, None),
            Probe::Tcp(address) => (None, Some(address), None),
            Probe::Command(command) => (None, None, Some(*command)),
        };
        HealthCheck {
            http,
            tcp,
            command,
            interval_ms: DEFAULT_INTERVAL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            healthy_after: DEFAULT_HEALTHY_AFTER,
            unhealthy_after: DEFAULT_UNHEALTHY_AFTER,
            start_window_ms: DEFAULT_START_WINDOW_MS,
        }
    }

    /// The probe the check runs (reading makes sure there is exactly one; a check built
    /// by hand with none has `None`).
    pub fn probe(&self) -> Option<Probe> {
        match (&self.http, &self.tcp, &self.command) {
            (Some(url), _, _) => Some(Probe::Http(url.clone())),
            (None, Some(address), _) => Some(Probe::Tcp(address.clone())),
            (None, None, Some(command)) => Some(Probe::Command(Box::new(command.clone()))),
            (None, None, None) => None,
        }
    }

    /// Expands macros in the URL, the address or the command; errors name the field
    /// (`http`, `command.args[0]`). An expanded URL or address is checked again.
    pub fn expand(&self, macros: &Macros) -> Result<HealthCheck, MacroError> {
        let http = self
            .http
            .as_deref()
            .map(|url| expand_field(macros, url, "http"))
            .transpose()?;
        let tcp = self
            .tcp
            .as_deref()
            .map(|address| expand_field(macros, address, "tcp"))
            .transpose()?;
        let command = self
            .command
            .as_ref()
            .map(|command| {
                command
                    .expand(macros)
                    .map_err(|error| error.in_field("command"))
            })
            .transpose()?;
        Ok(HealthCheck {
            http,
            tcp,
            command,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::InstallRules;

    fn read(health_check: &str) -> Result<HealthCheck, String> {
        let text =
            format!(r#"{{"runService": {{"command": "./run", "healthCheck": {health_check}}}}}"#);
        InstallRules::from_json(&text)
            .map(|rules| {
                rules
                    .run_service
                    .and_then(|run| run.health_check)
                    .expect("a health check")
            })
            .map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let check = read(r#"{"tcp": "127.0.0.1:8080"}"#).expect("valid");
        assert_eq!(
            check,
            HealthCheck::new(Probe::Tcp("127.0.0.1:8080".to_owned()))
        );
        let check = read(
            r#"{"http": "http://127.0.0.1:%%PORT%%/health", "intervalMs": 500, "timeoutMs": 200,
                "healthyAfter": 2, "unhealthyAfter": 4, "startWindowMs": 9000}"#,
        )
        .expect("valid");
        assert_eq!(
            (
                check.interval_ms,
                check.timeout_ms,
                check.healthy_after,
                check.unhealthy_after,
                check.start_window_ms
            ),
            (500, 200, 2, 4, 9000)
        );
        let check =
            read(r#"{"command": {"command": "./check.sh", "exitCode": 3}}"#).expect("valid");
        assert!(
            matches!(check.probe(), Some(Probe::Command(command)) if command.exit_code == Some(3))
        );
    }

    #[test]
    fn errors_name_the_field() {
        // (healthCheck as written, what the error must hold)
        let cases = [
            (
                r#"{}"#,
                "runService.healthCheck: give exactly one probe, `http`, `tcp` or `command` (0 given)",
            ),
            (
                r#"{"tcp": "a:1", "http": "http://a"}"#,
                "runService.healthCheck: give exactly one probe, `http`, `tcp` or `command` (2 given)",
            ),
            (
                r#"{"http": "ftp://a"}"#,
                "runService.healthCheck: http: `ftp://a` is not an http:// or https:// URL",
            ),
            (
                r#"{"http": "http:///x"}"#,
                "runService.healthCheck: http: `http:///x` names no host",
            ),
            (
                r#"{"tcp": "8080"}"#,
                "runService.healthCheck: tcp: `8080` is not `host:port`",
            ),
            (
                r#"{"tcp": "a:1", "intervalMs": 0}"#,
                "runService.healthCheck.intervalMs: invalid value: integer `0`, expected a number from 1 up",
            ),
            (
                r#"{"tcp": "a:1", "healthyAfter": 0}"#,
                "runService.healthCheck.healthyAfter: invalid value: integer `0`",
            ),
            (
                r#"{"tcp": "a:1", "interval": 5}"#,
                "runService.healthCheck.interval: unknown field `interval`",
            ),
        ];
        for (written, expected) in cases {
            let error = read(written).expect_err(written);
            assert!(error.contains(expected), "{written}: {error}");
        }
    }

    #[test]
    fn macros_come_from_the_install_macros_and_the_run_environment() {
        let rules = InstallRules::from_json(
            r#"{"runService": {"command": "./run", "env": {"PORT": "80%%role%%"},
                "healthCheck": {"http": "http://127.0.0.1:%%PORT%%/v/%%version%%"}}}"#,
        )
        .expect("valid");
        let macros = Macros::new().with("version", "1.2").with("role", "81");
        let run = rules
            .expand(&macros)
            .expect("expands")
            .run_service
            .expect("run");
        let check = run.health_check.expect("health check");
        assert_eq!(check.http.as_deref(), Some("http://127.0.0.1:8081/v/1.2"));
        let rules = InstallRules::from_json(
            r#"{"runService": {"command": "./run", "healthCheck": {"tcp": "h:%%nope%%"}}}"#,
        )
        .expect("valid");
        let error = rules.expand(&macros).expect_err("undefined macro");
        assert!(
            error.to_string().contains("runService.healthCheck.tcp"),
            "{error}"
        );
    }
}
