//! [`DocumentCache`]: parsed GraphQL documents kept by their text, as a schema extension.
//!
//! Every updater sends the same few operations (`setServiceStates`, `addLogs`,
//! `clientDesiredVersions`) with different variables, so at fleet size most of a request's
//! parse is repeated work. A document parsed once is kept by its exact text and a copy is
//! handed to each later request with that text; validation still runs per request, with
//! that request's variables. Only documents that parsed (and passed the parser's depth and
//! directive checks) are kept, so an invalid one is refused anew each time. The cache is
//! bounded in entries and in the length of a text it keeps; the least recently used entry
//! makes room, and the schema never changes while the server runs, so nothing else ever
//! makes an entry stale.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Variables};
use lru::LruCache;

/// Documents kept: the updaters' few operations and the dashboard's pages fit many times.
const ENTRIES: usize = 256;
/// The longest text kept (bytes): the operations clients repeat are short, and this bounds
/// the cache's memory (a parsed document takes several times its text) whatever is sent.
const MAX_TEXT: usize = 8 << 10;

/// The cache, shared by every request of a schema; cheap to clone.
#[derive(Clone)]
pub(crate) struct DocumentCache {
    shared: Arc<Shared>,
}

struct Shared {
    documents: Mutex<LruCache<Box<str>, ExecutableDocument>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for DocumentCache {
    fn default() -> Self {
        DocumentCache::with_capacity(ENTRIES)
    }
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

impl DocumentCache {
    /// An empty cache of at most `entries` documents (at least one).
    pub fn with_capacity(entries: usize) -> DocumentCache {
        DocumentCache {
            shared: Arc::new(Shared {
                documents: Mutex::new(LruCache::new(
                    NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN),
                )),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// Requests answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::Relaxed)
    }

    /// Requests whose document was parsed (not kept, or not kept yet) so far.
    pub fn misses(&self) -> u64 {
        self.shared.misses.load(Ordering::Relaxed)
    }

    fn documents(&self) -> std::sync::MutexGuard<'_, LruCache<Box<str>, ExecutableDocument>> {
        // A panic while holding the lock cannot leave an entry half made (`put` is whole).
        self.shared
            .documents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ExtensionFactory for DocumentCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentCache {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.documents().get(query).cloned() {
            self.shared.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(document);
        }
        self.shared.misses.fetch_add(1, Ordering::Relaxed);
        let document = next.run(ctx, query, variables).await?;
        if query.len() <= MAX_TEXT {
            self.documents().put(query.into(), document.clone());
        }
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Schema, Variables};
    use serde_json::json;

    use super::{DocumentCache, MAX_TEXT};

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            n * 2
        }
    }

    fn schema(cache: &DocumentCache) -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(cache.clone())
            .finish()
    }

    const DOUBLE: &str = "query($n: Int!) { double(n: $n) }";

    fn double(n: serde_json::Value) -> Request {
        Request::new(DOUBLE).variables(Variables::from_json(json!({ "n": n })))
    }

    #[tokio::test]
    async fn a_repeated_document_is_parsed_once_and_answers_with_each_requests_variables() {
        let cache = DocumentCache::default();
        let schema = schema(&cache);
        for n in 1..=3 {
            let response = schema.execute(double(json!(n))).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            assert_eq!(
                response.data.into_json().expect("JSON"),
                json!({"double": n * 2})
            );
        }
        assert_eq!((cache.misses(), cache.hits()), (1, 2));
    }

    #[tokio::test]
    async fn variables_are_still_validated_when_the_document_is_cached() {
        let cache = DocumentCache::default();
        let schema = schema(&cache);
        assert!(schema.execute(double(json!(1))).await.errors.is_empty());
        let response = schema.execute(double(json!("one"))).await;
        assert_eq!(cache.hits(), 1);
        let message = &response.errors.first().expect("an error").message;
        assert!(message.contains(r#"expected type "Int""#), "{message}");
    }

    #[tokio::test]
    async fn a_document_that_fails_to_parse_is_not_kept() {
        let cache = DocumentCache::default();
        let schema = schema(&cache);
        for _ in 0..2 {
            let response = schema.execute("query { double(n: ").await;
            assert!(!response.errors.is_empty());
        }
        assert_eq!((cache.misses(), cache.hits()), (2, 0));
    }

    #[tokio::test]
    async fn the_least_recently_used_document_makes_room_and_long_texts_are_not_kept() {
        let cache = DocumentCache::with_capacity(2);
        let schema = schema(&cache);
        let texts = [
            "{ a: double(n: 1) }",
            "{ b: double(n: 1) }",
            "{ c: double(n: 1) }",
        ];
        for text in texts {
            assert!(schema.execute(text).await.errors.is_empty());
        }
        // `a` was evicted by `c`; `c` is still there.
        assert!(schema.execute(texts[0]).await.errors.is_empty());
        assert!(schema.execute(texts[2]).await.errors.is_empty());
        assert_eq!((cache.misses(), cache.hits()), (4, 1));

        let long = format!("{{ double(n: 1) }}{}", " ".repeat(MAX_TEXT));
        for _ in 0..2 {
            assert!(schema.execute(long.as_str()).await.errors.is_empty());
        }
        assert_eq!(cache.misses(), 6);
    }
}
