//! The vupdate distribution server, built up part by part (issue 4).
//!
//! Parts that exist so far, each a library module with its own tests; the HTTP/GraphQL
//! server that ties them together comes next:
//!
//! - [`config`]: `distribution.yaml`, documented and validated.
//! - [`auth`]: accounts, roles, argon2 passwords, JWT sessions and revocable access tokens.
//! - [`images`]: the content-addressed image store (streaming, SHA-256, retention).
//! - [`watcher`]: follows the state repo; the newest valid commit is in force.
//! - [`tasks`]: asynchronous work with a log, a final status and cancellation.
//! - [`reconcile`]: the loop that starts a build for every desired version without an image.
//! - [`http`]: the HTTP edge: health, the Git webhook, image upload and ranged download.

pub mod auth;
pub mod config;
pub mod consumers;
pub mod faults;
pub mod graphql;
pub mod http;
pub mod images;
pub mod intake;
pub mod mesh;
pub mod metrics;
pub mod private;
pub mod reconcile;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod state_reports;
pub mod tasks;
pub mod watcher;
