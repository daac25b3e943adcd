//! The JWTs: HS256, claims, signing and checking (expiry is checked against the caller's
//! clock, not the system's, so it follows the store's clock in tests).

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthError, IssuedUnder, JwtKey};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenUse {
    /// A person's login session; expires.
    Session,
    /// A program's or consumer's access token; revocable, no expiry.
    Access,
}

/// The claims vupdate signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The account name.
    pub sub: String,
    /// What the token is for.
    #[serde(rename = "use")]
    pub token_use: TokenUse,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch (sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// A random token id, for logs and audit.
    pub jti: String,
    /// The account's token generation an access token was issued at (access tokens only);
    /// it is valid while the account still has that generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The lease its issuer held, on the token of a lease holder's builders (access tokens
    /// only): what they write counts only while that lease is in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<IssuedUnder>,
}

/// A random token id (128 bits, hex).
pub(crate) fn new_id() -> Result<String, AuthError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| AuthError::Internal(format!("no random bytes for a token id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Signs `claims`.
pub(crate) fn sign(key: &JwtKey, claims: &Claims) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.bytes()),
    )
    .map_err(|e| AuthError::Internal(format!("cannot sign a token: {e}")))
}

/// Checks the signature and shape of `token` and its expiry at `now`.
pub(crate) fn verify(key: &JwtKey, token: &str, now: DateTime<Utc>) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against `now`; access tokens have no `exp` at all.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key.bytes()), &validation)
            .map_err(|e| AuthError::Unauthenticated {
                reason: format!("invalid token ({e})"),
            })?
            .claims;
    match (claims.token_use, claims.exp) {
        (TokenUse::Session, None) => Err(AuthError::Unauthenticated {
            reason: "invalid token (a session without an expiry)".to_owned(),
        }),
        (TokenUse::Session, Some(exp)) if now.timestamp() >= exp => Err(AuthError::TokenExpired {
            account: claims.sub,
        }),
        _ => Ok(claims),
    }
}
