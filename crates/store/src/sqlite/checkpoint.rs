//! Checkpoints of the write-ahead log on a thread and connection of their own, so the
//! writer never copies the log into the file or waits for its sync.
//!
//! SQLite's automatic checkpoint runs in the commit that passes its threshold: every
//! [`CHECKPOINT_PAGES`] pages one log batch copied 32 MB into the file and waited for the
//! disk (at 1M lines: ingestion 146k lines/s instead of 217k without checkpoints, and an
//! expiry's writer p99 53 ms instead of 16 ms). Here the writer's commits past the
//! threshold wake the checkpointer, which copies what the log holds beside the writer
//! (`PASSIVE`: it waits for no one) on the second core.
//!
//! The log starts again from its beginning only when a checkpoint has copied all of it
//! and a write begins; under a steady stream of batches the checkpointer is always a few
//! commits behind, so past [`WRITER_CHECKPOINT_PAGES`] the writer's commit checkpoints
//! itself, which copies only what the checkpointer has not, and the log restarts.

use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// Pages in the log past which a commit wakes the checkpointer (SQLite's default is
/// 1,000): a page that many commits change (the hot end of an index) is copied into the
/// file once per checkpoint, not once per 4 MB of log lines.
const CHECKPOINT_PAGES: c_int = 8192;
/// Pages in the log past which the writer's commit checkpoints itself (see the module
/// documentation), so the log stays within about 128 MB. The writer then copies only what
/// the checkpointer has not: at 1M lines, twice [`CHECKPOINT_PAGES`] made an expiry's
/// writer wait up to 105 ms, four times 16 ms.
const WRITER_CHECKPOINT_PAGES: c_int = 4 * CHECKPOINT_PAGES;

/// The checkpointer thread of one writer connection; stopped by [`Checkpointer::stop`].
pub(crate) struct Checkpointer {
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Opens a connection to the file at `path` for checkpoints, starts its thread and has
    /// `writer`'s commits wake it (replacing SQLite's automatic checkpoint); the error says
    /// what failed.
    pub(crate) fn start(path: &Path, writer: &mut Connection) -> Result<Checkpointer, String> {
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        // As the writer: the file is synced at each checkpoint (see `SqliteBackend::open`).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| e.to_string())?;
        let (wake, woken) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("vupdate-checkpoint".to_owned())
            .spawn(move || run(&conn, &woken))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        writer
            .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
                if pages >= WRITER_CHECKPOINT_PAGES {
                    // Another checkpoint running makes it busy: the next commit tries again.
                    if let Err(error) = wal.checkpoint() {
                        tracing::debug!(%error, pages, "the writer's checkpoint did not run");
                    }
                } else if pages >= CHECKPOINT_PAGES {
                    // Full: a wake-up is pending already.
                    let _ = wake.try_send(());
                }
                // An error here would fail the statement after its commit: never one.
                Ok(())
            }))
            .map_err(|e| e.to_string())?;
        Ok(Checkpointer { thread })
    }

    /// Removes the hook from `writer` and waits for the thread to end (after the
    /// checkpoint it may be running).
    pub(crate) fn stop(self, writer: &mut Connection) {
        // Dropping the hook drops the channel's sender, which ends the thread's wait.
        let removed = writer.wal_hook(None::<fn(&mut Wal, c_int) -> rusqlite::Result<()>>);
        if let Err(error) = removed {
            tracing::warn!(%error, "cannot remove the store's checkpoint hook");
            return;
        }
        if self.thread.join().is_err() {
            tracing::warn!("the store's checkpoint thread panicked");
        }
    }
}

/// The checkpointer's loop: a passive checkpoint each time it is woken, until the writer
/// is gone.
fn run(conn: &Connection, woken: &Receiver<()>) {
    while woken.recv().is_ok() {
        // Wake-ups sent since ask for the checkpoint it is about to run.
        while woken.try_recv().is_ok() {}
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        });
        match done {
            Ok((busy, log, copied)) => {
                tracing::trace!(busy, log, copied, "checkpoint of the store's log");
            }
            Err(error) => tracing::warn!(%error, "checkpoint of the store's log failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vupdate_test_support::Patience;

    use super::*;

    #[tokio::test]
    async fn the_log_is_copied_into_the_file_by_the_checkpointer_not_the_writer() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("store.sqlite");
        let mut writer = Connection::open(&path).expect("a database");
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .expect("WAL");
        assert_eq!(mode, "wal");
        writer
            .execute_batch("CREATE TABLE blobs (b BLOB)")
            .expect("a table");
        let checkpointer = Checkpointer::start(&path, &mut writer).expect("started");
        let automatic: i64 = writer
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .expect("the automatic checkpoint");
        assert_eq!(automatic, 0, "the writer's commits no longer checkpoint");
        let file_size = || std::fs::metadata(&path).expect("the file").len();
        let before = file_size();
        // 40 MB in commits of 1 MB: past CHECKPOINT_PAGES, short of the writer's own.
        for _ in 0..40 {
            writer
                .execute("INSERT INTO blobs VALUES (zeroblob(1000000))", [])
                .expect("a write");
        }
        let log: i64 = writer
            .query_row("SELECT count(*) FROM blobs", [], |row| row.get(0))
            .expect("rows");
        assert_eq!(log, 40);
        let copied = i64::from(CHECKPOINT_PAGES) * 4096;
        Patience::up_to(Duration::from_secs(30))
            .eventually("the checkpointer to copy the log into the file", || async {
                let size = file_size();
                (size > before + copied as u64).then_some(size)
            })
            .await;
        checkpointer.stop(&mut writer);
        // The thread has ended; the writer goes on.
        writer
            .execute("INSERT INTO blobs VALUES (zeroblob(10))", [])
            .expect("a write after stop");
    }
}
