//! [`backup_sqlite`]: a consistent copy of a SQLite store while its server writes to it
//! (SQLite's online backup API, which restarts a step when a writer changed a page it
//! had copied, so the copy is one committed state). The text index's file is not copied:
//! it is made again from the lines.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// Pages copied per step; a writer waits at most one step.
const PAGES_PER_STEP: std::ffi::c_int = 1024;

/// Copies the SQLite store at `from` into the new file `to` (which must not exist) while
/// the store may be in use; the copy is one committed state of the whole database.
pub fn backup_sqlite(from: &Path, to: &Path) -> Result<(), StoreError> {
    let fail = |path: &Path, reason: String| StoreError::OpenSqlite {
        path: path.to_owned(),
        reason,
    };
    if to.exists() {
        return Err(fail(to, "the backup file exists already".to_owned()));
    }
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| fail(from, e.to_string()))?;
    let mut target = Connection::open(to).map_err(|e| fail(to, e.to_string()))?;
    let copied = rusqlite::backup::Backup::new(&source, &mut target)
        .and_then(|backup| {
            backup.run_to_completion(PAGES_PER_STEP, Duration::from_millis(10), None)
        })
        .map_err(|e| fail(from, format!("online backup to {}: {e}", to.display())));
    if let Err(error) = copied {
        drop(target);
        let _ = std::fs::remove_file(to);
        return Err(error);
    }
    // A standalone file: the copy keeps no WAL beside it. It is a store file of its own:
    // a text index file made for the original is not taken for the copy's.
    target
        .pragma_update(None, "journal_mode", "DELETE")
        .and_then(|()| crate::sqlite::renew_identity(&target))
        .map_err(|e| fail(to, e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_holds_what_was_committed_and_no_half_written_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("store.sqlite");
        let writer = Connection::open(&from).expect("open");
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        writer
            .execute_batch("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2);")
            .expect("write");
        writer
            .execute_batch("BEGIN; INSERT INTO t VALUES (3);")
            .expect("open a transaction");
        let to = dir.path().join("copy.sqlite");
        backup_sqlite(&from, &to).expect("backup");
        let copy = Connection::open(&to).expect("open the copy");
        let count: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("count");
        assert_eq!(count, 2);
        assert!(
            backup_sqlite(&from, &to).is_err(),
            "an existing file is never overwritten"
        );
    }
}
