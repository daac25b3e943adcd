//! Reading `/proc`: process parents, groups, start times, CPU ticks, resident memory and
//! the environment marker that ties a process to the service run that started it.

use std::collections::HashMap;
use std::fs;

/// What the supervisor needs to know about one process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcInfo {
    /// The process id.
    pub pid: i32,
    /// The parent's process id.
    pub ppid: i32,
    /// The process group id.
    pub pgid: i32,
    /// `R`, `S`, `Z`, … as the kernel reports it.
    pub state: char,
    /// User plus system CPU time, in clock ticks.
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

/// Parses the content of `/proc/<pid>/stat`; the command name may hold spaces and
/// parentheses, so the fields are read after its last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcInfo> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim().parse().ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some(ProcInfo {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        cpu_ticks: number(11)? + number(12)?,
        start_ticks: number(19)?,
    })
}

/// One process's `/proc/<pid>/stat`, or `None` when it is gone.
pub(crate) fn read_stat(pid: i32) -> Option<ProcInfo> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process of the machine (threads are not listed at the top of `/proc`).
pub(crate) fn snapshot() -> HashMap<i32, ProcInfo> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .map(|info| (info.pid, info))
        .collect()
}

/// The resident memory of one process (`VmRSS`: anonymous, file-mapped and shared pages it
/// maps, not the page cache), in bytes; 0 for a zombie or a process that is gone.
pub(crate) fn rss_bytes(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| parse_vm_rss(&status))
        .unwrap_or(0)
}

/// The `VmRSS:  1234 kB` line of `/proc/<pid>/status`, in bytes.
pub(crate) fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// Whether the environment the process was started with holds `marker` (`NAME=value`).
/// A process that cleared its environment, a zombie or one we may not read gives false.
pub(crate) fn environ_has(pid: i32, marker: &[u8]) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|environ| {
            environ
                .split(|byte| *byte == 0)
                .any(|entry| entry == marker)
        })
        .unwrap_or(false)
}

/// Clock ticks per second for the CPU times in `/proc` (`USER_HZ`, 100 on Linux).
pub(crate) fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|ticks| u64::try_from(ticks).ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_last_parenthesis() {
        let text = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        let info = parse_stat(text).expect("parses");
        assert_eq!(
            info,
            ProcInfo {
                pid: 4242,
                ppid: 17,
                pgid: 4242,
                state: 'S',
                cpu_ticks: 12,
                start_ticks: 98765
            }
        );
        assert_eq!(parse_stat("12 (x) Z"), None);
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t 999 kB\nVmRSS:\t    2048 kB\nRssAnon:\t1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name:\tzombie\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let info = read_stat(me).expect("own stat");
        assert_eq!(info.pid, me);
        assert!(!info.is_zombie());
        assert!(rss_bytes(me) > 0);
        assert!(snapshot().contains_key(&me));
        assert!(clock_ticks() > 0);
    }
}
