//! Accounts: uniqueness, listing by type, history, archive and restore, and the auth fields.

use vupdate_store::StoreError;
use vupdate_store::model::accounts::{AccountKind, AccountRole, AccountType};

use super::Ctx;
use super::fixtures::{consumer, days, service_account, user};

pub async fn add_get_and_list_by_type(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    accounts
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add bob");
    accounts
        .add(user("ann", AccountRole::Administrator))
        .await
        .expect("add ann");
    accounts
        .add(service_account("updater", AccountRole::Updater))
        .await
        .expect("add updater");
    accounts.add(consumer("kiosk")).await.expect("add kiosk");

    let ann = accounts.get("ann").await.expect("get").expect("ann exists");
    assert_eq!(ann.record, user("ann", AccountRole::Administrator));
    assert_eq!(ann.archive_time, None);
    assert_eq!(
        ann.modify_time,
        vupdate_store::Clock::now(ctx.clock.as_ref())
    );
    assert!(accounts.get("nobody").await.expect("get").is_none());

    let names = |list: Vec<vupdate_store::Stored<vupdate_store::model::accounts::Account>>| {
        list.into_iter()
            .map(|a| a.record.account)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(accounts.list(None).await.expect("list")),
        ["ann", "bob", "kiosk", "updater"]
    );
    assert_eq!(
        names(accounts.list(Some(AccountType::User)).await.expect("list")),
        ["ann", "bob"]
    );
    assert_eq!(
        names(
            accounts
                .list(Some(AccountType::Service))
                .await
                .expect("list")
        ),
        ["updater"]
    );
    let consumers = accounts
        .list(Some(AccountType::Consumer))
        .await
        .expect("list");
    assert!(
        matches!(&consumers[0].record.kind, AccountKind::Consumer { profile, .. } if profile == "common")
    );
}

pub async fn add_refuses_a_taken_name(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    accounts
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add bob");
    let error = accounts
        .add(service_account("bob", AccountRole::Builder))
        .await
        .expect_err("bob is taken");
    assert!(
        matches!(&error, StoreError::Duplicate { collection: "accounts", key } if key == "bob"),
        "{error}"
    );
    assert_eq!(
        accounts
            .get("bob")
            .await
            .expect("get")
            .expect("bob")
            .record
            .role,
        AccountRole::Developer
    );
}

pub async fn put_keeps_every_version_in_history(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    let first = accounts
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add");
    ctx.clock.advance(days(1));
    let second = accounts
        .put(user("bob", AccountRole::Administrator))
        .await
        .expect("promote");
    ctx.clock.advance(days(1));
    let mut renamed = user("bob", AccountRole::Administrator);
    renamed.name = "Robert".to_owned();
    let third = accounts.put(renamed.clone()).await.expect("rename");
    assert!(first.sequence < second.sequence && second.sequence < third.sequence);

    let history = accounts.history("bob").await.expect("history");
    let seen: Vec<_> = history
        .iter()
        .map(|v| (v.sequence, v.record.role, v.archive_time))
        .collect();
    assert_eq!(
        seen,
        [
            (
                first.sequence,
                AccountRole::Developer,
                Some(first.modify_time + days(1))
            ),
            (
                second.sequence,
                AccountRole::Administrator,
                Some(second.modify_time + days(1))
            ),
            (third.sequence, AccountRole::Administrator, None),
        ]
    );
    assert_eq!(history[2].record, renamed);
    assert_eq!(
        accounts.list(None).await.expect("list").len(),
        1,
        "one current version only"
    );
}

pub async fn remove_then_restore_within_seven_days(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    let added = accounts
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add");
    assert!(accounts.remove("bob").await.expect("remove"));
    assert!(accounts.get("bob").await.expect("get").is_none());
    let history = accounts.history("bob").await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].archive_time, Some(added.modify_time));

    ctx.clock.advance(days(6));
    let restored = accounts
        .restore(added.sequence)
        .await
        .expect("restore within the window");
    assert!(
        restored.sequence > added.sequence,
        "a restore is a new version"
    );
    assert_eq!(restored.record, added.record);
    assert_eq!(restored.archive_time, None);
    assert_eq!(
        accounts
            .get("bob")
            .await
            .expect("get")
            .expect("back")
            .sequence,
        restored.sequence
    );

    // Restoring an older version over a current one archives the current one.
    ctx.clock.advance(days(1) - chrono::TimeDelta::seconds(1));
    accounts
        .put(user("bob", AccountRole::Administrator))
        .await
        .expect("promote");
    let before = accounts.history("bob").await.expect("history").len();
    let rolled_back = accounts
        .restore(added.sequence)
        .await
        .expect("still within 7 days of the delete");
    assert_eq!(rolled_back.record.role, AccountRole::Developer);
    assert_eq!(
        accounts.history("bob").await.expect("history").len(),
        before + 1
    );
}

pub async fn restore_is_refused_after_seven_days(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    let added = accounts
        .add(user("bob", AccountRole::Developer))
        .await
        .expect("add");
    accounts.remove("bob").await.expect("remove");
    ctx.clock.advance(days(7) + chrono::TimeDelta::seconds(1));
    let error = accounts
        .restore(added.sequence)
        .await
        .expect_err("too late");
    assert!(
        matches!(error, StoreError::RestoreExpired { collection: "accounts", sequence, window_days: 7, .. } if sequence == added.sequence),
        "{error}"
    );
    assert!(accounts.get("bob").await.expect("get").is_none());
    let error = accounts
        .restore(added.sequence + 1000)
        .await
        .expect_err("no such version");
    assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
    let error = accounts
        .restore(added.sequence)
        .await
        .expect_err("still too late");
    assert!(
        error.to_string().contains("can no longer be restored"),
        "{error}"
    );
}

pub async fn removing_a_missing_account_writes_nothing(ctx: Ctx) {
    // The original upserted a stub when deleting a missing document.
    let accounts = ctx.store.accounts();
    assert!(!accounts.remove("ghost").await.expect("remove"));
    assert!(accounts.history("ghost").await.expect("history").is_empty());
    assert!(accounts.list(None).await.expect("list").is_empty());
}

pub async fn a_password_that_is_not_an_argon2_hash_is_refused(ctx: Ctx) {
    let mut account = user("bob", AccountRole::Developer);
    if let AccountKind::User { password_hash, .. } = &mut account.kind {
        *password_hash = "plaintext".to_owned();
    }
    let error = ctx
        .store
        .accounts()
        .add(account)
        .await
        .expect_err("not a hash");
    assert!(
        matches!(
            error,
            StoreError::Invalid {
                collection: "accounts",
                index: 0,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("argon2"), "{error}");
    assert!(
        ctx.store
            .accounts()
            .list(None)
            .await
            .expect("list")
            .is_empty()
    );
}

pub async fn the_auth_fields_round_trip(ctx: Ctx) {
    let accounts = ctx.store.accounts();
    let mut bob = user("bob", AccountRole::Developer);
    if let AccountKind::User {
        must_change_password,
        ..
    } = &mut bob.kind
    {
        *must_change_password = true;
    }
    let mut updater = service_account("updater", AccountRole::Updater);
    updater.kind = AccountKind::Service {
        token_generation: 3,
    };
    let mut kiosk = consumer("kiosk");
    if let AccountKind::Consumer {
        token_generation, ..
    } = &mut kiosk.kind
    {
        // Beyond 32 bits, to catch a narrowing on the way through a backend.
        *token_generation = (1 << 40) + 5;
    }
    for account in [&bob, &updater, &kiosk] {
        accounts.add(account.clone()).await.expect("add");
        let stored = accounts
            .get(&account.account)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(&stored.record, account);
    }
    assert_eq!(kiosk.kind.token_generation(), Some((1 << 40) + 5));
    assert_eq!(bob.kind.token_generation(), None);

    // Each field changes on its own and the change is kept.
    if let AccountKind::User {
        must_change_password,
        ..
    } = &mut bob.kind
    {
        *must_change_password = false;
    }
    updater.kind = AccountKind::Service {
        token_generation: 4,
    };
    for account in [&bob, &updater] {
        accounts.put(account.clone()).await.expect("put");
        let stored = accounts
            .get(&account.account)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(&stored.record, account);
    }
    let history = accounts.history("updater").await.expect("history");
    let generations: Vec<_> = history
        .iter()
        .map(|v| v.record.kind.token_generation())
        .collect();
    assert_eq!(generations, [Some(3), Some(4)]);
}
