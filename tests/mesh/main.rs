//! The distribution mesh end to end, as a vendor and its customer live it: three
//! distributions on 127.0.0.1, each with its own state repo, and updaters.
//!
//! - `jetto` builds the sample service `hello` from its sources; its consumers.yaml gives
//!   profile `partner` to `staging` and `production`.
//! - `staging` follows jetto with `autoUpdate: commit` and `uploadState`; its client
//!   settings add `site.txt` saying `staging`; an updater runs `hello`.
//! - `production` follows jetto with `testConsumer: staging`, `autoUpdate: pullRequest`
//!   and `uploadState`; its settings say `production`; an updater runs `hello`.
//!
//! `remote_build`: a consumer whose settings name its provider as builder gets its
//! versions built there, with its own settings, and runs them.
//!
//! `scenario`: a new version flows through staging, is marked tested, reaches production
//! as a branch with exactly that version (not the untested newer one), runs there once
//! merged; jetto shows both consumers' instances and installed versions; jetto stops and
//! comes back while the consumers keep running and catch up; a revoked token is reported,
//! not retried in a loop; and no secret value is anywhere it should not be.

// Shared with the other end-to-end tests; restarting a server is for the crash tests.
#[allow(dead_code)]
#[path = "../support/distribution.rs"]
mod distribution;
// The mesh builds its own states; only the sample service's source is shared.
#[allow(dead_code)]
#[path = "../support/hello.rs"]
mod hello;
mod remote_build;
mod scenario;
mod world;
