//! The systemd units of the distribution and the updater, as `systemd-unit` prints them
//! and `install` writes them.
//!
//! What each setting is for:
//! - `Restart=always`: a crash or an out-of-memory kill brings the program back.
//! - `KillMode=mixed`: `systemctl stop` sends SIGTERM to the program alone (the updater then
//!   stops each service's tree itself: signal, grace, SIGKILL), and whatever is left when
//!   it exits or after `TimeoutStopSec` is killed, so stop stops everything. The updater's
//!   self-update re-executes in the same process (`execve`), which systemd does not see:
//!   its services survive it.
//! - `Delegate=yes` (updater): the unit's cgroup subtree is the updater's, so each
//!   service gets its own cgroup beneath it (an exact member list and a kill that misses
//!   nothing, whatever the service forks).
//! - `NoNewPrivileges`, `ProtectSystem=full` (`/usr`, `/boot`, `/etc` read-only),
//!   `PrivateTmp`, `ProtectHome=read-only`: what a compromised service can change stays small.
//! - `StateDirectory`: systemd makes the work directory and gives it to the user.
//! - `LimitCORE=infinity` (updater): its services inherit it, and their core dumps go into
//!   fault reports.
//! - No `LogsDirectory`: the programs log to the journal, and the services' logs live in
//!   their work directories, rotated by the updater.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The updater's unit file name.
#[cfg(feature = "updater")]
pub const UPDATER_UNIT: &str = "vupdate-updater.service";
/// Where unit files go.
#[cfg(any(feature = "updater", feature = "distribution"))]
pub const UNIT_DIRECTORY: &str = "/etc/systemd/system";

/// What a unit runs, and as whom.
#[derive(Debug, Clone)]
pub struct UnitOptions {
    /// The `vupdate` program.
    pub binary: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// The system user (and group) it runs as.
    pub user: String,
    /// Its work directory; under `/var/lib` it is a `StateDirectory`.
    pub work_directory: PathBuf,
}

/// A word of `ExecStart=`, quoted as systemd reads it (`%` and `$` are specifiers there).
fn word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    if escaped.chars().any(char::is_whitespace) || escaped != text {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// A path setting's value (`WorkingDirectory=`), taken whole by systemd: no quotes, only
/// `%` escaped.
fn path_value(path: &Path) -> String {
    path.to_string_lossy().replace('%', "%%")
}

/// `StateDirectory=` for a work directory under `/var/lib`, else nothing.
fn state_directory(work_directory: &Path) -> Option<String> {
    work_directory
        .strip_prefix("/var/lib")
        .ok()
        .filter(|rest| !rest.as_os_str().is_empty())
        .map(|rest| rest.to_string_lossy().into_owned())
}

fn unit(description: &str, exec: &str, options: &UnitOptions, extra: &[&str]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Written by `vupdate` {}; regenerate rather than edit (`systemd-unit --help`).",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(text, "[Unit]\nDescription={description}");
    text.push_str("Wants=network-online.target\nAfter=network-online.target\n\n[Service]\n");
    text.push_str("Type=exec\n");
    let _ = writeln!(
        text,
        "ExecStart={} {exec} --config {}",
        word(&options.binary),
        word(&options.config)
    );
    let _ = writeln!(text, "User={0}\nGroup={0}", options.user);
    match state_directory(&options.work_directory) {
        Some(directory) => {
            let _ = writeln!(text, "StateDirectory={directory}\nStateDirectoryMode=0750");
        }
        None => {
            let _ = writeln!(text, "ReadWritePaths={}", word(&options.work_directory));
        }
    }
    let _ = writeln!(
        text,
        "WorkingDirectory={}",
        path_value(&options.work_directory)
    );
    text.push_str(
        "Restart=always\nRestartSec=2s\nKillMode=mixed\nTimeoutStopSec=90s\n\
         NoNewPrivileges=yes\nProtectSystem=full\nProtectHome=read-only\nPrivateTmp=yes\n",
    );
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    text
}

/// The updater's unit.
#[cfg(feature = "updater")]
pub fn updater(options: &UnitOptions) -> String {
    unit(
        "vupdate updater: installs, runs and watches this machine's services",
        "updater run",
        options,
        &["Delegate=yes", "LimitCORE=infinity", "LimitNOFILE=65536"],
    )
}

/// The distribution's unit.
#[cfg(feature = "distribution")]
pub fn distribution(options: &UnitOptions) -> String {
    unit(
        "vupdate distribution: follows the state repo, builds and serves versions",
        "distribution run",
        options,
        &["LimitNOFILE=65536"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(work: &str) -> UnitOptions {
        UnitOptions {
            binary: "/opt/my tools/vupdate".into(),
            config: "/etc/vupdate/updater.yaml".into(),
            user: "svc".into(),
            work_directory: work.into(),
        }
    }

    #[test]
    fn exec_words_are_quoted_as_systemd_reads_them() {
        assert_eq!(word(Path::new("/usr/bin/vupdate")), "/usr/bin/vupdate");
        assert_eq!(word(Path::new("/opt/my tools/x")), "\"/opt/my tools/x\"");
        assert_eq!(word(Path::new("/a%b$c")), "\"/a%%b$$c\"");
    }

    #[cfg(feature = "updater")]
    #[test]
    fn the_updater_unit_names_its_user_and_work_directory() {
        let text = updater(&options("/var/lib/vupdate"));
        assert!(text.contains("User=svc\nGroup=svc\n"), "{text}");
        assert!(text.contains("StateDirectory=vupdate\n"), "{text}");
        assert!(text.contains(
            "ExecStart=\"/opt/my tools/vupdate\" updater run --config /etc/vupdate/updater.yaml\n"
        ));
        assert!(text.contains("Delegate=yes\n") && text.contains("KillMode=mixed\n"));
        let elsewhere = updater(&options("/srv/vupdate"));
        assert!(
            elsewhere.contains("ReadWritePaths=/srv/vupdate\n"),
            "{elsewhere}"
        );
        assert!(!elsewhere.contains("StateDirectory"));
    }
}
