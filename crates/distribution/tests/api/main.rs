//! The distribution end to end over real HTTP on 127.0.0.1:0: a real server started from a
//! config, a real SQLite store, real Git state repos in temp dirs.
//!
//! - `support`: starting a distribution, logging in, GraphQL over HTTP and WebSocket.
//! - `roles`: every query, mutation and subscription refuses callers without the right
//!   role, with a stable code.
//! - `login`: failed logins wait longer per account and per address; a flood past the
//!   hashing threads is refused at once.
//! - `limits`: bodies, heads, query strings, GraphQL operations, WebSocket messages, slow
//!   clients, connections and requests past their limits are answered with stable codes.
//! - `desired`: edits become commits (author, message), stale edits are refused, reverts.
//! - `policy`: under `policy.yaml`'s pullRequest mode, edits and reverts go to branches
//!   `vupdate/edit/...` that `status` lists until merged.
//! - `watch`: an invalid commit is reported while the previous one stays in force; the
//!   webhook makes the distribution fetch at once.
//! - `images`: 200 MB through upload and download with bounded memory; a cut upload leaves
//!   no version.
//! - `reports`: states, logs (deduplicated, followed live) and fault reports.
//! - `service_roles`: the role of a service apart in states, logs, faults and `status`,
//!   also for what older updaters sent and stored.
//! - `tls`: HTTPS from the configured PEM files; a bad key file names both files.
//! - `dashboard`: the app and GraphiQL served from the binary, logs read forward and
//!   downloaded.
//! - `builds`: build tasks for desired versions, their status, and recovery after a restart.
//! - `data_directory`: one server per data directory.
//! - `secrets`: named secrets set by an administrator, listed without their values.
//! - `self_update`: `status { selfUpdate }`, the distribution's and updaters' versions.
//! - `known_bad`: versions updaters rolled back, held back from them, released by a
//!   commit desiring them anew or by hand.
//! - `mesh`: a consumer distribution following a provider: commits, branches, taking by
//!   hand, tested gating, a revoked token, uploads across restarts.

mod builds;
mod dashboard;
mod data_directory;
mod desired;
mod images;
mod known_bad;
mod limits;
mod login;
mod mesh;
mod policy;
mod reports;
mod roles;
mod secrets;
mod self_update;
mod service_roles;
mod support;
mod tls;
mod watch;
mod waves;
