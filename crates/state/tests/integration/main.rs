//! Integration tests of vupdate-state on real Git repositories built in temp dirs.
//!
//! - `example`: the documented example repo validates, from disk and from a commit.
//! - `load`: loading at any commit, invalid commits, revisions.
//! - `edit`: edits as commits, one-line diffs, stale and invalid edits, work trees.
//! - `settings`: build settings edited as commits; services created and removed.
//! - `remote`: fetch, push to a bare remote, a push that loses a race.
//! - `clone`: a server's bare clone of a remote; the checked-out branch.
//! - `history`: history, diff, revert (plain, conflicting, merge commits).
//! - `journal`: an edit a crash cut between the work tree and the branch, made whole.

mod clone;
mod edit;
mod example;
mod fixture;
mod history;
mod journal;
mod load;
mod remote;
mod settings;
