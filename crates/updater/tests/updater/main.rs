//! The updater's tests with real processes (`sh -c` scripts as services), real files and
//! real zips, one module per area:
//!
//! - `support`: temp service directories, polling with deadlines, process lookups.
//! - `supervise`: crashes, fault reports, backoff, restart conditions, tree stops.
//! - `install`: installs, upgrades, aborted installs, rollbacks, following the desired version.

mod install;
mod supervise;
mod support;
