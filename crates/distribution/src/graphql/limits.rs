//! GraphQL operation limits (`limits.graphql` in `distribution.yaml`), as a schema
//! extension: every operation, by POST, GET or WebSocket, is refused before it runs when
//! it nests deeper than `maxDepth` (`QUERY_TOO_DEEP`), selects more than `maxComplexity`
//! fields (`QUERY_TOO_COMPLEX`) or has more than `maxAliases` aliases
//! (`TOO_MANY_ALIASES`); on a WebSocket, an operation past `maxOperationsPerWebSocket`
//! running at once is answered `TOO_MANY_OPERATIONS`. Parse and validation errors get
//! codes too (`GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextSubscribe, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures::StreamExt as _;
use futures::stream::BoxStream;

use crate::config::GraphqlLimits;

/// The extension; one instance serves every operation.
#[derive(Debug, Clone, Copy)]
pub struct OperationLimits(pub GraphqlLimits);

impl ExtensionFactory for OperationLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

/// A GraphQL error with `extensions.code`.
fn refusal(code: &'static str, message: String) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// `error` with `code` unless it has one.
fn with_code(mut error: ServerError, code: &'static str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next
            .run(ctx, query, variables)
            .await
            .map_err(|error| with_code(error, "GRAPHQL_PARSE_FAILED"))?;
        let aliases = count_aliases(&document);
        if aliases > self.0.max_aliases {
            return Err(refusal(
                "TOO_MANY_ALIASES",
                format!(
                    "the operation has {aliases} aliases, more than the {} allowed",
                    self.0.max_aliases
                ),
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| with_code(error, "GRAPHQL_VALIDATION_FAILED"))
                .collect::<Vec<_>>()
        })?;
        if result.depth > self.0.max_depth {
            return Err(vec![refusal(
                "QUERY_TOO_DEEP",
                format!(
                    "the operation nests {} levels deep, more than the {} allowed",
                    result.depth, self.0.max_depth
                ),
            )]);
        }
        if result.complexity > self.0.max_complexity {
            return Err(vec![refusal(
                "QUERY_TOO_COMPLEX",
                format!(
                    "the operation selects {} fields, more than the {} allowed; ask for less or page",
                    result.complexity, self.0.max_complexity
                ),
            )]);
        }
        Ok(result)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Only WebSocket connections carry slots; an operation holds one while it runs.
        let Some(slots) = ctx.data_opt::<OperationSlots>() else {
            return next.run(ctx, stream);
        };
        match slots.take() {
            Some(slot) => next.run(
                ctx,
                stream
                    .map(move |response| {
                        let _running = &slot;
                        response
                    })
                    .boxed(),
            ),
            None => futures::stream::once(futures::future::ready(Response::from_errors(vec![
                refusal(
                    "TOO_MANY_OPERATIONS",
                    format!(
                        "this WebSocket already runs {} operations, the limit; complete one or open another connection",
                        slots.max
                    ),
                ),
            ])))
            .boxed(),
        }
    }
}

/// The aliases written in a document (operations and fragment definitions).
fn count_aliases(document: &ExecutableDocument) -> usize {
    fn in_set(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + in_set(&field.node.selection_set.node)
                }
                Selection::InlineFragment(fragment) => in_set(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = document
        .operations
        .iter()
        .map(|(_, operation)| in_set(&operation.node.selection_set.node))
        .sum();
    let fragments: usize = document
        .fragments
        .values()
        .map(|fragment| in_set(&fragment.node.selection_set.node))
        .sum();
    operations + fragments
}

/// The operations running on one WebSocket, at most `max`.
#[derive(Debug)]
pub struct OperationSlots {
    running: Arc<AtomicUsize>,
    max: usize,
}

/// One running operation's place; given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OperationSlots {
    /// No operation running yet.
    pub fn new(max: usize) -> OperationSlots {
        OperationSlots {
            running: Arc::default(),
            max,
        }
    }

    fn take(&self) -> Option<Slot> {
        let taken = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < self.max).then_some(running + 1)
            });
        taken.ok().map(|_| Slot(Arc::clone(&self.running)))
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::{OperationSlots, count_aliases};

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let document = parse_query(
            "query { a: ping b: ping status { c: synced ... on Status { d: synced } ...F } } \
             fragment F on Status { e: synced synced }",
        )
        .expect("parses");
        assert_eq!(count_aliases(&document), 5);
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let slots = OperationSlots::new(2);
        let first = slots.take().expect("one");
        let _second = slots.take().expect("two");
        assert!(slots.take().is_none());
        drop(first);
        assert!(slots.take().is_some());
    }
}
