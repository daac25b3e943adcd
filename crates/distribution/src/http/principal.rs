//! The [`Principal`] extractor: who sent a request, from `Authorization: Bearer <token>`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};

use super::{ApiError, AppState};
use crate::auth::Principal;

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthenticated(
                "missing `Authorization: Bearer <token>` header",
            ));
        };
        authenticate(state, value).await
    }
}

/// The principal of an `Authorization` header's value.
pub(crate) async fn authenticate(
    state: &AppState,
    value: &HeaderValue,
) -> Result<Principal, ApiError> {
    let text = value.to_str().map_err(|_| {
        ApiError::unauthenticated("the `Authorization` header is not visible ASCII")
    })?;
    Ok(state.auth.authenticate(bearer_token(text)?).await?)
}

/// The token of an `Authorization` value; only the `Bearer` scheme is accepted.
pub(crate) fn bearer_token(text: &str) -> Result<&str, ApiError> {
    // The scheme is case-insensitive (RFC 9110 11.1).
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthenticated(
            "the `Authorization` header is not `Bearer <token>`",
        )),
    }
}
