//! [`AuthService`]: bootstrap, login, authentication, passwords, roles, accounts and
//! access tokens, over the store's accounts collection.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use vupdate_store::Store;
use vupdate_store::model::Stored;
use vupdate_store::model::accounts::{Account, AccountKind};

use super::account_cache::AccountCache;
use super::password::{self, PasswordCost};
use super::token::{self, Claims, TokenUse};
use super::{AuthError, IssuedUnder, JwtKey, Principal, PrincipalKind, Role};
use super::{HashPool, HashPoolSize, LoginThrottle, ThrottlePolicy};

/// The first administrator's account name.
const ADMIN: &str = "admin";
/// The service accounts created on first start, as in the original.
const SERVICE_ACCOUNTS: [(&str, &str, Role); 2] = [
    ("builder", "Builder", Role::Builder),
    ("updater", "Updater", Role::Updater),
];
/// Settings of the auth service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthOptions {
    /// How long a login session lasts; default 12 hours.
    pub session_lifetime: Duration,
    /// The argon2id cost of new password hashes.
    pub password_cost: PasswordCost,
    /// How many password hashes run at once and how many may wait.
    pub hashing: HashPoolSize,
    /// How failed password checks slow down further attempts.
    pub throttle: ThrottlePolicy,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            session_lifetime: Duration::from_secs(12 * 60 * 60),
            password_cost: PasswordCost::DEFAULT,
            hashing: HashPoolSize::default(),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether only a password change is allowed until the password is changed.
    pub must_change_password: bool,
}

/// What [`AuthService::bootstrap`] created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bootstrap {
    /// The initial `admin` password, to print once; `None` when nothing was created.
    pub admin_password: Option<String>,
    /// The accounts created.
    pub created: Vec<String>,
}

/// An account as listed (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account name.
    pub account: String,
    /// The display name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// What only its kind has.
    pub details: AccountDetails,
}

/// The kind of an account and its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountDetails {
    /// A person.
    User {
        /// Where notifications go.
        email: Option<String>,
        /// The notifications wanted.
        notifications: Vec<String>,
        /// Whether a password change is pending.
        must_change_password: bool,
    },
    /// A program.
    Service,
    /// A consumer distribution.
    Consumer {
        /// The profile of services it receives.
        profile: String,
        /// Its URL.
        url: String,
    },
}

impl AccountInfo {
    fn from_account(account: Account) -> AccountInfo {
        let details = match &account.kind {
            AccountKind::User {
                email,
                notifications,
                must_change_password,
                ..
            } => AccountDetails::User {
                email: email.clone(),
                notifications: notifications.clone(),
                must_change_password: *must_change_password,
            },
            AccountKind::Service { .. } => AccountDetails::Service,
            AccountKind::Consumer { profile, url, .. } => AccountDetails::Consumer {
                profile: profile.clone(),
                url: url.clone(),
            },
        };
        AccountInfo {
            account: account.account,
            name: account.name,
            role: Role::from_store(account.role),
            details,
        }
    }
}

/// Accounts, passwords and tokens; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthService {
    store: Store,
    key: JwtKey,
    options: AuthOptions,
    /// Where every password hash runs.
    pool: HashPool,
    /// Failed password checks per account and address.
    throttle: Arc<LoginThrottle>,
    /// A hash no password matches, made at the configured cost and verified for unknown
    /// accounts, so a login takes as long whether the account exists or not.
    dummy_hash: Arc<tokio::sync::OnceCell<String>>,
    /// The accounts requests were recently authorised from.
    recent: Arc<AccountCache>,
}

fn kind_of(account: &Account) -> PrincipalKind {
    match account.kind {
        AccountKind::User { .. } => PrincipalKind::User,
        AccountKind::Service { .. } => PrincipalKind::Service,
        AccountKind::Consumer { .. } => PrincipalKind::Consumer,
    }
}

/// Whether the account must change its password before doing anything else.
fn must_change_password(account: &Account) -> bool {
    matches!(
        account.kind,
        AccountKind::User {
            must_change_password: true,
            ..
        }
    )
}

fn check_name(account: &str) -> Result<(), AuthError> {
    let invalid = |reason: &str| {
        Err(AuthError::InvalidAccountName {
            account: account.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if account.is_empty() {
        return invalid("it is empty");
    }
    if account.chars().count() > 64 {
        return invalid("it is longer than 64 characters");
    }
    if !account
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return invalid("use letters, digits, `.`, `_`, `-` and `@`");
    }
    Ok(())
}

impl AuthService {
    /// An auth service with the default options (12 h sessions, real argon2 cost).
    pub fn new(store: Store, key: JwtKey) -> AuthService {
        Self::with_options(store, key, AuthOptions::default())
    }

    /// An auth service with explicit options.
    pub fn with_options(store: Store, key: JwtKey, options: AuthOptions) -> AuthService {
        AuthService {
            store,
            key,
            options,
            pool: HashPool::new(options.hashing),
            throttle: Arc::new(LoginThrottle::new(options.throttle)),
            dummy_hash: Arc::default(),
            recent: Arc::default(),
        }
    }

    /// On the first start (no account exists and `admin` never did), creates `admin`
    /// (Administrator) with a random password that must be changed, and the `builder` and
    /// `updater` service accounts. Later starts change nothing, even if `admin` was deleted.
    pub async fn bootstrap(&self) -> Result<Bootstrap, AuthError> {
        let accounts = self.store.accounts();
        if !accounts.list(None).await?.is_empty() || !accounts.history(ADMIN).await?.is_empty() {
            return Ok(Bootstrap::default());
        }
        let admin_password = password::generate()?;
        let admin = Account {
            account: ADMIN.to_owned(),
            name: "Administrator".to_owned(),
            role: Role::Administrator.to_store(),
            kind: AccountKind::User {
                password_hash: password::hash(
                    self.pool.admit()?,
                    self.options.password_cost,
                    admin_password.clone(),
                )
                .await?,
                email: None,
                notifications: Vec::new(),
                must_change_password: true,
            },
        };
        let mut created = Vec::new();
        match accounts.add(admin).await {
            Ok(_) => created.push(ADMIN.to_owned()),
            // Another server process bootstrapped at the same moment.
            Err(vupdate_store::StoreError::Duplicate { .. }) => return Ok(Bootstrap::default()),
            Err(e) => return Err(e.into()),
        }
        for (account, name, role) in SERVICE_ACCOUNTS {
            if self.add_service_account(account, name, role).await.is_ok() {
                created.push(account.to_owned());
            }
        }
        tracing::info!(accounts = ?created, "created the initial accounts");
        Ok(Bootstrap {
            admin_password: Some(admin_password),
            created,
        })
    }

    /// Logs a person in from the client at `from`; a wrong password and an unknown account
    /// are the same [`AuthError::InvalidCredentials`]. While the account or the address
    /// must wait after failed attempts, or every hashing thread is busy, the attempt is
    /// refused with [`AuthError::TooManyRequests`] before the password is checked.
    pub async fn login(
        &self,
        account: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<Session, AuthError> {
        self.throttle.check(account, from, Instant::now())?;
        // The place is taken before the account is read: a flood is refused before it
        // costs the store anything.
        let place = self.pool.admit()?;
        let stored = self.store.accounts().get(account).await?;
        let hash = match stored.as_ref().map(|s| &s.record.kind) {
            Some(AccountKind::User { password_hash, .. }) => Some(password_hash.clone()),
            _ => None,
        };
        let against = match &hash {
            Some(hash) => hash.clone(),
            None => self.dummy_hash().await?,
        };
        let matches = password::verify(place, password.to_owned(), against).await?;
        let (Some(stored), Some(_), true) = (stored, hash, matches) else {
            self.throttle.failed(account, from, Instant::now());
            return Err(AuthError::InvalidCredentials);
        };
        self.throttle.succeeded(account, from);
        let now = self.store.now();
        let expires_at =
            now + TimeDelta::from_std(self.options.session_lifetime).unwrap_or(TimeDelta::MAX);
        let claims = Claims {
            sub: stored.record.account.clone(),
            token_use: TokenUse::Session,
            iat: now.timestamp(),
            exp: Some(expires_at.timestamp()),
            jti: token::new_id()?,
            generation: None,
            lease: None,
        };
        Ok(Session {
            token: token::sign(&self.key, &claims)?,
            expires_at,
            must_change_password: must_change_password(&stored.record),
        })
    }

    /// The principal a bearer token stands for, as the store says now.
    pub async fn authenticate(&self, bearer_token: &str) -> Result<Principal, AuthError> {
        let now = self.store.now();
        let claims = token::verify(&self.key, bearer_token, now)?;
        let record = match self.recent.get(&claims.sub, now) {
            Ok(record) => record,
            Err(start) => {
                let Some(stored) = self.store.accounts().get(&claims.sub).await? else {
                    return Err(AuthError::Unauthenticated {
                        reason: format!("account `{}` no longer exists", claims.sub),
                    });
                };
                self.recent.keep(start, &stored.record, now);
                stored.record
            }
        };
        let kind = kind_of(&record);
        match (claims.token_use, kind) {
            (TokenUse::Session, PrincipalKind::User) => {}
            (TokenUse::Access, PrincipalKind::Service | PrincipalKind::Consumer) => {
                if claims.generation != record.kind.token_generation() {
                    return Err(AuthError::TokenRevoked {
                        account: claims.sub,
                    });
                }
            }
            _ => {
                return Err(AuthError::Unauthenticated {
                    reason: format!("the token does not fit account `{}`", claims.sub),
                });
            }
        }
        Ok(Principal {
            must_change_password: must_change_password(&record),
            account: record.account,
            role: Role::from_store(record.role),
            kind,
            lease: claims.lease,
        })
    }

    async fn dummy_hash(&self) -> Result<String, AuthError> {
        let cost = self.options.password_cost;
        self.dummy_hash
            .get_or_try_init(|| async move {
                password::hash(self.pool.admit()?, cost, password::generate()?).await
            })
            .await
            .cloned()
    }

    async fn get(&self, account: &str) -> Result<Stored<Account>, AuthError> {
        self.store
            .accounts()
            .get(account)
            .await?
            .ok_or_else(|| AuthError::NoSuchAccount {
                account: account.to_owned(),
            })
    }

    /// Changes `account`'s password. Anyone changing their own must give the old one (this
    /// also clears a pending must-change; a wrong one counts as a failed login of the
    /// account from `from`); only an administrator may change another's, and that person
    /// must then change it at their next login.
    pub async fn change_password(
        &self,
        principal: &Principal,
        account: &str,
        old_password: Option<&str>,
        new_password: &str,
        from: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let own = principal.account == account;
        if !own {
            principal.require(&[Role::Administrator])?;
        }
        let mut stored = self.get(account).await?.record;
        let AccountKind::User { password_hash, .. } = &stored.kind else {
            return Err(AuthError::WrongAccountKind {
                account: account.to_owned(),
                expected: "a user account",
            });
        };
        if own {
            let old = old_password.ok_or_else(|| AuthError::OldPasswordRequired {
                account: account.to_owned(),
            })?;
            self.throttle.check(account, from, Instant::now())?;
            let place = self.pool.admit()?;
            if !password::verify(place, old.to_owned(), password_hash.clone()).await? {
                self.throttle.failed(account, from, Instant::now());
                return Err(AuthError::InvalidCredentials);
            }
            self.throttle.succeeded(account, from);
            if old == new_password {
                return Err(AuthError::WeakPassword {
                    reason: "it must differ from the current one".to_owned(),
                });
            }
        }
        password::check_policy(account, new_password)?;
        let new_hash = password::hash(
            self.pool.admit()?,
            self.options.password_cost,
            new_password.to_owned(),
        )
        .await?;
        if let AccountKind::User {
            password_hash,
            must_change_password,
            ..
        } = &mut stored.kind
        {
            *password_hash = new_hash;
            *must_change_password = !own;
        }
        let written = self.store.accounts().put(stored).await;
        self.recent.written(account);
        written?;
        Ok(())
    }

    /// Changes an account's role: administrators only (the original let anyone change
    /// their own); the last administrator cannot be demoted.
    pub async fn change_role(
        &self,
        principal: &Principal,
        account: &str,
        role: Role,
    ) -> Result<(), AuthError> {
        principal.require(&[Role::Administrator])?;
        let mut stored = self.get(account).await?.record;
        if Role::from_store(stored.role) == role {
            return Ok(());
        }
        if stored.role == Role::Administrator.to_store() {
            self.ensure_other_administrator(account).await?;
        }
        stored.role = role.to_store();
        let written = self.store.accounts().put(stored).await;
        self.recent.written(account);
        written?;
        Ok(())
    }

    async fn ensure_other_administrator(&self, account: &str) -> Result<(), AuthError> {
        let others = self
            .store
            .accounts()
            .list(None)
            .await?
            .into_iter()
            .filter(|a| a.record.account != account)
            .any(|a| a.record.role == Role::Administrator.to_store());
        if others {
            Ok(())
        } else {
            Err(AuthError::LastAdministrator {
                account: account.to_owned(),
            })
        }
    }

    async fn add(&self, account: Account) -> Result<AccountInfo, AuthError> {
        check_name(&account.account)?;
        let added = self.store.accounts().add(account.clone()).await;
        self.recent.written(&account.account);
        match added {
            Ok(stored) => Ok(AccountInfo::from_account(stored.record)),
            Err(vupdate_store::StoreError::Duplicate { .. }) => Err(AuthError::AccountExists {
                account: account.account,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a person; with `must_change_password` they must change the password at their
    /// first login (the usual case: the administrator chose it).
    pub async fn add_user(
        &self,
        account: &str,
        name: &str,
        role: Role,
        password: &str,
        must_change: bool,
    ) -> Result<AccountInfo, AuthError> {
        check_name(account)?;
        password::check_policy(account, password)?;
        self.add(Account {
            account: account.to_owned(),
            name: name.to_owned(),
            role: role.to_store(),
            kind: AccountKind::User {
                password_hash: password::hash(
                    self.pool.admit()?,
                    self.options.password_cost,
                    password.to_owned(),
                )
                .await?,
                email: None,
                notifications: Vec::new(),
                must_change_password: must_change,
            },
        })
        .await
    }

    /// Adds a program's account (it signs in with access tokens).
    pub async fn add_service_account(
        &self,
        account: &str,
        name: &str,
        role: Role,
    ) -> Result<AccountInfo, AuthError> {
        self.add(Account {
            account: account.to_owned(),
            name: name.to_owned(),
            role: role.to_store(),
            kind: AccountKind::Service {
                token_generation: 0,
            },
        })
        .await
    }

    /// Adds a consumer distribution's account (role DistributionConsumer).
    pub async fn add_consumer_account(
        &self,
        account: &str,
        name: &str,
        profile: &str,
        url: &str,
    ) -> Result<AccountInfo, AuthError> {
        self.add(Account {
            account: account.to_owned(),
            name: name.to_owned(),
            role: Role::DistributionConsumer.to_store(),
            kind: AccountKind::Consumer {
                profile: profile.to_owned(),
                url: url.to_owned(),
                token_generation: 0,
            },
        })
        .await
    }

    /// Removes an account; its tokens stop working at once. The last administrator stays.
    pub async fn remove_account(&self, account: &str) -> Result<(), AuthError> {
        let stored = self.get(account).await?;
        if stored.record.role == Role::Administrator.to_store() {
            self.ensure_other_administrator(account).await?;
        }
        let removed = self.store.accounts().remove(account).await;
        self.recent.written(account);
        if !removed? {
            return Err(AuthError::NoSuchAccount {
                account: account.to_owned(),
            });
        }
        Ok(())
    }

    /// Every account, by name.
    pub async fn list(&self) -> Result<Vec<AccountInfo>, AuthError> {
        Ok(self
            .store
            .accounts()
            .list(None)
            .await?
            .into_iter()
            .map(|s| AccountInfo::from_account(s.record))
            .collect())
    }

    /// One account.
    pub async fn account(&self, account: &str) -> Result<AccountInfo, AuthError> {
        Ok(AccountInfo::from_account(self.get(account).await?.record))
    }

    /// A long-lived access token for a service or consumer account; valid until
    /// [`AuthService::revoke_access_tokens`] (editing the account's name, role, profile or
    /// URL keeps it valid).
    pub async fn issue_access_token(&self, account: &str) -> Result<String, AuthError> {
        self.issue_access_token_under(account, None).await
    }

    /// [`AuthService::issue_access_token`], for a lease holder's builders: the token
    /// carries `lease`, so what they write counts only while it is in force.
    pub async fn issue_access_token_under(
        &self,
        account: &str,
        lease: Option<IssuedUnder>,
    ) -> Result<String, AuthError> {
        let stored = self.get(account).await?;
        let Some(generation) = stored.record.kind.token_generation() else {
            return Err(AuthError::WrongAccountKind {
                account: account.to_owned(),
                expected: "a service or consumer account",
            });
        };
        let claims = Claims {
            sub: stored.record.account,
            token_use: TokenUse::Access,
            iat: self.store.now().timestamp(),
            exp: None,
            jti: token::new_id()?,
            generation: Some(generation),
            lease,
        };
        token::sign(&self.key, &claims)
    }

    /// Makes every access token issued so far for `account` fail at once.
    pub async fn revoke_access_tokens(&self, account: &str) -> Result<(), AuthError> {
        let mut record = self.get(account).await?.record;
        let (AccountKind::Service { token_generation }
        | AccountKind::Consumer {
            token_generation, ..
        }) = &mut record.kind
        else {
            return Err(AuthError::WrongAccountKind {
                account: account.to_owned(),
                expected: "a service or consumer account",
            });
        };
        *token_generation = token_generation.checked_add(1).ok_or_else(|| {
            AuthError::Internal(format!(
                "account `{account}` has used up its access-token generations"
            ))
        })?;
        let written = self.store.accounts().put(record).await;
        self.recent.written(account);
        written?;
        tracing::info!(account, "revoked the access tokens");
        Ok(())
    }

    /// The time the service uses (the store's clock).
    pub fn now(&self) -> DateTime<Utc> {
        self.store.now()
    }
}
