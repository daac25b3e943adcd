//! Fault report archives and private files over HTTP, streamed both ways.
//!
//! - `PUT /faults/{id}` (Updater, DistributionConsumer, Administrator): the archive of a
//!   fault report, before `addFaultReport`; `201`, or `409 ALREADY_EXISTS`.
//! - `GET /faults/{distribution}/{id}` (Administrator, Developer): the archive.
//! - `PUT /private-files/{kind}/{service}/{*path}` (Administrator): a private file of a
//!   service (or of `_common`); replaces an older content.
//! - `GET /private-files/{kind}/{service}/{*path}` (Administrator, Builder): the file a
//!   build of `service` uses: its own, else common's.
//! - `GET /private-files/{kind}` (Administrator): every stored file of that kind as JSON
//!   `[{"service", "path", "size", "modified"}]`.
//! - `DELETE /private-files/{kind}/{service}/{*path}` (Administrator): removes one; `204`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::{ApiError, AppState, uploads};
use crate::auth::{Principal, Role};
use crate::images::ImageKind;
use crate::private::Owner;

/// Streams a fault report's archive in.
pub(super) async fn upload_fault(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    principal.require(&[
        Role::Administrator,
        Role::Updater,
        Role::DistributionConsumer,
    ])?;
    // A consumer's reports are its own; an updater's belong to this distribution.
    let distribution = match principal.role {
        Role::DistributionConsumer => principal.account.clone(),
        _ => state.distribution.clone(),
    };
    let mut chunks = uploads::chunks(body);
    let size = match state.faults.store(&distribution, &id, &mut chunks).await {
        Ok(size) => size,
        Err(error) => return Err(uploads::refuse(chunks, error).await),
    };
    tracing::info!(account = %principal.account, %distribution, fault = %id, size, "fault archive uploaded");
    Ok(StatusCode::CREATED)
}

/// Streams a fault report's archive out.
pub(super) async fn download_fault(
    State(state): State<AppState>,
    principal: Principal,
    Path((distribution, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Administrator, Role::Developer])?;
    let (file, size) = state.faults.open_file(&distribution, &id).await?;
    file_response(file, size, "application/zip")
}

/// Streams a private file in.
pub(super) async fn upload_private(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, service, path)): Path<(String, String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    principal.require(&[Role::Administrator])?;
    let kind = parse_kind(&kind)?;
    let owner = Owner::parse(&service)?;
    let mut chunks = uploads::chunks(body);
    let stored = state
        .private_files
        .store(kind, &owner, &path, &mut chunks)
        .await;
    let size = match stored {
        Ok(size) => size,
        Err(error) => return Err(uploads::refuse(chunks, error).await),
    };
    tracing::info!(account = %principal.account, %kind, %service, %path, size, "private file stored");
    Ok(StatusCode::CREATED)
}

/// Streams a private file out.
pub(super) async fn download_private(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, service, path)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Administrator, Role::Builder])?;
    let kind = parse_kind(&kind)?;
    let owner = Owner::parse(&service)?;
    let (file, size) = state.private_files.open_for(kind, &owner, &path).await?;
    file_response(file, size, "application/octet-stream")
}

/// Lists the private files of a kind.
pub(super) async fn list_private(
    State(state): State<AppState>,
    principal: Principal,
    Path(kind): Path<String>,
) -> Result<axum::Json<Vec<crate::private::Listed>>, ApiError> {
    principal.require(&[Role::Administrator])?;
    let kind = parse_kind(&kind)?;
    Ok(axum::Json(state.private_files.list(kind).await?))
}

/// Removes a private file.
pub(super) async fn remove_private(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, service, path)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.require(&[Role::Administrator])?;
    let kind = parse_kind(&kind)?;
    let owner = Owner::parse(&service)?;
    state.private_files.remove(kind, &owner, &path).await?;
    tracing::info!(account = %principal.account, %kind, %service, %path, "private file removed");
    Ok(StatusCode::NO_CONTENT)
}

fn parse_kind(kind: &str) -> Result<ImageKind, ApiError> {
    match kind {
        "developer" => Ok(ImageKind::Developer),
        "client" => Ok(ImageKind::Client),
        _ => Err(ApiError::bad_request(format!(
            "path segment `kind`: `{kind}` is neither `developer` nor `client`"
        ))),
    }
}

pub(super) fn file_response(
    file: tokio::fs::File,
    size: u64,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    let length = HeaderValue::from_str(&size.to_string()).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, length),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}
