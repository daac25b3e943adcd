//! The distribution's configuration, `distribution.yaml`: one documented struct with the
//! original's defaults, validated at load (names, durations, TLS files) and with every
//! relative path resolved against the folder that holds the file.
//!
//! A full, commented example is `examples/distribution.yaml` at the workspace root.

mod duration;
mod limits;
mod object_store;
mod raw;
mod size;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use vupdate_core::paths::clean;
use vupdate_core::version::is_distribution_name;
use vupdate_store::{ExpiryPolicy, Schedule, StoreConfig};

pub use limits::{ConnectionLimits, GraphqlLimits, LimitsConfig, LoginLimits, RequestLimits};
pub use object_store::S3Config;
use raw::{RawConfig, RawSource, RawStore};

/// The default address the server listens on.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 8000);

/// The whole configuration of a distribution server, defaults applied and every path
/// absolute: a relative one is resolved once, against the folder of the config file.
#[derive(Debug, Clone)]
pub struct DistributionConfig {
    /// The distribution's name (letters, digits, `.`, `_`, `-`), e.g. `acme`.
    pub name: DistributionName,
    /// The title shown by the dashboard; defaults to the name.
    pub title: String,
    /// The instance this server runs on (the original's `instance`); default `local`.
    pub instance: String,
    /// The socket address to listen on; default `127.0.0.1:8000`.
    pub listen: SocketAddr,
    /// HTTPS certificate and key; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// Where the server keeps its data; default the config file's folder.
    pub data_directory: PathBuf,
    /// The store: SQLite (default `<data>/store.sqlite`) or MongoDB.
    pub store: StoreConfig,
    /// The Git repository whose newest valid commit is the desired state.
    pub state_repo: StateRepoConfig,
    /// Version retention.
    pub versions: VersionsConfig,
    /// How long records are kept and when expiry runs.
    pub expiration: ExpirationConfig,
    /// The file with the JWT signing key (created on first start); default `<data>/jwt.key`.
    pub jwt_key_file: PathBuf,
    /// Access tokens of service accounts to write to files at start, when the file is
    /// missing (account -> file), for an updater or builder on the same machine.
    pub token_files: BTreeMap<String, PathBuf>,
    /// How builds run.
    pub builder: BuilderConfig,
    /// What clients may ask of the server before it refuses.
    pub limits: LimitsConfig,
    /// How this distribution follows its providers (`providers.yaml`).
    pub mesh: MeshConfig,
    /// The lease replicas on one MongoDB store share: which one runs the work that runs once.
    pub lease: LeaseConfig,
    /// An S3-compatible bucket for images, shared by replicas; `None`: the data directory.
    pub object_store: Option<S3Config>,
}

/// The replicas' lease (`lease:`): held by one replica at a time, renewed well before it
/// ends, taken over by another replica once its holder stops renewing. Unused on SQLite,
/// where one server owns the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long the lease lasts unless renewed: how long the replicas wait for a dead
    /// holder; default 5 s.
    pub ttl: Duration,
    /// How often the holder renews it (and a standby replica tries to take it); default
    /// 1.5 s, at most half the ttl.
    pub renew_every: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            ttl: Duration::from_secs(5),
            renew_every: Duration::from_millis(1500),
        }
    }
}

/// How a consumer distribution follows its providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshConfig {
    /// How often each provider's offer is polled, as a safety net beside the
    /// subscription (or alone without it); default 30 s.
    pub poll_interval: Duration,
    /// Whether to follow each provider's offer by a subscription, for changes at once;
    /// default true.
    pub subscription: bool,
    /// How often instance states and fault reports are uploaded to providers with
    /// `uploadState`; default 10 s.
    pub upload_interval: Duration,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            poll_interval: Duration::from_secs(30),
            subscription: true,
            upload_interval: Duration::from_secs(10),
        }
    }
}

/// The builder settings: where builds work and how many run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderConfig {
    /// The builder's work directory (source clones, build trees, zips, kept between builds
    /// so later builds fetch instead of clone); default `<data>/builder`.
    pub directory: PathBuf,
    /// How many builds of different services may run at once (builds of one service always
    /// run one at a time); default 2, at least 1.
    pub max_parallel_builds: usize,
}

/// A distribution name: non-empty, letters, digits, `.`, `_` and `-` only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct DistributionName(String);

impl DistributionName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DistributionName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        if name.is_empty() {
            return Err("the distribution name is empty".to_owned());
        }
        if is_distribution_name(&name) {
            return Ok(DistributionName(name));
        }
        // Name the first character the rule refuses.
        let bad = name
            .chars()
            .find(|c| !is_distribution_name(c.encode_utf8(&mut [0; 4])))
            .expect("a non-empty name the rule refuses has a refused character");
        Err(format!(
            "invalid distribution name `{name}`: `{bad}` is not allowed (use letters, digits, `.`, `_`, `-`)"
        ))
    }
}

impl FromStr for DistributionName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DistributionName::try_from(name.to_owned())
    }
}

impl fmt::Display for DistributionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// PEM files for HTTPS: given (both checked to exist at load), or made by the server on
/// its first start (`selfSigned`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain (PEM).
    pub certificate: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
    /// Made by the server when missing: a key, then a self-signed certificate for these
    /// names, never overwritten; `None` when the files are given.
    pub self_signed: Option<SelfSigned>,
}

/// What a self-signed certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSigned {
    /// Host names and IP addresses (subject alternative names); default: the instance.
    pub names: Vec<String>,
}

/// The instance a config names by default.
const DEFAULT_INSTANCE: &str = "local";

/// Where a self-signed certificate is made, in the data directory, by default.
pub const SELF_SIGNED_CERTIFICATE: &str = "tls/certificate.pem";
/// Where its key is made (0600), in the data directory, by default.
pub const SELF_SIGNED_KEY: &str = "tls/key.pem";

/// Where the state repository is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRepoSource {
    /// A local repository, read in place.
    Path(PathBuf),
    /// A remote repository, cloned into [`StateRepoConfig::clone`] and fetched.
    Url(String),
}

/// The state repository settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRepoConfig {
    /// A local path or a remote URL.
    pub source: StateRepoSource,
    /// The branch followed; default `main`.
    pub branch: String,
    /// How often the repository is fetched; default 30 s.
    pub poll_interval: Duration,
    /// Where the clone of a remote repository lives; default `<data>/state`.
    pub clone: PathBuf,
    /// The secret Git hosts sign push webhooks with (created when missing); default
    /// `<data>/webhook.secret`.
    pub webhook_secret_file: PathBuf,
}

/// Version retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionsConfig {
    /// The most versions kept per service (the original's `maxHistorySize`); default 25.
    pub max_history_size: u32,
}

/// Record lifetimes and the expiry schedule.
#[derive(Debug, Clone)]
pub struct ExpirationConfig {
    /// Service states not refreshed for this long are dead; default 60 s.
    pub service_states: Duration,
    /// Service log records; default 7 days.
    pub service_logs: Duration,
    /// Task log records; default 365 days.
    pub task_logs: Duration,
    /// Ended tasks; default 365 days (the original's task TTL).
    pub tasks: Duration,
    /// Fault reports by age; default 7 days.
    pub fault_reports: Duration,
    /// The most fault reports kept; default 100.
    pub max_fault_reports: u64,
    /// When expiry runs (5-field crontab, UTC); default `0 3 * * *`.
    pub schedule: Schedule,
}

impl ExpirationConfig {
    /// The store's expiry policy for these settings.
    pub fn policy(&self) -> ExpiryPolicy {
        ExpiryPolicy {
            service_logs: self.service_logs,
            task_logs: self.task_logs,
            tasks: self.tasks,
            fault_reports_age: self.fault_reports,
            fault_reports_max_count: self.max_fault_reports,
            dead_states: self.service_states,
        }
    }
}

/// Why `distribution.yaml` could not be loaded; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the distribution config {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The YAML is malformed or a field is unknown, missing or invalid.
    #[error("{}:{}: {message}", file.display(), location.as_deref().unwrap_or("?"))]
    Parse {
        /// The file.
        file: PathBuf,
        /// `line:column`, when the parser knows it.
        location: Option<String>,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A value is well-formed but unusable (e.g. a TLS file that does not exist).
    #[error("{}: `{field}`: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The field, as written in the file (e.g. `tls.certificate`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The name of the file when the text did not come from one.
const INLINE: &str = "distribution.yaml";

impl DistributionConfig {
    /// Reads and validates the config file at `path`; relative paths in it are resolved
    /// against the file's folder, whatever the working directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            error: source,
        };
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let base = absolute(folder_of(path)).map_err(read_error)?;
        Self::parse(&text, &base, path)
    }

    /// Parses config text as if it were a file in `base_dir` (errors name
    /// `base_dir/distribution.yaml`).
    pub fn from_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let base = base_dir.as_ref();
        let file = base.join(INLINE);
        let base = absolute(base).map_err(|source| ConfigError::Read {
            path: file.clone(),
            error: source,
        })?;
        Self::parse(text, &base, &file)
    }

    fn parse(text: &str, base: &Path, file: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|error| {
            let location = error
                .location()
                .map(|l| format!("{}:{}", l.line(), l.column()));
            ConfigError::Parse {
                file: file.to_owned(),
                location,
                message: plain_message(&error),
            }
        })?;
        resolve(raw, base, file)
    }
}

/// The folder relative paths in the file at `path` are resolved against; a bare file name
/// (whose parent is "") means the current folder.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `folder` as an absolute, cleaned path (against the working directory when relative),
/// so the paths resolved against it stay right when a child process runs elsewhere.
fn absolute(folder: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(folder).map(|folder| clean(&folder))
}

/// The parser's message without its own location (the error adds `file:line:column`).
fn plain_message(error: &serde_saphyr::Error) -> String {
    let text = error.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    });
    // The plain rendering ends with ` at line L, column C` when it knows the position.
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// `tls` resolved: the given files must exist; self-signed ones are made at start.
fn resolve_tls(
    tls: raw::RawTls,
    at: &dyn Fn(PathBuf) -> PathBuf,
    data: &Path,
    instance: &str,
    file: &Path,
) -> Result<TlsConfig, ConfigError> {
    let invalid = |field, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        field,
        message,
    };
    let Some(self_signed) = tls.self_signed else {
        let (Some(certificate), Some(key)) = (tls.certificate, tls.key) else {
            return Err(invalid(
                "tls",
                "give `certificate` and `key` (PEM files), or `selfSigned: {names: [host, ...]}` for a certificate the server makes".to_owned(),
            ));
        };
        let tls = TlsConfig {
            certificate: at(certificate),
            key: at(key),
            self_signed: None,
        };
        for (field, path) in [("tls.certificate", &tls.certificate), ("tls.key", &tls.key)] {
            if !path.is_file() {
                return Err(invalid(field, format!("no such file {}", path.display())));
            }
        }
        return Ok(tls);
    };
    let mut names = self_signed.names;
    if names.is_empty() {
        names.push(instance.to_owned());
    }
    if let Err(error) = rcgen::CertificateParams::new(names.clone()) {
        return Err(invalid(
            "tls.selfSigned.names",
            format!("give host names or IP addresses: {error}"),
        ));
    }
    Ok(TlsConfig {
        certificate: tls
            .certificate
            .map(at)
            .unwrap_or_else(|| data.join(SELF_SIGNED_CERTIFICATE)),
        key: tls
            .key
            .map(at)
            .unwrap_or_else(|| data.join(SELF_SIGNED_KEY)),
        self_signed: Some(SelfSigned { names }),
    })
}

fn resolve(raw: RawConfig, base: &Path, file: &Path) -> Result<DistributionConfig, ConfigError> {
    // `base` is absolute: joining replaces it with an absolute path and completes a
    // relative one, so every path below is resolved exactly once.
    let at = |path: PathBuf| clean(&base.join(path));
    let data = raw
        .data_directory
        .map(at)
        .unwrap_or_else(|| base.to_owned());
    let in_data = |path: Option<PathBuf>, default: &str| match path {
        Some(path) => at(path),
        None => data.join(default),
    };
    let tls = match raw.tls {
        None => None,
        Some(tls) => Some(resolve_tls(
            tls,
            &at,
            &data,
            raw.instance.as_deref().unwrap_or(DEFAULT_INSTANCE),
            file,
        )?),
    };
    let store = match raw.store {
        None => StoreConfig::Sqlite {
            path: data.join("store.sqlite"),
        },
        Some(RawStore::Sqlite { path }) => StoreConfig::Sqlite {
            path: in_data(path, "store.sqlite"),
        },
        Some(RawStore::Mongo {
            url,
            database,
            logs,
        }) => StoreConfig::Mongo {
            url,
            database,
            logs,
        },
    };
    let repo = raw.state_repo;
    let state_repo = StateRepoConfig {
        source: match repo.source {
            RawSource::Path(path) => StateRepoSource::Path(at(path)),
            RawSource::Url(url) => StateRepoSource::Url(url),
        },
        branch: repo.branch.unwrap_or_else(|| "main".to_owned()),
        poll_interval: repo.poll_interval.map_or(Duration::from_secs(30), |d| d.0),
        clone: in_data(repo.clone, "state"),
        webhook_secret_file: in_data(repo.webhook_secret_file, crate::webhook::FILE_NAME),
    };
    let defaults = ExpiryPolicy::default();
    let e = raw.expiration;
    let schedule = match e.schedule {
        Some(schedule) => schedule.0,
        None => "0 3 * * *"
            .parse()
            .expect("the default schedule is a valid crontab line"),
    };
    let expiration = ExpirationConfig {
        service_states: e.service_states.map_or(defaults.dead_states, |d| d.0),
        service_logs: e.service_logs.map_or(defaults.service_logs, |d| d.0),
        task_logs: e.task_logs.map_or(defaults.task_logs, |d| d.0),
        tasks: e.tasks.map_or(defaults.tasks, |d| d.0),
        fault_reports: e.fault_reports.map_or(defaults.fault_reports_age, |d| d.0),
        max_fault_reports: e
            .max_fault_reports
            .unwrap_or(defaults.fault_reports_max_count),
        schedule,
    };
    let max_parallel_builds = raw.builder.max_parallel_builds.unwrap_or(2);
    if max_parallel_builds == 0 {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            field: "builder.maxParallelBuilds",
            message: "must be at least 1 (builds would never start)".to_owned(),
        });
    }
    let builder = BuilderConfig {
        directory: in_data(raw.builder.directory, "builder"),
        max_parallel_builds,
    };
    let defaults = MeshConfig::default();
    let mesh = MeshConfig {
        poll_interval: raw
            .mesh
            .poll_interval
            .map_or(defaults.poll_interval, |d| d.0),
        subscription: raw.mesh.subscription.unwrap_or(defaults.subscription),
        upload_interval: raw
            .mesh
            .upload_interval
            .map_or(defaults.upload_interval, |d| d.0),
    };
    for (field, interval) in [
        ("mesh.pollInterval", mesh.poll_interval),
        ("mesh.uploadInterval", mesh.upload_interval),
    ] {
        if interval.is_zero() {
            return Err(ConfigError::Invalid {
                file: file.to_owned(),
                field,
                message: "must be longer than 0s".to_owned(),
            });
        }
    }
    let lease = lease(&raw.lease, file)?;
    let limits = raw
        .limits
        .resolve()
        .map_err(|(field, message)| ConfigError::Invalid {
            file: file.to_owned(),
            field,
            message,
        })?;
    let title = raw.title.unwrap_or_else(|| raw.name.as_str().to_owned());
    Ok(DistributionConfig {
        name: raw.name,
        title,
        instance: raw.instance.unwrap_or_else(|| DEFAULT_INSTANCE.to_owned()),
        listen: raw.listen.unwrap_or(DEFAULT_LISTEN),
        tls,
        store,
        state_repo,
        versions: VersionsConfig {
            max_history_size: raw.versions.max_history_size.unwrap_or(25),
        },
        expiration,
        jwt_key_file: in_data(raw.jwt_key_file, "jwt.key"),
        token_files: raw
            .token_files
            .into_iter()
            .map(|(account, path)| (account, at(path)))
            .collect(),
        builder,
        mesh,
        lease,
        object_store: raw.object_store.map(|store| store.resolve(at)),
        limits,
        data_directory: data,
    })
}

/// `lease:` with its defaults; a renewal period of more than half the ttl is refused (one
/// late renewal would lose the lease).
fn lease(raw: &raw::RawLease, file: &Path) -> Result<LeaseConfig, ConfigError> {
    let defaults = LeaseConfig::default();
    let config = LeaseConfig {
        ttl: raw.ttl.map_or(defaults.ttl, |d| d.0),
        renew_every: raw.renew_every.map_or(defaults.renew_every, |d| d.0),
    };
    let invalid = |field, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        field,
        message,
    };
    if config.renew_every.is_zero() {
        return Err(invalid(
            "lease.renewEvery",
            "must be longer than 0s".to_owned(),
        ));
    }
    if config.renew_every.saturating_mul(2) > config.ttl {
        return Err(invalid(
            "lease.renewEvery",
            format!(
                "must be at most half of lease.ttl ({} ms), so one late renewal does not lose the lease",
                config.ttl.as_millis()
            ),
        ));
    }
    Ok(config)
}
