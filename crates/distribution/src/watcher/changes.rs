//! Following a local state repo's refs with the file system's notifications (inotify on
//! Linux, through `notify-debouncer-full`), so a commit made there is checked at once
//! rather than at the next poll. The poll stays as the safety net: notifications miss
//! changes on NFS and FUSE, and a watch can fail to start (a full inotify table); both
//! only cost the latency of the poll, and the second is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::Notify;

/// How long a burst of writes (a commit writes objects, a lock file, then renames it) is
/// gathered into one check.
const SETTLE: Duration = Duration::from_millis(50);

/// The running watch; dropping it stops it.
pub(super) struct RefWatch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for RefWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefWatch")
    }
}

/// Calls `trigger` whenever a ref of the repository whose refs live in `git_dir` may have
/// changed; `None` (logged) when the watch cannot be set up.
pub(super) fn watch_refs(git_dir: &Path, trigger: Arc<Notify>) -> Option<RefWatch> {
    let refs = git_dir.join("refs");
    let relevant = {
        let refs = refs.clone();
        move |path: &PathBuf| {
            path.starts_with(&refs)
                || path
                    .file_name()
                    .is_some_and(|name| name == "packed-refs" || name == "HEAD")
        }
    };
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            if events.iter().any(|event| event.paths.iter().any(&relevant)) {
                tracing::debug!("the state repo's refs changed");
                trigger.notify_one();
            }
        }
        Err(errors) => {
            for error in errors {
                tracing::warn!(%error, "watching the state repo's refs");
            }
            // Something may have been missed: look now rather than at the next poll.
            trigger.notify_one();
        }
    };
    let started = new_debouncer(SETTLE, None, handler).and_then(|mut debouncer| {
        debouncer.watch(&refs, RecursiveMode::Recursive)?;
        // `packed-refs` and `HEAD` sit at the top, beside much that does not matter.
        debouncer.watch(git_dir, RecursiveMode::NonRecursive)?;
        Ok(debouncer)
    });
    match started {
        Ok(debouncer) => Some(RefWatch {
            _debouncer: debouncer,
        }),
        Err(error) => {
            tracing::warn!(%error, directory = %git_dir.display(), "cannot watch the state repo's refs; new commits are seen at each poll");
            None
        }
    }
}
