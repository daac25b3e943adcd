//! Faults of the distribution, over the real `vupdate` binary and HTTP on 127.0.0.1.
//!
//! Each kill -9 lands on a named step: the server runs with `VUPDATE_CRASH_POINT` set, stops
//! at that step and says so on stderr, and only then is killed (see `vupdate-crashpoint`);
//! a kill during a stream cuts a body the test itself holds half sent. After a restart,
//! nothing acknowledged is lost and nothing half done is visible:
//!
//! - `builds`: a build cut by a kill is failed as interrupted, the builder and its build
//!   commands the dead server left running are stopped, and the version is built again;
//! - `uploads`: an image upload cut mid-body, or between its blob and its ref, leaves no
//!   image and no leftover, and the same version can be uploaded again;
//! - `reports`: a state report acknowledged before the kill is kept; one cut inside its
//!   transaction is wholly out, one cut after its commit wholly in;
//! - `commits`: an edit of desired state cut between the work tree and the branch leaves
//!   both at the old commit (no half, no lock, the next edit works); one cut after its
//!   push is wholly in;
//! - `disk_full`: on a small filesystem of its own, a full disk refuses an image upload and
//!   a log batch with `DISK_FULL` naming the path, while downloads, queries and `/health`
//!   go on; once space is freed, writes work again;
//! - `log_uploads`: with a log batch held inside its transaction (a writer as far behind as
//!   it gets), queries still find a request place; of two more batches one waits for a
//!   log upload place and is refused when its wait is over, the other at once.

// Shared with the other end-to-end tests; each uses a part of it.
#[allow(dead_code)]
#[path = "../support/distribution.rs"]
mod distribution;

mod support;

mod builds;
mod commits;
mod disk_full;
mod log_uploads;
mod reports;
mod uploads;
