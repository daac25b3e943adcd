//! `PUT` and `GET /images/{kind}/{service}/{version}`: images streamed in and out, never
//! held whole in memory.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use tokio_util::io::ReaderStream;
use vupdate_core::range::ByteRange;
use vupdate_core::service::ServiceName;

use super::{ApiError, AppState, uploads};
use crate::auth::{Principal, Role};
use crate::images::{ImageInfo, ImageKind, ImageVersion};
use crate::leadership::fence_builder;

/// The header in which an uploader announces the image's SHA-256 (`<hex>` or `sha256:<hex>`).
pub(super) const CONTENT_SHA256: &str = "x-content-sha256";

/// Who may upload any image.
const UPLOADERS: [Role; 2] = [Role::Administrator, Role::Builder];

/// Who may download an image of `kind`: updaters fetch client images only.
fn downloaders(kind: ImageKind) -> &'static [Role] {
    match kind {
        ImageKind::Developer => &[
            Role::Administrator,
            Role::Builder,
            Role::DistributionConsumer,
        ],
        ImageKind::Client => &[
            Role::Administrator,
            Role::Builder,
            Role::DistributionConsumer,
            Role::Updater,
        ],
    }
}

/// The `{kind}/{service}/{version}` of an image path, validated segment by segment.
pub(super) struct ImagePath {
    service: ServiceName,
    version: ImageVersion,
}

impl FromRequestParts<AppState> for ImagePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((kind, service, version)) =
            Path::<(String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(format!("bad image path: {e}")))?;
        let kind = match kind.as_str() {
            "developer" => ImageKind::Developer,
            "client" => ImageKind::Client,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "path segment `kind`: `{kind}` is neither `developer` nor `client`"
                )));
            }
        };
        let service = service
            .parse()
            .map_err(|e| ApiError::bad_request(format!("path segment `service`: {e}")))?;
        let version = ImageVersion::parse(kind, &version)
            .map_err(|e| ApiError::bad_request(format!("path segment `version`: {e}")))?;
        Ok(ImagePath { service, version })
    }
}

/// The bytes read from an image file at a time when serving it. Each read of a tokio file
/// is a trip to the blocking pool: at `ReaderStream`'s default 4 KiB those trips, not the
/// disk or the network, bound a download (133 MiB/s here, 8.9 s of CPU per GiB); at 1 MiB
/// it runs at 1.5-2.1 GiB/s, 0.8-0.96 of nginx's sendfile (`scripts/bench-images-vs-nginx`),
/// and a download holds at most this much of the image in memory.
const DOWNLOAD_CHUNK: usize = 1024 * 1024;

/// Streams the body into a new image; the version must not have one yet.
pub(super) async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    ImagePath { service, version }: ImagePath,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ImageInfo>), ApiError> {
    principal.require(&UPLOADERS)?;
    // Before a byte is read, and again before the image is kept: an upload takes a while.
    fence_builder(&state.store, &principal).await?;
    let expected = match headers.get(CONTENT_SHA256) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::bad_request("header `X-Content-Sha256` is not visible ASCII")
        })?),
    };
    // Refuses an existing version before a byte of the body is read.
    let mut image = state
        .images
        .begin_upload(&service, &version, expected)
        .await?;
    let mut chunks = uploads::chunks(body);
    while let Some(chunk) = chunks.next().await {
        // A failed read drops `image`, which discards what was written.
        let chunk = chunk?;
        if let Err(error) = image.write(&chunk).await {
            drop(image);
            return Err(uploads::refuse(chunks, error.into()).await);
        }
    }
    fence_builder(&state.store, &principal).await?;
    let info = image.finish().await?;
    tracing::info!(
        account = %principal.account, %service, %version, digest = %info.digest, size = info.size,
        "image uploaded"
    );
    Ok((StatusCode::CREATED, Json(info)))
}

/// Streams an image, whole or the one byte range asked for.
pub(super) async fn download(
    State(state): State<AppState>,
    principal: Principal,
    ImagePath { service, version }: ImagePath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(downloaders(version.kind()))?;
    let raw_range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let range = raw_range.and_then(ByteRange::parse);
    let reader = match range {
        None => state.images.open_image(&service, &version).await?,
        Some(range) => {
            let Some(info) = state.images.info(&service, &version).await? else {
                return Err(ApiError::not_found(format!(
                    "{} image of `{service}` version `{version}` does not exist",
                    version.kind()
                )));
            };
            let Some(bounds) = range.resolve(info.size) else {
                return Err(ApiError::range_not_satisfiable(
                    format!(
                        "range `{}` selects no byte of an image of {} bytes",
                        raw_range.unwrap_or_default(),
                        info.size
                    ),
                    info.size,
                ));
            };
            state.images.open_range(&service, &version, bounds).await?
        }
    };
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response_headers = HeaderMap::new();
    let mut put = |name, value: String| {
        let value = HeaderValue::from_str(&value).map_err(ApiError::internal)?;
        response_headers.insert(name, value);
        Ok::<(), ApiError>(())
    };
    put(header::CONTENT_TYPE, "application/octet-stream".to_owned())?;
    put(header::CONTENT_LENGTH, reader.len.to_string())?;
    put(header::ETAG, format!("\"{}\"", reader.info.digest))?;
    put(header::ACCEPT_RANGES, "bytes".to_owned())?;
    put(
        header::HeaderName::from_static(CONTENT_SHA256),
        reader.info.hex().to_owned(),
    )?;
    if range.is_some() {
        put(
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                reader.start,
                reader.start + reader.len - 1,
                reader.info.size
            ),
        )?;
    }
    let body = Body::from_stream(ReaderStream::with_capacity(
        reader.into_reader(),
        DOWNLOAD_CHUNK,
    ));
    Ok((status, response_headers, body).into_response())
}
