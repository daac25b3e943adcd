//! Health checks of a run: the probes (`runService.healthCheck`) and the count of passes
//! and failures in a row that make a run healthy or unhealthy.
//!
//! Probes are cheap by construction: no thread and no timer per service. A run's next
//! probe is one more deadline in its supervisor's `select!` (tokio's one timer wheel for
//! every service), and a probe in flight is a short task that loop awaits. HTTP probes
//! share one client (one connection pool); a TCP probe is one connect; a command probe is
//! a process started by `crate::spawn`, killed tree-wide at its timeout; what it leaves
//! running is found by its process group and its output pipes, so `/proc` is read only
//! when it hung or left something (`Leftovers::Group`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use vupdate_core::update::{HealthCheck, Probe};

use crate::install::commands::{CommandContext, Leftovers, run_commands};
use crate::logs::{LogOptions, LogPipeline};

/// How one probe went: passed or not, and what it saw, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether the probe passed.
    pub passed: bool,
    /// What it saw (`GET http://127.0.0.1:8080/health answered 503 Service Unavailable`).
    pub evidence: String,
}

/// A probe under way: a task of its own while it lasts, so it ends within its timeout
/// (a command probe's tree killed) even when the run it probes is ended first.
pub(super) type ProbeTask = tokio::task::JoinHandle<ProbeResult>;

/// What a run's probes are to do, built once per supervisor.
#[derive(Debug, Clone)]
pub(crate) struct Prober {
    probe: Probe,
    timeout: Duration,
    instance: String,
    directory: PathBuf,
    owner: String,
    /// Where a command probe's output goes: nowhere kept (a probe every few seconds would
    /// flood the service's log); its last lines are in the evidence.
    quiet: Arc<LogPipeline>,
}

impl Prober {
    /// The prober of `check` (macros expanded) for a run in `directory`; `None` when the
    /// check has no probe.
    pub(crate) fn new(
        check: &HealthCheck,
        instance: String,
        directory: PathBuf,
        owner: String,
    ) -> Option<Prober> {
        Some(Prober {
            probe: check.probe()?,
            timeout: Duration::from_millis(check.timeout_ms),
            instance,
            directory,
            // Distinct from the run's marker, so a probe is never taken for part of the run.
            owner: format!("{owner}-probe"),
            quiet: Arc::new(LogPipeline::new(None, LogOptions::default())),
        })
    }

    /// Starts one probe; it ends within the check's timeout (a command probe's tree is
    /// killed then).
    pub(super) fn start(&self) -> ProbeTask {
        let prober = self.clone();
        tokio::spawn(async move { prober.probe().await })
    }

    /// Runs one probe.
    pub(super) async fn probe(&self) -> ProbeResult {
        match &self.probe {
            Probe::Http(url) => http(url, self.timeout).await,
            Probe::Tcp(address) => tcp(address, self.timeout).await,
            Probe::Command(command) => self.command(command).await,
        }
    }

    async fn command(&self, command: &vupdate_core::update::Command) -> ProbeResult {
        let mut command = command.clone();
        command.exit_code = Some(command.exit_code.unwrap_or(0));
        let context = CommandContext {
            instance: &self.instance,
            base: &self.directory,
            owner: &self.owner,
            pipeline: &self.quiet,
            timeout: self.timeout,
            leftovers: Leftovers::Group,
        };
        match run_commands(&context, "healthCheck", std::slice::from_ref(&command)).await {
            Ok(()) => ProbeResult {
                passed: true,
                evidence: format!("`{}` passed", command.command),
            },
            Err(error) => ProbeResult {
                passed: false,
                evidence: error.to_string(),
            },
        }
    }
}

/// The one HTTP client of every probe (no redirects followed: a health endpoint answers
/// itself).
fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // An error only says a provider is installed already, which is what is wanted.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .build()
            .expect("a client with rustls and ring installed builds")
    })
}

async fn http(url: &str, timeout: Duration) -> ProbeResult {
    let answer = http_client().get(url).timeout(timeout).send().await;
    match answer {
        Ok(response) if response.status().is_success() => ProbeResult {
            passed: true,
            evidence: format!("GET {url} answered {}", response.status()),
        },
        Ok(response) => ProbeResult {
            passed: false,
            evidence: format!("GET {url} answered {}", response.status()),
        },
        Err(error) if error.is_timeout() => ProbeResult {
            passed: false,
            evidence: format!("GET {url} got no answer within {} ms", timeout.as_millis()),
        },
        Err(error) => ProbeResult {
            passed: false,
            evidence: format!(
                "GET {url} failed: {}",
                vupdate_core::error_chain::Chain(&error)
            ),
        },
    }
}

async fn tcp(address: &str, timeout: Duration) -> ProbeResult {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => ProbeResult {
            passed: true,
            evidence: format!("connected to {address}"),
        },
        Ok(Err(error)) => ProbeResult {
            passed: false,
            evidence: format!("cannot connect to {address}: {error}"),
        },
        Err(_) => ProbeResult {
            passed: false,
            evidence: format!(
                "no connection to {address} within {} ms",
                timeout.as_millis()
            ),
        },
    }
}

/// What a probe's result changes for the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing yet.
    Same,
    /// The run just became healthy.
    Healthy,
    /// The healthy run failed `unhealthyAfter` probes in a row: restart it (the reason).
    Unhealthy(String),
}

/// Passes and failures in a row of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HealthCount {
    healthy_after: u32,
    unhealthy_after: u32,
    passes: u32,
    failures: u32,
    healthy: bool,
    /// The last failed probe's evidence, for the reason of a start window that ends.
    pub(super) last_failure: Option<String>,
}

impl HealthCount {
    pub(super) fn new(check: &HealthCheck) -> Self {
        HealthCount {
            healthy_after: check.healthy_after,
            unhealthy_after: check.unhealthy_after,
            passes: 0,
            failures: 0,
            healthy: false,
            last_failure: None,
        }
    }

    /// Counts the run as healthy already (an adopted run, kept by the previous updater
    /// process).
    pub(super) fn assume_healthy(&mut self) {
        self.healthy = true;
    }

    /// Counts one probe. Before a run is first healthy, failures only wait for the
    /// start window to end; after, `unhealthyAfter` of them in a row restart it.
    pub(super) fn count(&mut self, result: &ProbeResult) -> Verdict {
        if result.passed {
            self.passes = self.passes.saturating_add(1);
            self.failures = 0;
            if !self.healthy && self.passes >= self.healthy_after {
                self.healthy = true;
                return Verdict::Healthy;
            }
            return Verdict::Same;
        }
        self.passes = 0;
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(result.evidence.clone());
        if self.healthy && self.failures >= self.unhealthy_after {
            return Verdict::Unhealthy(format!(
                "health check failed {} times in a row: {}",
                self.failures, result.evidence
            ));
        }
        Verdict::Same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(passed: bool) -> ProbeResult {
        ProbeResult {
            passed,
            evidence: if passed { "ok" } else { "503" }.to_owned(),
        }
    }

    #[test]
    fn passes_in_row_make_healthy_and_failures_in_row_restart() {
        let mut check = HealthCheck::new(Probe::Tcp("h:1".to_owned()));
        check.healthy_after = 2;
        check.unhealthy_after = 2;
        let mut count = HealthCount::new(&check);
        // (probe passed, verdict expected)
        let steps = [
            (false, Verdict::Same),
            (true, Verdict::Same),
            (false, Verdict::Same),
            (true, Verdict::Same),
            (true, Verdict::Healthy),
            (true, Verdict::Same),
            (false, Verdict::Same),
            (true, Verdict::Same),
            (false, Verdict::Same),
            (
                false,
                Verdict::Unhealthy("health check failed 2 times in a row: 503".to_owned()),
            ),
        ];
        for (index, (passed, expected)) in steps.into_iter().enumerate() {
            assert_eq!(count.count(&result(passed)), expected, "step {index}");
        }
    }

    fn prober(probe: Probe, directory: &std::path::Path) -> Prober {
        let mut check = HealthCheck::new(probe);
        check.timeout_ms = 2000;
        Prober::new(
            &check,
            "svc".to_owned(),
            directory.to_owned(),
            "owner".to_owned(),
        )
        .expect("a probe")
    }

    #[tokio::test]
    async fn tcp_http_and_command_probes_pass_and_fail_with_evidence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        // A tiny HTTP server: `/ok` answers 200, anything else 503.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut request = vec![0u8; 1024];
                let read = stream.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..read]).into_owned();
                let status = if request.starts_with("GET /ok ") {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        let closed = {
            let spare = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            spare.local_addr().expect("address")
        };
        let mut failing = vupdate_core::update::Command::new("sh");
        failing.args = vec!["-c".to_owned(), "echo not ready; exit 3".to_owned()];
        let mut passing = vupdate_core::update::Command::new("sh");
        passing.args = vec!["-c".to_owned(), "test -d .".to_owned()];
        // (probe, passes, what the evidence holds)
        let cases = [
            (
                Probe::Tcp(address.to_string()),
                true,
                format!("connected to {address}"),
            ),
            (
                Probe::Tcp(closed.to_string()),
                false,
                format!("cannot connect to {closed}"),
            ),
            (
                Probe::Http(format!("http://{address}/ok")),
                true,
                "answered 200 OK".to_owned(),
            ),
            (
                Probe::Http(format!("http://{address}/health")),
                false,
                "answered 503 Service Unavailable".to_owned(),
            ),
            (
                Probe::Http(format!("http://{closed}/")),
                false,
                "failed".to_owned(),
            ),
            (
                Probe::Command(Box::new(passing)),
                true,
                "`sh` passed".to_owned(),
            ),
            (
                Probe::Command(Box::new(failing)),
                false,
                "expected exit code 0".to_owned(),
            ),
        ];
        for (probe, passes, evidence) in cases {
            let result = prober(probe.clone(), dir.path()).probe().await;
            assert_eq!(result.passed, passes, "{probe:?}: {result:?}");
            assert!(result.evidence.contains(&evidence), "{probe:?}: {result:?}");
        }
    }

    /// A command probe running `script` in `dir` with a timeout of `timeout_ms`. Its
    /// owner is `dir`'s own name: tests running at once are other runs, and one probe's
    /// search for what it left (by owner) must not find another test's probe.
    fn command_prober(script: &str, dir: &std::path::Path, timeout_ms: u64) -> Prober {
        let mut command = vupdate_core::update::Command::new("sh");
        command.args = vec!["-c".to_owned(), script.to_owned()];
        let mut check = HealthCheck::new(Probe::Command(Box::new(command)));
        check.timeout_ms = timeout_ms;
        let owner = dir
            .file_name()
            .expect("a named directory")
            .to_string_lossy();
        Prober::new(&check, "svc".to_owned(), dir.to_owned(), owner.into_owned()).expect("a probe")
    }

    /// Whether the process whose pid `dir/file` holds is gone (or a zombie).
    fn gone(dir: &std::path::Path, file: &str) -> bool {
        let pid: i32 = std::fs::read_to_string(dir.join(file))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        vupdate_process::table::read(pid).is_none_or(|info| info.is_zombie())
    }

    #[tokio::test]
    async fn a_command_probe_that_hangs_is_killed_at_its_timeout_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = "trap '' TERM; sleep 30 & echo $! > child.pid; wait";
        let result = command_prober(script, dir.path(), 200).probe().await;
        assert!(!result.passed);
        assert!(result.evidence.contains("killed"), "{result:?}");
        assert!(gone(dir.path(), "child.pid"), "the probe's child survived");
    }

    #[tokio::test]
    async fn what_a_command_probe_leaves_running_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // (script, what it leaves): a child in its group, its output closed (found by the
        // group); one out of the group (`setsid`) holding the output (found by the pipes).
        let cases = [
            (
                "sleep 1000 >/dev/null 2>&1 & echo $! > child.pid",
                "a child in the probe's group",
            ),
            (
                "setsid sleep 1000 & echo $! > child.pid",
                "a child in a session of its own",
            ),
        ];
        for (script, left) in cases {
            let prober = command_prober(script, dir.path(), 5000);
            let result = tokio::time::timeout(Duration::from_secs(30), prober.probe())
                .await
                .unwrap_or_else(|_| panic!("the probe leaving {left} did not end"));
            assert!(result.passed, "{left}: {result:?}");
            assert!(gone(dir.path(), "child.pid"), "{left} survived");
        }
    }
}
