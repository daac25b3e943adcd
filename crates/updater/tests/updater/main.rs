//! The updater's tests with real processes (`sh -c` scripts as services), real files and
//! real zips, one module per area:
//!
//! - `support`: temp service directories, polling with deadlines, process lookups.
//! - `supervise`: crashes, fault reports, backoff, restart conditions, tree stops.
//! - `install`: installs, upgrades, aborted installs, rollbacks, following the desired version.
//! - `health`: health checks gating a new version (rolled back) and restarting a run.
//! - `logs`: 100,000 lines through rotation, the spool and an unreliable sink.
//! - `agent`: the whole updater with recording seams.
//! - `remote`: the follower of the desired versions against a real distribution.
//! - `kill9`: a real updater process killed at each install step, then recovery.
//! - `handover`: a real updater process updating itself by `execve`, the services kept,
//!   and the previous binary taking over again when the new one fails.

mod agent;
mod handover;
mod health;
mod install;
mod kill9;
mod logs;
mod remote;
mod supervise;
mod support;
