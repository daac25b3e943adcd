//! Accounts and access control: roles, argon2id passwords, expiring JWT sessions and
//! revocable access tokens for programs and consumer distributions.
//!
//! - [`AuthService`] is what the server holds: [`AuthService::bootstrap`] on start,
//!   [`AuthService::login`] for people, [`AuthService::authenticate`] on every request.
//! - Every request is authorised from the account as stored *now*: a role change or a
//!   deletion takes effect at the next request, without a new login (accounts read are
//!   kept a few seconds and dropped when this server changes them; a change made by
//!   another replica takes up to 10 s: see `account_cache`).
//! - [`Principal::require`] is the one check the API layer calls; each refusal has a
//!   stable [`AuthError::code`] a client can act on.
//!
//! - Password hashes run on a [`HashPool`] of a few threads with a bounded queue, and
//!   failed password checks are slowed per account and per address by a [`LoginThrottle`]:
//!   past either, a request is refused at once with `TOO_MANY_REQUESTS` and when to retry.
//!
//! Differences from the original, on purpose: sessions expire (12 h by default); the first
//! administrator gets a random password that must be changed, and is never recreated;
//! only an administrator may change a role; passwords are argon2id with a length policy.

mod account_cache;
mod hashing;
mod key;
mod password;
mod service;
#[cfg(test)]
mod tests;
mod throttle;
mod token;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use vupdate_store::model::accounts::AccountRole;

pub use hashing::{HashPool, HashPoolSize, Ticket};
pub use key::JwtKey;
pub(crate) use key::{read_or_create_private, warn_if_readable_by_others, write_private};
pub use password::{MIN_PASSWORD_LENGTH, PasswordCost};
pub use service::{AccountDetails, AccountInfo, AuthOptions, AuthService, Bootstrap, Session};
pub use throttle::{ClientKey, LoginThrottle, ThrottlePolicy};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, accounts included.
    Administrator,
    /// Builds versions and edits desired versions.
    Developer,
    /// The builder program.
    Builder,
    /// An updater on a VM.
    Updater,
    /// Another distribution that receives this one's versions.
    DistributionConsumer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Administrator,
        Role::Developer,
        Role::Builder,
        Role::Updater,
        Role::DistributionConsumer,
    ];

    /// The name used in the API and in messages (the original's enum names).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::Developer => "Developer",
            Role::Builder => "Builder",
            Role::Updater => "Updater",
            Role::DistributionConsumer => "DistributionConsumer",
        }
    }

    pub(crate) fn from_store(role: AccountRole) -> Role {
        match role {
            AccountRole::Administrator => Role::Administrator,
            AccountRole::Developer => Role::Developer,
            AccountRole::Builder => Role::Builder,
            AccountRole::Updater => Role::Updater,
            AccountRole::DistributionConsumer => Role::DistributionConsumer,
        }
    }

    pub(crate) fn to_store(self) -> AccountRole {
        match self {
            Role::Administrator => AccountRole::Administrator,
            Role::Developer => AccountRole::Developer,
            Role::Builder => AccountRole::Builder,
            Role::Updater => AccountRole::Updater,
            Role::DistributionConsumer => AccountRole::DistributionConsumer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!(
                    "unknown role `{text}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// How an account signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person, with a password and sessions.
    User,
    /// A program (builder, updater), with access tokens.
    Service,
    /// A consumer distribution, with access tokens.
    Consumer,
}

/// The lease under which a lease holder issued its builders' access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IssuedUnder {
    /// The holder's id.
    pub holder: String,
    /// The lease's fencing token then.
    pub token: i64,
}

/// Who is making a request, as the store says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account name.
    pub account: String,
    /// Its current role.
    pub role: Role,
    /// How it signs in.
    pub kind: PrincipalKind,
    /// Whether the password must be changed before anything else is allowed.
    pub must_change_password: bool,
    /// For a lease holder's builder: the lease its token was issued under (see
    /// `leadership::fence_builder`).
    pub lease: Option<IssuedUnder>,
}

impl Principal {
    /// Allows the request when the principal's role is in `allowed` and no password change
    /// is pending; the API layer calls this for every operation except changing one's own
    /// password.
    pub fn require(&self, allowed: &[Role]) -> Result<(), AuthError> {
        if self.must_change_password {
            return Err(AuthError::PasswordChangeRequired {
                account: self.account.clone(),
            });
        }
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                account: self.account.clone(),
                role: self.role,
                allowed: allowed.to_vec(),
            })
        }
    }

    /// Whether this principal is an administrator.
    pub fn is_administrator(&self) -> bool {
        self.role == Role::Administrator
    }
}

fn role_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "no role".to_owned();
    }
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A wait in whole seconds, rounded up (as `Retry-After` counts), at least 1.
pub fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// A wait as a person reads it, in whole seconds (`8s`, `4m 16s`).
fn retry_text(wait: Duration) -> String {
    humantime::format_duration(Duration::from_secs(whole_seconds(wait))).to_string()
}

/// Why an authentication or account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credentials: missing, malformed or tampered token, or a deleted account.
    #[error("not authenticated: {reason}")]
    Unauthenticated {
        /// What was wrong (safe to show: it never includes the token).
        reason: String,
    },
    /// The session token has expired; log in again.
    #[error("the session of `{account}` has expired; log in again")]
    TokenExpired {
        /// The account.
        account: String,
    },
    /// The access token was revoked.
    #[error("the access token of `{account}` has been revoked")]
    TokenRevoked {
        /// The account.
        account: String,
    },
    /// The account name or password is wrong (deliberately not saying which).
    #[error("invalid account or password")]
    InvalidCredentials,
    /// The role may not do this.
    #[error(
        "`{account}` ({role}) may not do this: it needs {}",
        role_list(allowed)
    )]
    Forbidden {
        /// The account.
        account: String,
        /// Its role.
        role: Role,
        /// The roles that may.
        allowed: Vec<Role>,
    },
    /// A non-administrator tried to act on another account.
    #[error("`{account}` may only change its own account, not `{target}`")]
    NotOwnAccount {
        /// Who tried.
        account: String,
        /// The other account.
        target: String,
    },
    /// The password must be changed before anything else.
    #[error("`{account}` must change its password first")]
    PasswordChangeRequired {
        /// The account.
        account: String,
    },
    /// The new password does not meet the policy.
    #[error("the new password is too weak: {reason}")]
    WeakPassword {
        /// Which rule it breaks.
        reason: String,
    },
    /// The old password is needed to change one's own password.
    #[error("give the current password to change the password of `{account}`")]
    OldPasswordRequired {
        /// The account.
        account: String,
    },
    /// No account has this name.
    #[error("no account `{account}`")]
    NoSuchAccount {
        /// The name.
        account: String,
    },
    /// The account name is taken.
    #[error("account `{account}` already exists")]
    AccountExists {
        /// The name.
        account: String,
    },
    /// The account name is unusable.
    #[error("invalid account name `{account}`: {reason}")]
    InvalidAccountName {
        /// The name.
        account: String,
        /// Why.
        reason: String,
    },
    /// The operation does not apply to this kind of account.
    #[error("account `{account}` is not {expected}")]
    WrongAccountKind {
        /// The account.
        account: String,
        /// What it would have to be, e.g. "a service or consumer account".
        expected: &'static str,
    },
    /// The last administrator cannot be removed or demoted.
    #[error("`{account}` is the last administrator and cannot be removed or demoted")]
    LastAdministrator {
        /// The account.
        account: String,
    },
    /// The JWT key file could not be read or created.
    #[error("JWT key file {}: {reason}", path.display())]
    Key {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        reason: String,
    },
    /// Too many attempts (failed password checks, or a server busy checking passwords):
    /// nothing was checked; try again after `retry_after`.
    #[error("{reason}; try again in {}", retry_text(*retry_after))]
    TooManyRequests {
        /// Why, naming the account or address that must wait.
        reason: String,
        /// How long to wait.
        retry_after: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] vupdate_store::StoreError),
    /// An internal failure (hashing, signing, a lost worker thread).
    #[error("internal authentication error: {0}")]
    Internal(String),
}

impl AuthError {
    /// A stable code for clients (the server puts it in the response's error extensions).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Unauthenticated { .. } => "UNAUTHENTICATED",
            AuthError::TokenExpired { .. } => "TOKEN_EXPIRED",
            AuthError::TokenRevoked { .. } => "TOKEN_REVOKED",
            AuthError::InvalidCredentials => "INVALID_CREDENTIALS",
            AuthError::Forbidden { .. } | AuthError::NotOwnAccount { .. } => "FORBIDDEN",
            AuthError::PasswordChangeRequired { .. } => "PASSWORD_CHANGE_REQUIRED",
            AuthError::WeakPassword { .. } => "WEAK_PASSWORD",
            AuthError::OldPasswordRequired { .. } => "OLD_PASSWORD_REQUIRED",
            AuthError::NoSuchAccount { .. } => "NO_SUCH_ACCOUNT",
            AuthError::AccountExists { .. } => "ACCOUNT_EXISTS",
            AuthError::InvalidAccountName { .. } => "INVALID_ACCOUNT_NAME",
            AuthError::WrongAccountKind { .. } => "WRONG_ACCOUNT_KIND",
            AuthError::LastAdministrator { .. } => "LAST_ADMINISTRATOR",
            AuthError::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
            AuthError::Key { .. } | AuthError::Store(_) | AuthError::Internal(_) => "INTERNAL",
        }
    }
}
