//! The embedded SQLite backend: one file in WAL mode, one writer connection and a few
//! read-only connections, every call run on tokio's blocking pool so the async runtime
//! never waits on disk. Each write is one `BEGIN IMMEDIATE` transaction, sequence
//! reservation included, so a batch is all or nothing and `_sequence` stays monotonic
//! across processes sharing the file. A thread of its own checkpoints the write-ahead log
//! ([`checkpoint`]), so no write waits for the disk. The log messages' text index is in a
//! file of its own beside it ([`text_file`]), written by a connection on a thread of its
//! own at a lower priority ([`indexer`]).

mod checkpoint;
mod indexer;
mod merge;
mod newest;
mod sql;
mod text;
mod text_file;
mod trigrams;

pub(crate) use sql::SCHEMA_VERSION;
pub(crate) use text_file::renew_identity;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params_from_iter,
};

use self::checkpoint::Checkpointer;
use self::indexer::Indexer;
use crate::backend::{Backend, Raw};
use crate::doc::{
    CollectionDef, Cond, Doc, FieldDef, FieldKind, Find, Val, contains_lowered, describe_key,
};
use crate::error::StoreError;
use crate::in_force::CommitInForce;
use crate::lease::{Ask, Lease, decide};

const READERS: usize = 3;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows an expiry deletes per transaction: what a writer waits for at most while a day of
/// logs goes.
const PURGE_CHUNK: usize = 2000;
/// Page cache of the writer connection, in KiB: the hot ends of the log indexes (one
/// per service, level and instance) stay in memory at millions of rows.
const WRITER_CACHE_KIB: i64 = 16 * 1024;
/// Page cache of each read-only connection, in KiB: the pages of a dashboard's view stay
/// there between two refreshes.
const READER_CACHE_KIB: i64 = 16 * 1024;
/// How much of the file read-only connections map into memory (SQLite caps it at 2 GiB):
/// a page outside their page cache is then read without a system call and a copy, and the
/// three readers share the operating system's copy. A text search at 10M lines checks
/// about 4,000 scattered rows, more than a page cache holds: 0.73 -> 0.45 ms a day.
/// Neither mapping the whole 2.6 GB file (SQLite built with a 1 TiB cap) nor a 64 MiB page
/// cache changed that search at 10M lines (2026-12-07, A/B on one file).
const READER_MMAP_BYTES: i64 = 2 * 1024 * 1024 * 1024;

/// The SQLite backend.
///
/// Each connection is behind an async lock, taken before the work goes to a blocking
/// thread: a burst of reads (50,000 updaters' first log batches, each asking its source's
/// last line) waits as tasks, not as blocking threads each parked on a connection's lock,
/// which grew tokio's pool to dozens of threads in a second, their creation costing the
/// kernel more than the reads.
pub(crate) struct SqliteBackend {
    path: Arc<PathBuf>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    readers: Vec<Arc<tokio::sync::Mutex<Connection>>>,
    /// The text index's file, and the thread of the connection that writes it beside the
    /// writer: locked from reading the lines to index to writing them, and always before
    /// a reader is taken, never while one is held (two tasks taking them in the other
    /// order would wait for each other for good).
    text_path: Arc<PathBuf>,
    indexer: tokio::sync::Mutex<Indexer>,
    next_reader: AtomicUsize,
}

/// The writer connection and the thread that checkpoints what it writes.
struct Writer {
    conn: Connection,
    checkpointer: Option<Checkpointer>,
}

impl Drop for Writer {
    /// Stops the checkpoints before the connection closes, so no thread of the store
    /// outlives it.
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop(&mut self.conn);
        }
    }
}

/// Error mapping for one operation on one collection.
#[derive(Clone)]
struct Ctx {
    path: Arc<PathBuf>,
    collection: &'static str,
    operation: &'static str,
}

impl Ctx {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.as_ref().clone(),
            collection: self.collection,
            operation: self.operation,
            error: source,
        }
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.create_scalar_function(
        "vu_contains_ci",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            // The needle is the same on every row of a query: lower it once.
            let needle: std::sync::Arc<String> =
                ctx.get_or_create_aux(1, |value| value.as_str().map(str::to_lowercase))?;
            let haystack = ctx.get_raw(0).as_str_or_null()?;
            Ok(haystack.is_some_and(|h| contains_lowered(h, &needle)))
        },
    )?;
    // What the text index holds of a row (see `text`): its service's key and its text
    // lower-cased as the search lowers.
    conn.create_scalar_function(
        "vu_text",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let within = ctx.get_raw(0).as_str_or_null()?;
            let text = ctx.get_raw(1).as_str_or_null()?;
            Ok(text.map(|text| text::indexed_text(within, text)))
        },
    )
}

impl SqliteBackend {
    /// Opens (creating when missing) the store at `path`: its directory, the file, WAL mode
    /// and the schema. Any failure, a corrupt file included, is one [`StoreError::OpenSqlite`].
    pub(crate) fn open(
        path: &Path,
        defs: &[&'static CollectionDef],
    ) -> Result<SqliteBackend, StoreError> {
        let fail = |reason: String| StoreError::OpenSqlite {
            path: path.to_owned(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                fail(format!(
                    "cannot create its directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let mut writer = open_for_writing(path, "a vupdate store").map_err(fail)?;
        let version: i64 = writer
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| fail(e.to_string()))?;
        if version > sql::SCHEMA_VERSION {
            return Err(fail(format!(
                "it was written by a newer vupdate (schema {version}; this build knows up to {})",
                sql::SCHEMA_VERSION
            )));
        }
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail(e.to_string()))?;
        let run = |statement: &str| {
            tx.execute_batch(statement)
                .map_err(|e| fail(format!("{e} (while creating the schema)")))
        };
        run(&sql::sequences_schema())?;
        run(&sql::leases_schema())?;
        run(&sql::in_force_schema())?;
        for def in defs {
            for statement in sql::tables(def) {
                run(&statement)?;
            }
            // A file written by an older build lacks the columns of fields declared since.
            let mut tables = vec![def.name.to_owned()];
            if def.history {
                tables.push(def.history_name());
            }
            for table in &tables {
                let existing = columns(&tx, table)
                    .map_err(|e| fail(format!("{e} (while reading the schema of {table})")))?;
                for statement in sql::added_columns(def, table, &existing).map_err(&fail)? {
                    tx.execute_batch(&statement).map_err(|e| {
                        fail(format!(
                            "{e} (while upgrading {table} to schema {})",
                            sql::SCHEMA_VERSION
                        ))
                    })?;
                }
            }
            for (_, statement) in sql::indexes(def) {
                run(&statement)?;
            }
            let existing = table_indexes(&tx, &tables)
                .map_err(|e| fail(format!("{e} (while reading the indexes of {})", def.name)))?;
            newest::open(&tx, def, &existing).map_err(|e| {
                fail(format!(
                    "{e} (while keeping the newest rows of {})",
                    def.name
                ))
            })?;
            for statement in sql::stale_indexes(def, &existing) {
                run(&statement)?;
            }
        }
        text::leave_store_file(&tx, defs).map_err(|e| {
            fail(format!(
                "{e} (while moving the text index out to a file of its own)"
            ))
        })?;
        let identity = text_file::identity(&tx).map_err(|e| fail(e.to_string()))?;
        tx.pragma_update(None, "user_version", sql::SCHEMA_VERSION)
            .map_err(|e| fail(e.to_string()))?;
        tx.commit().map_err(|e| fail(e.to_string()))?;

        let text_path = text_file::path_of(path);
        let indexer = open_indexer(&text_path, &identity, defs)
            .and_then(Indexer::start)
            .map_err(|reason| StoreError::OpenSqlite {
                path: text_path.clone(),
                reason: format!("{reason} (the text index's file)"),
            })?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| fail(e.to_string()))?;
            configure(&reader)
                .and_then(|()| reader.pragma_update(None, "cache_size", -READER_CACHE_KIB))
                .and_then(|()| reader.pragma_update(None, "mmap_size", READER_MMAP_BYTES))
                .and_then(|()| {
                    text_file::attach_read_only(&reader, &text_path, text_file::INDEX_SCHEMA)
                })
                .and_then(|()| {
                    // Per file: the attached index gets its own cache and map.
                    let index = Some(text_file::INDEX_SCHEMA);
                    reader.pragma_update(index, "cache_size", -READER_CACHE_KIB)?;
                    reader.pragma_update(index, "mmap_size", READER_MMAP_BYTES)
                })
                .map_err(|e| fail(e.to_string()))?;
            readers.push(Arc::new(tokio::sync::Mutex::new(reader)));
        }
        let checkpointer = Checkpointer::start(path, &mut writer)
            .map_err(|e| fail(format!("{e} (while starting its checkpoints)")))?;
        Ok(SqliteBackend {
            path: Arc::new(path.to_owned()),
            writer: Arc::new(tokio::sync::Mutex::new(Writer {
                conn: writer,
                checkpointer: Some(checkpointer),
            })),
            readers,
            next_reader: AtomicUsize::new(0),
            text_path: Arc::new(text_path),
            indexer: tokio::sync::Mutex::new(indexer),
        })
    }

    fn in_force_ctx(&self, operation: &'static str) -> Ctx {
        Ctx {
            path: self.path.clone(),
            collection: sql::IN_FORCE_TABLE,
            operation,
        }
    }

    fn leases_ctx(&self, operation: &'static str) -> Ctx {
        Ctx {
            path: self.path.clone(),
            collection: sql::LEASES_TABLE,
            operation,
        }
    }

    fn ctx(&self, def: &CollectionDef, operation: &'static str) -> Ctx {
        Ctx {
            path: self.path.clone(),
            collection: def.name,
            operation,
        }
    }

    fn index_ctx(&self, def: &CollectionDef, operation: &'static str) -> Ctx {
        Ctx {
            path: self.text_path.clone(),
            collection: def.name,
            operation,
        }
    }

    async fn write<T, F>(&self, ctx: Ctx, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Ctx) -> Result<T, StoreError> + Send + 'static,
    {
        let mut writer = self.writer.clone().lock_owned().await;
        blocking(ctx, move |ctx| work(&mut writer.conn, ctx)).await
    }

    /// [`Self::write`] inside one `BEGIN IMMEDIATE` transaction, committed when `work`
    /// succeeds (an error rolls it back on drop).
    async fn write_tx<T, F>(&self, ctx: Ctx, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &Ctx) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(ctx, move |conn, ctx| immediate(conn, ctx, work))
            .await
    }

    /// `work` in one `BEGIN IMMEDIATE` transaction of the text index's connection, beside
    /// the writer: it has the index's file only, so it neither locks the store's file nor
    /// holds a snapshot of it (which would keep the store's write-ahead log from starting
    /// again: it grew to 1.2 GB at 10M lines while an index transaction read the lines).
    async fn index_tx<T, F>(&self, ctx: Ctx, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &Ctx) -> Result<T, StoreError> + Send + 'static,
    {
        let indexer = self.indexer.lock().await;
        in_index(&indexer, ctx, work).await
    }

    async fn read<T, F>(&self, ctx: Ctx, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Ctx) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.reader().await;
        blocking(ctx, move |ctx| work(&conn, ctx)).await
    }

    /// The next read-only connection, once free.
    async fn reader(&self) -> tokio::sync::OwnedMutexGuard<Connection> {
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[index].clone().lock_owned().await
    }

    /// Inserts `docs` under consecutive new sequences in one transaction; with `replace`,
    /// the current version of each doc's key moves to history first.
    async fn write_docs(
        &self,
        def: &'static CollectionDef,
        operation: &'static str,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
        replace: bool,
    ) -> Result<Vec<i64>, StoreError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        self.write_tx(self.ctx(def, operation), move |tx, ctx| {
            store_docs(tx, ctx, def, docs, now, replace)
        })
        .await
    }
}

/// Runs `work` on the text index's thread in one `BEGIN IMMEDIATE` transaction of its
/// connection.
async fn in_index<T, F>(indexer: &Indexer, ctx: Ctx, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>, &Ctx) -> Result<T, StoreError> + Send + 'static,
{
    let collection = ctx.collection;
    indexer
        .run(move |conn| immediate(conn, &ctx, work))
        .await
        .map_err(|indexer::Gone| StoreError::Task {
            collection,
            reason: "the text index's thread is gone".to_owned(),
        })?
}

/// Runs `work` in one `BEGIN IMMEDIATE` transaction of `conn`, committed when `work`
/// succeeds (an error rolls it back on drop).
fn immediate<T>(
    conn: &mut Connection,
    ctx: &Ctx,
    work: impl FnOnce(&rusqlite::Transaction<'_>, &Ctx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(ctx.err())?;
    let value = work(&tx, ctx)?;
    tx.commit().map_err(ctx.err())?;
    Ok(value)
}

/// Opens the SQLite file at `path` (`what` it should be, for the error) for writing: WAL
/// mode, synchronous commits only at checkpoints, and a writer's page cache. The error
/// says what failed.
fn open_for_writing(path: &Path, what: &str) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    configure(&conn).map_err(|e| e.to_string())?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| format!("{e} (is it {what}?)"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "cannot switch to WAL mode (journal mode stays `{mode}`)"
        ));
    }
    // NORMAL in WAL mode: a commit is in the WAL (the OS's page cache) when a write
    // returns, so it survives the server process being killed; it is synced to disk at
    // each checkpoint, so a power loss can lose the last commits before it, never the
    // database's consistency. FULL would sync every commit (every log batch).
    conn.pragma_update(None, "synchronous", "NORMAL")
        .and_then(|()| conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Opens the text index's file at `text_path` for the store file of identity `identity`:
/// WAL mode, emptied when it was made for another store file, and the schema of `defs`'
/// indexes. The error says what failed.
fn open_indexer(
    text_path: &Path,
    identity: &str,
    defs: &[&'static CollectionDef],
) -> Result<Connection, String> {
    let mut conn = open_for_writing(text_path, "a vupdate text index")?;
    if text_file::claim(&mut conn, identity).map_err(|e| e.to_string())? {
        tracing::info!(
            path = %text_path.display(),
            "the text index's file was made for another store file: emptied, to be made again"
        );
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    for def in defs {
        for statement in text::schema(def) {
            tx.execute_batch(&statement)
                .map_err(|e| format!("{e} (while creating the schema)"))?;
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Inserts `docs` under consecutive new sequences within `tx`; with `replace`, the
/// current version of each doc's key moves to history first.
fn store_docs(
    tx: &rusqlite::Transaction<'_>,
    ctx: &Ctx,
    def: &'static CollectionDef,
    docs: Vec<Doc>,
    now: DateTime<Utc>,
    replace: bool,
) -> Result<Vec<i64>, StoreError> {
    let first = reserve(tx, ctx, docs.len())?;
    let now = now.timestamp_millis();
    let mut insert = tx
        .prepare_cached(&sql::insert_current(def))
        .map_err(ctx.err())?;
    let mut newest = newest::Recorder::new(tx, def).map_err(ctx.err())?;
    let mut sequences = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        if replace {
            archive_rows(tx, ctx, def, &doc.key_filter(def), now)?;
        }
        let sequence = first + i as i64;
        if let Some(newest) = &mut newest {
            newest.saw(&doc, sequence).map_err(ctx.err())?;
        }
        insert_doc(&mut insert, ctx, def, sequence, now, doc)?;
        sequences.push(sequence);
    }
    if let Some(newest) = newest {
        newest.finish().map_err(ctx.err())?;
    }
    // Every row of the batch is written, none committed.
    if vupdate_crashpoint::any_armed() {
        vupdate_crashpoint::reached(&format!("store.sqlite.uncommitted.{}", def.name));
    }
    Ok(sequences)
}

/// Lease `name` as stored in the `_leases` table.
fn read_lease_row(conn: &Connection, ctx: &Ctx, name: &str) -> Result<Option<Lease>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT holder, token, expires FROM {} WHERE name = ?1",
            sql::LEASES_TABLE
        ))
        .and_then(|mut statement| {
            statement
                .query_row([name], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .optional()
        })
        .map_err(ctx.err())?;
    row.map(|(holder, token, expires)| {
        Ok(Lease {
            name: name.to_owned(),
            holder,
            token,
            expires: DateTime::from_timestamp_millis(expires).ok_or_else(|| {
                StoreError::Corrupt {
                    collection: sql::LEASES_TABLE,
                    sequence: token,
                    reason: format!("lease `{name}` expires at {expires} ms, out of range"),
                }
            })?,
        })
    })
    .transpose()
}

/// The names of the indexes on `tables`.
fn table_indexes(conn: &Connection, tables: &[String]) -> rusqlite::Result<Vec<String>> {
    let mut statement =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1")?;
    let mut names = Vec::new();
    for table in tables {
        for name in statement.query_map([table], |row| row.get(0))? {
            names.push(name?);
        }
    }
    Ok(names)
}

/// The column names of `table`.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    statement.query_map([table], |row| row.get(0))?.collect()
}

/// Runs `work` on tokio's blocking pool; a panicked or cancelled task is a [`StoreError::Task`].
async fn blocking<T, F>(ctx: Ctx, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Ctx) -> Result<T, StoreError> + Send + 'static,
{
    let collection = ctx.collection;
    tokio::task::spawn_blocking(move || work(&ctx))
        .await
        .map_err(|e| StoreError::Task {
            collection,
            reason: e.to_string(),
        })?
}

/// Reserves `count` consecutive sequences of `collection`; returns the first.
fn reserve(tx: &rusqlite::Transaction<'_>, ctx: &Ctx, count: usize) -> Result<i64, StoreError> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let last: i64 = tx
        .prepare_cached(&sql::reserve_sequences())
        .and_then(|mut statement| statement.query_row((ctx.collection, count), |row| row.get(0)))
        .map_err(ctx.err())?;
    Ok(last - count + 1)
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

/// Runs `insert` (the statement of [`sql::insert_current`]) for `doc`, binding each value
/// in place: no row's values are copied into a parameter list.
fn insert_doc(
    insert: &mut rusqlite::CachedStatement<'_>,
    ctx: &Ctx,
    def: &'static CollectionDef,
    sequence: i64,
    now: i64,
    mut doc: Doc,
) -> Result<(), StoreError> {
    let body = doc
        .prepared
        .take()
        .unwrap_or_else(|| sql::stored_body(def, &doc.body));
    let bound = (|| {
        insert.raw_bind_parameter(1, sequence)?;
        insert.raw_bind_parameter(2, now)?;
        for (i, value) in doc.fields.iter().enumerate() {
            insert.raw_bind_parameter(i + 3, value)?;
        }
        insert.raw_bind_parameter(doc.fields.len() + 3, &body)?;
        insert.raw_execute()
    })();
    match bound {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate {
            collection: def.name,
            key: describe_key(&doc.key(def)),
        }),
        Err(e) => Err(ctx.err()(e)),
    }
}

/// Moves the current rows matching `filter` to history (when kept) and deletes them.
fn archive_rows(
    tx: &rusqlite::Transaction<'_>,
    ctx: &Ctx,
    def: &'static CollectionDef,
    filter: &[Cond],
    now: i64,
) -> Result<u64, StoreError> {
    if def.history {
        let mut params = vec![SqlValue::Integer(now)];
        let where_sql = sql::where_clause(filter, &mut params);
        tx.prepare_cached(&sql::copy_to_history(def, &where_sql))
            .and_then(|mut statement| statement.execute(params_from_iter(params)))
            .map_err(ctx.err())?;
    }
    delete_rows(tx, ctx, def, filter)
}

/// Deletes the current rows matching `filter`, keeping no history.
fn delete_rows(
    conn: &Connection,
    ctx: &Ctx,
    def: &'static CollectionDef,
    filter: &[Cond],
) -> Result<u64, StoreError> {
    let mut params = Vec::new();
    let where_sql = sql::where_clause(filter, &mut params);
    let deleted = conn
        .prepare_cached(&format!("DELETE FROM \"{}\" AS t{where_sql}", def.name))
        .and_then(|mut statement| statement.execute(params_from_iter(params)))
        .map_err(ctx.err())?;
    newest::deleted(conn, def, filter).map_err(ctx.err())?;
    Ok(deleted as u64)
}

fn to_raw(ctx: &Ctx, row: sql::Row) -> Result<Raw, StoreError> {
    let (sequence, modify, archive, body) = row;
    let time = |ms: i64| {
        crate::doc::time_from_millis(ms).ok_or_else(|| StoreError::Corrupt {
            collection: ctx.collection,
            sequence,
            reason: format!("time {ms} ms is out of range"),
        })
    };
    Ok(Raw {
        sequence,
        modify_time: time(modify)?,
        archive_time: archive.map(time).transpose()?,
        body,
    })
}

fn query_rows(
    conn: &Connection,
    ctx: &Ctx,
    def: &'static CollectionDef,
    sql_text: &str,
    params: Vec<SqlValue>,
) -> Result<Vec<Raw>, StoreError> {
    let mut statement = conn.prepare_cached(sql_text).map_err(ctx.err())?;
    let rows = statement
        .query_map(params_from_iter(params), |row| sql::read_row(def, row))
        .map_err(ctx.err())?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(ctx.err())?;
    rows.into_iter().map(|row| to_raw(ctx, row)).collect()
}

#[async_trait]
impl Backend for SqliteBackend {
    fn prepare(&self, def: &'static CollectionDef, docs: &mut [Doc]) {
        for doc in docs {
            doc.prepared = Some(sql::stored_body(def, &doc.body));
        }
    }

    async fn insert(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.write_docs(def, "insert", docs, now, false).await
    }

    async fn put(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.write_docs(def, "replace", docs, now, true).await
    }

    async fn put_if(
        &self,
        def: &'static CollectionDef,
        doc: Doc,
        expected: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        self.write_tx(self.ctx(def, "replace"), move |tx, ctx| {
            let key = doc.key_filter(def);
            let mut params = Vec::new();
            let where_sql = sql::where_clause(&key, &mut params);
            let current: Option<i64> = tx
                .prepare_cached(&format!(
                    "SELECT _sequence FROM \"{}\" AS t{where_sql}",
                    def.name
                ))
                .and_then(|mut statement| {
                    statement
                        .query_row(params_from_iter(params), |row| row.get(0))
                        .optional()
                })
                .map_err(ctx.err())?;
            if current != expected {
                return Ok(None);
            }
            let written = store_docs(tx, ctx, def, vec![doc], now, true)?;
            Ok(written.first().copied())
        })
        .await
    }

    async fn archive(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.write_tx(self.ctx(def, "delete"), move |tx, ctx| {
            archive_rows(tx, ctx, def, &filter, now.timestamp_millis())
        })
        .await
    }

    async fn find(&self, def: &'static CollectionDef, find: Find) -> Result<Vec<Raw>, StoreError> {
        self.read(self.ctx(def, "find"), move |conn, ctx| {
            // One snapshot for the text index's candidates and the rows.
            let tx = conn.unchecked_transaction().map_err(ctx.err())?;
            let find = match text::narrow_find(&tx, def, find).map_err(ctx.err())? {
                text::Narrowed::Rows(rows) => {
                    return rows.into_iter().map(|row| to_raw(ctx, row)).collect();
                }
                text::Narrowed::Find(find) => find,
            };
            let find = newest::narrow(&tx, def, find).map_err(ctx.err())?;
            let find = merge::narrow(&tx, def, find).map_err(ctx.err())?;
            let mut params = Vec::new();
            let text = sql::find(def, &find, &mut params);
            query_rows(&tx, ctx, def, &text, params)
        })
        .await
    }

    async fn count(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError> {
        self.read(self.ctx(def, "count"), move |conn, ctx| {
            let tx = conn.unchecked_transaction().map_err(ctx.err())?;
            let filter = text::narrow(&tx, def, filter).map_err(ctx.err())?;
            let conn = &*tx;
            let mut params = Vec::new();
            let where_sql = sql::where_clause(&filter, &mut params);
            let count: i64 = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM \"{}\" AS t{where_sql}",
                    def.name
                ))
                .and_then(|mut statement| {
                    statement.query_row(params_from_iter(params), |row| row.get(0))
                })
                .map_err(ctx.err())?;
            Ok(count.max(0) as u64)
        })
        .await
    }

    async fn distinct(
        &self,
        def: &'static CollectionDef,
        field: &'static FieldDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<String>, StoreError> {
        self.read(self.ctx(def, "distinct"), move |conn, ctx| {
            let tx = conn.unchecked_transaction().map_err(ctx.err())?;
            let filter = text::narrow(&tx, def, filter).map_err(ctx.err())?;
            let conn = &*tx;
            let mut params = Vec::new();
            let where_sql = sql::where_clause(&filter, &mut params);
            let text = if field.kind == FieldKind::StrList {
                format!(
                    "SELECT DISTINCT j.value FROM \"{}\" AS t, json_each(t.\"{}\") AS j{where_sql} ORDER BY 1",
                    def.name, field.column
                )
            } else {
                format!(
                    "SELECT DISTINCT t.\"{col}\" FROM \"{}\" AS t{where_sql} {} t.\"{col}\" IS NOT NULL ORDER BY 1",
                    def.name,
                    if where_sql.is_empty() { "WHERE" } else { "AND" },
                    col = field.column
                )
            };
            let mut statement = conn.prepare_cached(&text).map_err(ctx.err())?;
            let values = statement
                .query_map(params_from_iter(params), |row| row.get::<_, String>(0))
                .map_err(ctx.err())?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(ctx.err())?;
            Ok(values)
        })
        .await
    }

    async fn history(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<Raw>, StoreError> {
        if !def.history {
            return Ok(Vec::new());
        }
        self.read(self.ctx(def, "history"), move |conn, ctx| {
            let mut params = Vec::new();
            let mut text = sql::select(def, &def.history_name(), true);
            text.push_str(&sql::where_clause(&filter, &mut params));
            text.push_str(" ORDER BY t._sequence ASC");
            query_rows(conn, ctx, def, &text, params)
        })
        .await
    }

    async fn restore(
        &self,
        def: &'static CollectionDef,
        sequence: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let not_found = StoreError::NotFound {
            collection: def.name,
            key: format!("#{sequence}"),
        };
        if !def.history {
            return Err(not_found);
        }
        self.write_tx(self.ctx(def, "restore"), move |tx, ctx| {
            let mut text = sql::select(def, &def.history_name(), true);
            text.push_str(" WHERE t._sequence = ?1");
            let archived = query_rows(tx, ctx, def, &text, vec![SqlValue::Integer(sequence)])?;
            let Some(archived) = archived.into_iter().next() else {
                return Err(not_found);
            };
            let archive_time = archived.archive_time.unwrap_or(now);
            if archive_time < window_start {
                return Err(StoreError::RestoreExpired {
                    collection: def.name,
                    sequence,
                    archived: archive_time,
                    window_days: (now - window_start).num_days(),
                });
            }
            // The key of the archived version, read from its columns.
            let key_filter = key_of(tx, ctx, def, sequence)?;
            let now_ms = now.timestamp_millis();
            archive_rows(tx, ctx, def, &key_filter, now_ms)?;
            let new_sequence = reserve(tx, ctx, 1)?;
            tx.prepare_cached(&sql::copy_from_history(def))
                .and_then(|mut statement| statement.execute((new_sequence, sequence, now_ms)))
                .map_err(ctx.err())?;
            Ok(new_sequence)
        })
        .await
    }

    async fn update(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        set: Vec<(&'static FieldDef, Val)>,
    ) -> Result<u64, StoreError> {
        self.write_tx(self.ctx(def, "update"), move |tx, ctx| {
            let (text, params) = sql::update(def, &set, &filter);
            let updated = tx
                .prepare_cached(&text)
                .and_then(|mut statement| statement.execute(params_from_iter(params)))
                .map_err(ctx.err())?;
            newest::updated(tx, def, &set).map_err(ctx.err())?;
            Ok(updated as u64)
        })
        .await
    }

    async fn purge(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError> {
        // In chunks, each its own transaction: between two, waiting writers go first, so
        // removing a day of logs never holds them up for longer than one chunk.
        let mut removed = 0;
        loop {
            let deleted = self.purge_some(def, filter.clone(), PURGE_CHUNK).await?;
            removed += deleted;
            if deleted < PURGE_CHUNK as u64 {
                return Ok(removed);
            }
        }
    }

    async fn purge_some(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        max_rows: usize,
    ) -> Result<u64, StoreError> {
        self.write_tx(self.ctx(def, "expire"), move |tx, ctx| {
            let mut params = Vec::new();
            let where_sql = sql::where_clause(&filter, &mut params);
            params.push(SqlValue::Integer(
                i64::try_from(max_rows).unwrap_or(i64::MAX),
            ));
            let chunk: Vec<i64> = tx
                .prepare_cached(&format!(
                    "SELECT t._sequence FROM \"{}\" AS t{where_sql} LIMIT ?{}",
                    def.name,
                    params.len(),
                ))
                .and_then(|mut statement| {
                    statement
                        .query_map(params_from_iter(params), |row| row.get(0))?
                        .collect()
                })
                .map_err(ctx.err())?;
            // Their text index entries stay until their segment goes whole (`prune_text`).
            delete_rows(tx, ctx, def, &[Cond::SequenceIn(chunk)])
        })
        .await
    }

    async fn index_text(
        &self,
        def: &'static CollectionDef,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        let Some(index) = def.text else {
            return Ok(0);
        };
        let ctx = self.index_ctx(def, "index text");
        // Held from the read to the write, so the mark read is the mark written after.
        let indexer = self.indexer.lock().await;
        let rows = self
            .read(ctx.clone(), move |conn, ctx| {
                // The mark and the lines of one snapshot.
                let tx = conn.unchecked_transaction().map_err(ctx.err())?;
                text::read_unindexed(&tx, def, index, max_rows).map_err(ctx.err())
            })
            .await?;
        let Some(rows) = rows else {
            return Ok(0);
        };
        in_index(&indexer, ctx, move |tx, ctx| {
            text::write_index(tx, def, index, &rows).map_err(ctx.err())
        })
        .await
    }

    async fn merge_text(&self, def: &'static CollectionDef) -> Result<bool, StoreError> {
        if def.text.is_none() {
            return Ok(false);
        }
        self.index_tx(
            self.index_ctx(def, "merge a text index segment"),
            move |tx, ctx| {
                let merged = text::merge(tx, def).map_err(ctx.err())?;
                if let Some(segment) = &merged {
                    tracing::debug!(segment, "a step of merging a finished text index segment");
                }
                Ok(merged.is_some())
            },
        )
        .await
    }

    async fn prune_text(&self, def: &'static CollectionDef) -> Result<bool, StoreError> {
        let Some(index) = def.text else {
            return Ok(false);
        };
        let ctx = self.index_ctx(def, "drop an expired text index segment");
        // The indexer before the reader, as `index_text` takes them.
        let indexer = self.indexer.lock().await;
        let rows = self.reader().await;
        in_index(&indexer, ctx, move |tx, ctx| {
            let pruned = text::prune(tx, &rows, def, index).map_err(ctx.err())?;
            if let Some(segment) = &pruned {
                tracing::debug!(
                    segment,
                    "a step of dropping a text index segment whose lines all expired"
                );
            }
            Ok(pruned.is_some())
        })
        .await
    }

    async fn purge_history(
        &self,
        def: &'static CollectionDef,
        before: DateTime<Utc>,
    ) -> Result<Vec<Raw>, StoreError> {
        if !def.history {
            return Ok(Vec::new());
        }
        self.write_tx(self.ctx(def, "expire history"), move |tx, ctx| {
            let history = def.history_name();
            let mut text = sql::select(def, &history, true);
            text.push_str(" WHERE t._archive_time < ?1 ORDER BY t._sequence");
            let before = before.timestamp_millis();
            let removed = query_rows(tx, ctx, def, &text, vec![SqlValue::Integer(before)])?;
            tx.prepare_cached(&format!(
                "DELETE FROM \"{history}\" WHERE _archive_time < ?1"
            ))
            .and_then(|mut statement| statement.execute([before]))
            .map_err(ctx.err())?;
            Ok(removed)
        })
        .await
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        ask: Ask,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        // BEGIN IMMEDIATE: the read and the write below are one step for every process on
        // the file.
        self.write_tx(self.leases_ctx("lease"), move |tx, ctx| {
            let current = read_lease_row(tx, ctx, &name)?;
            let Some(granted) = decide(current.as_ref(), &name, &holder, ask, now, until) else {
                return Ok(None);
            };
            tx.prepare_cached(&format!(
                "INSERT INTO {} (name, holder, token, expires) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 token = excluded.token, expires = excluded.expires",
                sql::LEASES_TABLE
            ))
            .and_then(|mut statement| {
                statement.execute((
                    &granted.name,
                    &granted.holder,
                    granted.token,
                    granted.expires.timestamp_millis(),
                ))
            })
            .map_err(ctx.err())?;
            Ok(Some(granted))
        })
        .await
    }

    async fn read_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let name = name.to_owned();
        self.read(self.leases_ctx("read lease"), move |conn, ctx| {
            read_lease_row(conn, ctx, &name)
        })
        .await
    }

    async fn record_in_force(&self, record: &CommitInForce) -> Result<(), StoreError> {
        let record = record.clone();
        self.write_tx(self.in_force_ctx("record"), move |tx, ctx| {
            tx.prepare_cached(&format!(
                "INSERT INTO {} (distribution, branch, revision, at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (distribution) DO UPDATE SET branch = excluded.branch, \
                 revision = excluded.revision, at = excluded.at",
                sql::IN_FORCE_TABLE
            ))
            .and_then(|mut statement| {
                statement.execute((
                    &record.distribution,
                    &record.branch,
                    &record.revision,
                    record.at.timestamp_millis(),
                ))
            })
            .map_err(ctx.err())?;
            Ok(())
        })
        .await
    }

    async fn read_in_force(&self, distribution: &str) -> Result<Option<CommitInForce>, StoreError> {
        let distribution = distribution.to_owned();
        self.read(self.in_force_ctx("read"), move |conn, ctx| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT branch, revision, at FROM {} WHERE distribution = ?1",
                    sql::IN_FORCE_TABLE
                ))
                .and_then(|mut statement| {
                    statement
                        .query_row([&distribution], |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, i64>(2)?,
                            ))
                        })
                        .optional()
                })
                .map_err(ctx.err())?;
            row.map(|(branch, revision, at)| {
                Ok(CommitInForce {
                    at: DateTime::from_timestamp_millis(at).ok_or_else(|| StoreError::Corrupt {
                        collection: sql::IN_FORCE_TABLE,
                        sequence: -1,
                        reason: format!("`{distribution}` recorded at {at} ms, out of range"),
                    })?,
                    distribution: distribution.clone(),
                    branch,
                    revision,
                })
            })
            .transpose()
        })
        .await
    }
}

/// The key filter of history row `sequence`, from its key columns.
fn key_of(
    tx: &rusqlite::Transaction<'_>,
    ctx: &Ctx,
    def: &'static CollectionDef,
    sequence: i64,
) -> Result<Vec<Cond>, StoreError> {
    let columns = def
        .key
        .iter()
        .map(|f| format!("\"{}\"", f.column))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "SELECT {columns} FROM \"{}\" WHERE _sequence = ?1",
        def.history_name()
    );
    let values: Vec<Option<String>> = tx
        .prepare_cached(&text)
        .and_then(|mut statement| {
            statement.query_row([sequence], |row| {
                (0..def.key.len()).map(|i| row.get(i)).collect()
            })
        })
        .map_err(ctx.err())?;
    Ok(def
        .key
        .iter()
        .zip(values)
        .map(|(f, v)| {
            crate::doc::Cond::Eq(f, v.map_or(crate::doc::Val::Null, crate::doc::Val::Str))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_connections_map_the_file_and_the_text_index_s() {
        let dir = tempfile::tempdir().expect("a directory");
        let backend = SqliteBackend::open(&dir.path().join("store.sqlite"), &[]).expect("open");
        for reader in backend.readers.iter() {
            let reader = reader.try_lock().expect("a reader");
            for file in [None, Some(text_file::INDEX_SCHEMA)] {
                let mapped: i64 = reader
                    .pragma_query_value(file, "mmap_size", |row| row.get(0))
                    .expect("mmap_size");
                assert!(
                    mapped >= 1 << 30,
                    "a reader maps {mapped} bytes of {file:?}"
                );
                let cache: i64 = reader
                    .pragma_query_value(file, "cache_size", |row| row.get(0))
                    .expect("cache_size");
                assert_eq!(cache, -READER_CACHE_KIB, "{file:?}");
            }
        }
    }

    #[tokio::test]
    async fn the_store_s_log_starts_again_while_the_text_index_is_written() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("store.sqlite");
        let backend =
            SqliteBackend::open(&path, &[&crate::model::logs::LOG_RECORDS]).expect("open");
        let ctx = backend.index_ctx(&crate::model::logs::LOG_RECORDS, "index text");
        let other = Connection::open(&path).expect("another connection");
        other.busy_timeout(Duration::ZERO).expect("no waiting");
        let checkpoint = backend
            .index_tx(ctx, move |tx, ctx| {
                tx.execute("UPDATE _text_upto SET upto = upto", [])
                    .map_err(ctx.err())?;
                other
                    .execute_batch("CREATE TABLE probe (x INTEGER)")
                    .expect("the store's file is written meanwhile");
                // (busy, frames in the log, frames copied) of a checkpoint that truncates
                // the log: a reader of an older snapshot would keep it from copying all.
                Ok(other
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    })
                    .expect("a checkpoint"))
            })
            .await
            .expect("an index transaction");
        assert_eq!(checkpoint, (0, 0, 0), "the log truncated");
    }

    #[tokio::test]
    async fn a_prune_step_waits_for_the_indexer_before_it_takes_a_reader() {
        use crate::backend::Backend as _;
        use crate::model::logs::LOG_RECORDS;
        let dir = tempfile::tempdir().expect("a directory");
        let backend = Arc::new(
            SqliteBackend::open(&dir.path().join("store.sqlite"), &[&LOG_RECORDS]).expect("open"),
        );
        // As a chunk of indexing holds it, about to take a reader.
        let indexing = backend.indexer.lock().await;
        let pruning = tokio::spawn({
            let backend = Arc::clone(&backend);
            async move { backend.prune_text(&LOG_RECORDS).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            backend
                .readers
                .iter()
                .all(|reader| reader.try_lock().is_ok()),
            "a prune step waiting for the indexer holds no reader the indexing needs"
        );
        drop(indexing);
        assert!(!pruning.await.expect("joined").expect("pruned"));
    }
}
