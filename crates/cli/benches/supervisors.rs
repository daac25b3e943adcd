//! The updater next to supervisord and PM2 on this machine, in one run, with the same ten
//! services (`sh -c 'echo $$ > svcN.pid; exec sleep …'`): the idle resident memory of
//! the supervisor process itself (PM2: its daemon) after a quiet period, its CPU in that
//! period, and the restart latency after `kill -9` of a service (from the kill to the new
//! process's pid in its pid file, polled every millisecond), p50/p99 over many kills
//! spread over the ten services. The updater runs twice: as configured by default (each
//! service in its own cgroup where the machine gives one, as this one does, cgroup v1),
//! and with `cgroups: off` (process group, subreaper and `/proc` only, as the others
//! work), since moving a process into a v1 cgroup costs the kernel some milliseconds.
//! Every supervisor restarts at once: the updater with `restart.initialDelay: 0s`, PM2 with `restart_delay: 0` (and no exponential backoff,
//! `min_uptime: 0`, unlimited restarts), supervisord with `startsecs=0` (it has no restart
//! delay setting; with `startsecs=0` an exit is never a start failure, so no BACKOFF).
//!
//! Usually run by `scripts/bench-updater`, which installs supervisord and PM2 and builds
//! the updater. Environment:
//!
//! - `UPDATER_BIN`: the `offline_updater` example, built in release (required);
//! - `SUPERVISORD_BIN`, `PM2_BIN`: skipped when unset;
//! - `BENCH_KILLS` (default 100), `BENCH_IDLE_SECS` (default 10).
//!
//! Prints a table, and one `FIGURE <supervisor> <name> <value>` line per figure.

mod offline;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use offline::command;
use vupdate_process::table;

const SERVICES: usize = 10;

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
    /// Starts it; returns the process whose memory is measured.
    fn start(&mut self, dir: &Path, service: &dyn Fn(usize) -> String) -> u32;
    /// Stops it and every service.
    fn stop(&mut self, dir: &Path);
}

fn service_command(pid_dir: &Path) -> impl Fn(usize) -> String {
    let pid_dir = pid_dir.to_owned();
    move |index| {
        format!(
            "echo $$ > {}/svc{index}.pid; exec sleep 1000000",
            pid_dir.display()
        )
    }
}

struct Updater {
    binary: PathBuf,
    cgroups: bool,
    child: Option<Child>,
}

impl Supervisor for Updater {
    fn name(&self) -> &'static str {
        if self.cgroups {
            "vupdate updater"
        } else {
            "vupdate, no cgroup"
        }
    }

    fn key(&self) -> &'static str {
        if self.cgroups {
            "vupdate"
        } else {
            "vupdate-nocg"
        }
    }

    fn start(&mut self, dir: &Path, service: &dyn Fn(usize) -> String) -> u32 {
        let services: Vec<(String, serde_json::Value)> = (0..SERVICES)
            .map(|index| {
                let run = serde_json::json!({"command": "sh", "args": ["-c", service(index)]});
                (format!("svc{index}"), run)
            })
            .collect();
        let settings = format!(
            "restart: {{initialDelay: 0s}}\ncgroups: {}\n",
            if self.cgroups { "auto" } else { "off" }
        );
        let child = offline::start_updater(&self.binary, dir, &services, &settings);
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    fn stop(&mut self, _dir: &Path) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
            let _ = kill(pid, Signal::SIGTERM);
            let _ = child.wait();
        }
    }
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

    fn start(&mut self, dir: &Path, service: &dyn Fn(usize) -> String) -> u32 {
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
        let child = command(&self.binary)
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
            let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
            let _ = kill(pid, Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

struct Pm2 {
    binary: PathBuf,
}

impl Pm2 {
    fn run(&self, dir: &Path, args: &[&str]) {
        let status = command(&self.binary)
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

    fn start(&mut self, dir: &Path, service: &dyn Fn(usize) -> String) -> u32 {
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

fn cpu_ticks(pid: u32) -> u64 {
    table::read(pid as i32).expect("stat").cpu_ticks
}

fn measure(supervisor: &mut dyn Supervisor, root: &Path, kills: usize, idle: Duration) -> Figures {
    let (name, key) = (supervisor.name(), supervisor.key());
    let dir = root.join(key);
    let pids = dir.join("pids");
    fs::create_dir_all(&pids).expect("pid dir");
    let service = service_command(&pids);
    let pid_file = |index: usize| pids.join(format!("svc{index}.pid"));
    eprintln!("{name}: starting {SERVICES} services");
    let main = supervisor.start(&dir, &service);
    let started: Vec<u32> = (0..SERVICES)
        .map(|index| {
            wait_until(
                &format!("{name}: svc{index}"),
                Duration::from_secs(120),
                || read_pid(&pid_file(index)).filter(|pid| alive(*pid)),
            )
        })
        .collect();
    eprintln!("{name}: idle for {} s", idle.as_secs());
    let ticks = cpu_ticks(main);
    std::thread::sleep(idle);
    let idle_cpu_percent = (cpu_ticks(main) - ticks) as f64 / 100.0 / idle.as_secs_f64() * 100.0;
    let rss_kb = rss_kb(main);
    assert!(
        started.iter().all(|pid| alive(*pid)),
        "{name}: a service ended while idle"
    );
    eprintln!("{name}: {kills} kills");
    let mut latencies_ms = Vec::new();
    let mut timeouts = 0;
    for round in 0..kills {
        let index = round % SERVICES;
        let old = wait_until(
            &format!("{name}: svc{index} up"),
            Duration::from_secs(60),
            || read_pid(&pid_file(index)).filter(|pid| alive(*pid)),
        );
        let killed = Instant::now();
        kill(
            Pid::from_raw(i32::try_from(old).expect("pid")),
            Signal::SIGKILL,
        )
        .expect("kill -9");
        let deadline = killed + Duration::from_secs(10);
        loop {
            if read_pid(&pid_file(index)).is_some_and(|pid| pid != old) {
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
    let kills: usize = std::env::var("BENCH_KILLS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100);
    let idle = Duration::from_secs(
        std::env::var("BENCH_IDLE_SECS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(10),
    );
    let env_path = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let Some(updater) = env_path("UPDATER_BIN") else {
        eprintln!(
            "UPDATER_BIN is not set: build the example (cargo build --release --example offline_updater) and point it there, or run scripts/bench-updater"
        );
        std::process::exit(2);
    };
    let mut supervisors: Vec<Box<dyn Supervisor>> = vec![
        Box::new(Updater {
            binary: updater.clone(),
            cgroups: true,
            child: None,
        }),
        Box::new(Updater {
            binary: updater,
            cgroups: false,
            child: None,
        }),
    ];
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
    let root = tempfile::tempdir().expect("tempdir");
    let mut all = Vec::new();
    for supervisor in &mut supervisors {
        all.push(measure(supervisor.as_mut(), root.path(), kills, idle));
    }
    println!(
        "\n{SERVICES} services each; RSS and CPU after {} s idle; restart after kill -9 over {kills} kills",
        idle.as_secs()
    );
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "supervisor", "RSS MB", "idle CPU%", "p50 ms", "p99 ms", "max ms", "timeouts"
    );
    for figures in &mut all {
        figures.latencies_ms.sort_by(f64::total_cmp);
        let sorted = &figures.latencies_ms;
        let (p50, p99) = (percentile(sorted, 50.0), percentile(sorted, 99.0));
        let max = sorted.last().copied().unwrap_or(f64::NAN);
        println!(
            "{:<18} {:>10.1} {:>10.2} {:>10.1} {:>10.1} {:>10.1} {:>9}",
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
            "FIGURE {key} idle_cpu_percent {:.2}",
            figures.idle_cpu_percent
        );
        println!("FIGURE {key} restart_p50_ms {p50:.1}");
        println!("FIGURE {key} restart_p99_ms {p99:.1}");
        println!("FIGURE {key} restart_max_ms {max:.1}");
        println!("FIGURE {key} restart_timeouts {}", figures.timeouts);
    }
}
