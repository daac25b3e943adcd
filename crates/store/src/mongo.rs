//! The MongoDB backend (server 4.4 or newer; a standalone server is enough).
//!
//! A standalone server has no transactions, so writes are ordered to be safe when a process
//! dies between two of them: a replaced or deleted version is copied to history *before*
//! the current document changes (a copy left behind is a true past version, and its unique
//! `_sequence` makes the retry a no-op), and a replacement only applies if the current
//! document still has the `_sequence` that was read (optimistic concurrency). A batch
//! insert that fails part-way deletes what it had inserted before returning the error.
//! `_sequence` comes from a `_sequences` counter document (`$inc`), so it is monotonic
//! across restarts and processes.

mod convert;

use std::time::Duration;

use async_trait::async_trait;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};

use crate::backend::{Backend, Raw};
use crate::doc::{CollectionDef, Cond, Doc, FieldDef, FieldKind, Find, Val, describe_key};
use crate::error::StoreError;
use crate::in_force::CommitInForce;
use crate::lease::{Ask, Lease};
use convert::{ARCHIVE_TIME, SEQUENCE};

const SEQUENCES: &str = "_sequences";
/// Named leases (`crate::lease`), one document per lease, `_id` its name.
const LEASES: &str = "_leases";
/// Each distribution's commit in force (`crate::in_force`), `_id` its name.
const IN_FORCE: &str = "_in_force";
const DUPLICATE_KEY: i32 = 11000;
const PUT_ATTEMPTS: usize = 5;
const DEFAULT_SERVER_SELECTION: Duration = Duration::from_secs(10);

/// Where the log records go when they have their own database.
#[derive(Debug, Clone)]
pub(crate) struct MongoTarget<'a> {
    pub url: &'a str,
    pub database: &'a str,
}

/// The MongoDB backend.
pub(crate) struct MongoBackend {
    main: Database,
    logs: Database,
}

/// `url` with any password replaced by `***`, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Connects to `database` at `url` and pings it, writing nothing.
pub(crate) async fn ping(url: &str, database: &str) -> Result<(), StoreError> {
    connect(&MongoTarget { url, database }).await.map(drop)
}

async fn connect(target: &MongoTarget<'_>) -> Result<Database, StoreError> {
    let fail = |source| StoreError::ConnectMongo {
        url: redact_url(target.url),
        database: target.database.to_owned(),
        error: Box::new(source),
    };
    let mut options = ClientOptions::parse(target.url).await.map_err(fail)?;
    options
        .server_selection_timeout
        .get_or_insert(DEFAULT_SERVER_SELECTION);
    options.app_name.get_or_insert_with(|| "vupdate".to_owned());
    let client = Client::with_options(options).map_err(fail)?;
    let database = client.database(target.database);
    database
        .run_command(doc! { "ping": 1 })
        .await
        .map_err(fail)?;
    Ok(database)
}

fn is_duplicate(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .iter()
            .flatten()
            .any(|e| e.code == DUPLICATE_KEY),
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// The position in the batch of the first document an insert_many refused as a duplicate.
fn duplicate_index(error: &mongodb::error::Error) -> Option<usize> {
    match error.kind.as_ref() {
        ErrorKind::InsertMany(e) => e
            .write_errors
            .iter()
            .flatten()
            .find(|e| e.code == DUPLICATE_KEY)
            .map(|e| e.index),
        _ => None,
    }
}

impl MongoBackend {
    /// Connects (one clear error when the server cannot be reached) and creates the indexes.
    pub(crate) async fn open(
        main: MongoTarget<'_>,
        logs: Option<MongoTarget<'_>>,
        defs: &[&'static CollectionDef],
    ) -> Result<MongoBackend, StoreError> {
        let main_db = connect(&main).await?;
        let logs_db = match &logs {
            Some(target) => connect(target).await?,
            None => main_db.clone(),
        };
        let backend = MongoBackend {
            main: main_db,
            logs: logs_db,
        };
        for def in defs {
            backend.create_indexes(def).await.map_err(|source| {
                let target = if def.logs_db {
                    logs.as_ref().unwrap_or(&main)
                } else {
                    &main
                };
                StoreError::ConnectMongo {
                    url: redact_url(target.url),
                    database: target.database.to_owned(),
                    error: Box::new(source),
                }
            })?;
        }
        Ok(backend)
    }

    fn database(&self, def: &CollectionDef) -> &Database {
        if def.logs_db { &self.logs } else { &self.main }
    }

    fn leases(&self) -> Collection<Document> {
        self.main.collection(LEASES)
    }

    fn in_force(&self) -> Collection<Document> {
        self.main.collection(IN_FORCE)
    }

    fn current(&self, def: &CollectionDef) -> Collection<Document> {
        self.database(def).collection(def.name)
    }

    fn archived(&self, def: &CollectionDef) -> Collection<Document> {
        self.database(def).collection(&def.history_name())
    }

    /// Creates the indexes under the server's default names (derived from their keys), so a
    /// changed definition adds an index instead of clashing with an old one of the same name.
    async fn create_indexes(&self, def: &CollectionDef) -> Result<(), mongodb::error::Error> {
        let index = |keys: Document, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(unique.then_some(true))
                        .build(),
                )
                .build()
        };
        let key_document: Document = def
            .key
            .iter()
            .map(|f| (f.path.to_owned(), Bson::Int32(1)))
            .collect();
        // One ascending index serves `_sequence` in both directions.
        let mut current = vec![index(doc! { SEQUENCE: 1 }, true)];
        if !def.key.is_empty() {
            current.push(index(key_document.clone(), true));
        }
        for fields in def.indexes {
            let mut keys: Document = fields
                .iter()
                .map(|f| (f.path.to_owned(), Bson::Int32(1)))
                .collect();
            // Read backwards, `field: -1, _sequence: -1` ("newest first") needs no sort.
            keys.insert(SEQUENCE, 1);
            current.push(index(keys, false));
        }
        self.current(def).create_indexes(current).await?;
        if def.history {
            let mut history = vec![index(doc! { SEQUENCE: 1 }, true)];
            if !def.key.is_empty() {
                history.push(index(key_document, false));
            }
            // A real server also removes archived versions itself once the restore window
            // has passed; the expiry job does the same, so a server without a TTL monitor
            // loses nothing but promptness.
            history.push(
                IndexModel::builder()
                    .keys(doc! { ARCHIVE_TIME: 1 })
                    .options(
                        IndexOptions::builder()
                            .expire_after(crate::ARCHIVE_RETENTION)
                            .build(),
                    )
                    .build(),
            );
            self.archived(def).create_indexes(history).await?;
        }
        Ok(())
    }

    /// Reserves `count` consecutive sequences of `def`; returns the first.
    async fn reserve(&self, def: &'static CollectionDef, count: usize) -> Result<i64, StoreError> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let counters: Collection<Document> = self.database(def).collection(SEQUENCES);
        let mut attempt = 0;
        loop {
            let result = counters
                .find_one_and_update(
                    doc! { "_id": def.name },
                    doc! { "$inc": { "value": Bson::Int64(count) } },
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match result {
                Ok(Some(counter)) => {
                    let last = convert::as_i64(counter.get("value")).ok_or_else(|| {
                        StoreError::Corrupt {
                            collection: def.name,
                            sequence: -1,
                            reason: format!("the `{SEQUENCES}` counter is not a number"),
                        }
                    })?;
                    return Ok(last - count + 1);
                }
                // Two first-ever upserts can race on `_id`; the second one retries.
                Err(e) if is_duplicate(&e) && attempt == 0 => attempt += 1,
                Ok(None) => {
                    return Err(StoreError::Corrupt {
                        collection: def.name,
                        sequence: -1,
                        reason: format!("the `{SEQUENCES}` counter upsert returned nothing"),
                    });
                }
                Err(source) => return Err(mongo_error(def.name, "reserve sequence", source)),
            }
        }
    }

    /// Copies `document` to history as archived `now`; an existing copy is fine.
    /// One attempt to make `document` the current version of `key`: the version read
    /// (none, or an exact `_id` and `_sequence`) is replaced only if it is still current,
    /// so of two writers one wins; `accept` may refuse what was read. Returns whether it
    /// was written (false: refused, or another write came first).
    async fn replace_once(
        &self,
        def: &'static CollectionDef,
        key: &Document,
        document: &Document,
        now: DateTime<Utc>,
        accept: impl FnOnce(Option<&Document>) -> bool,
    ) -> Result<bool, StoreError> {
        let existing = self
            .current(def)
            .find_one(key.clone())
            .await
            .map_err(|e| mongo_error(def.name, "replace", e))?;
        if !accept(existing.as_ref()) {
            return Ok(false);
        }
        match existing {
            Some(old) => {
                if def.history {
                    self.copy_to_history(def, &old, now).await?;
                }
                let result = self
                    .current(def)
                    .replace_one(exact_version(&old), document.clone())
                    .await
                    .map_err(|e| mongo_error(def.name, "replace", e))?;
                Ok(result.matched_count == 1)
            }
            None => match self.current(def).insert_one(document.clone()).await {
                Ok(_) => Ok(true),
                Err(e) if is_duplicate(&e) => Ok(false),
                Err(e) => Err(mongo_error(def.name, "insert", e)),
            },
        }
    }

    async fn copy_to_history(
        &self,
        def: &'static CollectionDef,
        document: &Document,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut copy = document.clone();
        copy.remove("_id");
        copy.insert(ARCHIVE_TIME, convert::date(now));
        match self.archived(def).insert_one(copy).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Ok(()),
            Err(source) => Err(mongo_error(def.name, "archive", source)),
        }
    }

    /// Archives (when history is kept) and deletes one current document, if it is still
    /// the version read. Returns whether it was deleted.
    async fn archive_one(
        &self,
        def: &'static CollectionDef,
        document: &Document,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if def.history {
            self.copy_to_history(def, document, now).await?;
        }
        let exact = exact_version(document);
        let result = self
            .current(def)
            .delete_one(exact)
            .await
            .map_err(|e| mongo_error(def.name, "delete", e))?;
        Ok(result.deleted_count == 1)
    }

    async fn find_documents(
        &self,
        collection: Collection<Document>,
        name: &'static str,
        filter: Document,
        sort: Document,
        skip: u64,
        limit: Option<u64>,
    ) -> Result<Vec<Raw>, StoreError> {
        let mut action = collection.find(filter).sort(sort);
        if skip > 0 {
            action = action.skip(skip);
        }
        if let Some(limit) = limit {
            action = action.limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let documents: Vec<Document> = action
            .await
            .map_err(|e| mongo_error(name, "find", e))?
            .try_collect()
            .await
            .map_err(|e| mongo_error(name, "find", e))?;
        documents
            .into_iter()
            .map(|d| convert::to_raw(name, d))
            .collect()
    }
}

/// The filter matching exactly the version `document` was read as (its `_id` and
/// `_sequence`), so a write applies only if nobody changed it since.
fn exact_version(document: &Document) -> Document {
    doc! { "_id": document.get("_id").cloned().unwrap_or(Bson::Null), SEQUENCE: document.get(SEQUENCE).cloned().unwrap_or(Bson::Null) }
}

fn mongo_error(
    collection: &str,
    operation: &'static str,
    source: mongodb::error::Error,
) -> StoreError {
    StoreError::Mongo {
        collection: collection.to_owned(),
        operation,
        error: Box::new(source),
    }
}

#[async_trait]
impl Backend for MongoBackend {
    async fn insert(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.reserve(def, docs.len()).await?;
        let sequences: Vec<i64> = (0..docs.len() as i64).map(|i| first + i).collect();
        let documents: Vec<Document> = docs
            .iter()
            .zip(&sequences)
            .map(|(doc, seq)| convert::to_document(def, doc, *seq, now))
            .collect();
        match self.current(def).insert_many(documents).ordered(true).await {
            Ok(_) => Ok(sequences),
            Err(error) => {
                // No transactions on a standalone server: undo what the batch inserted.
                let undo = doc! { SEQUENCE: { "$in": sequences.iter().map(|s| Bson::Int64(*s)).collect::<Vec<_>>() } };
                if let Err(undo_error) = self.current(def).delete_many(undo).await {
                    tracing::error!(collection = def.name, error = %undo_error, "could not undo a failed batch insert");
                }
                match duplicate_index(&error).and_then(|i| docs.get(i)) {
                    Some(doc) => Err(StoreError::Duplicate {
                        collection: def.name,
                        key: describe_key(&doc.key(def)),
                    }),
                    None if is_duplicate(&error) => Err(StoreError::Duplicate {
                        collection: def.name,
                        key: "(one of the batch)".to_owned(),
                    }),
                    None => Err(mongo_error(def.name, "insert", error)),
                }
            }
        }
    }

    async fn put(
        &self,
        def: &'static CollectionDef,
        docs: Vec<Doc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.reserve(def, docs.len()).await?;
        let mut sequences = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            let sequence = first + i as i64;
            let key = convert::filter_document(&doc.key_filter(def));
            let document = convert::to_document(def, doc, sequence, now);
            let mut done = false;
            for _ in 0..PUT_ATTEMPTS {
                if self
                    .replace_once(def, &key, &document, now, |_| true)
                    .await?
                {
                    done = true;
                    break;
                }
            }
            if !done {
                return Err(StoreError::Conflict {
                    collection: def.name,
                    key: describe_key(&doc.key(def)),
                });
            }
            sequences.push(sequence);
        }
        Ok(sequences)
    }

    async fn put_if(
        &self,
        def: &'static CollectionDef,
        doc: Doc,
        expected: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let sequence = self.reserve(def, 1).await?;
        let key = convert::filter_document(&doc.key_filter(def));
        let document = convert::to_document(def, &doc, sequence, now);
        let still_expected = |old: Option<&Document>| {
            old.and_then(|old| convert::as_i64(old.get(SEQUENCE))) == expected
        };
        let replaced = self
            .replace_once(def, &key, &document, now, still_expected)
            .await?;
        Ok(replaced.then_some(sequence))
    }

    async fn archive(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let filter = convert::filter_document(&filter);
        if !def.history {
            let result = self
                .current(def)
                .delete_many(filter)
                .await
                .map_err(|e| mongo_error(def.name, "delete", e))?;
            return Ok(result.deleted_count);
        }
        let documents: Vec<Document> = self
            .current(def)
            .find(filter)
            .await
            .map_err(|e| mongo_error(def.name, "delete", e))?
            .try_collect()
            .await
            .map_err(|e| mongo_error(def.name, "delete", e))?;
        let mut count = 0;
        for document in &documents {
            if self.archive_one(def, document, now).await? {
                count += 1;
            }
        }
        Ok(count)
    }

    async fn find(&self, def: &'static CollectionDef, find: Find) -> Result<Vec<Raw>, StoreError> {
        let filter = convert::filter_document(&find.filter);
        let sort = convert::sort_document(&find);
        self.find_documents(
            self.current(def),
            def.name,
            filter,
            sort,
            find.skip,
            find.limit,
        )
        .await
    }

    async fn count(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError> {
        self.current(def)
            .count_documents(convert::filter_document(&filter))
            .await
            .map_err(|e| mongo_error(def.name, "count", e))
    }

    async fn distinct(
        &self,
        def: &'static CollectionDef,
        field: &'static FieldDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<String>, StoreError> {
        // `$group` rather than the `distinct` command: its answer is not one document
        // capped at 16 MB, and list fields are unwound to their elements.
        let path = format!("${}", field.path);
        let mut pipeline = vec![doc! { "$match": convert::filter_document(&filter) }];
        if field.kind == FieldKind::StrList {
            pipeline.push(doc! { "$unwind": path.clone() });
        }
        pipeline.push(doc! { "$group": { "_id": path } });
        pipeline.push(doc! { "$sort": { "_id": 1 } });
        let groups: Vec<Document> = self
            .current(def)
            .aggregate(pipeline)
            .await
            .map_err(|e| mongo_error(def.name, "distinct", e))?
            .try_collect()
            .await
            .map_err(|e| mongo_error(def.name, "distinct", e))?;
        let mut values: Vec<String> = groups
            .into_iter()
            .filter_map(|mut group| match group.remove("_id") {
                Some(Bson::String(s)) => Some(s),
                _ => None,
            })
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }

    async fn history(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<Vec<Raw>, StoreError> {
        if !def.history {
            return Ok(Vec::new());
        }
        let filter = convert::filter_document(&filter);
        self.find_documents(
            self.archived(def),
            def.name,
            filter,
            doc! { SEQUENCE: 1 },
            0,
            None,
        )
        .await
    }

    async fn restore(
        &self,
        def: &'static CollectionDef,
        sequence: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let not_found = || StoreError::NotFound {
            collection: def.name,
            key: format!("#{sequence}"),
        };
        if !def.history {
            return Err(not_found());
        }
        let archived = self
            .archived(def)
            .find_one(doc! { SEQUENCE: Bson::Int64(sequence) })
            .await
            .map_err(|e| mongo_error(def.name, "restore", e))?
            .ok_or_else(not_found)?;
        let archive_time = match archived.get(ARCHIVE_TIME) {
            Some(Bson::DateTime(t)) => {
                crate::doc::time_from_millis(t.timestamp_millis()).unwrap_or(now)
            }
            _ => now,
        };
        if archive_time < window_start {
            return Err(StoreError::RestoreExpired {
                collection: def.name,
                sequence,
                archived: archive_time,
                window_days: (now - window_start).num_days(),
            });
        }
        let key = convert::key_document(def, &archived);
        if let Some(current) = self
            .current(def)
            .find_one(key.clone())
            .await
            .map_err(|e| mongo_error(def.name, "restore", e))?
        {
            self.archive_one(def, &current, now).await?;
        }
        let new_sequence = self.reserve(def, 1).await?;
        let mut restored = archived;
        restored.remove("_id");
        restored.remove(ARCHIVE_TIME);
        restored.insert(SEQUENCE, Bson::Int64(new_sequence));
        restored.insert(convert::MODIFY_TIME, convert::date(now));
        match self.current(def).insert_one(restored).await {
            Ok(_) => Ok(new_sequence),
            Err(e) if is_duplicate(&e) => Err(StoreError::Conflict {
                collection: def.name,
                key: key
                    .values()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
            }),
            Err(e) => Err(mongo_error(def.name, "restore", e)),
        }
    }

    async fn update(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
        set: Vec<(&'static FieldDef, Val)>,
    ) -> Result<u64, StoreError> {
        // Absent values are left out, as everywhere in this backend.
        let mut to_set = Document::new();
        let mut to_unset = Document::new();
        for (field, value) in &set {
            match value {
                Val::Null => to_unset.insert(field.path, ""),
                value => to_set.insert(field.path, convert::val_to_bson(value)),
            };
        }
        let mut change = Document::new();
        if !to_set.is_empty() {
            change.insert("$set", to_set);
        }
        if !to_unset.is_empty() {
            change.insert("$unset", to_unset);
        }
        if change.is_empty() {
            return Ok(0);
        }
        let result = self
            .current(def)
            .update_many(convert::filter_document(&filter), change)
            .await
            .map_err(|e| mongo_error(def.name, "update", e))?;
        Ok(result.matched_count)
    }

    async fn purge(
        &self,
        def: &'static CollectionDef,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError> {
        let result = self
            .current(def)
            .delete_many(convert::filter_document(&filter))
            .await
            .map_err(|e| mongo_error(def.name, "expire", e))?;
        Ok(result.deleted_count)
    }

    async fn purge_history(
        &self,
        def: &'static CollectionDef,
        before: DateTime<Utc>,
    ) -> Result<Vec<Raw>, StoreError> {
        if !def.history {
            return Ok(Vec::new());
        }
        let filter = doc! { ARCHIVE_TIME: { "$lt": convert::date(before) } };
        let removed = self
            .find_documents(
                self.archived(def),
                def.name,
                filter,
                doc! { SEQUENCE: 1 },
                0,
                None,
            )
            .await?;
        if !removed.is_empty() {
            let sequences: Vec<Bson> = removed.iter().map(|r| Bson::Int64(r.sequence)).collect();
            self.archived(def)
                .delete_many(doc! { SEQUENCE: { "$in": sequences } })
                .await
                .map_err(|e| mongo_error(def.name, "expire history", e))?;
        }
        Ok(removed)
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        ask: Ask,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        // Each branch is one conditional write the server applies atomically: the same
        // rule as `lease::decide`, which SQLite applies inside a transaction.
        let leases = self.leases();
        let failed = |e| mongo_error(LEASES, "lease", e);
        let expires = Bson::Int64(until.timestamp_millis());
        let written = match ask {
            Ask::Renew(token) => leases
                .find_one_and_update(
                    doc! { "_id": name, "holder": holder, "token": Bson::Int64(token) },
                    doc! { "$set": { "expires": expires } },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(failed)?,
            Ask::Take => {
                let taken = leases
                    .find_one_and_update(
                        doc! { "_id": name, "expires": { "$lte": Bson::Int64(now.timestamp_millis()) } },
                        doc! {
                            "$set": { "holder": holder, "expires": expires.clone() },
                            "$inc": { "token": Bson::Int64(1) },
                        },
                    )
                    .return_document(ReturnDocument::After)
                    .await
                    .map_err(failed)?;
                if taken.is_none() {
                    // Never taken yet, or held: the unique `_id` lets one first taker in.
                    let first = doc! { "_id": name, "holder": holder, "token": Bson::Int64(1), "expires": expires };
                    return match leases.insert_one(&first).await {
                        Ok(_) => lease_of(&first).map(Some),
                        Err(e) if is_duplicate(&e) => Ok(None),
                        Err(e) => Err(failed(e)),
                    };
                }
                taken
            }
        };
        written.as_ref().map(lease_of).transpose()
    }

    async fn read_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let found = self
            .leases()
            .find_one(doc! { "_id": name })
            .await
            .map_err(|e| mongo_error(LEASES, "read lease", e))?;
        found.as_ref().map(lease_of).transpose()
    }

    async fn record_in_force(&self, record: &CommitInForce) -> Result<(), StoreError> {
        self.in_force()
            .replace_one(
                doc! { "_id": &record.distribution },
                doc! {
                    "_id": &record.distribution,
                    "branch": &record.branch,
                    "revision": &record.revision,
                    "at": Bson::Int64(record.at.timestamp_millis()),
                },
            )
            .upsert(true)
            .await
            .map_err(|e| mongo_error(IN_FORCE, "record", e))?;
        Ok(())
    }

    async fn read_in_force(&self, distribution: &str) -> Result<Option<CommitInForce>, StoreError> {
        let found = self
            .in_force()
            .find_one(doc! { "_id": distribution })
            .await
            .map_err(|e| mongo_error(IN_FORCE, "read", e))?;
        found.as_ref().map(in_force_of).transpose()
    }
}

/// A commit-in-force document read back.
fn in_force_of(document: &Document) -> Result<CommitInForce, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        collection: IN_FORCE,
        sequence: -1,
        reason: format!("commit-in-force document {document}: {reason}"),
    };
    let text = |field: &str| {
        document
            .get_str(field)
            .map(str::to_owned)
            .map_err(|_| corrupt(&format!("`{field}` is not text")))
    };
    let at = convert::as_i64(document.get("at"))
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| corrupt("`at` is not a time in milliseconds"))?;
    Ok(CommitInForce {
        distribution: text("_id")?,
        branch: text("branch")?,
        revision: text("revision")?,
        at,
    })
}

/// A lease document read back (numbers in either width: the stand-in answers Int32).
fn lease_of(document: &Document) -> Result<Lease, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        collection: LEASES,
        sequence: -1,
        reason: format!("lease document {document}: {reason}"),
    };
    let name = document
        .get_str("_id")
        .map_err(|_| corrupt("`_id` is not a name"))?;
    let holder = document
        .get_str("holder")
        .map_err(|_| corrupt("`holder` is not text"))?;
    let token = convert::as_i64(document.get("token")).ok_or_else(|| corrupt("no `token`"))?;
    let expires = convert::as_i64(document.get("expires"))
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| corrupt("`expires` is not a time in milliseconds"))?;
    Ok(Lease {
        name: name.to_owned(),
        holder: holder.to_owned(),
        token,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_urls() {
        for (url, shown) in [
            (
                "mongodb://bob:secret@db1:27017,db2/admin?tls=true",
                "mongodb://bob:***@db1:27017,db2/admin?tls=true",
            ),
            ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
            ("mongodb://bob@db1/", "mongodb://bob:***@db1/"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }
}
