//! The one-line install of updaters: administrators issue enrolment tokens (shown once,
//! with the line to paste on a VM); the install on the VM exchanges one for the access
//! token of that instance's own updater account (`enrolUpdater`, which needs no login:
//! the enrolment token is the credential).

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{api, require};
use super::result::ApiResult as _;
use crate::auth::{AuthError, Role};
use crate::enrolment::{EnrolmentError, EnrolmentRecord};
use crate::http::ApiError;

/// Who manages enrolment tokens.
const ADMINS: &[Role] = &[Role::Administrator];

/// The prefix of the account each enrolled instance gets: `updater@<instance>`.
pub const ACCOUNT_PREFIX: &str = "updater@";

/// Refuses a report an enrolled updater (`updater@<instance>`) makes about another
/// instance than its own (`field` names where the report says it); any other account may
/// report any instance.
pub(crate) fn check_reported_instance(
    principal: &crate::auth::Principal,
    field: &str,
    instance: &str,
) -> Result<(), ApiError> {
    match principal.account.strip_prefix(ACCOUNT_PREFIX) {
        Some(own) if principal.role == Role::Updater && own != instance => {
            Err(ApiError::forbidden(format!(
                "account `{}` may report only its own instance `{own}`, and `{field}` is `{instance}`: set `instance: {own}` in its updater.yaml, or enrol the VM as `{instance}`",
                principal.account
            )))
        }
        _ => Ok(()),
    }
}

/// An enrolment token, without its secret.
#[derive(SimpleObject)]
struct EnrolmentToken {
    /// A short id, for lists and `revokeEnrolmentToken`.
    id: String,
    /// The services a VM enrolled with it may run.
    services: Vec<String>,
    /// Who issued it.
    issued_by: String,
    /// When.
    issued_at: DateTime<Utc>,
    /// When it stops working.
    expires_at: DateTime<Utc>,
    /// How many enrolments it allows.
    uses: u32,
    /// The instances enrolled with it so far.
    enrolled: Vec<String>,
}

impl From<EnrolmentRecord> for EnrolmentToken {
    fn from(record: EnrolmentRecord) -> EnrolmentToken {
        let EnrolmentRecord { token, enrolled } = record;
        EnrolmentToken {
            id: token.id,
            services: token.services,
            issued_by: token.issued_by,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
            uses: token.uses,
            enrolled,
        }
    }
}

/// A token just issued: the secret, shown this once, and the line to paste on a VM.
#[derive(SimpleObject)]
struct IssuedEnrolmentToken {
    /// The secret; only its hash is kept.
    token: String,
    /// The line that installs an updater on a VM with this token.
    install_line: String,
    /// The token's record.
    info: EnrolmentToken,
}

/// A service an enrolled updater runs, with its role apart.
#[derive(SimpleObject)]
struct EnrolledService {
    /// The service.
    service: String,
    /// Its role, if any.
    role: Option<String>,
}

/// What an instance gets when it enrols.
#[derive(SimpleObject)]
struct Enrolment {
    /// The instance's updater account.
    account: String,
    /// Its access token (role Updater); keep it in a 0600 file.
    access_token: String,
    /// The services to run, read by the dash rule against the state in force.
    services: Vec<EnrolledService>,
    /// The distribution's name.
    distribution: String,
}

/// Enrolment queries.
#[derive(Default)]
pub struct InstallQuery;

#[Object]
impl InstallQuery {
    /// Every enrolment token issued (without secrets), newest first.
    async fn enrolment_tokens(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<EnrolmentToken>> {
        require(ctx, ADMINS)?;
        let records = api(ctx).install.enrolments.list().await.api()?;
        Ok(records.into_iter().map(EnrolmentToken::from).collect())
    }
}

/// Enrolment mutations.
#[derive(Default)]
pub struct InstallMutation;

#[Object]
impl InstallMutation {
    /// A new enrolment token for VMs that run `services` (`name` or `name-role`), valid
    /// for `expires` (e.g. `24h`, `7d`) and `uses` installs; shown once.
    async fn issue_enrolment_token(
        &self,
        ctx: &Context<'_>,
        services: Vec<String>,
        #[graphql(default_with = "\"24h\".to_owned()")] expires: String,
        #[graphql(default = 1)] uses: u32,
    ) -> async_graphql::Result<IssuedEnrolmentToken> {
        let principal = require(ctx, ADMINS)?;
        let context = api(ctx);
        let lifetime = humantime::parse_duration(&expires)
            .ok()
            .and_then(|lifetime| chrono::TimeDelta::from_std(lifetime).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "expires: `{expires}` is not a duration such as `1h`, `24h` or `7d`"
                ))
                .into_graphql()
            })?;
        for service in &services {
            super::parse_arg::<vupdate_core::service::ServiceName>("services", service)
                .map_err(ApiError::into_graphql)?;
        }
        let now = context.auth.now();
        let (token, record) = context
            .install
            .enrolments
            .issue(services, now + lifetime, uses, &principal.account, now)
            .await
            .api()?;
        Ok(IssuedEnrolmentToken {
            install_line: context.install.line(&token, &record.token.services),
            token,
            info: record.into(),
        })
    }

    /// Makes the enrolment token `id` stop working; false when there is none.
    async fn revoke_enrolment_token(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<bool> {
        require(ctx, ADMINS)?;
        api(ctx).install.enrolments.revoke(&id).await.api()
    }

    /// Exchanges an enrolment token for the access token of `instance`'s updater account
    /// (`updater@<instance>`, made on the first enrolment; enrolling again revokes the
    /// instance's earlier tokens). `services` (default: the token's) must be among the
    /// token's. No login: the enrolment token is the credential.
    async fn enrol_updater(
        &self,
        ctx: &Context<'_>,
        token: String,
        instance: String,
        services: Option<Vec<String>>,
    ) -> async_graphql::Result<Enrolment> {
        let context = api(ctx);
        let now = context.auth.now();
        let account = format!("{ACCOUNT_PREFIX}{instance}");
        let (_, chosen) = context
            .install
            .enrolments
            .spend(&token, &instance, now, |record| {
                check_instance(&instance)?;
                let chosen = services
                    .clone()
                    .unwrap_or_else(|| record.token.services.clone());
                if let Some(extra) = chosen.iter().find(|s| !record.token.services.contains(s)) {
                    return Err(EnrolmentError::Invalid(format!(
                        "services: `{extra}` is not among the services this token allows ({})",
                        record.token.services.join(",")
                    )));
                }
                if chosen.is_empty() {
                    return Err(EnrolmentError::Invalid(
                        "services: name at least one service".to_owned(),
                    ));
                }
                Ok(chosen)
            })
            .await
            .api()?;
        let access_token = bind(context, &account, &instance).await.api()?;
        let in_force = context.in_force.borrow().clone();
        let services = chosen
            .iter()
            .map(|name| {
                let (service, role) = match crate::roles::split_in_force(&in_force, name) {
                    Some((service, role)) => (service.to_string(), Some(role.to_string())),
                    None => (name.clone(), None),
                };
                EnrolledService { service, role }
            })
            .collect();
        Ok(Enrolment {
            account,
            access_token,
            services,
            distribution: context.info.name.clone(),
        })
    }
}

/// Refuses an instance name that cannot name an account (before a use is spent).
fn check_instance(instance: &str) -> Result<(), EnrolmentError> {
    let valid = !instance.is_empty()
        && instance.len() + ACCOUNT_PREFIX.len() <= 64
        && instance
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(EnrolmentError::Invalid(format!(
            "instance: `{instance}` is not an instance name (letters, digits, `.`, `_`, `-`; at most {} characters)",
            64 - ACCOUNT_PREFIX.len()
        )))
    }
}

/// The access token of `account`, the updater account of `instance`: made when missing,
/// its earlier tokens revoked when it exists (the new VM holding the name is the one).
async fn bind(
    context: &super::ApiContext,
    account: &str,
    instance: &str,
) -> Result<String, AuthError> {
    match context.auth.account(account).await {
        Ok(info) if info.role == Role::Updater => {
            context.auth.revoke_access_tokens(account).await?;
        }
        Ok(_) => {
            return Err(AuthError::WrongAccountKind {
                account: account.to_owned(),
                expected: "an updater's service account",
            });
        }
        Err(AuthError::NoSuchAccount { .. }) => {
            context
                .auth
                .add_service_account(account, &format!("updater of {instance}"), Role::Updater)
                .await?;
        }
        Err(error) => return Err(error),
    }
    context.auth.issue_access_token(account).await
}
