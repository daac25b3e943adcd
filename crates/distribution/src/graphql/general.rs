//! The public and personal basics: `ping`, `distributionInfo`, `whoAmI`, `login`.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{api, caller, client_address};
use super::result::ApiResult as _;
use super::types::AccountRole;

/// The name and title of this distribution and the server's version.
#[derive(SimpleObject)]
struct DistributionInfo {
    /// The distribution's name, e.g. `acme`.
    distribution: String,
    /// The title the dashboard shows.
    title: String,
    /// The instance the server runs on.
    instance: String,
    /// The server's version.
    version: String,
}

/// The calling account.
#[derive(SimpleObject)]
struct WhoAmI {
    /// The account name.
    account: String,
    /// Its role.
    role: AccountRole,
    /// Whether the password must be changed before anything else is allowed.
    must_change_password: bool,
}

/// A new session.
#[derive(SimpleObject)]
struct Session {
    /// The bearer token: send it as `Authorization: Bearer <token>`.
    token: String,
    /// When it stops working.
    expires_at: DateTime<Utc>,
    /// Whether only `changePassword` is allowed until the password is changed.
    must_change_password: bool,
}

/// Queries anyone may make, and `whoAmI`.
#[derive(Default)]
pub struct GeneralQuery;

#[Object]
impl GeneralQuery {
    /// Answers `pong`: the server is up (no login needed).
    async fn ping(&self) -> &'static str {
        "pong"
    }

    /// This distribution's name, title and server version (no login needed).
    async fn distribution_info(&self, ctx: &Context<'_>) -> DistributionInfo {
        let info = &api(ctx).info;
        DistributionInfo {
            distribution: info.name.clone(),
            title: info.title.clone(),
            instance: info.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The calling account, with any role, even before a required password change.
    async fn who_am_i(&self, ctx: &Context<'_>) -> async_graphql::Result<WhoAmI> {
        let principal = caller(ctx).signed_in().api()?;
        Ok(WhoAmI {
            account: principal.account.clone(),
            role: principal.role.into(),
            must_change_password: principal.must_change_password,
        })
    }
}

/// Logging in.
#[derive(Default)]
pub struct GeneralMutation;

#[Object]
impl GeneralMutation {
    /// Logs a person in and returns a session token; a wrong password and an unknown
    /// account are the same `INVALID_CREDENTIALS` error. After repeated failures the
    /// account and the client's address must wait (`TOO_MANY_REQUESTS`, with
    /// `extensions.retryAfterSeconds`) before a password is checked again.
    async fn login(
        &self,
        ctx: &Context<'_>,
        account: String,
        password: String,
    ) -> async_graphql::Result<Session> {
        let session = api(ctx)
            .auth
            .login(&account, &password, client_address(ctx))
            .await
            .api()?;
        Ok(Session {
            token: session.token,
            expires_at: session.expires_at,
            must_change_password: session.must_change_password,
        })
    }
}
