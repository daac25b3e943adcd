//! The text index's file of its own, beside the store's (`store.sqlite-text` beside
//! `store.sqlite`), written by a connection of its own.
//!
//! SQLite has one writer per file. With the index in the store's file, indexing (FTS5
//! trigrams cost more a line than the rest of the line's write) and FTS5's merges took
//! turns with the log lines and state reports on that one writer: ingestion was bounded
//! by both together, and a report waited behind a chunk or a merge. In a file of its own
//! the index is written beside the store's writer, on the other core: the lines to index
//! are read by one of the store's readers, and the index's connection has the index's
//! file only, so it never locks the store's file nor holds a snapshot of it. The store's
//! readers attach the index's file read-only, so a search reads both in one transaction.
//!
//! The index is only ever derived from the lines: a missing file is made and filled again,
//! and one that was made for another store file (a backup restored beside an old index
//! file) is emptied. Each store file has an identity, which a backup renews in its copy,
//! and the index file records the identity it was made for.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

/// The store file's table of its identity (one row).
const IDENTITY_TABLE: &str = "_store_file";
/// SQL of a new identity: 128 random bits in hex.
const NEW_ID: &str = "lower(hex(randomblob(16)))";
/// The index file's table of the store file's identity it was made for (one row).
const MADE_FOR_TABLE: &str = "_text_made_for";
/// The schema name under which a reader attaches the index's file.
pub(crate) const INDEX_SCHEMA: &str = "text_index";

/// The path of the text index's file of the store file at `store`.
pub(crate) fn path_of(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-text");
    PathBuf::from(name)
}

/// The identity of the store file `tx` writes, made on first use.
pub(crate) fn identity(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<String> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} (id TEXT NOT NULL) STRICT; \
         INSERT INTO {IDENTITY_TABLE} (id) SELECT {NEW_ID} \
         WHERE NOT EXISTS (SELECT 1 FROM {IDENTITY_TABLE})"
    ))?;
    tx.query_row(&format!("SELECT id FROM {IDENTITY_TABLE}"), [], |row| {
        row.get(0)
    })
}

/// Gives the store file `conn` writes a new identity, so an index file made for the file
/// it was copied from is not taken for its own; nothing for a file without one.
pub(crate) fn renew_identity(conn: &Connection) -> rusqlite::Result<()> {
    if super::sql::table_exists(conn, IDENTITY_TABLE)? {
        conn.execute(&format!("UPDATE {IDENTITY_TABLE} SET id = {NEW_ID}"), [])?;
    }
    Ok(())
}

/// Makes the index file `conn` writes the one of the store file of identity `store_id`:
/// when it was made for another, drops everything it holds first (in one transaction, so
/// another process that has it open never reads half of it). Returns whether it did.
pub(crate) fn claim(conn: &mut Connection, store_id: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {MADE_FOR_TABLE} (id TEXT NOT NULL) STRICT"
    ))?;
    let made_for: Option<String> = tx
        .query_row(&format!("SELECT id FROM {MADE_FOR_TABLE}"), [], |row| {
            row.get(0)
        })
        .optional()?;
    let emptied = made_for.as_deref().is_some_and(|id| id != store_id);
    if emptied {
        // The FTS5 tables first: dropping one drops its shadow tables with it.
        for virtual_tables in [true, false] {
            let names: Vec<String> = tx
                .prepare(&format!(
                    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> ?1 \
                     AND name NOT LIKE 'sqlite_%' AND (sql LIKE 'CREATE VIRTUAL%') = {}",
                    virtual_tables as i64
                ))?
                .query_map([MADE_FOR_TABLE], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for name in names {
                tx.execute_batch(&format!("DROP TABLE \"{name}\""))?;
            }
        }
    }
    if made_for.as_deref() != Some(store_id) {
        tx.execute(&format!("DELETE FROM {MADE_FOR_TABLE}"), [])?;
        tx.execute(
            &format!("INSERT INTO {MADE_FOR_TABLE} (id) VALUES (?1)"),
            [store_id],
        )?;
    }
    tx.commit()?;
    Ok(emptied)
}

/// Attaches the file at `path` to `conn` read-only under `schema`: a transaction of `conn`
/// then takes no lock on it, `BEGIN IMMEDIATE` included.
pub(crate) fn attach_read_only(
    conn: &Connection,
    path: &Path,
    schema: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {schema}"),
        [format!("file:{}?mode=ro", uri_path(path))],
    )?;
    Ok(())
}

/// `path` as the path of a `file:` URI: every byte but the unreserved ones and `/`
/// percent-encoded, so `?`, `#` and `%` in a directory's name stay part of the path.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::new();
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_file_is_named_after_the_store_file() {
        assert_eq!(
            path_of(Path::new("/var/lib/vupdate/store.sqlite")),
            Path::new("/var/lib/vupdate/store.sqlite-text")
        );
    }

    #[test]
    fn a_path_with_uri_characters_is_attached_as_it_is() {
        let dir = tempfile::tempdir().expect("a directory");
        let odd = dir.path().join("a dir?with#odd%chars");
        std::fs::create_dir(&odd).expect("the odd directory");
        let file = odd.join("store.sqlite");
        Connection::open(&file)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)"))
            .expect("a file");
        let conn = Connection::open_in_memory().expect("a connection");
        attach_read_only(&conn, &file, "other").expect("attach");
        let x: i64 = conn
            .query_row("SELECT x FROM other.t", [], |row| row.get(0))
            .expect("read");
        assert_eq!(x, 7);
        let refused = conn.execute("INSERT INTO other.t VALUES (8)", []);
        assert!(refused.is_err(), "attached read-only");
    }

    #[test]
    fn an_index_file_made_for_another_store_file_is_emptied_and_claimed() {
        let mut conn = Connection::open_in_memory().expect("a connection");
        assert!(!claim(&mut conn, "a").expect("claim"));
        conn.execute_batch(
            "CREATE VIRTUAL TABLE log_records_text_1 USING fts5(message); \
             CREATE TABLE _text_upto (collection TEXT PRIMARY KEY, upto INTEGER)",
        )
        .expect("an index");
        assert!(!claim(&mut conn, "a").expect("the same store"));
        assert!(claim(&mut conn, "b").expect("another store"));
        let left: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .expect("tables");
        assert_eq!(left, [MADE_FOR_TABLE]);
        assert!(!claim(&mut conn, "b").expect("claimed"));
    }
}
