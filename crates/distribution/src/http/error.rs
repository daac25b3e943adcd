//! [`ApiError`]: the one error a handler returns, turned into a client-safe JSON answer.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, whole_seconds};
use crate::images::ImageError;

mod parts;

/// Why a request failed: an HTTP status, a stable code, a message safe to show, and (for
/// internal failures) the cause, which is logged when the response is made and never sent.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The internal cause, logged once in [`IntoResponse::into_response`].
    cause: Option<String>,
    /// The image size for the `Content-Range: bytes */size` of a 416.
    unsatisfiable_size: Option<u64>,
    /// How long to wait before trying again (`Retry-After`, `extensions.retryAfterSeconds`).
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            cause: None,
            unsatisfiable_size: None,
            retry_after: None,
        }
    }

    /// Too many requests: wait `retry_after` (429 `TOO_MANY_REQUESTS`).
    pub fn too_many_requests(
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
        }
    }

    /// The body or a part of the request is larger than allowed (413 `PAYLOAD_TOO_LARGE`).
    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)
    }

    /// A refusal with its own status and code (the request limits' answers).
    pub fn refusal(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(status, code, message)
    }

    /// The same error, telling the client to wait `retry_after` before trying again.
    pub fn with_retry_after(self, retry_after: std::time::Duration) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..self
        }
    }

    /// How long the client should wait before trying again, if it was told.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// No usable credentials (401 `UNAUTHENTICATED`).
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    /// The request itself is wrong (400 `BAD_REQUEST`).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    /// The request is wrong in a way with its own `code` (400).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The caller may not do this (403 `FORBIDDEN`).
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    /// Nothing is there (404 `NOT_FOUND`).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// A byte range outside an image of `size` bytes (416 `RANGE_NOT_SATISFIABLE`).
    pub fn range_not_satisfiable(message: impl Into<String>, size: u64) -> ApiError {
        ApiError {
            unsatisfiable_size: Some(size),
            ..Self::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_NOT_SATISFIABLE",
                message,
            )
        }
    }

    /// A part the request needs is not ready (503 with `code`).
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The request conflicts with the current state (409 with `code`).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// Credentials that were refused earlier with `code` (401).
    pub fn refused(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// The disk holding `path` is full (507 `DISK_FULL`): what could not be written, where,
    /// and what to do. The server keeps answering reads; writes work again once there is
    /// space. The path is sent (only accounts that may write reach this) because the person
    /// who can free the space needs it.
    pub fn disk_full(what: &str, path: &std::path::Path) -> ApiError {
        let message = format!(
            "no space left on the disk holding `{}`: {what} failed and nothing of it was kept; free space on that disk (or move the distribution's dataDirectory to a larger one), then send it again",
            path.display()
        );
        tracing::error!(path = %path.display(), what, "disk full");
        Self::new(StatusCode::INSUFFICIENT_STORAGE, "DISK_FULL", message)
    }

    /// A failed write of `path`: [`disk_full`](Self::disk_full) when the disk is full
    /// (or the quota spent), else [`internal`](Self::internal).
    pub fn write_failed(what: &str, path: &std::path::Path, error: std::io::Error) -> ApiError {
        if is_disk_full(&error) {
            Self::disk_full(what, path)
        } else {
            Self::internal(format!("{what}: `{}`: {error}", path.display()))
        }
    }

    /// A failure of the server (500 `INTERNAL`); `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError {
            cause: Some(cause.to_string()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error; the server log has the cause",
            )
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code clients act on.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let code = error.code();
        let status = match &error {
            AuthError::Unauthenticated { .. }
            | AuthError::TokenExpired { .. }
            | AuthError::TokenRevoked { .. }
            | AuthError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden { .. }
            | AuthError::NotOwnAccount { .. }
            | AuthError::PasswordChangeRequired { .. } => StatusCode::FORBIDDEN,
            AuthError::NoSuchAccount { .. } => StatusCode::NOT_FOUND,
            AuthError::AccountExists { .. } | AuthError::LastAdministrator { .. } => {
                StatusCode::CONFLICT
            }
            AuthError::WeakPassword { .. }
            | AuthError::OldPasswordRequired { .. }
            | AuthError::InvalidAccountName { .. }
            | AuthError::WrongAccountKind { .. } => StatusCode::BAD_REQUEST,
            // Key files and the store are the server's business: only the log sees them.
            AuthError::TooManyRequests { retry_after, .. } => {
                return ApiError::too_many_requests(error.to_string(), *retry_after);
            }
            AuthError::Key { .. } | AuthError::Store(_) | AuthError::Internal(_) => {
                return ApiError::internal(error);
            }
        };
        // The auth module's codes are stable (TOKEN_EXPIRED, TOKEN_REVOKED, ...) and its
        // messages name only accounts and roles, never tokens or hashes.
        ApiError::new(status, code, error.to_string())
    }
}

impl From<ImageError> for ApiError {
    fn from(error: ImageError) -> ApiError {
        // Messages are rebuilt where the store's own names a file on the server.
        match error {
            ImageError::VersionExists { image, .. } => ApiError::new(
                StatusCode::CONFLICT,
                "CONFLICT",
                format!("{image} already exists; versions are immutable, use a new version number"),
            ),
            ImageError::UploadInProgress { .. } => {
                ApiError::new(StatusCode::CONFLICT, "CONFLICT", error.to_string())
            }
            ImageError::NotFound { image, .. } => {
                ApiError::not_found(format!("{image} does not exist"))
            }
            ImageError::BadExpectedDigest { .. } | ImageError::UploadDigestMismatch { .. } => {
                ApiError::bad_request(error.to_string())
            }
            ImageError::TooLarge { .. } => ApiError::payload_too_large(error.to_string()),
            ImageError::RangeNotSatisfiable { size, .. } => {
                ApiError::range_not_satisfiable(error.to_string(), size)
            }
            ImageError::Io { path, error, .. } if is_disk_full(&error) => {
                ApiError::disk_full("storing the image", &path)
            }
            ImageError::Io { .. }
            | ImageError::UploadFailed { .. }
            | ImageError::Corrupt { .. }
            | ImageError::BlobMissing { .. }
            | ImageError::BadRef { .. }
            | ImageError::Remote { .. }
            | ImageError::Task(_) => ApiError::internal(error),
        }
    }
}

/// Whether a file system error means the disk (or the quota) is full.
pub(crate) fn is_disk_full(error: &std::io::Error) -> bool {
    // ENOSPC and EDQUOT.
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl ApiError {
    /// The same failure as a GraphQL error: the message, `extensions.code`, and
    /// `extensions.retryAfterSeconds` when the client should wait.
    pub fn into_graphql(self) -> async_graphql::Error {
        use async_graphql::ErrorExtensions as _;
        self.log();
        let code = self.code;
        let retry_after = self.retry_after.map(whole_seconds);
        async_graphql::Error::new(self.message).extend_with(|_, extensions| {
            extensions.set("code", code);
            if let Some(seconds) = retry_after {
                extensions.set("retryAfterSeconds", seconds);
            }
        })
    }

    /// The error as JSON, the way the REST routes answer: `{"error": {"code", "message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }

    /// Logs an internal cause once (at error level) or a refusal (at debug level).
    fn log(&self) {
        match &self.cause {
            Some(cause) => tracing::error!(code = self.code, %cause, "request failed"),
            None => tracing::debug!(code = self.code, message = %self.message, "request refused"),
        }
    }
}

impl ApiError {
    /// The error as a GraphQL response (`{"errors": [{"message", "extensions"}]}`) with its
    /// HTTP status, for refusals of `/graphql` made before an operation runs.
    pub fn into_graphql_response(self) -> Response {
        let mut extensions = serde_json::json!({ "code": self.code });
        if let Some(wait) = self.retry_after {
            extensions["retryAfterSeconds"] = whole_seconds(wait).into();
        }
        let body = serde_json::json!({
            "errors": [{ "message": self.message, "extensions": extensions }]
        });
        self.respond(body)
    }

    /// `body` with this error's status, `Retry-After` and `Content-Range`; logs the error.
    fn respond(self, body: serde_json::Value) -> Response {
        self.log();
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(wait)));
        }
        if let Some(size) = self.unsatisfiable_size {
            let value = HeaderValue::from_str(&format!("bytes */{size}"))
                .expect("a number is a valid header value");
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        self.respond(body)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;

    use super::ApiError;
    use crate::auth::{AuthError, Role};
    use crate::images::ImageError;

    /// Status, code and body of the response an error turns into.
    async fn answer(error: ApiError) -> (StatusCode, String, String) {
        let code = error.code().to_owned();
        let response = error.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (
            status,
            code,
            String::from_utf8(body.to_vec()).expect("UTF-8"),
        )
    }

    #[tokio::test]
    async fn internal_causes_are_never_sent() {
        let secret = "/srv/secret/images/blobs";
        let errors = [
            ApiError::from(ImageError::Io {
                action: "open blob",
                path: secret.into(),
                error: std::io::Error::other("disk on fire"),
            }),
            ApiError::from(AuthError::Internal(format!("hashing failed in {secret}"))),
            ApiError::internal(format!("cause at {secret}")),
        ];
        for error in errors {
            let (status, code, body) = answer(error).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(code, "INTERNAL");
            assert!(!body.contains(secret), "{body}");
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(json["error"]["code"], "INTERNAL");
        }
    }

    #[test]
    fn a_store_behind_on_log_lines_is_a_retryable_store_behind_refusal() {
        let error = ApiError::from(vupdate_store::StoreError::Busy {
            collection: "log_records",
            waiting: 20_000,
        });
        assert_eq!(
            (error.status(), error.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "STORE_BEHIND")
        );
        assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(1)));
        let message = error.message().to_owned();
        assert!(
            message.starts_with("the server is behind and will take this batch later"),
            "{message}"
        );
        assert!(message.contains("20000 records wait"), "{message}");
        let graphql = error.into_graphql();
        let extensions = serde_json::to_value(&graphql.extensions).expect("extensions");
        assert_eq!(extensions["code"], "STORE_BEHIND");
        assert_eq!(extensions["retryAfterSeconds"], 1);
    }

    #[tokio::test]
    async fn auth_refusals_keep_their_stable_codes() {
        let table = [
            (
                AuthError::Unauthenticated {
                    reason: "bad signature".into(),
                },
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
            ),
            (
                AuthError::TokenExpired {
                    account: "ada".into(),
                },
                StatusCode::UNAUTHORIZED,
                "TOKEN_EXPIRED",
            ),
            (
                AuthError::Forbidden {
                    account: "updater".into(),
                    role: Role::Updater,
                    allowed: vec![Role::Builder],
                },
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
            ),
            (
                AuthError::PasswordChangeRequired {
                    account: "admin".into(),
                },
                StatusCode::FORBIDDEN,
                "PASSWORD_CHANGE_REQUIRED",
            ),
        ];
        for (error, status, code) in table {
            let message = error.to_string();
            let (got_status, got_code, body) = answer(error.into()).await;
            assert_eq!((got_status, got_code.as_str()), (status, code));
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(json["error"]["message"], message);
        }
    }
}
