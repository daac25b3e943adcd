//! Secrets: administrators set and remove named secrets (a provider's access token) and
//! list their names and times; no answer ever carries a value.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{api, require};
use super::result::ApiResult as _;
use crate::auth::Role;
use crate::secrets::SecretInfo;

/// Who manages secrets.
const ADMINS: &[Role] = &[Role::Administrator];

/// A secret, without its value.
#[derive(SimpleObject)]
struct Secret {
    /// Its name, as `providers.yaml` names it (`accessTokenSecret`).
    name: String,
    /// When it was last set.
    set_at: DateTime<Utc>,
}

impl From<SecretInfo> for Secret {
    fn from(info: SecretInfo) -> Secret {
        Secret {
            name: info.name,
            set_at: info.set_at,
        }
    }
}

/// Reading secrets' names.
#[derive(Default)]
pub struct SecretsQuery;

#[Object]
impl SecretsQuery {
    /// The secrets kept on this distribution: names and times, never values.
    async fn secrets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Secret>> {
        require(ctx, ADMINS)?;
        let list = api(ctx).secrets.list().api()?;
        Ok(list.into_iter().map(Secret::from).collect())
    }
}

/// Setting and removing secrets.
#[derive(Default)]
pub struct SecretsMutation;

#[Object]
impl SecretsMutation {
    /// Sets the secret `name` to `value` (replacing an earlier value); kept sealed in the
    /// store (every replica uses it within 2 s), never in Git, never shown again. Send the value as a
    /// variable, so it is not part of the query text.
    async fn set_secret(
        &self,
        ctx: &Context<'_>,
        name: String,
        value: String,
    ) -> async_graphql::Result<Secret> {
        require(ctx, ADMINS)?;
        let info = api(ctx).secrets.set(&name, &value).await.api()?;
        Ok(info.into())
    }

    /// Removes the secret `name`; false when there was none.
    async fn remove_secret(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<bool> {
        require(ctx, ADMINS)?;
        api(ctx).secrets.remove(&name).await.api()
    }
}
