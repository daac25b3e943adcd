//! The real `vupdate updater run` next to supervisord and PM2 on this machine, in one run,
//! each supervising the same ten services (`sh -c 'echo $$ > svcN.pid; exec sleep …'`):
//! the idle resident memory of the supervisor process itself (PM2: its daemon), its CPU
//! while idle, and the restart latency after `kill -9` of a service (from the kill to the
//! new process's pid in its pid file, polled every millisecond), p50/p99/max over many
//! kills spread over the ten services.
//!
//! The updater needs a distribution: the bench starts the `vupdate` cargo built for it
//! (`distribution run` on a temporary bare state repo that desires `svc0`..`svc9` at
//! `acme-1.0.0`, their images uploaded by the bench, as an offline bundle would be), and
//! runs each updater build against it with an `updater.yaml` holding only what has no
//! default (instance, URL, token file, work directory, services) plus `restart.stableAfter:
//! 1s`, so every kill is a first fault after a stable run, as a service's first crash is;
//! the bench kills a service only once it has been up that long, longer than the default
//! `initialDelay` (100 ms, which spaces starts), so its restart is due at once. Everything else is the default: a cgroup v2 per service
//! where the machine gives one (as this one does), state reports and polls every 10 s, a
//! sample of each service's processes every 5 s. The peers restart at once: PM2 with
//! `restart_delay: 0` (and no exponential backoff, `min_uptime: 0`, unlimited restarts),
//! supervisord with `startsecs=0` (it has no restart delay setting; with `startsecs=0` an
//! exit is never a start failure, so no BACKOFF).
//!
//! Idle CPU is the time the process's threads spent on a CPU (`/proc/PID/task/*/schedstat`,
//! in nanoseconds: the tick counts of `/proc/PID/stat` are 10 ms coarse, as much as the
//! whole target over half a minute) over `BENCH_IDLE_SECS`, after `BENCH_SETTLE_SECS` for
//! start-up work (downloads, installs, the first reports) to end.
//!
//! Usually run by `scripts/bench-updater`, which installs supervisord and PM2 and builds
//! both updaters. Environment:
//!
//! - `UPDATER_ONLY_BIN`: the updater-only build as it ships (`scripts/build-updater`:
//!   `--no-default-features --features updater`, the `updater` profile), measured next to
//!   the full one; skipped when unset;
//! - `SUPERVISORD_BIN`, `PM2_BIN`: skipped when unset;
//! - `BENCH_KILLS` (default 100), `BENCH_SETTLE_SECS` (default 15), `BENCH_IDLE_SECS`
//!   (default 60).
//!
//! Prints a table, and one `FIGURE <supervisor> <name> <value>` line per figure.

#[allow(dead_code)]
#[path = "../../../tests/support/distribution.rs"]
mod distribution;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use vupdate_client::ImageRef;
use vupdate_process::table;
use vupdate_test_support::{GitRepo, Person};

const SERVICES: usize = 10;
/// The version every bench service runs.
const VERSION: &str = "acme-1.0.0";
/// How long a run of the updater's services must last to be stable (`restart.stableAfter`).
const STABLE_AFTER: Duration = Duration::from_secs(1);

/// What was measured for one supervisor.
struct Figures {
    name: &'static str,
    key: &'static str,
    rss_kb: u64,
    idle_cpu_percent: f64,
    latencies_ms: Vec<f64>,
    timeouts: usize,
}

/// How to run one supervisor with the ten services.
trait Supervisor {
    fn name(&self) -> &'static str;
    /// The name in `FIGURE` lines and directories.
    fn key(&self) -> &'static str;
    /// Starts it in `dir`, its services writing their pid files into `dir/pids`; returns
    /// the process whose memory and CPU are measured.
    fn start(&mut self, dir: &Path) -> u32;
    /// How long a service must have been up before it is killed.
    fn min_uptime(&self) -> Duration {
        Duration::ZERO
    }
    /// Stops it and every service.
    fn stop(&mut self, dir: &Path);
}

/// The command of service `index`, writing its pid into `pid_dir`.
fn service_command(pid_dir: &str, index: usize) -> String {
    format!("echo $$ > {pid_dir}/svc{index}.pid; exec sleep 1000000")
}

/// The distribution every updater build follows.
struct Distribution {
    server: distribution::Server,
    base: String,
    token_file: PathBuf,
    /// The state repo, kept while the server follows it.
    _remote: GitRepo,
}

impl Distribution {
    /// Starts it in `dir` on a state that desires the ten services, uploads their images
    /// and writes an updater token next to it.
    async fn start(dir: &Path) -> Distribution {
        let remote = GitRepo::init_bare();
        let work = GitRepo::clone_from(&remote);
        let mut files: Vec<(String, String)> = vec![
            ("vupdate.yaml".into(), "schema: 1\n".into()),
            ("profiles.yaml".into(), "profiles:\n  self: []\n".into()),
            ("desired/developer.yaml".into(), "versions: {}\n".into()),
        ];
        let mut desired = String::from("versions:\n");
        for index in 0..SERVICES {
            files.push((
                format!("services/svc{index}.yaml"),
                "# images uploaded by the bench\n".into(),
            ));
            desired.push_str(&format!("  svc{index}: {VERSION}\n"));
        }
        files.push(("desired/client.yaml".into(), desired));
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
            .collect();
        work.commit_files(&refs, "ten bench services", &Person::alice());
        work.push("origin", "main");
        let started = distribution::start(
            dir,
            &format!(
                "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  url: {}\n  pollInterval: 1h\n",
                remote.path().display()
            ),
        )
        .await;
        for index in 0..SERVICES {
            // The service runs in `<workDirectory>/svcN/current`; the pid files go to
            // `<workDirectory>/pids`.
            let zip = write_image(dir, index, &service_command("../../pids", index));
            started
                .admin
                .upload_image(
                    &ImageRef::client(format!("svc{index}"), VERSION),
                    &zip,
                    None,
                )
                .await
                .expect("upload an image");
        }
        let token = distribution::issue_access_token(&started.admin, "updater").await;
        let token_file = dir.join("updater.token");
        fs::write(&token_file, token).expect("token file");
        Distribution {
            server: started.server,
            base: started.base,
            token_file,
            _remote: remote,
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        terminate(&mut self.server);
    }
}

/// The image zip of service `index`, running `command`.
fn write_image(dir: &Path, index: usize, command: &str) -> PathBuf {
    let path = dir.join(format!("svc{index}.zip"));
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).expect("image"));
    zip.start_file("install.json", zip::write::SimpleFileOptions::default())
        .expect("zip");
    let install = json!({"runService": {"command": "sh", "args": ["-c", command]}});
    zip.write_all(install.to_string().as_bytes()).expect("zip");
    zip.finish().expect("zip");
    path
}

/// One build of `vupdate updater run`.
struct Updater {
    name: &'static str,
    key: &'static str,
    binary: PathBuf,
    base: String,
    token_file: PathBuf,
    child: Option<Child>,
}

impl Supervisor for Updater {
    fn name(&self) -> &'static str {
        self.name
    }

    fn key(&self) -> &'static str {
        self.key
    }

    fn start(&mut self, dir: &Path) -> u32 {
        let names: Vec<String> = (0..SERVICES).map(|index| format!("svc{index}")).collect();
        let config = dir.join("updater.yaml");
        fs::write(
            &config,
            format!(
                "instance: bench-{}\ndistributionUrl: {}\naccessTokenFile: {}\nworkDirectory: {}\n\
                 services: [{}]\nrestart:\n  stableAfter: {}ms\n",
                self.key,
                self.base,
                self.token_file.display(),
                dir.display(),
                names.join(", "),
                STABLE_AFTER.as_millis(),
            ),
        )
        .expect("updater.yaml");
        let child = Command::new(&self.binary)
            .args(["updater", "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("updater.log")).expect("log"))
            .spawn()
            .expect("start the updater");
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    fn min_uptime(&self) -> Duration {
        STABLE_AFTER + Duration::from_millis(200)
    }

    fn stop(&mut self, _dir: &Path) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// Sends SIGTERM to `child` and waits for it.
fn terminate(child: &mut Child) {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let _ = kill(pid, Signal::SIGTERM);
    let _ = child.wait();
}

struct Supervisord {
    binary: PathBuf,
    child: Option<Child>,
}

impl Supervisor for Supervisord {
    fn name(&self) -> &'static str {
        "supervisord"
    }

    fn key(&self) -> &'static str {
        "supervisord"
    }

    fn start(&mut self, dir: &Path) -> u32 {
        let pids = dir.join("pids");
        let service = |index| service_command(&pids.display().to_string(), index);
        fs::create_dir_all(dir.join("logs")).expect("logs");
        let mut config = format!(
            "[supervisord]\nnodaemon=true\nlogfile={0}/supervisord.log\npidfile={0}/supervisord.pid\n\
             childlogdir={0}/logs\n",
            dir.display()
        );
        for index in 0..SERVICES {
            config.push_str(&format!(
                "\n[program:svc{index}]\ncommand=/bin/sh -c \"{}\"\nautorestart=true\nstartsecs=0\n\
                 startretries=1000000\n",
                service(index)
            ));
        }
        fs::write(dir.join("supervisord.conf"), config).expect("supervisord.conf");
        let child = Command::new(&self.binary)
            .arg("-n")
            .arg("-c")
            .arg(dir.join("supervisord.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start supervisord");
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    fn stop(&mut self, _dir: &Path) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

struct Pm2 {
    binary: PathBuf,
}

impl Pm2 {
    fn run(&self, dir: &Path, args: &[&str]) {
        let status = Command::new(&self.binary)
            .args(args)
            .env("PM2_HOME", dir.join("pm2home"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pm2");
        assert!(status.success(), "pm2 {args:?} failed: {status}");
    }
}

impl Supervisor for Pm2 {
    fn name(&self) -> &'static str {
        "PM2 (daemon)"
    }

    fn key(&self) -> &'static str {
        "PM2"
    }

    fn start(&mut self, dir: &Path) -> u32 {
        let pids = dir.join("pids");
        let service = |index| service_command(&pids.display().to_string(), index);
        let apps: Vec<serde_json::Value> = (0..SERVICES)
            .map(|index| {
                serde_json::json!({
                    "name": format!("svc{index}"),
                    "script": "/bin/sh",
                    "args": ["-c", service(index)],
                    "interpreter": "none",
                    "autorestart": true,
                    "restart_delay": 0,
                    "min_uptime": 0,
                    "max_restarts": 1_000_000,
                })
            })
            .collect();
        let ecosystem = dir.join("ecosystem.json");
        fs::write(&ecosystem, serde_json::json!({"apps": apps}).to_string())
            .expect("ecosystem.json");
        self.run(dir, &["start", ecosystem.to_str().expect("utf-8 path")]);
        let pid_file = dir.join("pm2home/pm2.pid");
        wait_until("the PM2 daemon's pid", Duration::from_secs(60), || {
            read_pid(&pid_file)
        })
    }

    fn stop(&mut self, dir: &Path) {
        self.run(dir, &["kill"]);
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    table::is_running(pid as i32)
}

fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rss_kb(pid: u32) -> u64 {
    table::rss_bytes(pid as i32) / 1024
}

/// Nanoseconds the live threads of `pid` have spent on a CPU.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// How long each phase lasts.
struct Settings {
    kills: usize,
    settle: Duration,
    idle: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|text| text.parse().ok())
                .unwrap_or(default)
        };
        Settings {
            kills: usize::try_from(number("BENCH_KILLS", 100)).expect("a count"),
            settle: Duration::from_secs(number("BENCH_SETTLE_SECS", 15)),
            idle: Duration::from_secs(number("BENCH_IDLE_SECS", 60)),
        }
    }
}

fn measure(supervisor: &mut dyn Supervisor, root: &Path, settings: &Settings) -> Figures {
    let (name, key) = (supervisor.name(), supervisor.key());
    let dir = root.join(key);
    let pids = dir.join("pids");
    fs::create_dir_all(&pids).expect("pid dir");
    let pid_file = |index: usize| pids.join(format!("svc{index}.pid"));
    eprintln!("{name}: starting {SERVICES} services");
    let main = supervisor.start(&dir);
    let started: Vec<u32> = (0..SERVICES)
        .map(|index| {
            wait_until(
                &format!("{name}: svc{index}"),
                Duration::from_secs(300),
                || read_pid(&pid_file(index)).filter(|pid| alive(*pid)),
            )
        })
        .collect();
    eprintln!(
        "{name}: settling for {} s, then idle for {} s",
        settings.settle.as_secs(),
        settings.idle.as_secs()
    );
    std::thread::sleep(settings.settle);
    let (cpu, since) = (cpu_ns(main), Instant::now());
    std::thread::sleep(settings.idle);
    let spent = cpu_ns(main).saturating_sub(cpu) as f64;
    let idle_cpu_percent = spent / since.elapsed().as_nanos() as f64 * 100.0;
    let rss_kb = rss_kb(main);
    assert!(
        started.iter().all(|pid| alive(*pid)),
        "{name}: a service ended while idle"
    );
    eprintln!("{name}: {} kills", settings.kills);
    let mut up_since = [since; SERVICES];
    let mut latencies_ms = Vec::new();
    let mut timeouts = 0;
    for round in 0..settings.kills {
        let index = round % SERVICES;
        let old = wait_until(
            &format!("{name}: svc{index} up"),
            Duration::from_secs(60),
            || read_pid(&pid_file(index)).filter(|pid| alive(*pid)),
        );
        let stable = up_since[index] + supervisor.min_uptime();
        std::thread::sleep(stable.saturating_duration_since(Instant::now()));
        let killed = Instant::now();
        kill(
            Pid::from_raw(i32::try_from(old).expect("pid")),
            Signal::SIGKILL,
        )
        .expect("kill -9");
        let deadline = killed + Duration::from_secs(10);
        loop {
            if read_pid(&pid_file(index)).is_some_and(|pid| pid != old) {
                up_since[index] = Instant::now();
                latencies_ms.push(killed.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() >= deadline {
                timeouts += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Let the supervisor settle before the next kill.
        std::thread::sleep(Duration::from_millis(50));
    }
    supervisor.stop(&dir);
    // Nothing of the bench may outlive it.
    for index in 0..SERVICES {
        if let Some(pid) = read_pid(&pid_file(index))
            && alive(pid)
        {
            eprintln!("{name}: svc{index} ({pid}) survived the stop; killing it");
            let _ = kill(
                Pid::from_raw(i32::try_from(pid).expect("pid")),
                Signal::SIGKILL,
            );
        }
    }
    Figures {
        name,
        key,
        rss_kb,
        idle_cpu_percent,
        latencies_ms,
        timeouts,
    }
}

/// The nearest-rank percentile `p` (0-100) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let settings = Settings::from_env();
    println!("machine: {}", vupdate_test_support::machine::describe());
    let env_path = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let root = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let served = root.path().join("distribution");
    fs::create_dir_all(&served).expect("distribution dir");
    eprintln!("starting a distribution with {SERVICES} service images");
    let distribution = runtime.block_on(Distribution::start(&served));
    let updater = |name, key, binary: PathBuf| Updater {
        name,
        key,
        binary,
        base: distribution.base.clone(),
        token_file: distribution.token_file.clone(),
        child: None,
    };
    let full = PathBuf::from(env!("CARGO_BIN_EXE_vupdate"));
    let mut supervisors: Vec<Box<dyn Supervisor>> =
        vec![Box::new(updater("vupdate (full)", "vupdate", full))];
    match env_path("UPDATER_ONLY_BIN") {
        Some(binary) => supervisors.push(Box::new(updater(
            "vupdate (updater only)",
            "vupdate-updater-only",
            binary,
        ))),
        None => eprintln!("UPDATER_ONLY_BIN is not set: the updater-only build is left out"),
    }
    match env_path("SUPERVISORD_BIN") {
        Some(binary) => supervisors.push(Box::new(Supervisord {
            binary,
            child: None,
        })),
        None => eprintln!("SUPERVISORD_BIN is not set: supervisord is left out"),
    }
    match env_path("PM2_BIN") {
        Some(binary) => supervisors.push(Box::new(Pm2 { binary })),
        None => eprintln!("PM2_BIN is not set: PM2 is left out"),
    }
    let mut all = Vec::new();
    for supervisor in &mut supervisors {
        all.push(measure(supervisor.as_mut(), root.path(), &settings));
    }
    drop(distribution);
    println!(
        "\n{SERVICES} services each; CPU over {} s idle after {} s, then RSS; restart after kill -9 over {} kills",
        settings.idle.as_secs(),
        settings.settle.as_secs(),
        settings.kills
    );
    println!(
        "{:<24} {:>8} {:>10} {:>8} {:>8} {:>8} {:>9}",
        "supervisor", "RSS MB", "idle CPU%", "p50 ms", "p99 ms", "max ms", "timeouts"
    );
    for figures in &mut all {
        figures.latencies_ms.sort_by(f64::total_cmp);
        let sorted = &figures.latencies_ms;
        let (p50, p99) = (percentile(sorted, 50.0), percentile(sorted, 99.0));
        let max = sorted.last().copied().unwrap_or(f64::NAN);
        println!(
            "{:<24} {:>8.1} {:>10.3} {:>8.1} {:>8.1} {:>8.1} {:>9}",
            figures.name,
            figures.rss_kb as f64 / 1024.0,
            figures.idle_cpu_percent,
            p50,
            p99,
            max,
            figures.timeouts
        );
        let key = figures.key;
        println!("FIGURE {key} rss_mb {:.1}", figures.rss_kb as f64 / 1024.0);
        println!(
            "FIGURE {key} idle_cpu_percent {:.3}",
            figures.idle_cpu_percent
        );
        println!("FIGURE {key} restart_p50_ms {p50:.1}");
        println!("FIGURE {key} restart_p99_ms {p99:.1}");
        println!("FIGURE {key} restart_max_ms {max:.1}");
        println!("FIGURE {key} restart_timeouts {}", figures.timeouts);
    }
}
