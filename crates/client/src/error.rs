//! [`ClientError`]: why a call to the distribution failed, naming the request, and the
//! server's stable code when it gave one.

use std::path::PathBuf;

use vupdate_core::error_chain::Chain;

/// One error of a GraphQL response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlError {
    /// The message.
    pub message: String,
    /// `extensions.code` (e.g. `FORBIDDEN`, `NOT_FOUND`, `STALE_REVISION`), if given.
    pub code: Option<String>,
}

impl std::fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn join(errors: &[GraphqlError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The codes by which the server says "not now" (its REST edge answers them with a 5xx or
/// `429`): the same call may succeed later. `STORE_BEHIND` is `addLogs`'s answer while the
/// store's writer is behind; a sender that dropped the batch for it would lose its lines.
const TRANSIENT_CODES: [&str; 4] = [
    "STORE_BEHIND",
    "SERVER_BUSY",
    "TOO_MANY_REQUESTS",
    "INTERNAL",
];

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL cannot be used.
    #[error("invalid distribution URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be set up (TLS roots).
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// No answer: the connection failed, timed out or was cut.
    #[error("{method} {url}: {}", Chain(error))]
    Transport {
        /// The HTTP method.
        method: &'static str,
        /// The URL.
        url: String,
        /// What reqwest said.
        error: reqwest::Error,
    },
    /// A subscription's WebSocket could not be opened, was refused by the protocol, went
    /// silent or was cut.
    #[error("WebSocket {url}: {reason}")]
    WebSocket {
        /// The socket's URL (`ws://…/graphql/ws` or `wss://…`).
        url: String,
        /// What happened.
        reason: String,
    },
    /// The server answered with an error status (and, from vupdate, a stable code).
    #[error("{method} {url}: {status} {code}: {message}")]
    Refused {
        /// The HTTP method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The body's `error.code` (`NOT_FOUND`, `CONFLICT`…), or `HTTP_<status>`.
        code: String,
        /// The body's `error.message`, or the body itself.
        message: String,
    },
    /// A GraphQL operation answered with errors.
    #[error("GraphQL `{operation}`: {}", join(errors))]
    Graphql {
        /// The operation's first field (`addLogs`, `status`…).
        operation: String,
        /// The errors, with their codes.
        errors: Vec<GraphqlError>,
    },
    /// The answer is not what the API promises.
    #[error("{what}: unexpected answer: {reason}")]
    Decode {
        /// What was asked (`GraphQL addLogs`, `PUT <url>`).
        what: String,
        /// What did not fit.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{action} `{}`: {error}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, `renaming`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system error.
        error: std::io::Error,
    },
    /// The server presented another public key than the pinned one (a TLS handshake
    /// refused by the client; transient, as a server may be swapped back).
    #[error(
        "{url}: the server's public key is not the pinned one (`pinnedPublicKey`): expected {expected}, the server presents {presented}"
    )]
    UnpinnedKey {
        /// The URL asked for.
        url: String,
        /// The pin the client was given.
        expected: crate::PublicKeyPin,
        /// The pin of the key the server presented.
        presented: crate::PublicKeyPin,
    },
    /// A download's content does not have the SHA-256 the server announced.
    #[error(
        "GET {url}: the downloaded file has SHA-256 {actual} but the server announced {expected}; it was removed"
    )]
    Checksum {
        /// The URL.
        url: String,
        /// The announced digest (hex).
        expected: String,
        /// The digest of what arrived (hex).
        actual: String,
    },
}

impl ClientError {
    /// The server's stable code: a REST body's `error.code`, or the first GraphQL error's
    /// `extensions.code`; `None` when the server gave none (or was not reached).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            ClientError::Graphql { errors, .. } => errors.iter().find_map(|e| e.code.as_deref()),
            _ => None,
        }
    }

    /// Whether a GraphQL answer says `field` does not exist: a server from before it.
    pub fn is_unknown_field(&self, field: &str) -> bool {
        self.graphql_says(&format!("Unknown field \"{field}\""))
    }

    /// Whether the server refused the request for an argument it does not know (a server
    /// from before it).
    pub fn is_unknown_argument(&self, argument: &str) -> bool {
        self.graphql_says(&format!("Unknown argument \"{argument}\""))
    }

    /// Whether a GraphQL error's message holds `needle`.
    fn graphql_says(&self, needle: &str) -> bool {
        match self {
            ClientError::Graphql { errors, .. } => {
                errors.iter().any(|e| e.message.contains(needle))
            }
            _ => false,
        }
    }

    /// Whether trying again later may succeed: the server was not reached (or a socket
    /// was cut), answered with a server-side error (5xx) or `429`, or a GraphQL error with
    /// a code saying the same (`STORE_BEHIND`, `SERVER_BUSY`, `TOO_MANY_REQUESTS`,
    /// `INTERNAL`).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. }
            | ClientError::WebSocket { .. }
            | ClientError::UnpinnedKey { .. } => true,
            ClientError::Refused { status, .. } => *status >= 500 || *status == 429,
            // GraphQL answers its errors with HTTP 200, so the code is all that says "later".
            ClientError::Graphql { .. } => self
                .code()
                .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
            _ => false,
        }
    }

    /// Whether the server refused the credentials or their role (a revoked, expired or
    /// unknown token, or an account that may not do this): the same call with the same
    /// token fails the same way until someone changes the token or the account.
    pub fn is_refused(&self) -> bool {
        let refused_code = matches!(
            self.code(),
            Some(
                "UNAUTHENTICATED"
                    | "TOKEN_REVOKED"
                    | "TOKEN_EXPIRED"
                    | "INVALID_CREDENTIALS"
                    | "FORBIDDEN"
                    | "PASSWORD_CHANGE_REQUIRED"
            )
        );
        refused_code
            || matches!(
                self,
                ClientError::Refused {
                    status: 401 | 403,
                    ..
                }
            )
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ClientError {
        let path = path.into();
        move |source| ClientError::Io {
            action,
            path,
            error: source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_rest_bodies_and_graphql_extensions() {
        let refused = ClientError::Refused {
            method: "PUT",
            url: "http://h/images/developer/api/acme-1.0.0".to_owned(),
            status: 409,
            code: "CONFLICT".to_owned(),
            message: "exists".to_owned(),
        };
        assert_eq!(refused.code(), Some("CONFLICT"));
        assert!(!refused.is_transient());
        assert_eq!(
            refused.to_string(),
            "PUT http://h/images/developer/api/acme-1.0.0: 409 CONFLICT: exists"
        );
        let graphql = ClientError::Graphql {
            operation: "addLogs".to_owned(),
            errors: vec![
                GraphqlError {
                    message: "no".to_owned(),
                    code: None,
                },
                GraphqlError {
                    message: "`builder` (Builder) may not do this".to_owned(),
                    code: Some("FORBIDDEN".to_owned()),
                },
            ],
        };
        assert_eq!(graphql.code(), Some("FORBIDDEN"));
        assert!(graphql.is_refused());
        assert!(!graphql.is_transient());
        assert!(!refused.is_refused());
        assert_eq!(
            graphql.to_string(),
            "GraphQL `addLogs`: no; `builder` (Builder) may not do this (FORBIDDEN)"
        );
    }

    #[test]
    fn a_graphql_error_saying_not_now_is_transient() {
        let error = |code: &str| ClientError::Graphql {
            operation: "addLogs".to_owned(),
            errors: vec![GraphqlError {
                message: "later".to_owned(),
                code: Some(code.to_owned()),
            }],
        };
        for code in TRANSIENT_CODES {
            assert!(error(code).is_transient(), "{code}");
            assert!(!error(code).is_refused(), "{code}");
        }
        for code in ["BAD_REQUEST", "NOT_FOUND", "FORBIDDEN", "STALE_REVISION"] {
            assert!(!error(code).is_transient(), "{code}");
        }
    }
}
