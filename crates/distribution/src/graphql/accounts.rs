//! Accounts: listing, adding, roles, removal, passwords and access tokens. Administrators
//! manage every account; anyone signed in may change their own password.

use async_graphql::{Context, Enum, Object, SimpleObject};

use super::context::{api, caller, client_address, require};
use super::result::ApiResult as _;
use super::types::AccountRole;
use crate::auth::{AccountDetails, AccountInfo, Role};

/// Who manages accounts.
const ADMINS: &[Role] = &[Role::Administrator];

/// How an account signs in.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
enum AccountType {
    /// A person, with a password.
    User,
    /// A program (builder, updater), with access tokens.
    Service,
    /// A consumer distribution, with access tokens.
    Consumer,
}

/// An account, without secrets.
#[derive(SimpleObject)]
struct Account {
    /// The account name (what one logs in with).
    account: String,
    /// The display name.
    name: String,
    /// What it may do.
    role: AccountRole,
    /// How it signs in.
    #[graphql(name = "type")]
    account_type: AccountType,
    /// A person's e-mail address.
    email: Option<String>,
    /// A person's notifications.
    notifications: Vec<String>,
    /// Whether a person must change the password before anything else.
    must_change_password: bool,
    /// A consumer's profile of services.
    profile: Option<String>,
    /// A consumer's URL.
    url: Option<String>,
}

impl From<AccountInfo> for Account {
    fn from(info: AccountInfo) -> Account {
        let mut account = Account {
            account: info.account,
            name: info.name,
            role: info.role.into(),
            account_type: AccountType::Service,
            email: None,
            notifications: Vec::new(),
            must_change_password: false,
            profile: None,
            url: None,
        };
        match info.details {
            AccountDetails::User {
                email,
                notifications,
                must_change_password,
            } => {
                account.account_type = AccountType::User;
                account.email = email;
                account.notifications = notifications;
                account.must_change_password = must_change_password;
            }
            AccountDetails::Service => {}
            AccountDetails::Consumer { profile, url } => {
                account.account_type = AccountType::Consumer;
                account.profile = Some(profile);
                account.url = Some(url);
            }
        }
        account
    }
}

/// Reading accounts.
#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// Every account by name, or only `account`.
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        account: Option<String>,
    ) -> async_graphql::Result<Vec<Account>> {
        require(ctx, ADMINS)?;
        let auth = &api(ctx).auth;
        let list = match account {
            Some(name) => vec![auth.account(&name).await.api()?],
            None => auth.list().await.api()?,
        };
        Ok(list.into_iter().map(Account::from).collect())
    }
}

/// Changing accounts.
#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Changes a password: one's own (give `oldPassword`; allowed even while a change is
    /// required), or, for an administrator, anyone's (they must change it at next login).
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        account: Option<String>,
        old_password: Option<String>,
        new_password: String,
    ) -> async_graphql::Result<bool> {
        let principal = caller(ctx).signed_in().api()?;
        let account = account.unwrap_or_else(|| principal.account.clone());
        api(ctx)
            .auth
            .change_password(
                principal,
                &account,
                old_password.as_deref(),
                &new_password,
                client_address(ctx),
            )
            .await
            .api()?;
        Ok(true)
    }

    /// Adds a person; by default they must change the password at first login.
    async fn add_user_account(
        &self,
        ctx: &Context<'_>,
        account: String,
        name: String,
        role: AccountRole,
        password: String,
        #[graphql(default = true)] must_change_password: bool,
    ) -> async_graphql::Result<Account> {
        require(ctx, ADMINS)?;
        let info = api(ctx)
            .auth
            .add_user(
                &account,
                &name,
                role.into(),
                &password,
                must_change_password,
            )
            .await
            .api()?;
        Ok(info.into())
    }

    /// Adds a program's account (builder, updater); give it a token with `issueAccessToken`.
    async fn add_service_account(
        &self,
        ctx: &Context<'_>,
        account: String,
        name: String,
        role: AccountRole,
    ) -> async_graphql::Result<Account> {
        require(ctx, ADMINS)?;
        let info = api(ctx)
            .auth
            .add_service_account(&account, &name, role.into())
            .await
            .api()?;
        Ok(info.into())
    }

    /// Adds a consumer distribution's account, which receives `profile`'s versions.
    async fn add_consumer_account(
        &self,
        ctx: &Context<'_>,
        account: String,
        name: String,
        profile: String,
        url: String,
    ) -> async_graphql::Result<Account> {
        require(ctx, ADMINS)?;
        let info = api(ctx)
            .auth
            .add_consumer_account(&account, &name, &profile, &url)
            .await
            .api()?;
        Ok(info.into())
    }

    /// Changes an account's role (the last administrator cannot be demoted).
    async fn change_account_role(
        &self,
        ctx: &Context<'_>,
        account: String,
        role: AccountRole,
    ) -> async_graphql::Result<bool> {
        let principal = require(ctx, ADMINS)?;
        api(ctx)
            .auth
            .change_role(principal, &account, role.into())
            .await
            .api()?;
        Ok(true)
    }

    /// Removes an account; its sessions and tokens stop working at once.
    async fn remove_account(
        &self,
        ctx: &Context<'_>,
        account: String,
    ) -> async_graphql::Result<bool> {
        require(ctx, ADMINS)?;
        api(ctx).auth.remove_account(&account).await.api()?;
        Ok(true)
    }

    /// A new long-lived access token for a service or consumer account (shown once).
    async fn issue_access_token(
        &self,
        ctx: &Context<'_>,
        account: String,
    ) -> async_graphql::Result<String> {
        require(ctx, ADMINS)?;
        api(ctx).auth.issue_access_token(&account).await.api()
    }

    /// Makes every access token issued so far for `account` stop working.
    async fn revoke_access_tokens(
        &self,
        ctx: &Context<'_>,
        account: String,
    ) -> async_graphql::Result<bool> {
        require(ctx, ADMINS)?;
        api(ctx).auth.revoke_access_tokens(&account).await.api()?;
        Ok(true)
    }
}
