//! The vupdate state repo: schema 1, load and validate at any commit, edit as a commit,
//! history, diff and revert.
//!
//! The state repo is a Git repository of YAML files (documented file by file in
//! `examples/state-repo/README.md`). This crate is the only place that knows its layout and
//! the only one that talks to Git about it; no gix type appears in its API.
//!
//! Layout, from pure to I/O:
//!
//! - [`model`]: the validated state as plain data ([`State`], [`Desired`], build settings…).
//! - [`files`]: [`FileSet`], the files in memory, the single input of [`State::parse`].
//! - `schema`, `validate`: the serde structs with locations, and the checks; every problem
//!   is collected into [`ValidationErrors`] (`path:line:column: message`).
//! - [`diff`]: per-service differences between desired lists.
//! - [`plan`]: what merging one revision over another would do (pure; facts given).
//! - [`waves`]: rollout waves and what an instance gets while a rollout is under way (pure).
//! - [`edit`]: [`StateEdit`], the changes the dashboard and CLI make, applied to a
//!   [`FileSet`] by splicing the smallest span of YAML (comments and layout survive).
//! - [`repo`]: [`StateRepo`], the Git side (gix for reading, writing objects, refs and
//!   fetching; the `git` program for push and work-tree updates).
//! - [`error`]: the error type, [`StateError`].
//!
//! Invariant: nothing is written to a branch unless the whole resulting state validates.

pub mod diff;
pub mod edit;
pub mod error;
pub mod files;
pub mod model;
pub mod plan;
pub mod problems;
pub mod repo;
pub mod settings_hash;
pub mod waves;

mod schema;
mod validate;
mod yaml;

pub use diff::{DesiredDiff, ListDiff};
pub use edit::StateEdit;
pub use error::StateError;
pub use files::FileSet;
pub use model::{
    AutoUpdate, ClientBuild, Consumer, Desired, DeveloperBuild, EditMode, EditRule, GitRepository,
    OnFailure, Policy, Provider, Rollout, SCHEMA_VERSION, SELF_PROFILE, ServiceSettings, State,
    TestedVersions,
};
pub use plan::{Facts, KnownBad, Plan};
pub use problems::{Position, Problem, ValidationErrors};
pub use repo::{Author, HistoryEntry, Recovery, Revision, StateRepo};
pub use settings_hash::{client_settings_hash, service_settings_hash};
pub use waves::{MaxFailures, Wave};
