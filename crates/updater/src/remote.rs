//! The distribution's API as the agent's network: [`seams`](mod@seams) implements the
//! agent's four seams over `vupdate-client`, [`follow`] keeps the desired versions of this
//! VM's services current, and [`api`] holds the one link they share (the token read at
//! each use, and whether the distribution answers, so that its return wakes every retry).
//!
//! The rest of the crate knows only the seams' traits; tests give it fakes.
//!
//! - [`api`]: the client of the distribution and its reachability.
//! - [`follow`]: the subscription and the poll of the desired versions, and their cache.
//! - [`seams`](mod@seams): images, logs, fault reports and states over `vupdate-client`.
//! - [`provenance`]: the state commit this VM has converged to, for its state reports.

pub mod api;
pub mod follow;
pub mod provenance;
pub mod seams;

pub use api::Api;
pub use follow::Following;
pub use seams::{ApiSeams, seams};
