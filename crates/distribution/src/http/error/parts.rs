//! [`ApiError`]s for the store's, the state repo's and the task manager's errors: what a
//! client did wrong keeps its message and gets a stable code; the rest is `INTERNAL`.

use vupdate_state::StateError;
use vupdate_store::StoreError;

use super::ApiError;
use crate::tasks::TaskError;

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
