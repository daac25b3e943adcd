//! `GET /health` and `POST /hooks/git`.

use axum::extract::State;
use axum::http::StatusCode;

use super::{ApiError, AppState};
use crate::auth::{Principal, Role};

/// Liveness: answers without touching the store.
pub(super) async fn health() -> &'static str {
    "ok"
}

/// Asks the state watcher to check the repo now. A bearer token is required until Git
/// hosts can authenticate with a shared-secret HMAC header (future work).
pub(super) async fn git(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    principal.require(&[Role::Administrator, Role::Builder])?;
    let Some(trigger) = &state.trigger else {
        return Err(ApiError::not_found(
            "this distribution does not watch a state repo",
        ));
    };
    trigger.trigger();
    tracing::info!(account = %principal.account, "state repo check requested by the Git hook");
    Ok(StatusCode::ACCEPTED)
}
