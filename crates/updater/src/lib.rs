//! The updater's machinery: what runs on every VM to install, run and watch services.
//!
//! The crate is a library; the `vupdate updater run` command loads the config and runs the
//! [`agent`] with the [`remote`] seams. The agent reaches the network only through four
//! seam traits, which [`remote`] implements over `vupdate-client` and tests replace with
//! fakes. Layout:
//!
//! - [`config`]: `updater.yaml`, validated, with defaults.
//! - [`layout`]: the directory of one service, `<workDirectory>/<service[-role]>/…`.
//! - `spawn` (private): the one place that starts processes (clippy refuses
//!   `Command::new` anywhere else in the crate, see `clippy.toml`).
//! - [`supervisor`]: one version of one service, run in its own process group (and cgroup
//!   where the machine gives one), restarted with backoff, checked against its restart
//!   conditions, stopped tree-wide.
//! - [`logs`]: stdout/stderr line by line into the tail, rotating files and the upload
//!   spool; [`logs::LogSink`] is the seam to `POST /logs/batches`.
//! - [`faults`]: fault report zips kept until uploaded; [`faults::FaultUploader`] is the
//!   seam to the fault upload.
//! - [`state`]: the per-service state the reporter sends; [`state::StateSink`] is the seam
//!   to `setServiceStates`.
//! - [`install`]: the crash-safe install state machine (journal, pure plan, unpack).
//! - [`images`]: where images come from; [`images::ImageSource`] is the seam to the
//!   image download.
//! - [`runner`]: one service for the updater's life: recover, run, install, roll back;
//!   and the updater's own service, whose start is a self-update.
//! - [`handover`]: self-update by `execve` without restarting the services: the handover
//!   file, the inherited pipes, adoption and the fallback to the previous binary.
//! - [`agent`]: the whole updater: every runner, log drain and fault uploader, and the
//!   state reporter, joined to the network by [`agent::Seams`]; it hands over to a new
//!   version of itself ([`agent::Agent::hand_over`]).
//! - [`remote`]: the seams over the distribution's API, and the follower of the desired
//!   versions (subscription, poll, cache).
//! - [`schedule`]: one grid for everything periodic (reports, polls, samples), so an idle
//!   updater wakes once for all that falls due together.
//! - [`error`]: the crate's one error type.

pub mod agent;
pub mod config;
pub mod error;
pub mod faults;
pub mod handover;
pub mod images;
pub mod install;
pub mod layout;
pub mod logs;
pub mod remote;
pub mod runner;
pub mod schedule;
mod spawn;
pub mod state;
pub mod supervisor;

pub use error::{Error, Result};
