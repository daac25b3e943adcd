//! What health probes cost the updater: 100 services (`sleep`), run by the
//! `offline_updater` example once without a health check and once per probe kind, each
//! probed every `intervalMs` (default 1000): the updater's own CPU over a quiet period
//! (its process only; a command probe's processes are counted apart, as the machine pays
//! for them too) and its resident memory after it. TCP probes connect to, and HTTP probes
//! GET, a listener of this bench (a thread that answers `200` at once), so the figures
//! are the updater's side of a probe.
//!
//! Usually run by `scripts/bench-health`, which builds the updater. Environment:
//! `UPDATER_BIN` (required), `BENCH_SERVICES` (100), `BENCH_IDLE_SECS` (10),
//! `BENCH_INTERVAL_MS` (1000).
//!
//! Prints a table, and one `FIGURE <kind> <name> <value>` line per figure.

mod offline;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use vupdate_process::table;

/// What was measured for one kind of probe.
struct Figures {
    kind: &'static str,
    rss_kb: u64,
    cpu_percent: f64,
    children_cpu_percent: f64,
}

/// A listener that answers every connection with an empty `200 OK`.
fn answering_listener() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            // A TCP probe sends nothing and closes; an HTTP probe sends its request.
            if stream.read(&mut request).unwrap_or(0) > 0 {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        }
    });
    address
}

/// The `healthCheck` of `kind`, or none for `none`.
fn health_check(kind: &str, address: std::net::SocketAddr, interval_ms: u64) -> serde_json::Value {
    let probe = match kind {
        "none" => return serde_json::Value::Null,
        "tcp" => serde_json::json!({"tcp": address.to_string()}),
        "http" => serde_json::json!({"http": format!("http://{address}/health")}),
        "command" => serde_json::json!({"command": {"command": "true"}}),
        other => panic!("unknown probe kind {other}"),
    };
    let mut check = probe;
    check["intervalMs"] = interval_ms.into();
    check["startWindowMs"] = 60_000.into();
    check
}

fn measure(
    binary: &Path,
    root: &Path,
    kind: &'static str,
    services: usize,
    idle: Duration,
    interval_ms: u64,
    address: std::net::SocketAddr,
) -> Figures {
    let dir = root.join(kind);
    let pids = dir.join("pids");
    fs::create_dir_all(&pids).expect("pids");
    let services: Vec<(String, serde_json::Value)> = (0..services)
        .map(|index| {
            let name = format!("svc{index}");
            let mut run = serde_json::json!({
                "command": "sh",
                "args": ["-c", format!("echo $$ > {}/{name}.pid; exec sleep 1000000", pids.display())],
            });
            let check = health_check(kind, address, interval_ms);
            if !check.is_null() {
                run["healthCheck"] = check;
            }
            (name, run)
        })
        .collect();
    let mut child = offline::start_updater(binary, &dir, &services, "cgroups: off\n");
    let main = i32::try_from(child.id()).expect("pid");
    eprintln!("{kind}: starting {} services", services.len());
    for index in 0..services.len() {
        let pid_file = pids.join(format!("svc{index}.pid"));
        let mut waited = 0;
        while !pid_file.exists() {
            assert!(
                waited < 120_000,
                "{kind}: svc{index} did not start in 120 s"
            );
            std::thread::sleep(Duration::from_millis(10));
            waited += 10;
        }
    }
    // The first probes and installs settle before the quiet period.
    std::thread::sleep(Duration::from_secs(2));
    eprintln!("{kind}: measuring for {} s", idle.as_secs());
    let before = table::read(main).expect("stat").cpu_ticks;
    let children_before = children_ticks(main);
    std::thread::sleep(idle);
    let after = table::read(main).expect("stat").cpu_ticks;
    let children = children_ticks(main).saturating_sub(children_before);
    let rss_kb = table::rss_bytes(main) / 1024;
    let percent = |ticks: u64| ticks as f64 / 100.0 / idle.as_secs_f64() * 100.0;
    let _ = kill(Pid::from_raw(main), Signal::SIGTERM);
    let _ = child.wait();
    Figures {
        kind,
        rss_kb,
        cpu_percent: percent(after.saturating_sub(before)),
        children_cpu_percent: percent(children),
    }
}

/// The CPU ticks of `pid`'s reaped children (`cutime + cstime` of `/proc/PID/stat`): a
/// command probe's processes.
fn children_ticks(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 16 and 17 of stat(5); `after_name` starts at field 3.
    fields[13].parse::<u64>().expect("cutime") + fields[14].parse::<u64>().expect("cstime")
}

fn main() {
    println!("machine: {}", vupdate_test_support::machine::describe());
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let services = usize::try_from(number("BENCH_SERVICES", 100)).expect("a count");
    let idle = Duration::from_secs(number("BENCH_IDLE_SECS", 10));
    let interval_ms = number("BENCH_INTERVAL_MS", 1000);
    let Some(binary) = std::env::var_os("UPDATER_BIN").map(PathBuf::from) else {
        eprintln!(
            "UPDATER_BIN is not set: build the example (cargo build --release --example offline_updater) and point it there, or run scripts/bench-health"
        );
        std::process::exit(2);
    };
    let address = answering_listener();
    let root = tempfile::tempdir().expect("tempdir");
    let all: Vec<Figures> = ["none", "tcp", "http", "command"]
        .into_iter()
        .map(|kind| {
            measure(
                &binary,
                root.path(),
                kind,
                services,
                idle,
                interval_ms,
                address,
            )
        })
        .collect();
    let base = &all[0];
    println!(
        "\n{services} services, each probed every {interval_ms} ms; the updater's CPU over {} s, its RSS after",
        idle.as_secs()
    );
    println!(
        "{:<8} {:>10} {:>12} {:>14} {:>18} {:>20}",
        "probe", "RSS MB", "CPU %", "probe CPU %", "probe RSS MB", "probe processes CPU %"
    );
    for figures in &all {
        let per_hundred = 100.0 / services as f64;
        let cpu_cost = (figures.cpu_percent - base.cpu_percent) * per_hundred;
        let rss_cost = (figures.rss_kb as f64 - base.rss_kb as f64) / 1024.0 * per_hundred;
        let children = figures.children_cpu_percent * per_hundred;
        println!(
            "{:<8} {:>10.1} {:>12.2} {:>14.2} {:>18.1} {:>20.2}",
            figures.kind,
            figures.rss_kb as f64 / 1024.0,
            figures.cpu_percent,
            cpu_cost,
            rss_cost,
            children
        );
        let kind = figures.kind;
        println!("FIGURE {kind} rss_mb {:.1}", figures.rss_kb as f64 / 1024.0);
        println!("FIGURE {kind} cpu_percent {:.2}", figures.cpu_percent);
        println!("FIGURE {kind} cpu_percent_per_100_probed {cpu_cost:.2}");
        println!("FIGURE {kind} rss_mb_per_100_probed {rss_cost:.1}");
        println!("FIGURE {kind} probe_processes_cpu_percent_per_100 {children:.2}");
    }
}
