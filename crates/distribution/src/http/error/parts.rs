//! [`ApiError`]s for the store's, the state repo's, the task manager's and the secrets'
//! errors: what a client did wrong keeps its message and gets a stable code; the rest is
//! `INTERNAL`.

use vupdate_state::StateError;
use vupdate_store::StoreError;

use axum::http::StatusCode;

use super::ApiError;
use crate::consumers::ViewRefused;
use crate::enrolment::EnrolmentError;
use crate::secrets::SecretError;
use crate::tasks::TaskError;

impl From<EnrolmentError> for ApiError {
    fn from(error: EnrolmentError) -> ApiError {
        let status = match error {
            EnrolmentError::Unknown
            | EnrolmentError::Expired { .. }
            | EnrolmentError::UsedUp { .. } => StatusCode::UNAUTHORIZED,
            EnrolmentError::Invalid(_) => StatusCode::BAD_REQUEST,
            EnrolmentError::Store(error) => return error.into(),
            EnrolmentError::Random(_) | EnrolmentError::Io { .. } => {
                return ApiError::internal(error);
            }
        };
        ApiError::refusal(status, error.code(), error.to_string())
    }
}

/// How long a sender refused `STORE_BEHIND` is asked to wait: about the time the writer takes to
/// catch up with a full queue.
const BEHIND_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if let Some(path) = error.disk_full() {
            return ApiError::disk_full("writing to the store", path);
        }
        match error {
            StoreError::Duplicate { .. } => ApiError::conflict("ALREADY_EXISTS", error.to_string()),
            StoreError::NotFound { .. } => ApiError::not_found(error.to_string()),
            StoreError::Invalid { .. } => ApiError::bad_request(error.to_string()),
            StoreError::Conflict { .. } => ApiError::conflict("CONFLICT", error.to_string()),
            StoreError::RestoreExpired { .. } => {
                ApiError::conflict("RESTORE_EXPIRED", error.to_string())
            }
            // A holder's builder whose lease ended: the holder in force builds it again.
            StoreError::LeaseLost { .. } => ApiError::conflict(
                "LEASE_LOST",
                format!("{error}; the lease's holder now does this work again"),
            ),
            // Retryable: the sender keeps the batch and sends it again after its backoff.
            StoreError::Busy { .. } => ApiError::unavailable(
                "STORE_BEHIND",
                format!("the server is behind and will take this batch later: {error}"),
            )
            .with_retry_after(BEHIND_RETRY_AFTER),
            _ => ApiError::internal(error),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(error: StateError) -> ApiError {
        match error {
            StateError::Stale { .. } => ApiError::conflict("STALE", error.to_string()),
            StateError::InvalidEdit { .. } => ApiError::invalid("INVALID_EDIT", error.to_string()),
            StateError::RevertConflict { .. }
            | StateError::RevertMergeCommit { .. }
            | StateError::RevertRootCommit { .. }
            | StateError::BadMainline { .. } => {
                ApiError::conflict("REVERT_REFUSED", error.to_string())
            }
            StateError::UnknownRevision { .. } => ApiError::not_found(error.to_string()),
            StateError::InvalidCommit { .. } => {
                ApiError::conflict("INVALID_STATE", error.to_string())
            }
            StateError::PushRejected { .. } | StateError::Diverged { .. } => {
                ApiError::conflict("PUSH_REJECTED", error.to_string())
            }
            StateError::WorkTree { .. } => ApiError::conflict("WORK_TREE_DIRTY", error.to_string()),
            _ => ApiError::internal(error),
        }
    }
}

impl From<TaskError> for ApiError {
    fn from(error: TaskError) -> ApiError {
        match error {
            TaskError::NotRunning(_) => ApiError::not_found(error.to_string()),
            TaskError::Store { .. } | TaskError::Id(_) => ApiError::internal(error),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(error: SecretError) -> ApiError {
        // No variant carries a value, so a message is safe to send.
        match error {
            SecretError::InvalidName { .. }
            | SecretError::EmptyValue { .. }
            | SecretError::TooLarge { .. } => {
                ApiError::invalid("INVALID_SECRET", error.to_string())
            }
            SecretError::Store(error) => (*error).into(),
            SecretError::Unreadable { .. } | SecretError::Seal { .. } | SecretError::Io { .. } => {
                ApiError::internal(error)
            }
        }
    }
}

impl From<ViewRefused> for ApiError {
    fn from(refused: ViewRefused) -> ApiError {
        match refused {
            ViewRefused::NotAConsumer(_) => ApiError::forbidden(refused.to_string()),
            ViewRefused::UnknownTester(_) => ApiError::not_found(refused.to_string()),
        }
    }
}
