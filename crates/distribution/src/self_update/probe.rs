//! Step 2 of a self-update: the staged binary is run as `distribution probe --config …`
//! (it loads the config, checks the store read-only, prints its version) and must answer
//! [`PROBE_REPLY`] and exit 0 within the probe timeout. A binary that cannot run here
//! (another architecture, missing libraries, a crash at start, a store it cannot open) is
//! never swapped in.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::{PROBE_REPLY, SelfUpdateError};

/// The probe's own side, run by the new binary: the store of `config` checked read-only;
/// the line to print.
pub async fn answer(config: &crate::config::DistributionConfig) -> Result<String, SelfUpdateError> {
    let version = env!("CARGO_PKG_VERSION");
    let store =
        vupdate_store::probe(&config.store)
            .await
            .map_err(|error| SelfUpdateError::Probe {
                version: version.to_owned(),
                error: error.to_string(),
            })?;
    Ok(format!(
        "{PROBE_REPLY} version={version} store={} schema={}",
        store.description,
        store
            .schema
            .map_or_else(|| "-".to_owned(), |schema| schema.to_string())
    ))
}

/// At most this much of the probe's output is kept for the reason of a failure.
const KEEP: usize = 2000;

/// Runs the probe of `binary` on `config`; the version it says it is.
pub async fn probe(
    binary: &Path,
    config: &Path,
    timeout: Duration,
    version: &str,
) -> Result<String, SelfUpdateError> {
    let fail = |error: String| SelfUpdateError::Probe {
        version: version.to_owned(),
        error,
    };
    // A short-lived check of the new program, not a build: the builder's process groups
    // and leases do not apply; the child is killed when the wait ends early.
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["distribution", "probe", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Just downloaded: a builder forked meanwhile may hold it open for a moment.
    let child = vupdate_process::spawn_when_not_busy(&mut command)
        .map_err(|e| fail(format!("cannot run {}: {e}", binary.display())))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => output.map_err(|e| fail(e.to_string()))?,
        Err(_) => {
            return Err(fail(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            )));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reply = stdout
        .lines()
        .find_map(|line| line.strip_prefix(PROBE_REPLY))
        .map(str::trim);
    match (output.status.success(), reply) {
        (true, Some(reply)) => Ok(reply.to_owned()),
        (success, _) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let said = stderr.trim();
            let start = (said.len().saturating_sub(KEEP)..said.len())
                .find(|at| said.is_char_boundary(*at))
                .unwrap_or(said.len());
            let said = &said[start..];
            Err(fail(format!(
                "{}{}",
                if success {
                    format!("it exited 0 without the `{PROBE_REPLY}` line")
                } else {
                    format!("it ended with {}", output.status)
                },
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            )))
        }
    }
}
