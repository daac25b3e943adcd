//! Named crash points: the steps where a fault test stops a process to kill it (kill -9)
//! exactly there, instead of killing at a random moment and hoping it hit the step.
//!
//! A process whose environment has `VUPDATE_CRASH_POINT=<name>` and that reaches the point
//! of that name prints `vupdate: crash point <name> reached; waiting to be killed` on stderr
//! and then waits forever: the test watches stderr for that line, kills the process, starts
//! it again and checks what a crash at that step left. Without the variable, or at any
//! other point, [`reached`] and [`reached_async`] return at once (the variable is read
//! once per process).
//!
//! The points, by crate (each is documented where it stands):
//!
//! | name | where the process stops |
//! | --- | --- |
//! | `images.blob-stored` | an upload's bytes are in their blob; the version's ref is not written |
//! | `state-reports.committed` | a report's transaction committed; its sender is not acknowledged yet |
//! | `store.sqlite.uncommitted.<collection>` | a SQLite batch is written inside its open transaction |
//! | `state.edit.work-tree-advanced` | an edit's commit is in the checked-out work tree; the branch is not moved |
//! | `state.edit.pushed` | an edit's commit is on the remote; the local branch is not moved |
//! | `self-update.marker-written` | the swap's marker is written; the new binary is not renamed into place |
//! | `self-update.before-confirm` | a swapped-in binary is healthy and about to confirm itself |
//!
//! **Invariant:** a point never changes what the code does; it only waits.

use std::sync::OnceLock;

/// The environment variable naming the one point to stop at.
pub const ENV: &str = "VUPDATE_CRASH_POINT";

/// The point this process stops at, if any.
fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(ENV).ok().filter(|name| !name.is_empty()))
        .as_deref()
}

/// Whether any point is armed: callers that must format a point's name check this first.
pub fn any_armed() -> bool {
    armed().is_some()
}

/// Whether the point `name` is the one to stop at.
pub fn is_armed(name: &str) -> bool {
    armed() == Some(name)
}

/// The line printed on stderr when `name` is reached.
pub fn announcement(name: &str) -> String {
    format!("vupdate: crash point {name} reached; waiting to be killed")
}

/// Blocking code reached the point `name`: when it is armed, blocks this thread forever.
pub fn reached(name: &str) {
    if is_armed(name) {
        announce(name);
        loop {
            std::thread::park();
        }
    }
}

/// Async code reached the point `name`: when it is armed, never resolves (the task stops
/// there; the rest of the process goes on until it is killed).
pub async fn reached_async(name: &str) {
    if is_armed(name) {
        announce(name);
        std::future::pending::<()>().await;
    }
}

fn announce(name: &str) {
    use std::io::Write as _;
    let mut stderr = std::io::stderr().lock();
    // Nothing to do if stderr is gone: the point still stops.
    let _ = writeln!(stderr, "{}", announcement(name));
    let _ = stderr.flush();
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unarmed_point_returns_at_once() {
        // The test harness never sets the variable for its own process.
        assert!(!super::is_armed("images.blob-stored"));
        super::reached("images.blob-stored");
        assert_eq!(
            super::announcement("x.y"),
            "vupdate: crash point x.y reached; waiting to be killed"
        );
    }
}
