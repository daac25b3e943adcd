//! `runService`: how the updater starts, logs, watches and restarts a service.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::check;
use super::command::{expand_args, expand_env, expand_field};
use super::health::HealthCheck;
use super::pattern::Pattern;
use super::signal::StopSignal;
use crate::macros::{MacroError, Macros, is_macro_name};

/// The default `faultFilesMatch`: a file named `core`, as the original.
pub const DEFAULT_FAULT_FILES_MATCH: &str = "core";

/// The default `stopTimeoutMs`: how long a service has to stop before it is killed.
pub const DEFAULT_STOP_TIMEOUT_MS: u64 = 5000;

/// The rules to run a service, as written in `install.json`.
///
/// `stopSignal`, `stopTimeoutMs` and `healthCheck` are vupdate extensions; the other fields are the
/// original's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunService {
    /// The program to run (never empty), relative to the service's `current/` directory.
    #[serde(deserialize_with = "check::command")]
    pub command: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables added to the environment it inherits.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Whether and how to keep its output in local log files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_logs: Option<WriteLogs>,
    /// Whether to send its output to the distribution server.
    #[serde(default)]
    pub upload_logs: bool,
    /// Files in the service directory, whole name matching, to attach to a fault report.
    #[serde(default = "default_fault_files_match")]
    pub fault_files_match: Pattern,
    /// Whether to start it again after it ends by itself.
    #[serde(default = "default_true")]
    pub restart_on_fault: bool,
    /// Resource limits that make the updater restart it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_conditions: Option<RestartConditions>,
    /// The signal sent to ask it to stop (vupdate extension, default `TERM`).
    #[serde(default)]
    pub stop_signal: StopSignal,
    /// How long it has after the stop signal before it is killed (vupdate extension,
    /// default 5000; 0 kills at once).
    #[serde(default = "default_stop_timeout_ms")]
    pub stop_timeout_ms: u64,
    /// How to tell that a run answers (vupdate extension): a new version is kept only once
    /// healthy, and a healthy run that stops answering is restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

/// Local log files: `<filePrefix>.log`, rotated by size, at most `maxFilesCount` kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteLogs {
    /// The directory the files go to, relative to the service's `current/` directory.
    pub directory: String,
    /// The start of each file name.
    pub file_prefix: String,
    /// The size at which a file is rotated, in megabytes (at least 1).
    #[serde(rename = "maxFileSizeMB", deserialize_with = "check::positive_u64")]
    pub max_file_size_mb: u64,
    /// How many files are kept (at least 1).
    #[serde(deserialize_with = "check::positive_u32")]
    pub max_files_count: u32,
}

/// Limits checked every `checkTimeoutMs`; passing one restarts the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartConditions {
    /// Memory of the whole process tree, in megabytes (at least 1).
    #[serde(
        rename = "maxMemoryMB",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "check::positive_u64_opt"
    )]
    pub max_memory_mb: Option<u64>,
    /// CPU use held over a duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu: Option<MaxCpu>,
    /// Stop with `SIGQUIT` to get a core dump instead of killing.
    #[serde(default)]
    pub make_core: bool,
    /// The interval between checks, in milliseconds (at least 1).
    #[serde(deserialize_with = "check::positive_u64")]
    pub check_timeout_ms: u64,
}

/// CPU use above `percents` for `durationSec` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaxCpu {
    /// Percent of one core (100 is one core fully busy), from 1 to 10000 (100 cores).
    #[serde(deserialize_with = "check::cpu_percents")]
    pub percents: u32,
    /// How long the use must last, in seconds.
    pub duration_sec: u64,
}

fn default_fault_files_match() -> Pattern {
    Pattern::new(DEFAULT_FAULT_FILES_MATCH).expect("`core` is a valid regular expression")
}

fn default_true() -> bool {
    true
}

fn default_stop_timeout_ms() -> u64 {
    DEFAULT_STOP_TIMEOUT_MS
}

impl RunService {
    /// Rules to run `command` with every optional field at its default.
    pub fn new(command: impl Into<String>) -> Self {
        RunService {
            command: command.into(),
            args: Vec::new(),
            env: IndexMap::new(),
            write_logs: None,
            upload_logs: false,
            fault_files_match: default_fault_files_match(),
            restart_on_fault: true,
            restart_conditions: None,
            stop_signal: StopSignal::default(),
            stop_timeout_ms: DEFAULT_STOP_TIMEOUT_MS,
            health_check: None,
        }
    }

    /// Expands macros in the command, arguments, environment values, log directory and file
    /// prefix, and fault file pattern; an undefined macro is an error naming the field.
    pub fn expand(&self, macros: &Macros) -> Result<RunService, MacroError> {
        let write_logs = match &self.write_logs {
            None => None,
            Some(logs) => Some(WriteLogs {
                directory: expand_field(macros, &logs.directory, "directory")
                    .map_err(|error| error.in_field("writeLogs"))?,
                file_prefix: expand_field(macros, &logs.file_prefix, "filePrefix")
                    .map_err(|error| error.in_field("writeLogs"))?,
                ..logs.clone()
            }),
        };
        Ok(RunService {
            command: expand_field(macros, &self.command, "command")?,
            args: expand_args(macros, &self.args)?,
            env: expand_env(macros, &self.env)?,
            write_logs,
            fault_files_match: self
                .fault_files_match
                .expand(macros)
                .map_err(|error| error.in_field("faultFilesMatch"))?,
            health_check: self
                .health_check
                .as_ref()
                .map(|check| {
                    check
                        .expand(&self.health_macros(macros))
                        .map_err(|error| error.in_field("healthCheck"))
                })
                .transpose()?,
            ..self.clone()
        })
    }

    /// The macros of a health check: `macros` and each `env` variable of the run by its
    /// name (`%%PORT%%` for `env: {"PORT": "8081"}`), its value expanded first; a macro
    /// `macros` defines keeps its value.
    fn health_macros(&self, macros: &Macros) -> Macros {
        let mut all = macros.clone();
        for (name, value) in &self.env {
            if is_macro_name(name) && macros.get(name).is_none() {
                all.insert(name.clone(), macros.expand_known(value).0);
            }
        }
        all
    }
}
