//! `POST /graphql`: one operation, its `data` decoded into the caller's type, its errors
//! turned into [`ClientError::Graphql`] with each error's `extensions.code`.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Client;
use crate::error::{ClientError, GraphqlError};
use crate::transport;

#[derive(Deserialize)]
struct Response {
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    message: String,
    #[serde(default)]
    extensions: Option<Value>,
}

impl Client {
    /// Runs one GraphQL operation with `variables` and decodes its `data` into `T`.
    ///
    /// An answer with errors is [`ClientError::Graphql`] (also when it carries partial
    /// data: vupdate's resolvers refuse whole); an HTTP error status is
    /// [`ClientError::Refused`]. A query is sent once more when the server closed the
    /// connection without answering (see `Client::graphql_repeatable`); a mutation is not,
    /// since the server may have applied it before it went away.
    pub async fn graphql<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<T, ClientError> {
        let resend = is_query(query);
        self.run(query, variables, resend).await
    }

    /// [`Client::graphql`] for a mutation that is safe to apply twice (a state report
    /// replaces the last; a log line's source sequence is stored once): sent once more
    /// when the server closed the connection without answering, most often a kept-alive
    /// connection an older server (which closes one idle for its `headerTimeout`) closed,
    /// unread, as the request went out.
    pub(crate) async fn graphql_repeatable<T: DeserializeOwned>(
        &self,
        mutation: &str,
        variables: Value,
    ) -> Result<T, ClientError> {
        self.run(mutation, variables, true).await
    }

    async fn run<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
        resend: bool,
    ) -> Result<T, ClientError> {
        let url = self.url("/graphql");
        let operation = operation_name(query);
        let body = json!({"query": query, "variables": variables}).to_string();
        let response = self.post_json(&url, body, resend).await?;
        // async-graphql answers errors with 200; anything else is the edge refusing.
        if !response.status().is_success() && response.status() != 400 {
            return Err(transport::refused("POST", &url, response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|source| transport::transport("POST", &url, source))?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: format!("GraphQL `{operation}`"),
            reason: format!("not GraphQL JSON: {e}"),
        })?;
        decode_response(operation, answer)
    }
}

/// Whether `document` is a query (not a mutation or subscription): reading twice changes
/// nothing.
fn is_query(document: &str) -> bool {
    let mut rest = document.trim_start();
    // Comments before the operation (`# ...` lines).
    while let Some(comment) = rest.strip_prefix('#') {
        rest = comment
            .split_once('\n')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    !(rest.starts_with("mutation") || rest.starts_with("subscription"))
}

/// A GraphQL response (`{"data", "errors"}`, as `POST /graphql` answers and a
/// subscription's `next` message carries) decoded into `T`, or its errors with their codes.
pub(crate) fn decode_response<T: DeserializeOwned>(
    operation: String,
    answer: Value,
) -> Result<T, ClientError> {
    let decode = |reason: String| ClientError::Decode {
        what: format!("GraphQL `{operation}`"),
        reason,
    };
    let answer: Response = serde_json::from_value(answer)
        .map_err(|e| decode(format!("not a GraphQL response: {e}")))?;
    if !answer.errors.is_empty() {
        return Err(ClientError::Graphql {
            operation,
            errors: answer
                .errors
                .into_iter()
                .map(WireError::into_error)
                .collect(),
        });
    }
    let data = answer
        .data
        .ok_or_else(|| decode("neither data nor errors".to_owned()))?;
    serde_json::from_value(data).map_err(|e| decode(e.to_string()))
}

/// The errors of a subscription's `error` message (a bare list of GraphQL errors).
pub(crate) fn decode_errors(operation: String, errors: Value) -> ClientError {
    match serde_json::from_value::<Vec<WireError>>(errors) {
        Ok(errors) => ClientError::Graphql {
            operation,
            errors: errors.into_iter().map(WireError::into_error).collect(),
        },
        Err(e) => ClientError::Decode {
            what: format!("GraphQL `{operation}`"),
            reason: format!("an `error` message that is not a list of errors: {e}"),
        },
    }
}

impl WireError {
    fn into_error(self) -> GraphqlError {
        GraphqlError {
            code: self
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            message: self.message,
        }
    }
}

/// The operation's first field, for messages: `addLogs` of `mutation($a: ..) { addLogs(..) }`.
pub(crate) fn operation_name(query: &str) -> String {
    let Some(open) = query.find('{') else {
        return "?".to_owned();
    };
    let name: String = query[open + 1..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        "?".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_are_read_as_queries() {
        for query in ["{ ping }", "query Q { ping }", "  # note\n query { ping }"] {
            assert!(is_query(query), "{query}");
        }
        for other in [
            "mutation { addLogs }",
            "\n  mutation M($x: Int) { a }",
            "# comment\nmutation { a }",
            "subscription { s }",
        ] {
            assert!(!is_query(other), "{other}");
        }
    }

    #[test]
    fn operations_are_named_by_their_first_field() {
        let cases = [
            ("{ status { synced } }", "status"),
            (
                "mutation($s: String!) {\n  addLogs(service: $s) }",
                "addLogs",
            ),
            ("query Q { tasks { id } }", "tasks"),
            ("nonsense", "?"),
        ];
        for (query, name) in cases {
            assert_eq!(operation_name(query), name, "{query}");
        }
    }
}
