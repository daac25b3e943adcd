//! Steps 3 and 4 of a self-update, across processes: the old process keeps
//! `<binary>.previous`, writes the marker and renames the new binary into place, then
//! `execve`s it with the same arguments and the listening socket (same pid, same port:
//! connections wait in the socket's backlog meanwhile). The new process confirms itself
//! once healthy; a start that finds the marker of a process that died unconfirmed puts
//! `<binary>.previous` back and executes it.

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use super::SelfUpdateError;
use super::record::{self, Outcome, OutcomeKind, Pending, SelfUpdateRecord};

/// `<binary>.previous`: the binary a swap replaced, put back on a rollback.
pub fn previous_path(binary: &Path) -> PathBuf {
    let mut name = binary.as_os_str().to_os_string();
    name.push(".previous");
    PathBuf::from(name)
}

/// What a start finds in the record.
#[derive(Debug)]
pub enum Begin {
    /// No swap under way.
    Normal,
    /// This is the first start of a swapped-in binary: it must confirm before the deadline.
    Confirming(Pending),
    /// The binary swapped in died unconfirmed: the previous one is back in place, to be
    /// executed ([`exec`]) with this reason recorded.
    RolledBack(String),
}

/// Reads the record at a start of the program at `binary` and acts on a swap under way.
pub fn begin(
    data_directory: &Path,
    binary: &Path,
    now: DateTime<Utc>,
) -> Result<Begin, SelfUpdateError> {
    let mut record = record::load(data_directory)?;
    let Some(mut pending) = record.pending.clone() else {
        return Ok(Begin::Normal);
    };
    if !is_file(binary, pending.inode) {
        // The old process stopped between the marker and the rename: the old binary runs.
        record.pending = None;
        record.fail(
            &pending.version,
            OutcomeKind::RolledBack,
            "the swap was cut before the new binary was put in place; the previous binary runs"
                .to_owned(),
            now,
        );
        record::save(data_directory, &record)?;
        return Ok(Begin::Normal);
    }
    let reason = if pending.started {
        format!(
            "the new binary started again before it confirmed it was healthy (it died or was restarted); put back {}",
            pending.previous.display()
        )
    } else if now > pending.deadline {
        format!(
            "the new binary started after its deadline {}; put back {}",
            pending.deadline.to_rfc3339(),
            pending.previous.display()
        )
    } else {
        pending.started = true;
        record.pending = Some(pending.clone());
        record::save(data_directory, &record)?;
        return Ok(Begin::Confirming(pending));
    };
    roll_back(data_directory, &mut record, reason.clone(), now)?;
    Ok(Begin::RolledBack(reason))
}

/// Puts `<binary>.previous` of the swap under way back in place and records why; the
/// caller then executes it.
pub fn roll_back(
    data_directory: &Path,
    record: &mut SelfUpdateRecord,
    reason: String,
    now: DateTime<Utc>,
) -> Result<(), SelfUpdateError> {
    let Some(pending) = record.pending.take() else {
        return Ok(());
    };
    std::fs::rename(&pending.previous, &pending.binary).map_err(|error| SelfUpdateError::Swap {
        version: pending.version.clone(),
        error: format!(
            "cannot put back {} as {}: {error}",
            pending.previous.display(),
            pending.binary.display()
        ),
    })?;
    tracing::error!(version = %pending.version, %reason, "self-update rolled back");
    record.running = pending.from.clone();
    record.fail(&pending.version, OutcomeKind::RolledBack, reason, now);
    record::save(data_directory, record)
}

/// Marks the swapped-in binary healthy: it is the running version from now on.
pub fn confirm(record: &mut SelfUpdateRecord, now: DateTime<Utc>) -> Option<Outcome> {
    let pending = record.pending.take()?;
    let took = (now - pending.swapped_at).to_std().unwrap_or_default();
    let outcome = Outcome {
        version: pending.version.clone(),
        from: pending.from.clone(),
        kind: OutcomeKind::Succeeded,
        message: format!(
            "serving; {} from the old binary's stop to the new one's confirmation",
            humantime::format_duration(Duration::from_millis(took.as_millis() as u64))
        ),
        at: now,
    };
    record.running = Some(pending.version);
    record.refused = None;
    record.last = Some(outcome.clone());
    Some(outcome)
}

/// Before the old process stops: `<binary>.previous` becomes a second name of the running
/// binary, so the swap itself is one rename. Nothing else changes.
pub fn keep_previous(binary: &Path, version: &str) -> Result<PathBuf, SelfUpdateError> {
    let previous = previous_path(binary);
    let fail = |error: std::io::Error| SelfUpdateError::Swap {
        version: version.to_owned(),
        error: format!(
            "cannot keep {} as {}: {error}",
            binary.display(),
            previous.display()
        ),
    };
    match std::fs::remove_file(&previous) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(fail(error)),
    }
    std::fs::hard_link(binary, &previous).map_err(fail)?;
    Ok(previous)
}

/// After the old process stopped: writes the marker, then renames `staged` onto `binary`.
pub fn swap(
    data_directory: &Path,
    record: &mut SelfUpdateRecord,
    binary: &Path,
    staged: &Path,
    version: &str,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<(), SelfUpdateError> {
    let fail = |error: String| SelfUpdateError::Swap {
        version: version.to_owned(),
        error,
    };
    let inode = std::fs::metadata(staged)
        .map_err(|e| fail(format!("cannot read {}: {e}", staged.display())))?
        .ino();
    record.pending = Some(Pending {
        version: version.to_owned(),
        from: record.running.clone(),
        binary: binary.to_owned(),
        previous: previous_path(binary),
        inode,
        swapped_at: now,
        deadline: now + chrono::TimeDelta::from_std(window).unwrap_or(chrono::TimeDelta::MAX),
        started: false,
    });
    record::save(data_directory, record)?;
    vupdate_crashpoint::reached("self-update.marker-written");
    if let Err(error) = std::fs::rename(staged, binary) {
        record.pending = None;
        let _ = record::save(data_directory, record);
        return Err(fail(format!(
            "cannot rename {} onto {}: {error}",
            staged.display(),
            binary.display()
        )));
    }
    Ok(())
}

/// Replaces this process with `binary`, same arguments and environment, handing over
/// `listener` (systemd's socket-activation variables, which [`inherited_listener`]
/// reads). Returns only when `execve` failed.
pub fn exec(binary: &Path, listener: Option<&OwnedFd>) -> std::io::Error {
    // Not a child: this process becomes the program.
    let mut command = std::process::Command::new(binary);
    command.args(std::env::args_os().skip(1));
    if let Some(listener) = listener {
        if let Err(error) = fcntl(listener, FcntlArg::F_SETFD(FdFlag::empty())) {
            return error.into();
        }
        command
            .env("LISTEN_FDS", "1")
            .env("LISTEN_PID", std::process::id().to_string())
            .env("LISTEN_FDS_FIRST_FD", listener.as_raw_fd().to_string());
    }
    command.exec()
}

/// The listening socket handed over by the program this process ran before (or by
/// systemd's socket activation), close-on-exec again; call it before any thread starts.
pub fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    listenfd::ListenFd::from_env().take_tcp_listener(0)
}

/// Whether `path` is the file with inode `inode`.
fn is_file(path: &Path, inode: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.ino() == inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swapped(dir: &Path, window: Duration) -> (PathBuf, SelfUpdateRecord) {
        let binary = dir.join("vupdate");
        std::fs::write(&binary, b"old").expect("old");
        let staged = dir.join("vupdate.new-acme-2");
        std::fs::write(&staged, b"new").expect("new");
        let mut record = SelfUpdateRecord {
            running: Some("acme-1".into()),
            ..SelfUpdateRecord::default()
        };
        keep_previous(&binary, "acme-2").expect("keep");
        swap(
            dir,
            &mut record,
            &binary,
            &staged,
            "acme-2",
            window,
            Utc::now(),
        )
        .expect("swap");
        (binary, record)
    }

    #[test]
    fn a_swapped_binary_that_confirms_becomes_the_running_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (binary, _) = swapped(dir.path(), Duration::from_secs(60));
        assert_eq!(std::fs::read(&binary).expect("read"), b"new");
        assert_eq!(std::fs::read(previous_path(&binary)).expect("read"), b"old");
        let Begin::Confirming(pending) = begin(dir.path(), &binary, Utc::now()).expect("begin")
        else {
            panic!("the first start confirms")
        };
        assert!(pending.started);
        let mut record = record::load(dir.path()).expect("load");
        let outcome = confirm(&mut record, Utc::now()).expect("confirmed");
        assert_eq!(outcome.kind, OutcomeKind::Succeeded);
        assert_eq!(record.running.as_deref(), Some("acme-2"));
        assert!(record.pending.is_none());
    }

    #[test]
    fn a_second_start_before_confirming_puts_the_previous_binary_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (binary, _) = swapped(dir.path(), Duration::from_secs(60));
        assert!(matches!(
            begin(dir.path(), &binary, Utc::now()),
            Ok(Begin::Confirming(_))
        ));
        let Begin::RolledBack(reason) = begin(dir.path(), &binary, Utc::now()).expect("begin")
        else {
            panic!("a second start rolls back")
        };
        assert!(reason.contains("before it confirmed"), "{reason}");
        assert_eq!(std::fs::read(&binary).expect("read"), b"old");
        let record = record::load(dir.path()).expect("load");
        assert_eq!(record.running.as_deref(), Some("acme-1"));
        assert_eq!(record.refused.as_deref(), Some("acme-2"));
        let last = record.last.expect("outcome");
        assert_eq!(last.kind, OutcomeKind::RolledBack);
        assert!(matches!(
            begin(dir.path(), &binary, Utc::now()),
            Ok(Begin::Normal)
        ));
    }

    #[test]
    fn a_start_past_the_deadline_rolls_back_and_a_cut_swap_leaves_the_old_binary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (binary, _) = swapped(dir.path(), Duration::ZERO);
        let later = Utc::now() + chrono::TimeDelta::seconds(1);
        assert!(matches!(
            begin(dir.path(), &binary, later),
            Ok(Begin::RolledBack(_))
        ));

        // The marker written, the rename not done: the old binary is still in place.
        let other = tempfile::tempdir().expect("tempdir");
        let (binary, mut record) = swapped(other.path(), Duration::from_secs(60));
        std::fs::rename(previous_path(&binary), &binary).expect("as if never renamed");
        record::save(other.path(), &record).expect("save");
        assert!(matches!(
            begin(other.path(), &binary, Utc::now()),
            Ok(Begin::Normal)
        ));
        record = record::load(other.path()).expect("load");
        assert!(record.pending.is_none());
        assert_eq!(record.refused.as_deref(), Some("acme-2"));
    }
}
