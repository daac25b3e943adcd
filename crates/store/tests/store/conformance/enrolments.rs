//! Enrolment tokens: found by hash, spent once per use across processes sharing the
//! store, listed newest first with their uses, forgotten on revocation and after expiry.

use vupdate_store::model::enrolments::EnrolmentToken;

use super::Ctx;
use super::fixtures::at;

fn token(id: &str, uses: u32, issued: i64, expires: i64) -> EnrolmentToken {
    EnrolmentToken {
        id: id.to_owned(),
        hash: format!("{id}-hash"),
        services: vec!["api".to_owned()],
        issued_by: "admin".to_owned(),
        issued_at: at(issued),
        expires_at: at(expires),
        uses,
    }
}

pub async fn a_token_is_spent_once_per_use_and_revocation_forgets_it(ctx: Ctx) {
    let tokens = ctx.store.enrolment_tokens();
    let two = token("aaaa", 2, 0, 3600);
    tokens.add(two.clone()).await.expect("add");
    tokens.add(token("bbbb", 1, 10, 3600)).await.expect("add");
    assert!(
        tokens.add(two.clone()).await.is_err(),
        "a hash is stored once"
    );
    for (n, instance) in ["vm-1", "vm-2"].into_iter().enumerate() {
        let spent = tokens
            .spend(&two, instance, at(60))
            .await
            .expect("spend")
            .expect("a use is left");
        assert_eq!((spent.slot, spent.instance.as_str()), (n as u32, instance));
    }
    assert_eq!(
        tokens.spend(&two, "vm-3", at(60)).await.expect("spend"),
        None,
        "both uses are spent"
    );
    let entry = tokens.get("aaaa-hash").await.expect("get").expect("known");
    assert_eq!(entry.token, two);
    let enrolled: Vec<_> = entry.spent.iter().map(|u| u.instance.as_str()).collect();
    assert_eq!(enrolled, ["vm-1", "vm-2"]);
    let listed: Vec<_> = tokens
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|e| (e.token.id, e.spent.len()))
        .collect();
    assert_eq!(listed, [("bbbb".to_owned(), 0), ("aaaa".to_owned(), 2)]);

    assert!(tokens.revoke("aaaa").await.expect("revoke"));
    assert!(!tokens.revoke("aaaa").await.expect("revoke again"));
    assert_eq!(tokens.get("aaaa-hash").await.expect("get"), None);
    // A token issued again with the same hash starts with every use.
    tokens.add(two.clone()).await.expect("add again");
    assert_eq!(
        tokens
            .spend(&two, "vm-9", at(70))
            .await
            .expect("spend")
            .map(|u| u.slot),
        Some(0)
    );
}

pub async fn racing_spenders_on_two_connections_spend_each_use_once(ctx: Ctx) {
    let other = ctx.reopen().await;
    let three = token("cccc", 3, 0, 3600);
    ctx.store
        .enrolment_tokens()
        .add(three.clone())
        .await
        .expect("add");
    let spends = (0..8).map(|n| {
        let store = if n % 2 == 0 { &ctx.store } else { &other };
        let three = three.clone();
        async move {
            store
                .enrolment_tokens()
                .spend(&three, &format!("vm-{n}"), at(1))
                .await
                .expect("spend")
        }
    });
    let granted: Vec<_> = futures::future::join_all(spends)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut slots: Vec<_> = granted.iter().map(|u| u.slot).collect();
    slots.sort_unstable();
    assert_eq!(slots, [0, 1, 2], "{granted:?}");
    let entry = ctx
        .store
        .enrolment_tokens()
        .get("cccc-hash")
        .await
        .expect("get")
        .expect("known");
    assert_eq!(entry.spent.len(), 3);
}

pub async fn tokens_expired_before_a_time_are_forgotten_with_their_uses(ctx: Ctx) {
    let tokens = ctx.store.enrolment_tokens();
    let old = token("dddd", 1, 0, 100);
    tokens.add(old.clone()).await.expect("add");
    tokens.add(token("eeee", 1, 0, 200)).await.expect("add");
    tokens.spend(&old, "vm-1", at(50)).await.expect("spend");
    assert_eq!(tokens.forget_expired(at(150)).await.expect("forget"), 1);
    let left: Vec<_> = tokens
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.token.id)
        .collect();
    assert_eq!(left, ["eeee"]);
    // Its uses went with it: the same hash issued again has every use.
    tokens.add(old.clone()).await.expect("add again");
    let entry = tokens.get("dddd-hash").await.expect("get").expect("known");
    assert!(entry.spent.is_empty(), "{entry:?}");
}
