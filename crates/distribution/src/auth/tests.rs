//! Auth against a real SQLite store in a temporary directory, with a manual clock.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use vupdate_store::model::accounts::AccountKind;
use vupdate_store::{ManualClock, StoreConfig};

use super::*;

struct Fixture {
    auth: AuthService,
    store: vupdate_store::Store,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

const STRONG: &str = "correct horse battery";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
            .single()
            .expect("valid time"),
    ));
    let store = vupdate_store::open(&StoreConfig::Sqlite {
        path: dir.path().join("store.sqlite"),
    })
    .await
    .expect("open the store")
    .with_clock(clock.clone());
    let key = JwtKey::load_or_create(dir.path().join("jwt.key")).expect("key");
    let auth = AuthService::with_options(
        store.clone(),
        key,
        AuthOptions {
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
            ..AuthOptions::default()
        },
    );
    Fixture {
        auth,
        store,
        clock,
        _dir: dir,
    }
}

impl Fixture {
    async fn login(&self, account: &str, password: &str) -> Session {
        self.auth
            .login(account, password, None)
            .await
            .expect("login")
    }

    /// The principal a token stands for; panics if it is refused.
    async fn principal(&self, token: &str) -> Principal {
        self.auth.authenticate(token).await.expect("auth")
    }

    /// Why a token is refused; panics if it is accepted.
    async fn refused(&self, token: &str) -> AuthError {
        self.auth.authenticate(token).await.expect_err("refused")
    }

    /// Asserts that a token is refused with this code and message.
    async fn assert_refused(&self, token: &str, code: &str, message: &str) {
        let error = self.refused(token).await;
        assert_eq!(error.code(), code);
        assert_eq!(error.to_string(), message);
    }

    async fn access_token(&self, account: &str) -> String {
        self.auth.issue_access_token(account).await.expect("token")
    }

    /// Adds the consumer account `east`.
    async fn add_east(&self) {
        self.auth
            .add_consumer_account("east", "East", "common", "https://east.example")
            .await
            .expect("consumer");
    }
}

/// Bootstraps and replaces the initial admin password, returning an admin principal.
async fn admin(f: &Fixture) -> Principal {
    let boot = f.auth.bootstrap().await.expect("bootstrap");
    let initial = boot.admin_password.expect("first start");
    let session = f.login("admin", &initial).await;
    let principal = f.principal(&session.token).await;
    f.auth
        .change_password(&principal, "admin", Some(&initial), STRONG, None)
        .await
        .expect("change");
    f.principal(&session.token).await
}

/// A fixture whose admin has bootstrapped and set the password [`STRONG`].
async fn with_admin() -> (Fixture, Principal) {
    let f = fixture().await;
    let admin = admin(&f).await;
    (f, admin)
}

async fn user(f: &Fixture, account: &str, role: Role) -> Principal {
    f.auth
        .add_user(account, account, role, STRONG, false)
        .await
        .expect("add user");
    let session = f.login(account, STRONG).await;
    f.principal(&session.token).await
}

#[tokio::test]
async fn bootstrap_creates_admin_and_services_once_and_never_recreates_admin() {
    let f = fixture().await;
    let boot = f.auth.bootstrap().await.expect("bootstrap");
    let password = boot.admin_password.clone().expect("a password is returned");
    assert!(password.len() >= MIN_PASSWORD_LENGTH);
    assert_eq!(boot.created, ["admin", "builder", "updater"]);
    let listed: Vec<_> = f
        .auth
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|a| (a.account, a.role))
        .collect();
    assert_eq!(
        listed,
        [
            ("admin".to_owned(), Role::Administrator),
            ("builder".to_owned(), Role::Builder),
            ("updater".to_owned(), Role::Updater)
        ]
    );
    let info = f.auth.account("admin").await.expect("admin");
    assert_eq!(
        info.details,
        AccountDetails::User {
            email: None,
            notifications: vec![],
            must_change_password: true
        }
    );

    assert_eq!(
        f.auth.bootstrap().await.expect("again"),
        Bootstrap::default()
    );
    // Deleted (even with no account left at all): not recreated.
    for account in ["admin", "builder", "updater"] {
        f.store.accounts().remove(account).await.expect("remove");
    }
    assert_eq!(
        f.auth.bootstrap().await.expect("again"),
        Bootstrap::default()
    );
    assert!(f.auth.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn wrong_password_and_unknown_account_are_the_same_error() {
    let (f, _) = with_admin().await;
    let session = f.login("admin", STRONG).await;
    assert!(!session.must_change_password);
    assert_eq!(session.expires_at - f.auth.now(), TimeDelta::hours(12));
    let wrong = f
        .auth
        .login("admin", "not the password", None)
        .await
        .expect_err("wrong");
    let unknown = f
        .auth
        .login("nobody", STRONG, None)
        .await
        .expect_err("unknown");
    let service = f
        .auth
        .login("builder", "", None)
        .await
        .expect_err("service");
    for error in [wrong, unknown, service] {
        assert_eq!(error.code(), "INVALID_CREDENTIALS");
        assert_eq!(error.to_string(), "invalid account or password");
    }
}

#[tokio::test]
async fn a_pending_password_change_allows_only_the_change() {
    let f = fixture().await;
    let initial = f
        .auth
        .bootstrap()
        .await
        .expect("bootstrap")
        .admin_password
        .expect("first start");
    let session = f.login("admin", &initial).await;
    assert!(session.must_change_password);
    let principal = f.principal(&session.token).await;
    let refused = principal
        .require(&[Role::Administrator])
        .expect_err("gated");
    assert_eq!(refused.code(), "PASSWORD_CHANGE_REQUIRED");

    let weak = f
        .auth
        .change_password(&principal, "admin", Some(&initial), "short", None)
        .await
        .expect_err("policy");
    assert_eq!(weak.code(), "WEAK_PASSWORD");
    assert_eq!(
        weak.to_string(),
        "the new password is too weak: it must be at least 12 characters long (it has 5)"
    );
    let no_old = f
        .auth
        .change_password(&principal, "admin", None, STRONG, None)
        .await
        .expect_err("old needed");
    assert_eq!(no_old.code(), "OLD_PASSWORD_REQUIRED");
    f.auth
        .change_password(&principal, "admin", Some(&initial), STRONG, None)
        .await
        .expect("change");
    let principal = f.principal(&session.token).await;
    principal
        .require(&[Role::Administrator])
        .expect("allowed now");
    assert_eq!(
        f.auth
            .login("admin", &initial, None)
            .await
            .expect_err("old")
            .code(),
        "INVALID_CREDENTIALS"
    );
}

#[tokio::test]
async fn sessions_expire() {
    let (f, _) = with_admin().await;
    let session = f.login("admin", STRONG).await;
    f.clock
        .advance(TimeDelta::hours(12) - TimeDelta::seconds(1));
    f.auth
        .authenticate(&session.token)
        .await
        .expect("still valid");
    f.clock.advance(TimeDelta::seconds(1));
    f.assert_refused(
        &session.token,
        "TOKEN_EXPIRED",
        "the session of `admin` has expired; log in again",
    )
    .await;
}

#[tokio::test]
async fn tampered_and_foreign_tokens_are_refused() {
    let (f, _) = with_admin().await;
    let session = f.login("admin", STRONG).await;
    let mut parts: Vec<String> = session.token.split('.').map(str::to_owned).collect();
    // Swap the payload for one naming another account: the signature no longer matches.
    let other = f.access_token("builder").await;
    parts[1] = other.split('.').nth(1).expect("payload").to_owned();
    let tampered = parts.join(".");
    let error = f.refused(&tampered).await;
    assert_eq!(error.code(), "UNAUTHENTICATED");
    for garbage in ["", "abc", "a.b.c"] {
        assert_eq!(
            f.refused(garbage).await.code(),
            "UNAUTHENTICATED",
            "{garbage}"
        );
    }
    // A token signed with another key.
    let dir = tempfile::tempdir().expect("temporary directory");
    let stranger = AuthService::new(
        f.store.clone(),
        JwtKey::load_or_create(dir.path().join("k")).expect("key"),
    );
    let error = stranger
        .authenticate(&session.token)
        .await
        .expect_err("foreign");
    assert_eq!(error.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn role_changes_and_deletions_take_effect_without_a_new_login() {
    let (f, admin) = with_admin().await;
    f.auth
        .add_user("dev", "Dev", Role::Developer, STRONG, false)
        .await
        .expect("add");
    let session = f.login("dev", STRONG).await;
    let before = f.principal(&session.token).await;
    assert_eq!(before.role, Role::Developer);
    let forbidden = before
        .require(&[Role::Administrator])
        .expect_err("not admin");
    assert_eq!(forbidden.code(), "FORBIDDEN");
    assert_eq!(
        forbidden.to_string(),
        "`dev` (Developer) may not do this: it needs Administrator"
    );

    f.auth
        .change_role(&admin, "dev", Role::Administrator)
        .await
        .expect("promote");
    let after = f.principal(&session.token).await;
    after.require(&[Role::Administrator]).expect("admin now");

    f.auth.remove_account("dev").await.expect("remove");
    f.assert_refused(
        &session.token,
        "UNAUTHENTICATED",
        "not authenticated: account `dev` no longer exists",
    )
    .await;
}

#[tokio::test]
async fn access_tokens_work_until_revoked() {
    let (f, _) = with_admin().await;
    f.add_east().await;
    for account in ["updater", "east"] {
        let first = f.access_token(account).await;
        let principal = f.principal(&first).await;
        assert_eq!(principal.account, account);
        assert!(!principal.must_change_password);
        f.auth.revoke_access_tokens(account).await.expect("revoke");
        let error = f.refused(&first).await;
        assert_eq!(error.code(), "TOKEN_REVOKED");
        let second = f.access_token(account).await;
        // A token issued after the revocation is valid.
        f.principal(&second).await;
    }
    let updater = f.access_token("updater").await;
    let principal = f.principal(&updater).await;
    assert_eq!(
        (principal.role, principal.kind),
        (Role::Updater, PrincipalKind::Service)
    );
    // Access tokens have no expiry.
    f.clock.advance(TimeDelta::days(400));
    f.auth.authenticate(&updater).await.expect("still valid");
    let error = f.auth.issue_access_token("admin").await.expect_err("user");
    assert_eq!(error.code(), "WRONG_ACCOUNT_KIND");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_though_its_account_was_just_read() {
    let (f, _) = with_admin().await;
    let token = f.access_token("updater").await;
    // Read twice: the second answer comes from the accounts kept in memory.
    f.principal(&token).await;
    f.principal(&token).await;
    f.auth
        .revoke_access_tokens("updater")
        .await
        .expect("revoke");
    assert_eq!(f.refused(&token).await.code(), "TOKEN_REVOKED");
}

#[tokio::test]
async fn a_revocation_written_by_another_replica_is_seen_within_the_accounts_lifetime() {
    let (f, _) = with_admin().await;
    let token = f.access_token("updater").await;
    f.principal(&token).await;
    revoke_as_another_replica(&f, "updater").await;
    // This server kept the account.
    f.principal(&token).await;
    f.clock.advance(super::account_cache::LIFETIME);
    assert_eq!(f.refused(&token).await.code(), "TOKEN_REVOKED");
}

/// Revokes `account`'s tokens as another server sharing the store does: in the store,
/// behind this server's back.
async fn revoke_as_another_replica(f: &Fixture, account: &str) {
    let mut record = f
        .store
        .accounts()
        .get(account)
        .await
        .expect("read")
        .expect("exists")
        .record;
    let AccountKind::Service { token_generation } = &mut record.kind else {
        panic!("a service account: {record:?}");
    };
    *token_generation += 1;
    f.store.accounts().put(record).await.expect("write");
}

#[tokio::test]
async fn editing_an_account_keeps_its_access_tokens_and_only_revoking_ends_them() {
    let (f, admin) = with_admin().await;
    f.add_east().await;
    let token = f.access_token("east").await;

    let mut record = f
        .store
        .accounts()
        .get("east")
        .await
        .expect("get")
        .expect("east")
        .record;
    record.name = "East (moved)".to_owned();
    if let AccountKind::Consumer { url, profile, .. } = &mut record.kind {
        *url = "https://east.example/v2".to_owned();
        *profile = "other".to_owned();
    }
    f.store.accounts().put(record).await.expect("edit");
    assert_eq!(
        f.auth.account("east").await.expect("east").details,
        AccountDetails::Consumer {
            profile: "other".to_owned(),
            url: "https://east.example/v2".to_owned()
        }
    );
    let principal = f
        .auth
        .authenticate(&token)
        .await
        .expect("still valid after the edit");
    assert_eq!(principal.account, "east");

    let updater = f.access_token("updater").await;
    f.auth
        .change_role(&admin, "updater", Role::Builder)
        .await
        .expect("role");
    let principal = f
        .auth
        .authenticate(&updater)
        .await
        .expect("still valid after the role change");
    assert_eq!(
        principal.role,
        Role::Builder,
        "the new role applies at once"
    );

    f.auth.revoke_access_tokens("east").await.expect("revoke");
    let error = f.refused(&token).await;
    assert_eq!(error.code(), "TOKEN_REVOKED");
    f.auth
        .authenticate(&updater)
        .await
        .expect("another account's token is untouched");
    let error = f
        .auth
        .revoke_access_tokens("admin")
        .await
        .expect_err("user");
    assert_eq!(error.code(), "WRONG_ACCOUNT_KIND");
}

#[tokio::test]
async fn must_change_password_is_the_record_field_not_a_notification() {
    let f = fixture().await;
    f.auth.bootstrap().await.expect("bootstrap");
    let stored = f
        .store
        .accounts()
        .get("admin")
        .await
        .expect("get")
        .expect("admin");
    assert!(matches!(
        stored.record.kind,
        AccountKind::User {
            must_change_password: true,
            ref notifications,
            ..
        } if notifications.is_empty()
    ));
}

#[tokio::test]
async fn a_developer_changes_only_their_own_password_and_never_a_role() {
    let (f, admin) = with_admin().await;
    let dev = user(&f, "dev", Role::Developer).await;
    user(&f, "other", Role::Developer).await;

    let error = f
        .auth
        .change_password(&dev, "other", None, "a brand new password", None)
        .await
        .expect_err("another's");
    assert_eq!(error.code(), "FORBIDDEN");
    let error = f
        .auth
        .change_password(
            &dev,
            "dev",
            Some("wrong password!"),
            "a brand new password",
            None,
        )
        .await
        .expect_err("wrong old");
    assert_eq!(error.code(), "INVALID_CREDENTIALS");
    for target in ["dev", "other"] {
        let error = f
            .auth
            .change_role(&dev, target, Role::Administrator)
            .await
            .expect_err("role");
        assert_eq!(error.code(), "FORBIDDEN");
    }
    assert_eq!(
        f.auth.account("dev").await.expect("dev").role,
        Role::Developer
    );
    f.auth
        .change_password(&dev, "dev", Some(STRONG), "a brand new password", None)
        .await
        .expect("own");
    f.auth
        .login("dev", "a brand new password", None)
        .await
        .expect("new password works");

    // The admin resets another's password without the old one; they must change it.
    f.auth
        .change_password(&admin, "other", None, "temporary password", None)
        .await
        .expect("reset");
    let session = f
        .auth
        .login("other", "temporary password", None)
        .await
        .expect("login");
    assert!(session.must_change_password);
}

#[tokio::test]
async fn the_last_administrator_stays_and_names_are_checked() {
    let (f, admin) = with_admin().await;
    assert_eq!(
        f.auth
            .remove_account("admin")
            .await
            .expect_err("last")
            .code(),
        "LAST_ADMINISTRATOR"
    );
    assert_eq!(
        f.auth
            .change_role(&admin, "admin", Role::Developer)
            .await
            .expect_err("last")
            .code(),
        "LAST_ADMINISTRATOR"
    );
    assert_eq!(
        f.auth
            .add_service_account("builder", "B", Role::Builder)
            .await
            .expect_err("taken")
            .code(),
        "ACCOUNT_EXISTS"
    );
    let error = f
        .auth
        .add_user("bad name", "x", Role::Developer, STRONG, true)
        .await
        .expect_err("name");
    assert_eq!(
        error.to_string(),
        "invalid account name `bad name`: use letters, digits, `.`, `_`, `-` and `@`"
    );
}

#[test]
fn the_key_file_is_private_created_once_and_short_keys_are_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("sub/jwt.key");
    let first = JwtKey::load_or_create(&path).expect("create");
    let second = JwtKey::load_or_create(&path).expect("load");
    assert_eq!(first.bytes(), second.bytes());
    assert!(first.bytes().len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let other = JwtKey::load_or_create(dir.path().join("other.key")).expect("create");
    assert_ne!(first.bytes(), other.bytes());
    let short = dir.path().join("short.key");
    std::fs::write(&short, b"too short").expect("write");
    let error = JwtKey::load_or_create(&short).expect_err("short");
    assert!(
        error
            .to_string()
            .contains("the key has 9 bytes, at least 32 are needed"),
        "{error}"
    );
}

#[test]
fn roles_round_trip_through_their_names() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        assert_eq!(Role::from_store(role.to_store()), role);
    }
    assert!("None".parse::<Role>().is_err());
}
