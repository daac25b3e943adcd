//! The log routes:
//!
//! - `POST /logs/batches` (Administrator, Updater, Builder): stores a batch of lines of one
//!   process, as GraphQL `addLogs` does and with the same checks, but read by serde
//!   straight from the body: the way updaters send theirs, since log batches are most of
//!   what a fleet sends and GraphQL's value trees cost the server more than storing the
//!   lines (the `fleet` bench). The body is a JSON object of `addLogs`'s arguments
//!   (`service`, `role`, `instance`, `directory`, `process`, `task`, `logs`); the answer
//!   `200 {"stored": N}` counts the lines that were new.
//! - `GET /logs/download` (Administrator, Developer): every line a filter matches, oldest
//!   first, as a text file, for the dashboard's "download" and for `curl`.
//!
//! The query parameters of a download are the `LogFilter` of the GraphQL `logs` query:
//! `service`, `role`, `instance`, `directory`, `process`, `task`, `minLevel`, `find`,
//! `fromTime`, `toTime` (RFC 3339). Each line is `service[-role] instance process`
//! followed by the line in the standard format (`date LEVEL unit message`). The body is
//! streamed page by page in store order, so a large download holds one page in memory; it
//! stops after [`MAX_LINES`] lines and then says so on a last line.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vupdate_core::log::LogLine;
use vupdate_store::model::logs::LogRecord;

use super::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::graphql::LogFilter;
use crate::log_batch::{LogBatch, SENDERS};

/// The most lines one download carries.
pub const MAX_LINES: u64 = 1_000_000;
/// Lines read from the store at a time.
const PAGE: u64 = 2_000;

/// The file name the browser saves: `logs-<task or service[-role] or "all">.log`.
fn file_name(filter: &LogFilter) -> String {
    let safe: String = filter
        .subject()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("logs-{safe}.log")
}

/// `POST /logs/batches`.
pub(super) async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // Who may send is known before the body is read into lines.
    principal.require(SENDERS)?;
    let (in_force, intake) = (state.in_force.clone(), state.intake.clone());
    let stored = state
        .log_uploads
        .spawn(async move {
            let batch = read_batch(&body)?;
            // A batch may wait seconds for room in the store: it holds its lines, not
            // the text they came in as well.
            drop(body);
            batch.store(&principal, &in_force, &intake).await
        })
        .await
        .map_err(|error| ApiError::internal(format!("the log upload ended: {error}")))??;
    Ok(Json(json!({ "stored": stored })))
}

/// A `POST /logs/batches` body as a batch, or what is wrong with it and where.
fn read_batch(body: &[u8]) -> Result<LogBatch, ApiError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(
        |error| {
            let at = error.path().to_string();
            ApiError::bad_request(match at.as_str() {
                "." => format!("the body is not a batch of log lines: {}", error.inner()),
                _ => format!("the body's `{at}`: {}", error.inner()),
            })
        },
    )
}

/// `GET /logs/download`.
pub(super) async fn download(
    State(state): State<AppState>,
    principal: Principal,
    filter: Result<Query<LogFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Administrator, Role::Developer])?;
    let Query(filter) = filter.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let file_name = file_name(&filter);
    let query = filter.query("")?;
    // The first page is read before answering, so a store failure is a proper error.
    let first = state.store.logs().in_sequence(&query, PAGE).await?;
    let stream = futures::stream::unfold(
        Some((state.store, query, first, 0u64)),
        |cursor| async move {
            let (store, mut query, page, sent) = cursor?;
            if page.is_empty() {
                return None;
            }
            let mut text = String::new();
            let mut sent = sent;
            let mut last = None;
            for stored in &page {
                if sent == MAX_LINES {
                    text.push_str(&format!(
                        "# vupdate: the download stops after {MAX_LINES} lines; narrow the filter for the rest\n"
                    ));
                    return Some((Ok::<_, std::io::Error>(text), None));
                }
                text.push_str(&line(&stored.record));
                text.push('\n');
                sent += 1;
                last = Some(stored.sequence);
            }
            query.after_sequence = last;
            let next = if (page.len() as u64) < PAGE {
                Vec::new()
            } else {
                match store.logs().in_sequence(&query, PAGE).await {
                    Ok(next) => next,
                    Err(error) => {
                        tracing::warn!(%error, "log download cut short by a store error");
                        text.push_str(&format!("# vupdate: the download was cut short: {error}\n"));
                        return Some((Ok(text), None));
                    }
                }
            };
            Some((Ok(text), Some((store, query, next, sent))))
        },
    );
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// One record as a line of the file.
fn line(record: &LogRecord) -> String {
    let standard = LogLine {
        time: record.time.naive_utc(),
        level: record.level,
        unit: record.unit.clone(),
        message: record.message.replace('\n', "\\n"),
    };
    let role = record
        .role
        .as_ref()
        .map(|role| format!("-{role}"))
        .unwrap_or_default();
    format!(
        "{}{role} {} {} {standard}",
        record.service, record.instance, record.process
    )
}
