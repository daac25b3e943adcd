//! The updater's configuration, `updater.yaml`: one documented struct with defaults,
//! validated at load (instance id, distribution URL, the access token or its file, extra
//! trusted certificates, services, durations and sizes), relative paths resolved against the file's folder,
//! every error naming `file:line:column` and the field.
//!
//! A full, commented example is `examples/updater.yaml` at the workspace root.

mod raw;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;
use vupdate_core::paths::clean;
use vupdate_core::service::{Role, ServiceInstance, ServiceName};

use crate::Error;
use crate::logs::{DrainOptions, LogOptions};
use crate::runner::RunnerOptions;
use crate::supervisor::{CgroupMode, RestartPolicy, SupervisorOptions};
use raw::{RawCgroups, RawConfig, RawService};

/// The name of the file when the text did not come from one.
const INLINE: &str = "updater.yaml";

/// Where the updater's access token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessToken {
    /// Written in the config file.
    Inline(String),
    /// In a file of its own (read at each use, so it can be rotated), checked to exist.
    File(PathBuf),
}

impl AccessToken {
    /// The token, read from its file when it has one (surrounding whitespace trimmed).
    pub fn read(&self) -> Result<String, Error> {
        match self {
            AccessToken::Inline(token) => Ok(token.clone()),
            AccessToken::File(path) => Ok(std::fs::read_to_string(path)
                .map_err(Error::io("read the access token file", path))?
                .trim()
                .to_owned()),
        }
    }
}

/// How the updater hands over to a new version of itself (see [`crate::handover`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfUpdateOptions {
    /// How long the new binary may take to answer the probe before it is executed.
    pub probe_timeout: Duration,
    /// How long the new process has to adopt every run and be ready before the previous
    /// binary takes over again.
    pub ready_window: Duration,
    /// How long a probed binary waits for the binary's `main` to hand over to it before
    /// its start counts as failed.
    pub handover_wait: Duration,
}

impl Default for SelfUpdateOptions {
    fn default() -> Self {
        SelfUpdateOptions {
            probe_timeout: Duration::from_secs(10),
            ready_window: Duration::from_secs(30),
            handover_wait: Duration::from_secs(600),
        }
    }
}

/// The whole configuration of an updater, defaults applied and every path absolute: a
/// relative one is resolved once, against the folder of the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdaterConfig {
    /// This VM's instance id, as the state reports name it (`instance`).
    pub instance: String,
    /// The distribution server's base URL, `http://` or `https://`, no trailing `/`.
    pub distribution_url: String,
    /// The access token of the updater's service account.
    pub access_token: AccessToken,
    /// A PEM file of extra root certificates to trust for the distribution's HTTPS (its
    /// self-signed certificate, say), besides the system's; checked to exist.
    pub ca_file: Option<PathBuf>,
    /// Trust exactly the distribution presenting this public key (`sha256//BASE64`, a
    /// self-signed distribution's pin), instead of certificate authorities and `caFile`.
    pub pinned_public_key: Option<vupdate_client::PublicKeyPin>,
    /// Where the services' directories are; default the config file's folder.
    pub work_directory: PathBuf,
    /// The services to run; empty when the command line gives them.
    pub services: Vec<ServiceInstance>,
    /// This VM's labels (`labels: {ring: canary, zone: eu}`), sent with its state reports;
    /// rollout waves select instances by them.
    pub labels: BTreeMap<String, String>,
    /// How often desired versions are polled while the subscription is down; default 10 s.
    pub poll_interval: Duration,
    /// How often states are reported (besides on each change); default 10 s.
    pub state_interval: Duration,
    /// Install, supervision, log and fault settings of every service.
    pub runner: RunnerOptions,
    /// How the log drain batches uploads.
    pub drain: DrainOptions,
    /// How the updater hands over to a new version of itself.
    pub self_update: SelfUpdateOptions,
}

impl UpdaterConfig {
    /// Reads and validates the config file at `path`; relative paths in it are resolved
    /// against the file's folder, whatever the working directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(Error::io("read the updater config", path))?;
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let base =
            absolute(folder).map_err(Error::io("resolve the updater config's folder", path))?;
        Self::parse(&text, &base, path)
    }

    /// Parses config text as if it were a file in `base_dir` (errors name
    /// `base_dir/updater.yaml`).
    pub fn from_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Self, Error> {
        let base = base_dir.as_ref();
        let file = base.join(INLINE);
        let base =
            absolute(base).map_err(Error::io("resolve the updater config's folder", &file))?;
        Self::parse(text, &base, &file)
    }

    fn parse(text: &str, base: &Path, file: &Path) -> Result<Self, Error> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|error| Error::Config {
            file: file.to_owned(),
            location: error
                .location()
                .map(|location| format!("{}:{}", location.line(), location.column())),
            message: plain_message(&error),
        })?;
        resolve(raw, base, file)
    }
}

/// `folder` as an absolute, cleaned path (against the working directory when relative),
/// so service directories and token files stay right whatever a process's working directory.
fn absolute(folder: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(folder).map(|folder| clean(&folder))
}

/// The parser's message without its own location (the error adds `file:line:column`).
fn plain_message(error: &serde_saphyr::Error) -> String {
    let text = error.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    });
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn at<T>(file: &Path, spanned: &Spanned<T>, message: String) -> Error {
    Error::Config {
        file: file.to_owned(),
        location: Some(format!(
            "{}:{}",
            spanned.referenced.line(),
            spanned.referenced.column()
        )),
        message,
    }
}

/// `labels`: names and values non-empty, without control characters.
fn labels(
    raw: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    file: &Path,
) -> Result<BTreeMap<String, String>, Error> {
    let Some(raw) = raw else {
        return Ok(BTreeMap::new());
    };
    let bad = |text: &str| text.trim().is_empty() || text.chars().any(char::is_control);
    let mut labels = BTreeMap::new();
    for (name, value) in raw.value {
        if bad(&name) {
            return Err(at(
                file,
                &value,
                format!("`labels`: the label name `{name}` is empty or holds control characters"),
            ));
        }
        if bad(&value.value) {
            return Err(at(
                file,
                &value,
                format!("`labels.{name}`: give a non-empty value without control characters"),
            ));
        }
        labels.insert(name, value.value);
    }
    Ok(labels)
}

fn resolve(raw: RawConfig, base: &Path, file: &Path) -> Result<UpdaterConfig, Error> {
    // `base` is absolute: joining replaces it with an absolute path and completes a
    // relative one, so every path below is resolved exactly once.
    let absolute = |path: PathBuf| clean(&base.join(path));
    let instance = raw.instance.value.trim().to_owned();
    if instance.is_empty() || instance.chars().any(char::is_control) {
        return Err(at(
            file,
            &raw.instance,
            "`instance`: give this VM's instance id (non-empty, no control characters)".to_owned(),
        ));
    }
    let labels = labels(raw.labels, file)?;
    let url = raw
        .distribution_url
        .value
        .trim()
        .trim_end_matches('/')
        .to_owned();
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https")
            && !rest.is_empty()
            && !rest.contains(char::is_whitespace)
    });
    if !scheme_ok {
        return Err(at(
            file,
            &raw.distribution_url,
            format!("`distributionUrl`: `{url}` is not an http:// or https:// URL"),
        ));
    }
    let access_token = match (raw.access_token, raw.access_token_file) {
        (Some(token), None) => {
            if token.value.trim().is_empty() {
                return Err(at(
                    file,
                    &token,
                    "`accessToken`: the token is empty".to_owned(),
                ));
            }
            AccessToken::Inline(token.value.trim().to_owned())
        }
        (None, Some(path)) => {
            let resolved = absolute(path.value.clone());
            if !resolved.is_file() {
                return Err(at(
                    file,
                    &path,
                    format!("`accessTokenFile`: no such file {}", resolved.display()),
                ));
            }
            AccessToken::File(resolved)
        }
        (Some(token), Some(_)) => {
            return Err(at(
                file,
                &token,
                "give either `accessToken` or `accessTokenFile`, not both".to_owned(),
            ));
        }
        (None, None) => {
            return Err(Error::Config {
                file: file.to_owned(),
                location: None,
                message:
                    "give `accessToken` or `accessTokenFile` (the updater's service account token)"
                        .to_owned(),
            });
        }
    };
    let raw_ca_file_given = raw.ca_file.is_some();
    let ca_file = match raw.ca_file {
        Some(path) => {
            let resolved = absolute(path.value.clone());
            if !resolved.is_file() {
                return Err(at(
                    file,
                    &path,
                    format!("`caFile`: no such file {}", resolved.display()),
                ));
            }
            Some(resolved)
        }
        None => None,
    };
    let pinned_public_key = match raw.pinned_public_key {
        Some(pin) => {
            if raw_ca_file_given {
                return Err(at(
                    file,
                    &pin,
                    "`pinnedPublicKey` and `caFile` exclude each other: a pinned key is trusted alone; remove one".to_owned(),
                ));
            }
            Some(
                pin.value
                    .parse()
                    .map_err(|message| at(file, &pin, format!("`pinnedPublicKey`: {message}")))?,
            )
        }
        None => None,
    };
    let services = raw
        .services
        .into_iter()
        .enumerate()
        .map(|(index, service)| {
            let location = Some(format!(
                "{}:{}",
                service.referenced.line(),
                service.referenced.column()
            ));
            service_instance(service.value)
                .and_then(|instance| {
                    if instance.service.as_str() == crate::handover::UPDATER_SERVICE {
                        Err(format!("`{instance}` is the updater itself, which updates itself: do not list it"))
                    } else {
                        Ok(instance)
                    }
                })
                .map_err(|message| Error::Config {
                file: file.to_owned(),
                location,
                message: format!("`services[{index}]`: {message}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let duration =
        |value: Option<raw::HumanDuration>, default: Duration| value.map_or(default, |d| d.0);
    let defaults = RunnerOptions::default();
    let restart_defaults = RestartPolicy::default();
    let supervisor_defaults = SupervisorOptions::default();
    let (install, restart, logs, faults) = (raw.install, raw.restart, raw.logs, raw.faults);
    let self_defaults = SelfUpdateOptions::default();
    let self_update = SelfUpdateOptions {
        probe_timeout: duration(raw.self_update.probe_timeout, self_defaults.probe_timeout),
        ready_window: duration(raw.self_update.ready_window, self_defaults.ready_window),
        handover_wait: duration(raw.self_update.handover_wait, self_defaults.handover_wait),
    };
    let mb = |value: Option<raw::Positive>, default: u64| {
        value.map_or(default, |v| u64::from(v.0) * 1024 * 1024)
    };
    let runner = RunnerOptions {
        start_window: duration(install.start_window, defaults.start_window),
        start_attempts: install
            .start_attempts
            .map_or(defaults.start_attempts, |v| v.0),
        command_timeout: duration(install.command_timeout, defaults.command_timeout),
        max_image_bytes: mb(install.max_image_mb, defaults.max_image_bytes),
        supervisor: SupervisorOptions {
            restart: RestartPolicy {
                initial_delay: duration(restart.initial_delay, restart_defaults.initial_delay),
                max_delay: duration(restart.max_delay, restart_defaults.max_delay),
                stable_after: duration(restart.stable_after, restart_defaults.stable_after),
                crash_loop_after: restart
                    .crash_loop_after
                    .map_or(restart_defaults.crash_loop_after, |v| v.0),
            },
            cgroups: match raw.cgroups {
                None | Some(RawCgroups::Auto) => CgroupMode::Auto,
                Some(RawCgroups::Off) => CgroupMode::Off,
            },
            sample_interval: duration(restart.sample_interval, supervisor_defaults.sample_interval),
            ..supervisor_defaults
        },
        log: LogOptions {
            tail_lines: logs
                .tail_lines
                .map_or(defaults.log.tail_lines, |v| v as usize),
            ..defaults.log
        },
        spool_max_bytes: mb(logs.max_spool_mb, defaults.spool_max_bytes),
        faults_max_bytes: mb(faults.max_total_mb, defaults.faults_max_bytes),
        ..defaults
    };
    let drain_defaults = DrainOptions::default();
    let drain = DrainOptions {
        max_lines: logs
            .upload_batch_lines
            .map_or(drain_defaults.max_lines, |v| v.0 as usize),
        max_wait: duration(logs.upload_batch_wait, drain_defaults.max_wait),
        ..drain_defaults
    };
    Ok(UpdaterConfig {
        instance,
        distribution_url: url,
        access_token,
        ca_file,
        pinned_public_key,
        work_directory: raw
            .work_directory
            .map(absolute)
            .unwrap_or_else(|| base.to_owned()),
        services,
        labels,
        poll_interval: duration(raw.poll_interval, Duration::from_secs(10)),
        state_interval: duration(raw.state_interval, Duration::from_secs(10)),
        runner,
        drain,
        self_update,
    })
}

fn service_instance(service: RawService) -> Result<ServiceInstance, String> {
    let (name, role) = match service {
        RawService::Name(name) => (name, None),
        RawService::WithRole { service, role } => (service, role),
    };
    let service: ServiceName = name.parse().map_err(|error| format!("{error}"))?;
    let role: Option<Role> = role
        .map(|role| role.parse())
        .transpose()
        .map_err(|error| format!("{error}"))?;
    Ok(ServiceInstance { service, role })
}
