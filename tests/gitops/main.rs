//! GitOps end to end, as users live it: everything starts from the `vupdate` binary.
//!
//! Each test builds a small world (`world`): a bare "remote" state repo and a work clone to
//! push from, the sample service `hello` (examples/hello-service) in a source repo of its
//! own, a distribution with the embedded store following the remote, and updaters with
//! their own instance ids and work directories: by default two, one running `hello`, the
//! other `hello-blue` (the service in role `blue`). Checks look at what runs: each instance's
//! `hello` answers HTTP with the version it was built as.
//!
//! - `scenarios`: a merged pull request, its `git revert`, an API edit, an updater that was
//!   offline, a bad commit, and a version that cannot start.
//! - `safety`: a version failing its health check, rolled back and marked known-bad.
//! - `provenance`: the state commit each host reports, and the hosts not yet on a commit.
//! - `waves`: six updaters in three rollout waves, a healthy version and a failing one.

// Shared with the other end-to-end tests; restarting a server is for the crash tests.
#[allow(dead_code)]
#[path = "../support/distribution.rs"]
mod distribution;
#[allow(dead_code)]
#[path = "../support/hello.rs"]
mod hello;
mod provenance;
mod safety;
mod scenarios;
mod waves;
mod world;
