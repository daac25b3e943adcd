//! The bodies of streamed uploads (images, fault archives, private files), and what is done
//! with the rest of one when it is refused midway.
//!
//! A handler that answers before it has read the whole body makes hyper close the connection
//! under an uploader that is still sending: it sees a broken pipe or a reset instead of the
//! answer (a full disk's `DISK_FULL`, a wrong digest). So a refused upload's remaining bytes are
//! read and dropped, up to [`DRAIN_LIMIT`], before the answer goes out.

use axum::body::{Body, Bytes};
use futures::{Stream, StreamExt as _};

use super::ApiError;

/// The most of a refused upload's remaining body read to deliver the refusal; past it, the
/// connection is closed (the uploader then sees the reset, as before).
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// An upload's chunks, read errors (a client gone, an idle body) as API errors.
pub(super) fn chunks(body: Body) -> impl Stream<Item = Result<Bytes, ApiError>> + Unpin {
    body.into_data_stream()
        .map(|chunk| chunk.map_err(ApiError::from_body))
}

/// Returns `error` once what is left of `chunks` is read and dropped (at most
/// [`DRAIN_LIMIT`] bytes, stopping at the first read error), so the uploader gets it.
pub(super) async fn refuse<S>(mut chunks: S, error: ApiError) -> ApiError
where
    S: Stream<Item = Result<Bytes, ApiError>> + Unpin,
{
    let mut drained = 0u64;
    while drained <= DRAIN_LIMIT {
        match chunks.next().await {
            Some(Ok(chunk)) => drained += chunk.len() as u64,
            Some(Err(_)) | None => break,
        }
    }
    error
}
