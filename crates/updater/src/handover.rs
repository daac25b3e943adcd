//! Self-update without restarting the services: the updater replaces its own program with
//! `execve` (same pid, so it stays the parent of every service and `waitpid` keeps
//! working) and hands each run to the new program, output pipes included.
//!
//! **The updater's image.** The updater is the service `updater` (reserved: it is never
//! listed among the services it runs). Its image holds the new binary at
//! [`UPDATER_BINARY`] (`bin/vupdate`, executable) and an `install.json` without
//! `runService` (install and post-install commands run as for any service). It is
//! installed with the same crash-safe steps into `<workDirectory>/updater/` (`current/`,
//! `previous/`, journal); its "start" is the handover below, and its start window is the
//! new process becoming ready. A new version that fails is rolled back to `previous/`,
//! remembered as failed and not tried again while it stays desired.
//!
//! **The handover, old process.** Once the version is in `current/`:
//!
//! 1. *Probe*: `current/bin/vupdate` is run as a child with [`PROBE_ENV`] and must print
//!    [`PROBE_REPLY`] `formats=…` listing [`FORMAT`], then exit 0, within the probe
//!    timeout. A binary that cannot run here (wrong architecture, missing libraries, a
//!    crash at start, another format) is never executed: its start fails at once.
//! 2. *Detach*: every task stops; each supervisor stops reading its pipes at a read
//!    boundary (unread output waits in the pipe, bounded by the pipe buffer, so a very
//!    chatty service blocks for the moment of the `execve`), flushes the lines read to
//!    the spool and files, and gives up its run without killing or reaping it: pid,
//!    start ticks, cgroup, start time, uptime, restart counters, the tree seen so far,
//!    the pipe read ends and the bytes of an unended line.
//! 3. [`prepare`]: the handover file (`<workDirectory>/updater/handover.json`, see
//!    [`HandoverFile`]) is written atomically, and exactly those read ends have their
//!    close-on-exec flag cleared.
//! 4. `execve` of the new binary with this process's arguments and environment, plus
//!    [`HANDOVER_ENV`] naming the file. When `execve` fails, the services come back as
//!    a [`HandoverFailed`] for this process to adopt again.
//!
//! **The handover, new process.** [`startup`] is the first thing `main` calls: it reads
//! the file (ignored unless written by this pid), takes the pipes (checked by inode) and
//! arms the fallback; the agent ([`crate::agent::Agent::start_with`]) adopts each run
//! (a new supervisor reading the same pipes, starting with the unended line, waiting for
//! the same pid, the subreaper flag set again) and calls [`Adoption::ready`], which
//! writes [`ReadyMarker`] to `<workDirectory>/updater/handover.ready.json`. The new
//! updater version is then committed in the journal.
//!
//! **The fallback.** Until it is ready, a new process that panics, gives up, or is not
//! ready within the window executes the previous binary in the same process, with the
//! previous arguments and environment and [`FAILED_ENV`] giving the reason; that process
//! adopts the runs the same way, rolls the updater's install back and reports why. A
//! handover file still there at a fresh start means the process died during a handover:
//! the version it handed to is treated as failed the same way.
//!
//! - [`mod@file`]: the handover file and the in-memory runs. `fds` (private): pipe
//!   descriptors across `execve`. `exec` (private): `execve`.
//! - `prepare` (private): the old process's side. `startup` (private): the new one's.

mod exec;
mod fds;
pub mod file;
mod prepare;
mod startup;

pub use file::{
    CgroupRecord, ExecTarget, FORMAT, HandoverFile, LivePipe, LiveRun, LiveService, PipeHandover,
    ReadyMarker, RunHandover, RunRecord, ServiceHandover,
};
pub use prepare::{HandoverFailed, Header, Prepared, prepare};
pub use startup::{Adoption, Startup, startup};

pub(crate) use exec::{this_process, this_process_args};
pub(crate) use startup::stale_handover;

/// Names the handover file for the process after `execve`.
pub const HANDOVER_ENV: &str = "VUPDATE_HANDOVER";

/// Set for the previous updater taken back after a failed handover: why it failed.
pub const FAILED_ENV: &str = "VUPDATE_HANDOVER_FAILED";

/// Set when a new binary is probed: [`startup`] then prints [`PROBE_REPLY`] and exits.
pub const PROBE_ENV: &str = "VUPDATE_HANDOVER_PROBE";

/// The start of the probe's reply line, followed by ` formats=1[,2…]`.
pub const PROBE_REPLY: &str = "vupdate-handover-probe";

/// The variables of the handover protocol, never passed to services.
pub(crate) const HANDOVER_VARIABLES: [&str; 3] = [HANDOVER_ENV, FAILED_ENV, PROBE_ENV];

/// Where the new updater binary is in the updater's image (and so in `current/`).
pub const UPDATER_BINARY: &str = "bin/vupdate";

/// The service name of the updater itself.
pub const UPDATER_SERVICE: &str = "updater";

/// The handover file, in the updater's service directory.
pub const HANDOVER_FILE: &str = "handover.json";

/// The ready marker, in the updater's service directory.
pub const READY_FILE: &str = "handover.ready.json";
