//! The processes of the machine, from `/proc`: what a supervisor or a build runner needs
//! to know about each (parent, group, state, CPU and start ticks), a process's resident
//! memory and environment, and its descendants.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;

use procfs::process::Process;

/// One process, as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    /// The process id.
    pub pid: i32,
    /// The parent's process id.
    pub ppid: i32,
    /// The process group id.
    pub pgid: i32,
    /// The session id.
    pub session: i32,
    /// `R`, `S`, `Z`, … as the kernel reports it.
    pub state: char,
    /// User plus system CPU time, in clock ticks ([`clock_ticks`] per second).
    pub cpu_ticks: u64,
    /// The start time after boot, in clock ticks: with the pid, it names one process even
    /// after the pid is reused.
    pub start_ticks: u64,
}

impl ProcInfo {
    /// Whether the process has exited and only waits to be reaped.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

fn info(process: &Process) -> Option<ProcInfo> {
    let stat = process.stat().ok()?;
    Some(ProcInfo {
        pid: stat.pid,
        ppid: stat.ppid,
        pgid: stat.pgrp,
        session: stat.session,
        state: stat.state,
        cpu_ticks: stat.utime.saturating_add(stat.stime),
        start_ticks: stat.starttime,
    })
}

/// Process `pid` now, or `None` when it is gone (or cannot be read).
pub fn read(pid: i32) -> Option<ProcInfo> {
    info(&Process::new(pid).ok()?)
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for its reaper).
pub fn is_running(pid: i32) -> bool {
    read(pid).is_some_and(|info| !info.is_zombie())
}

/// Every process of the machine, by pid (threads are not listed at the top of `/proc`);
/// empty when `/proc` cannot be read.
pub fn snapshot() -> HashMap<i32, ProcInfo> {
    let Ok(processes) = procfs::process::all_processes() else {
        return HashMap::new();
    };
    processes
        .filter_map(|process| info(&process.ok()?))
        .map(|info| (info.pid, info))
        .collect()
}

/// The pids of this process's children, from every thread's
/// `/proc/self/task/<tid>/children` (a child is listed under the thread that forked it);
/// `None` when the kernel does not list children (built without `CONFIG_PROC_CHILDREN`)
/// or a thread's list cannot be read.
pub fn own_children() -> Option<Vec<i32>> {
    let mut children = Vec::new();
    for thread in std::fs::read_dir("/proc/self/task").ok()? {
        let text = std::fs::read_to_string(thread.ok()?.path().join("children"));
        match text {
            Ok(text) => children.extend(
                text.split_whitespace()
                    .filter_map(|pid| pid.parse::<i32>().ok()),
            ),
            // A thread that ended since the listing has no children left to list.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    Some(children)
}

/// The pids of every process of `table` that descends from `root` (not `root` itself).
pub fn descendants(table: &HashMap<i32, ProcInfo>, root: i32) -> Vec<i32> {
    let children = children(table);
    let mut found = Vec::new();
    // A snapshot is not atomic: a reused pid could make a loop, which must not hang us.
    let mut seen = HashSet::from([root]);
    let mut pending = vec![root];
    while let Some(parent) = pending.pop() {
        for &pid in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(pid) {
                found.push(pid);
                pending.push(pid);
            }
        }
    }
    found
}

/// The children of each process of `table`, by parent pid.
pub fn children(table: &HashMap<i32, ProcInfo>) -> HashMap<i32, Vec<i32>> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for info in table.values() {
        children.entry(info.ppid).or_default().push(info.pid);
    }
    children
}

/// The resident memory of one process (`VmRSS`: anonymous, file-mapped and shared pages it
/// maps, not the page cache), in bytes; 0 for a zombie or a process that is gone.
pub fn rss_bytes(pid: i32) -> u64 {
    Process::new(pid)
        .and_then(|process| process.status())
        .ok()
        .and_then(|status| status.vmrss)
        .map_or(0, |kilobytes| kilobytes.saturating_mul(1024))
}

/// Whether the environment the process was started with holds `marker` (`NAME=value`).
/// A process that cleared its environment, a zombie or one we may not read gives false.
pub fn environ_has(pid: i32, marker: &[u8]) -> bool {
    let Some(at) = marker.iter().position(|byte| *byte == b'=') else {
        return false;
    };
    let (name, value) = (OsStr::from_bytes(&marker[..at]), &marker[at + 1..]);
    Process::new(pid)
        .and_then(|process| process.environ())
        .is_ok_and(|environ| environ.get(name).is_some_and(|v| v.as_bytes() == value))
}

/// Clock ticks per second for the CPU and start times of [`ProcInfo`] (`USER_HZ`).
pub fn clock_ticks() -> u64 {
    procfs::ticks_per_second().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> i32 {
        i32::try_from(std::process::id()).expect("Linux pids fit in i32")
    }

    #[test]
    fn reads_this_process() {
        let info = read(me()).expect("own stat");
        assert_eq!(info.pid, me());
        assert!(!info.is_zombie());
        assert!(is_running(me()));
        assert!(!is_running(-1));
        assert!(info.start_ticks > 0);
        assert!(rss_bytes(me()) > 0);
        assert!(snapshot().contains_key(&me()));
        assert!(clock_ticks() > 0);
        assert_eq!(read(-1), None);
        assert_eq!(rss_bytes(-1), 0);
    }

    #[test]
    fn the_environment_marker_is_found_by_name_and_value() {
        use std::io::BufRead as _;
        // The line is printed once `sh` runs with the environment; it then waits for its
        // stdin to close (no `exec`, which would replace the environment's pages).
        let mut child = std::process::Command::new("sh")
            .args(["-c", "echo ready; read _"])
            .env("VUPDATE_TEST_MARKER", "a=b")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready");
        let pid = i32::try_from(child.id()).expect("pid");
        let found = environ_has(pid, b"VUPDATE_TEST_MARKER=a=b");
        let other_value = environ_has(pid, b"VUPDATE_TEST_MARKER=a");
        let no_value = environ_has(pid, b"VUPDATE_TEST_MARKER");
        let _ = child.kill();
        let _ = child.wait();
        assert!(found);
        assert!(!other_value);
        assert!(!no_value);
    }

    #[test]
    fn descendants_are_followed_through_every_generation() {
        let info = |pid, ppid| ProcInfo {
            pid,
            ppid,
            pgid: pid,
            session: pid,
            state: 'S',
            cpu_ticks: 0,
            start_ticks: 1,
        };
        let table: HashMap<i32, ProcInfo> = [
            info(1, 0),
            info(10, 1),
            info(11, 10),
            info(12, 11),
            info(20, 1),
        ]
        .into_iter()
        .map(|info| (info.pid, info))
        .collect();
        let mut found = descendants(&table, 10);
        found.sort_unstable();
        assert_eq!(found, [11, 12]);
        assert!(descendants(&table, 12).is_empty());
    }

    #[test]
    fn own_children_lists_a_child_of_any_thread_and_no_one_else() {
        let mut children = Vec::new();
        for _ in 0..2 {
            children.push(
                std::thread::spawn(|| std::process::Command::new("sleep").arg("30").spawn())
                    .join()
                    .expect("thread")
                    .expect("sleep"),
            );
        }
        let listed = own_children();
        let pids: Vec<i32> = children
            .iter()
            .map(|child| i32::try_from(child.id()).expect("pid"))
            .collect();
        for child in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let listed = listed.expect("this kernel lists children");
        for pid in &pids {
            assert!(listed.contains(pid), "{pid} in {listed:?}");
        }
        assert!(
            !listed.contains(&me()) && !listed.contains(&1),
            "{listed:?}"
        );
    }

    #[test]
    fn a_child_of_this_process_is_a_descendant() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let found = descendants(&snapshot(), me());
        let pid = i32::try_from(child.id()).expect("pid");
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&pid), "{found:?}");
    }
}
