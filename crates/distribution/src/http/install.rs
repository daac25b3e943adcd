//! `/install/...`: what the one-line install of an updater fetches.
//!
//! - `GET /install/updater.sh` (no login: it holds no secret): the install script,
//!   pointed at the address it was fetched from.
//! - `GET /install/updater.sha256?arch=…` and `GET /install/updater?arch=…`
//!   (`Authorization: Bearer <enrolment token>`, or an administrator's token): the
//!   updater binary's SHA-256 and the binary, for that architecture (`uname -m`).
//!   A known token that has not expired will do, used up or not: the download spends
//!   nothing (the use is spent by `enrolUpdater`), and an install run again needs it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::auth::Role;
use crate::enrolment::EnrolmentError;
use crate::install::UpdaterBinary;

/// `?arch=`, as `uname -m` says it.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ArchQuery {
    arch: Option<String>,
}

pub(super) async fn script(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let script = state.install.script(&state.install.url_for_host(host));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/x-shellscript; charset=utf-8"),
        )],
        script,
    )
        .into_response()
}

pub(super) async fn checksum(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ArchQuery>,
) -> Result<Response, ApiError> {
    let binary = admit(&state, &headers, query.arch.as_deref()).await?;
    let (digest, _) = binary.digest().await.map_err(ApiError::internal)?;
    Ok(format!("{digest}  vupdate\n").into_response())
}

pub(super) async fn binary(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ArchQuery>,
) -> Result<Response, ApiError> {
    let binary = admit(&state, &headers, query.arch.as_deref()).await?;
    let (digest, size) = binary.digest().await.map_err(ApiError::internal)?;
    let file = tokio::fs::File::open(binary.path())
        .await
        .map_err(ApiError::internal)?;
    let mut response = super::files::file_response(file, size, "application/octet-stream")?;
    response.headers_mut().insert(
        "x-content-sha256",
        HeaderValue::from_str(&digest).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// The binary for `arch`, if the request's token may have it.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    arch: Option<&str>,
) -> Result<Arc<UpdaterBinary>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "give the enrolment token: `Authorization: Bearer <token>`",
        ));
    };
    let text = value.to_str().map_err(|_| {
        ApiError::unauthenticated("the `Authorization` header is not visible ASCII")
    })?;
    let token = super::principal::bearer_token(text)?;
    let now = state.auth.now();
    match state.install.enrolments.check(token, now).await {
        Ok(_) => {}
        Err(EnrolmentError::Unknown) => {
            // Not an enrolment token: an administrator may fetch the binary too.
            let principal = state
                .auth
                .authenticate(token)
                .await
                .map_err(|_| ApiError::from(EnrolmentError::Unknown))?;
            principal.require(&[Role::Administrator])?;
        }
        Err(error) => return Err(error.into()),
    }
    let Some(binary) = state.install.binary().await.map_err(ApiError::internal)? else {
        return Err(ApiError::not_found(
            "this distribution offers no updater binary (no image of the service `updater`, and its own executable could not be found)",
        ));
    };
    let arch = arch.unwrap_or(binary.arch());
    if arch != binary.arch() {
        return Err(ApiError::refusal(
            StatusCode::NOT_FOUND,
            "NO_BINARY_FOR_ARCH",
            format!(
                "no updater binary for `{arch}`: this distribution offers one for `{}` only",
                binary.arch()
            ),
        ));
    }
    Ok(binary)
}
