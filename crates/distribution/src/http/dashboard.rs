//! The dashboard and GraphiQL, served from the files of `dashboard/dist` embedded in the
//! binary (found by `build.rs`), so one `vupdate` binary is the whole server and no page
//! loads anything from another host.
//!
//! - `GET /graphiql`: the bundled GraphiQL page; without a built dashboard, a plain
//!   editor that talks to the same `/graphql`.
//! - Any other `GET`/`HEAD` that no route took: the file of that path if the build has
//!   one, else `index.html` (the history fallback: the app's router reads the URL). A
//!   missing file (a path with an extension, or under `assets/`) and unknown paths below
//!   the API's own prefixes (`/images/…`, `/logs/…`) answer the JSON 404 every route does.
//! - Vite names files under `assets/` by their content hash, so they are cached for a
//!   year (`immutable`); every other file is revalidated by its `ETag`. A `.gz` twin
//!   written by the dashboard build is sent to clients that accept gzip.
//! - A binary built without the dashboard answers the app's paths with a short page
//!   that says how to build it; nothing panics.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

use super::ApiError;

/// The built dashboard (`dashboard/dist`), or an empty folder when it was not built.
#[derive(RustEmbed)]
#[folder = "$VUPDATE_DASHBOARD_DIR"]
struct Assets;

/// Path prefixes of the API: an unknown path below them is an API 404, not an app page.
const API_PREFIXES: &[&str] = &[
    "graphql",
    "images",
    "faults",
    "private-files",
    "hooks",
    "logs",
    "metrics",
    "health",
];

/// How long a hashed asset may be cached: it never changes under its name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Every other file is checked again each time (cheap with `ETag`).
const REVALIDATE: &str = "no-cache";

/// Whether the binary carries a built dashboard.
pub fn embedded() -> bool {
    Assets::get("index.html").is_some()
}

/// `GET /graphiql`.
pub(super) async fn graphiql(headers: HeaderMap) -> Response {
    match file("graphiql.html", &headers) {
        Some(response) => response,
        None => Html(GRAPHIQL_FALLBACK).into_response(),
    }
}

/// Every request no route took.
pub(super) async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::not_found("no such route").into_response();
    }
    let path = uri.path().trim_start_matches('/');
    // `/logs` and `/faults` are pages of the app; `/logs/x` and `/faults/x` are the API's.
    let api = path
        .split_once('/')
        .is_some_and(|(first, _)| API_PREFIXES.contains(&first));
    if api {
        return ApiError::not_found("no such route").into_response();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    if let Some(response) = file(path, &headers) {
        return response;
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    if path.starts_with("assets/") || last.contains('.') {
        return ApiError::not_found(format!("no file `/{path}` in the dashboard")).into_response();
    }
    // A route of the app (`/versions`, `/tasks/abc`): its page is index.html.
    file("index.html", &headers).unwrap_or_else(|| Html(NOT_BUILT).into_response())
}

/// The embedded file at `path` with its headers, or `None` when there is none.
fn file(path: &str, headers: &HeaderMap) -> Option<Response> {
    let asset = Assets::get(path)?;
    let etag = format!("\"{}\"", hex::encode(asset.metadata.sha256_hash()));
    let cache = if path.starts_with("assets/") {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let mime = asset.metadata.mimetype();
    let mut response = if matches(headers.get(header::IF_NONE_MATCH), &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let gzip = accepts_gzip(headers)
            .then(|| Assets::get(&format!("{path}.gz")))
            .flatten();
        match gzip {
            Some(packed) => {
                let mut response = Body::from(packed.data).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                response
            }
            None => Body::from(asset.data).into_response(),
        }
    };
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    Some(response)
}

/// Whether an `If-None-Match` header names `etag` (or `*`).
fn matches(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    if_none_match
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .map(|tag| tag.trim().trim_start_matches("W/"))
                .any(|tag| tag == etag || tag == "*")
        })
}

/// Whether `Accept-Encoding` allows gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(',').any(|part| {
                let mut pieces = part.split(';').map(str::trim);
                pieces.next() == Some("gzip")
                    && pieces.all(|p| p.replace(' ', "") != "q=0" && p != "q=0.0")
            })
        })
}

/// What `/` answers when the binary was built without the dashboard.
const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vupdate</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5}
code,pre{background:rgba(127,127,127,.15);padding:.1em .3em;border-radius:3px}pre{padding:.6em}</style></head>
<body><h1>vupdate</h1>
<p>The distribution is running, but this binary was built without the dashboard.</p>
<p>To build it (Node.js 20.19 or newer and npm), from the source checkout:</p>
<pre>cd dashboard &amp;&amp; npm ci &amp;&amp; npm run build
cargo build --release -p vupdate</pre>
<p><code>scripts/run</code> does this for you, installing Node when it is missing.
The GraphQL API answers at <a href="/graphql">/graphql</a>, with a plain editor at
<a href="/graphiql">/graphiql</a>.</p>
</body></html>
"#;

/// `/graphiql` without a built dashboard: a plain editor (query, variables, token), so
/// the API can be tried on a machine that could not build GraphiQL.
const GRAPHIQL_FALLBACK: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vupdate GraphQL</title>
<style>body{font-family:system-ui,sans-serif;margin:1em}textarea,input{font-family:monospace;width:100%}
pre{background:rgba(127,127,127,.15);padding:1em;white-space:pre-wrap}</style></head>
<body><h2>vupdate GraphQL</h2>
<p>This binary was built without the dashboard, so GraphiQL is not bundled; this plain editor
talks to the same <code>/graphql</code>.</p>
<p><label>Token <input id="token" placeholder="from the login mutation"></label></p>
<textarea id="query" rows="14">mutation { login(account: "admin", password: "...") { token mustChangePassword } }</textarea>
<textarea id="variables" rows="4" placeholder="variables (JSON)"></textarea>
<p><button id="run">Run</button></p>
<pre id="result"></pre>
<script>
document.getElementById('run').onclick = async function () {
  const headers = {'Content-Type': 'application/json'};
  const token = document.getElementById('token').value.trim();
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const text = document.getElementById('variables').value.trim();
  const body = {query: document.getElementById('query').value, variables: text ? JSON.parse(text) : null};
  const response = await fetch('/graphql', {method: 'POST', headers, body: JSON.stringify(body)});
  document.getElementById('result').textContent = JSON.stringify(await response.json(), null, 2);
};
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_unless_refused() {
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).expect("header"),
            );
            accepts_gzip(&headers)
        };
        assert!(check("gzip, deflate, br"));
        assert!(check("br;q=1.0, gzip;q=0.8"));
        assert!(!check("gzip;q=0"));
        assert!(!check("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn etags_match_by_value_weak_or_star() {
        let check =
            |value: &str| matches(Some(&HeaderValue::from_str(value).expect("h")), "\"ab\"");
        assert!(check("\"ab\""));
        assert!(check("W/\"ab\", \"cd\""));
        assert!(check("*"));
        assert!(!check("\"cd\""));
        assert!(!matches(None, "\"ab\""));
    }
}
