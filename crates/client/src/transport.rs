//! Sending a request and turning a non-success answer into [`ClientError::Refused`] with
//! the server's stable code (`{"error": {"code", "message"}}`, the distribution's REST
//! error body, or the first of `{"errors": [{"message", "extensions": {"code"}}]}`, its
//! answer when it refuses a GraphQL request before running it).

use reqwest::{RequestBuilder, Response};

use crate::Client;
use crate::error::ClientError;

/// The most bytes of a non-JSON error body quoted in a message.
const BODY_QUOTE: usize = 500;

/// Sends `request`; an error status becomes [`ClientError::Refused`].
pub(crate) async fn send(
    method: &'static str,
    url: &str,
    request: RequestBuilder,
) -> Result<Response, ClientError> {
    let response = request
        .send()
        .await
        .map_err(|source| transport(method, url, source))?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(refused(method, url, response).await)
    }
}

impl Client {
    /// `POST url` with the JSON `body`, whatever the answer's status. With `resend`, sent
    /// once more on a new connection when the server closed the connection without
    /// answering, most often a kept-alive connection an older server (which closes one idle
    /// for its `headerTimeout`) closed, unread, as the request went out: only for what is
    /// safe to apply twice.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: String,
        resend: bool,
    ) -> Result<Response, ClientError> {
        let send = |body: String| {
            self.request(reqwest::Method::POST, url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
        };
        match send(body.clone()).await {
            Err(error) if resend && closed_before_answer(&error) => send(body).await,
            sent => sent,
        }
        .map_err(|source| transport("POST", url, source))
    }
}

/// Whether `error` is a connection closed before any answer to a request sent on it.
fn closed_before_answer(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message();
        }
        source = cause.source();
    }
    false
}

/// A [`ClientError::Transport`] for `method url` ([`ClientError::UnpinnedKey`] when the
/// server's key was not the pinned one).
pub(crate) fn transport(method: &'static str, url: &str, source: reqwest::Error) -> ClientError {
    if let Some(error) = crate::pin::unpinned(url, &source) {
        return error;
    }
    ClientError::Transport {
        method,
        url: url.to_owned(),
        // The URL is in the message already; reqwest would repeat it.
        error: source.without_url(),
    }
}

/// Reads an error answer's body into a [`ClientError::Refused`].
pub(crate) async fn refused(method: &'static str, url: &str, response: Response) -> ClientError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let (code, message) = parse_error_body(status, &body);
    ClientError::Refused {
        method,
        url: url.to_owned(),
        status,
        code,
        message,
    }
}

/// The code and message of an error body; a body that is not vupdate's JSON is quoted.
fn parse_error_body(status: u16, body: &str) -> (String, String) {
    let parsed: Option<(String, String)> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            let (error, code) = match json.get("error") {
                Some(error) => (error, error.get("code")?),
                None => {
                    let error = json.get("errors")?.get(0)?;
                    (error, error.get("extensions")?.get("code")?)
                }
            };
            Some((
                code.as_str()?.to_owned(),
                error.get("message")?.as_str()?.to_owned(),
            ))
        });
    parsed.unwrap_or_else(|| {
        let mut quoted: String = body.trim().chars().take(BODY_QUOTE).collect();
        if quoted.is_empty() {
            quoted = "(no body)".to_owned();
        }
        (format!("HTTP_{status}"), quoted)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        assert_eq!(
            parse_error_body(
                404,
                r#"{"error":{"code":"NOT_FOUND","message":"no such image"}}"#
            ),
            ("NOT_FOUND".to_owned(), "no such image".to_owned())
        );
        assert_eq!(
            parse_error_body(
                413,
                r#"{"errors":[{"message":"too big","extensions":{"code":"PAYLOAD_TOO_LARGE"}}]}"#
            ),
            ("PAYLOAD_TOO_LARGE".to_owned(), "too big".to_owned())
        );
        assert_eq!(
            parse_error_body(502, "<html>Bad gateway</html>\n"),
            ("HTTP_502".to_owned(), "<html>Bad gateway</html>".to_owned())
        );
        assert_eq!(
            parse_error_body(500, ""),
            ("HTTP_500".to_owned(), "(no body)".to_owned())
        );
    }
}
