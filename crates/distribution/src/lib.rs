//! The vupdate distribution server: the hub that follows the Git state repo, builds the
//! versions it asks for, stores their images, and serves the GraphQL API and the REST
//! edge that updaters, builders, the dashboard and people use.
//!
//! [`server::Distribution::start`] opens every part in dependency order and serves them on
//! one address; the parts, each a module with its own tests:
//!
//! - [`config`]: `distribution.yaml`, documented and validated.
//! - [`auth`]: accounts, roles, argon2 passwords, JWT sessions and revocable access tokens.
//! - [`images`]: the image store (the `vupdate-images` crate, under its old path).
//! - [`watcher`]: follows the state repo; the newest valid commit is in force.
//! - [`tasks`]: asynchronous work with a log, a final status and cancellation.
//! - [`reconcile`]: the loop that builds every desired version without an image, each
//!   build a `vupdate builder` child process; and client generations.
//! - [`retention`]: which versions are in use, and the pass that keeps the newest others.
//! - [`state_reports`], [`intake`]: updaters' states (group commit) and log batches
//!   (numbered, never duplicated); [`faults`], [`private`]: fault archives and private files;
//!   [`known_bad`]: versions updaters rolled back, recorded from their states.
//! - [`http`]: the REST edge (health, the Git webhook, images, faults, private files,
//!   log downloads, metrics, the embedded dashboard) with one error type; [`graphql`]: the schema, one part per subject, over
//!   HTTP and WebSocket; [`metrics`]: the Prometheus figures.
//! - [`server`]: start, serve (HTTP or HTTPS), shut down; token files for local agents;
//!   [`runtime`]: the async runtime it runs on.
//! - [`install`], [`enrolment`]: the one-line install of an updater on a VM (script,
//!   binary, enrolment tokens exchanged for an instance's updater token).
//! - [`leadership`]: the lease replicas on one MongoDB store share; only its holder runs
//!   the reconcile loop, expiry, task recovery and self-update.
//! - [`relay`]: replicas share their commit in force through the store, so a
//!   change seen by one reaches every replica's subscribers within about a second.
//! - [`backup`]: backup of a running server's data and restore into an empty directory.
//! - [`self_update`]: the server replaces its own program with the desired `distribution`
//!   client version (stage, probe, swap and `execve`, confirm or roll back).
//! - [`sources`]: the newest commit of a service's source repository.

pub mod auth;
pub mod backup;
pub mod config;
pub mod consumers;
pub mod enrolment;
pub mod faults;
pub mod graphql;
pub mod http;
pub mod install;
pub mod known_bad;
pub mod leadership;
mod log_batch;
/// The image store lives in its own crate, `vupdate-images`; this name keeps its old path.
pub use vupdate_images as images;
pub mod intake;
pub mod mesh;
pub mod metrics;
pub mod private;
pub mod reconcile;
pub mod relay;
pub mod retention;
pub mod roles;
pub mod rollouts;
pub mod runtime;
pub mod secrets;
pub mod self_update;
pub mod server;
pub mod sources;
pub mod state_reports;
pub mod tasks;
pub mod watcher;
pub mod webhook;
