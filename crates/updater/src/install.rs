//! Installing a version: a crash-safe state machine over the service's directory
//! (layout in [`crate::layout`]).
//!
//! An install of version B over A goes: unpack the image into `.new.partial/` and rename
//! it to `new/` (safe paths, exec bits, size cap; `install.json` required), run
//! `installCommands` in `new/` while A still runs, stop A's process tree, move A's
//! `writeLogs` files to `log.history/`, swap (`new/` ↔ `current/` with one
//! `renameat2(RENAME_EXCHANGE)`, or two renames where the filesystem cannot; A becomes
//! `previous/`), run `postInstallCommands` in `current/`, start B and watch its start
//! window. A version that fails its window N times in a row (or its post-install) is
//! rolled back: stopped, its logs moved (marked failed), `previous/` put back, and it is
//! recorded as failed in the journal, so it is not tried again while it stays desired.
//!
//! **Crash safety.** [`journal`] records the step (written atomically before the step's
//! effects count); [`plan`] is a pure function from the journal, the directory's facts and
//! what this process did to the next action; every action is atomic or idempotent. After a
//! kill -9 at any point the next updater kills what the old one left running and runs the
//! same loop, which ends with A or B in `current/` (whole, never mixed or missing) and
//! running. `model_tests` checks this with a proptest model that crashes at random
//! actions; the updater's integration tests kill a real updater process at each step.
//!
//! - [`journal`]: the journal file. [`plan`]: the state machine.
//! - [`unzip`]: unpacking an image. `commands` (private): install commands.

pub(crate) mod commands;
pub mod journal;
pub mod plan;
pub mod unzip;

#[cfg(test)]
mod model_tests;
