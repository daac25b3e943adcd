//! `GET /health` and `POST /hooks/git`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};

use super::principal::authenticate;
use super::{ApiError, AppState};
use crate::auth::Role;

/// Liveness: answers without touching the store.
pub(super) async fn health() -> &'static str {
    "ok"
}

/// Asks the state watcher to check the repo now. The caller is an Administrator or Builder
/// (a bearer token, as a post-receive hook sends it) or the Git host (a webhook signed
/// with the push webhook secret: see [`crate::webhook`]).
pub(super) async fn git(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let sender = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let principal = authenticate(&state, value).await?;
            principal.require(&[Role::Administrator, Role::Builder])?;
            principal.account.to_string()
        }
        None => {
            let proof = state
                .webhook
                .verify(&headers, &body)
                .map_err(|refusal| ApiError::unauthenticated(refusal.to_string()))?;
            format!("webhook ({proof})")
        }
    };
    let Some(trigger) = &state.trigger else {
        return Err(ApiError::not_found(
            "this distribution does not watch a state repo",
        ));
    };
    trigger.trigger();
    tracing::info!(%sender, "state repo check requested by the Git hook");
    Ok(StatusCode::ACCEPTED)
}
