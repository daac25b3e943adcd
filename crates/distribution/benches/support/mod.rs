//! What the distribution's HTTP benches share: a real distribution over a real Git state
//! repo with `services` services (in a child process of the bench binary by default, so the
//! load generator and the server are separate processes; or in the bench's own process),
//! the settings read from `BENCH_*` variables, latency summaries and CPU accounting.
//!
//! The child is the bench binary itself started again with [`SERVE_ENV`] set: it builds the
//! state repo, starts the distribution, prints one JSON line (address, tokens, data
//! directory) and serves until its stdin closes.

// Each bench binary uses its own part of this module.
#![allow(dead_code)]

pub mod calls;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::reconcile::BuildState;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Person};

/// Set (to the number of services) in the environment of the child that serves.
pub const SERVE_ENV: &str = "VUPDATE_BENCH_SERVE";

/// Set (to a count) in the environment of the child that serves: the server's connection
/// limits (`limits.connections.max` and `perAddress`) and requests from one address
/// (`limits.requests.perAddress`) instead of their defaults.
pub const MAX_CONNECTIONS_ENV: &str = "BENCH_MAX_CONNECTIONS";

/// The name of the benched distribution.
pub const DISTRIBUTION: &str = "acme";

/// A boxed error, as the benches return.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Whether `cargo bench` runs the binary (it passes `--bench`); `cargo test --benches`
/// runs it without, and then each bench does a tiny round.
pub fn benching() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The value of environment variable `name`, or `default` when unset.
pub fn env_or<T: FromStr>(name: &str, default: T) -> BenchResult<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| format!("environment variable {name}=`{text}`: {e}").into()),
        Err(_) => Ok(default),
    }
}

/// A comma-separated list from environment variable `name` (empty: none), or `default`.
pub fn env_list(name: &str, default: &[usize]) -> BenchResult<Vec<usize>> {
    match std::env::var(name) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => text
            .split(',')
            .map(|part| {
                part.trim()
                    .parse()
                    .map_err(|e| format!("environment variable {name}=`{text}`: {e}").into())
            })
            .collect(),
        Err(_) => Ok(default.to_vec()),
    }
}

/// Service `n`'s name (`svc01`…).
pub fn service_name(n: usize) -> String {
    format!("svc{n:02}")
}

/// Service `n`'s desired developer (and so client) version.
pub fn desired_version(n: usize) -> String {
    format!("{DISTRIBUTION}-1.{n}.0")
}

/// A valid state with `services` services, all in profile `self`, each with a desired
/// developer version (their client versions follow it).
fn state_files(services: usize) -> Vec<(String, String)> {
    let mut files = vec![
        ("vupdate.yaml".to_owned(), "schema: 1\n".to_owned()),
        ("common.yaml".to_owned(), "# shared settings\n".to_owned()),
        (
            "desired/client.yaml".to_owned(),
            "versions: {}\n".to_owned(),
        ),
    ];
    let mut developer = String::from("versions:\n");
    let mut profile = Vec::new();
    for n in 1..=services {
        let name = service_name(n);
        files.push((
            format!("services/{name}.yaml"),
            format!(
                "developer:\n  sources:\n    - name: {name}\n      git:\n        url: https://git.example.invalid/{name}.git\n        branch: main\n"
            ),
        ));
        developer.push_str(&format!("  {name}: {}\n", desired_version(n)));
        profile.push(name);
    }
    files.push(("desired/developer.yaml".to_owned(), developer));
    files.push((
        "profiles.yaml".to_owned(),
        format!("profiles:\n  self: [{}]\n", profile.join(", ")),
    ));
    files
}

/// A distribution serving in this process, with the state repo and data it needs.
pub struct Local {
    /// The server.
    pub distribution: Distribution,
    /// Address and tokens.
    pub info: ServerInfo,
    _repo: GitRepo,
    _data: TempDir,
}

/// Where a benched distribution listens and the tokens to call it with.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An access token of the bootstrap `updater` account.
    pub updater: String,
    /// An access token of the bootstrap `builder` account.
    pub builder: String,
    /// The distribution's data directory.
    pub data: PathBuf,
    /// The state repo's work tree (a bench may commit to it, then call the Git hook).
    pub repo: PathBuf,
    /// The process that serves.
    pub pid: u32,
}

impl Local {
    /// Builds a state repo with `services` services and starts a distribution on it, with
    /// the embedded SQLite store in a temp dir; returns once the reconcile loop is idle.
    pub async fn start(services: usize) -> BenchResult<Local> {
        let repo = GitRepo::init();
        let files = state_files(services);
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        repo.commit_files(&refs, "Bench state", &Person::alice());
        let data = TempDir::new()?;
        let mut yaml = format!(
            "name: {DISTRIBUTION}\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\n  pollInterval: 1h\n",
            repo.path().display()
        );
        // Every bench client connects from 127.0.0.1: one address, many connections.
        let connections = env_or(MAX_CONNECTIONS_ENV, 0usize)?;
        if connections > 0 {
            yaml.push_str(&format!(
                "limits:\n  connections:\n    max: {connections}\n    perAddress: {connections}\n  requests:\n    perAddress: {connections}\n"
            ));
        }
        let config = DistributionConfig::from_str(&yaml, data.path())?;
        let distribution = Distribution::start(
            &config,
            StartOptions {
                // Only the bootstrap hashes a password; requests carry tokens.
                password_cost: PasswordCost::MINIMAL_FOR_TESTS,
                ..StartOptions::default()
            },
        )
        .await?;
        settle(&distribution).await?;
        let auth = &distribution.context().auth;
        let info = ServerInfo {
            base: format!("http://{}", distribution.local_addr()),
            updater: auth.issue_access_token("updater").await?,
            builder: auth.issue_access_token("builder").await?,
            data: data.path().to_owned(),
            repo: repo.path().to_owned(),
            pid: std::process::id(),
        };
        Ok(Local {
            distribution,
            info,
            _repo: repo,
            _data: data,
        })
    }
}

/// Waits until a state is in force and the reconcile loop has stopped starting builds
/// (with no builder they fail at once and are not retried), so that no background work
/// runs during a measurement.
async fn settle(distribution: &Distribution) -> BenchResult<()> {
    let context = distribution.context();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    while quiet < 4 {
        if Instant::now() > deadline {
            return Err("the distribution did not settle within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let status = context.reconcile.status();
        let running = status
            .builds
            .values()
            .any(|b| matches!(b, BuildState::Running { .. }));
        let in_force = context.in_force.borrow().is_some();
        quiet = if in_force && status.commit.is_some() && !running {
            quiet + 1
        } else {
            0
        };
    }
    Ok(())
}

/// The child's whole life when [`SERVE_ENV`] is set: serve until stdin closes. Returns
/// `false` (doing nothing) in the parent.
pub fn serve_if_child() -> BenchResult<bool> {
    let Ok(services) = std::env::var(SERVE_ENV) else {
        return Ok(false);
    };
    let services: usize = services.parse()?;
    let threads = env_or("BENCH_SERVER_THREADS", 0usize)?;
    // The runtime the real server runs on.
    vupdate_distribution::runtime::server((threads > 0).then_some(threads))?.block_on(
        async move {
            let local = Local::start(services).await?;
            let info = &local.info;
            let line = json!({
                "base": info.base,
                "updater": info.updater,
                "builder": info.builder,
                "data": info.data,
                "repo": info.repo,
                "pid": info.pid,
            });
            {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}")?;
                out.flush()?;
            }
            // The parent closes our stdin when it is done (or dies).
            tokio::task::spawn_blocking(|| {
                let mut rest = Vec::new();
                std::io::stdin().read_to_end(&mut rest)
            })
            .await??;
            local.distribution.shutdown().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        },
    )?;
    Ok(true)
}

/// The load generator's runtime: `BENCH_CLIENT_THREADS` (2) worker threads.
pub fn client_runtime() -> BenchResult<tokio::runtime::Runtime> {
    let threads = env_or("BENCH_CLIENT_THREADS", 2usize)?;
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?)
}

/// A benched distribution: a child process (default) or this process
/// (`BENCH_SERVER=inprocess`).
pub enum Server {
    /// Serving in a child process; closing its stdin stops it.
    Child {
        /// The child.
        child: Child,
        /// Its stdin, held open while it should serve.
        stdin: Option<ChildStdin>,
        /// Address and tokens.
        info: ServerInfo,
    },
    /// Serving on this process's runtime.
    InProcess(Box<Local>),
}

impl Server {
    /// Starts a distribution with `services` services the way `BENCH_SERVER` says.
    pub async fn start(services: usize) -> BenchResult<Server> {
        Server::start_for(services, None).await
    }

    /// As [`Server::start`], taking up to `connections` connections (from one address)
    /// when given.
    pub async fn start_for(services: usize, connections: Option<usize>) -> BenchResult<Server> {
        let mode = std::env::var("BENCH_SERVER").unwrap_or_else(|_| "child".to_owned());
        match (mode.as_str(), connections) {
            ("inprocess", Some(_)) => Err(
                "BENCH_SERVER=inprocess: this bench sets connection limits, which need the child"
                    .into(),
            ),
            ("child", _) => Server::child(services, connections),
            ("inprocess", None) => Ok(Server::InProcess(Box::new(Local::start(services).await?))),
            (other, _) => {
                Err(format!("BENCH_SERVER=`{other}`: expected `child` or `inprocess`").into())
            }
        }
    }

    fn child(services: usize, connections: Option<usize>) -> BenchResult<Server> {
        let mut command = Command::new(std::env::current_exe()?);
        if let Some(connections) = connections {
            command.env(MAX_CONNECTIONS_ENV, connections.to_string());
        }
        let mut child = command
            .env(SERVE_ENV, services.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("the child has no stdout")?;
        // Setup time: blocking on the child's first line is fine, nothing else runs yet.
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.is_empty() {
            let status = child.wait()?;
            return Err(format!("the serving child ended ({status}) before it was ready").into());
        }
        let value: Value = serde_json::from_str(&line)?;
        let text = |key: &str| -> BenchResult<String> {
            Ok(value[key]
                .as_str()
                .ok_or_else(|| format!("the child's line lacks `{key}`: {line}"))?
                .to_owned())
        };
        let info = ServerInfo {
            base: text("base")?,
            updater: text("updater")?,
            builder: text("builder")?,
            data: PathBuf::from(text("data")?),
            repo: PathBuf::from(text("repo")?),
            pid: value["pid"]
                .as_u64()
                .ok_or("the child's line lacks `pid`")? as u32,
        };
        Ok(Server::Child { child, stdin, info })
    }

    /// Address and tokens.
    pub fn info(&self) -> &ServerInfo {
        match self {
            Server::Child { info, .. } => info,
            Server::InProcess(local) => &local.info,
        }
    }

    /// How the server runs, for the printed header.
    pub fn describe(&self) -> &'static str {
        match self {
            Server::Child { .. } => "server in a child process (BENCH_SERVER=child)",
            Server::InProcess(_) => {
                "server in the load generator's process (BENCH_SERVER=inprocess)"
            }
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) -> BenchResult<()> {
        match self {
            Server::Child {
                mut child,
                mut stdin,
                ..
            } => {
                drop(stdin.take());
                let status = tokio::task::spawn_blocking(move || child.wait()).await??;
                if !status.success() {
                    return Err(format!("the serving child ended with {status}").into());
                }
            }
            Server::InProcess(local) => local.distribution.shutdown().await?,
        }
        Ok(())
    }
}

/// An HTTP/1.1 client with keep-alive that never uses a proxy.
pub fn client(max_idle: usize) -> BenchResult<reqwest::Client> {
    client_from(max_idle, None)
}

/// [`client`], connecting from the address `local` when given (a loopback address of its
/// own stands for another machine).
pub fn client_from(
    max_idle: usize,
    local: Option<std::net::Ipv4Addr>,
) -> BenchResult<reqwest::Client> {
    // reqwest is built without a crypto provider of its own; the workspace uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .local_address(local.map(std::net::IpAddr::V4))
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(Duration::from_secs(120))
        .tcp_nodelay(true)
        .build()?)
}

/// User plus system CPU time of process `pid` so far, in seconds (Linux `/proc`).
pub fn cpu_seconds(pid: u32) -> f64 {
    let ticks = i32::try_from(pid)
        .ok()
        .and_then(vupdate_process::table::read)
        .map_or(0, |info| info.cpu_ticks);
    ticks as f64 / vupdate_process::table::clock_ticks() as f64
}

/// The resident set size of process `pid` in KiB (`VmRSS` in `/proc/PID/status`; 0 if
/// unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The largest resident set size process `pid` had so far, in KiB (`VmHWM`).
pub fn rss_peak_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A `… kB` entry of `/proc/PID/status` (0 if unreadable).
fn status_kib(pid: u32, entry: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(entry)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// The load averages, to show how busy the machine was.
pub use vupdate_test_support::machine::load_average;

/// Connections the kernel dropped so far because a listen queue was full (`TcpExt`
/// `ListenOverflows` in `/proc/net/netstat`, for the whole machine), when it can be read.
pub fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = netstat.lines().filter(|line| line.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names
        .split_whitespace()
        .position(|name| name == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// CPU use of the server and of this process over one measurement.
pub struct CpuMeter {
    server_pid: u32,
    server: f64,
    own: f64,
    started: Instant,
    load: String,
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start(server_pid: u32) -> CpuMeter {
        CpuMeter {
            server_pid,
            server: cpu_seconds(server_pid),
            own: cpu_seconds(std::process::id()),
            started: Instant::now(),
            load: load_average(),
        }
    }

    /// One line: cores used by the server and the generator, CPU time per operation,
    /// and the machine's load average before and after.
    pub fn report(&self, operations: usize) -> String {
        let wall = self.started.elapsed().as_secs_f64();
        let own_pid = std::process::id();
        let server = cpu_seconds(self.server_pid) - self.server;
        let own = cpu_seconds(own_pid) - self.own;
        let per_op = |seconds: f64| seconds * 1e6 / operations.max(1) as f64;
        if self.server_pid == own_pid {
            format!(
                "cpu: server+generator {:.2} cores ({:.0} us/op); load avg {} -> {}",
                own / wall,
                per_op(own),
                self.load,
                load_average()
            )
        } else {
            format!(
                "cpu: server {:.2} cores ({:.0} us/op), generator {:.2} cores; load avg {} -> {}",
                server / wall,
                per_op(server),
                own / wall,
                self.load,
                load_average()
            )
        }
    }
}

/// Latencies of one measurement.
#[derive(Default)]
pub struct Latencies {
    micros: Vec<u64>,
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        self.micros.push(latency.as_micros() as u64);
    }

    /// Adds another set.
    pub fn extend(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    /// How many were recorded.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// `p50 … p99 … max …` in milliseconds.
    pub fn summary(&mut self) -> String {
        match self.quantiles() {
            None => "no samples".to_owned(),
            Some([p50, p99, max]) => {
                format!("p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms")
            }
        }
    }

    /// p50, p99 and max in milliseconds (none without samples).
    pub fn quantiles(&mut self) -> Option<[f64; 3]> {
        if self.micros.is_empty() {
            return None;
        }
        self.micros.sort_unstable();
        let at = |q: f64| {
            let index = ((self.micros.len() as f64 * q).ceil() as usize).saturating_sub(1);
            self.micros[index.min(self.micros.len() - 1)] as f64 / 1000.0
        };
        Some([at(0.50), at(0.99), at(1.0)])
    }
}

/// The 99th percentile of `POST <route>` in the server's own `/metrics` histogram of
/// request durations (the server's view, without the client's side), as text: linear
/// within its bucket as Prometheus's `histogram_quantile` reads it, with the bucket.
pub async fn server_p99(client: &reqwest::Client, base: &str, route: &str) -> String {
    let text = match client.get(format!("{base}/metrics")).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(error) => return format!("unknown ({error})"),
    };
    let labels = format!("method=\"POST\",route=\"{route}\"}}");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix("vupdate_http_request_duration_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (bound, rest) = rest.split_once("\",")?;
            let count = rest.strip_prefix(labels.as_str())?.trim();
            Some((bound.parse().ok()?, count.parse().ok()?))
        })
        .collect();
    let Some(&(_, total)) = buckets.last() else {
        return "unknown (no requests counted)".to_owned();
    };
    let rank = total * 0.99;
    let mut below = (0.0, 0.0);
    for &(bound, count) in &buckets {
        if count >= rank {
            if bound == f64::INFINITY {
                return format!("over {:.1} ms", below.0 * 1000.0);
            }
            let share = (rank - below.1) / (count - below.1).max(1.0);
            let p99 = below.0 + (bound - below.0) * share;
            return format!(
                "{:.0} ms, in {:.1}–{:.1}",
                p99 * 1000.0,
                below.0 * 1000.0,
                bound * 1000.0
            );
        }
        below = (bound, count);
    }
    "unknown".to_owned()
}
