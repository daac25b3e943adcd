//! Which GraphQL requests upload log lines (`addLogs`), told from the body the request
//! gate has already read, before GraphQL parses it.
//!
//! A fleet sends far more log batches than anything else, and past the store's pace they
//! wait for the writer while holding a place among the requests in progress: at 50,000
//! instances 12 % of the state reports were refused `SERVER_BUSY` behind them (issue 17
//! part 3). So the gate moves a log upload, once its body is read, from the places of
//! `limits.requests.max` to places of its own (`maxLogUploads`), where it waits its turn
//! if need be: however many batches wait, state reports, desired-version polls and the
//! dashboard still get in. Telling them apart must cost little next to the request: the
//! body's `query` text is read with the rest skipped, and only a text that names
//! `addLogs` is parsed.

use std::borrow::Cow;

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use serde::Deserialize;

/// The fields of a GraphQL body that say which operation runs.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    query: Option<Cow<'a, str>>,
    #[serde(rename = "operationName", borrow)]
    operation_name: Option<Cow<'a, str>>,
}

/// Whether `body` (a `POST /graphql` body) is a mutation whose fields include `addLogs`.
/// Anything else, including a body that is not a GraphQL request at all, is not: GraphQL
/// answers that with its own error.
pub fn is_log_upload(body: &[u8]) -> bool {
    let Ok(Head {
        query: Some(query),
        operation_name,
    }) = serde_json::from_slice::<Head<'_>>(body)
    else {
        return false;
    };
    if !query.contains("addLogs") {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(query.as_ref()) else {
        return false;
    };
    let operation = match (&document.operations, operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            match operations.iter().find(|(key, _)| key.as_str() == name) {
                Some((_, operation)) => operation,
                None => return false,
            }
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().expect("one operation")
        }
        (DocumentOperations::Multiple(_), None) => return false,
    };
    operation.node.ty == OperationType::Mutation
        && operation
            .node
            .selection_set
            .node
            .items
            .iter()
            .any(|item| match &item.node {
                Selection::Field(field) => field.node.name.node == "addLogs",
                _ => false,
            })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::is_log_upload;

    fn body(query: &str, operation_name: Option<&str>) -> Vec<u8> {
        json!({"query": query, "operationName": operation_name, "variables": {"logs": [{"message": "addLogs"}]}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn an_add_logs_mutation_is_a_log_upload() {
        let updaters = "mutation($service: String!, $instance: String!, $directory: String!, $process: String!, $logs: [LogLineInput!]!) { addLogs(service: $service, instance: $instance, directory: $directory, process: $process, logs: $logs) }";
        assert!(is_log_upload(&body(updaters, None)));
        // Aliased, named, next to another field.
        assert!(is_log_upload(&body(
            "mutation Ship { a: addLogs(service: \"api\", instance: \"vm\", directory: \"/\", process: \"1\", logs: []) }",
            Some("Ship")
        )));
    }

    #[test]
    fn other_operations_are_not_even_when_they_mention_add_logs() {
        for query in [
            "mutation($s: [ServiceStateInput!]!) { setServiceStates(states: $s) }",
            // The word in a query, a comment, an argument.
            "{ addLogs }",
            "# addLogs\nmutation { setServiceStates(states: []) }",
            "mutation { setServiceStates(states: [{instance: \"addLogs\"}]) }",
            "not graphql addLogs(",
        ] {
            assert!(!is_log_upload(&body(query, None)), "{query}");
        }
        // Of two operations, the one named runs; without a name, none is chosen.
        let two = "mutation Ship { addLogs(service: \"a\", instance: \"v\", directory: \"/\", process: \"1\", logs: []) } mutation Report { setServiceStates(states: []) }";
        assert!(is_log_upload(&body(two, Some("Ship"))));
        assert!(!is_log_upload(&body(two, Some("Report"))));
        assert!(!is_log_upload(&body(two, None)));
        // Not a GraphQL body.
        assert!(!is_log_upload(b"addLogs"));
        assert!(!is_log_upload(br#"[{"query": "mutation { addLogs }"}]"#));
        assert!(!is_log_upload(br#"{"variables": {}}"#));
    }
}
