//! Named leases: one holder at a time, a fencing token that grows on every take-over, and
//! a fence that refuses a holder who lost the lease.

use std::time::Duration;

use chrono::TimeDelta;
use vupdate_store::StoreError;

use super::Ctx;

const TTL: Duration = Duration::from_secs(5);

pub async fn one_holder_at_a_time_and_the_token_grows_on_take_over(ctx: Ctx) {
    let leases = ctx.store.leases();
    assert_eq!(leases.current("distribution").await.expect("read"), None);
    let a = leases
        .take("distribution", "a", TTL)
        .await
        .expect("take")
        .expect("a free lease is taken");
    assert_eq!((a.holder.as_str(), a.token), ("a", 1));
    assert_eq!(a.expires, ctx.store.now() + TimeDelta::seconds(5));
    assert_eq!(
        leases.take("distribution", "b", TTL).await.expect("take"),
        None,
        "a live lease is not taken"
    );
    assert_eq!(
        leases
            .take("other", "b", TTL)
            .await
            .expect("take")
            .map(|l| l.token),
        Some(1),
        "each name is its own lease"
    );
    leases.check(&a).await.expect("the holder passes the fence");

    // `a` stops renewing (killed or paused): at its expiry `b` takes over.
    ctx.clock.advance(TimeDelta::seconds(5));
    let b = leases
        .take("distribution", "b", TTL)
        .await
        .expect("take")
        .expect("an expired lease is taken");
    assert_eq!((b.holder.as_str(), b.token), ("b", 2));
    assert_eq!(
        leases.current("distribution").await.expect("read"),
        Some(b.clone())
    );

    // The old holder wakes up: it can neither renew nor write.
    assert_eq!(leases.renew(&a, TTL).await.expect("renew"), None);
    let refused = leases
        .check(&a)
        .await
        .expect_err("the old holder is fenced off");
    assert!(
        matches!(&refused, StoreError::LeaseLost { token: 1, .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("`b` holds it with token 2"),
        "{refused}"
    );
    leases
        .check(&b)
        .await
        .expect("the new holder passes the fence");
    assert!(
        !leases.release(&a).await.expect("release"),
        "a lost lease is not released"
    );
    assert_eq!(leases.current("distribution").await.expect("read"), Some(b));
}

pub async fn renewal_keeps_the_token_and_release_frees_at_once(ctx: Ctx) {
    let leases = ctx.store.leases();
    let a = leases
        .take("distribution", "a", TTL)
        .await
        .expect("take")
        .expect("taken");
    for _ in 0..3 {
        ctx.clock.advance(TimeDelta::milliseconds(1500));
        let renewed = leases
            .renew(&a, TTL)
            .await
            .expect("renew")
            .expect("renewed");
        assert_eq!(renewed.token, a.token);
        assert_eq!(renewed.expires, ctx.store.now() + TimeDelta::seconds(5));
    }
    // 4.5 s after the take, 3 s after the last renewal: still held.
    ctx.clock.advance(TimeDelta::seconds(3));
    assert_eq!(
        leases.take("distribution", "b", TTL).await.expect("take"),
        None
    );
    // A renewal past the expiry still succeeds while nobody took the lease over.
    ctx.clock.advance(TimeDelta::seconds(10));
    let late = leases
        .renew(&a, TTL)
        .await
        .expect("renew")
        .expect("still a's");
    assert_eq!(late.token, a.token);

    assert!(leases.release(&late).await.expect("release"));
    let fence = leases.check(&late).await;
    assert!(
        matches!(fence, Err(StoreError::LeaseLost { .. })),
        "{fence:?}"
    );
    let b = leases
        .take("distribution", "b", TTL)
        .await
        .expect("take")
        .expect("a released lease is taken without waiting");
    assert_eq!(b.token, 2);
}

pub async fn racing_takers_on_two_connections_get_one_holder(ctx: Ctx) {
    let other = ctx.reopen().await;
    let (mine, theirs) = (ctx.store.leases(), other.leases());
    let mut last_token = 0;
    for round in 0..10 {
        let (first, second) = tokio::join!(
            mine.take("distribution", "a", TTL),
            theirs.take("distribution", "b", TTL),
        );
        let granted: Vec<_> = [first.expect("take a"), second.expect("take b")]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(granted.len(), 1, "round {round}: {granted:?}");
        assert_eq!(granted[0].token, last_token + 1, "round {round}");
        last_token = granted[0].token;
        assert_eq!(
            mine.current("distribution").await.expect("read"),
            Some(granted[0].clone())
        );
        ctx.clock.advance(TimeDelta::seconds(5));
    }
}

pub async fn a_holder_past_its_expiry_is_fenced_off_until_it_renews(ctx: Ctx) {
    // A holder paused past its lease's end, before anyone took it over: its writes are
    // refused (another replica may be taking over right now) until its keeper renews.
    let leases = ctx.store.leases();
    let a = leases
        .take("distribution", "a", TTL)
        .await
        .expect("take")
        .expect("taken");
    ctx.clock.advance(TimeDelta::seconds(5));
    let refused = leases.check(&a).await;
    assert!(
        matches!(&refused, Err(StoreError::LeaseLost { token: 1, now, .. }) if now.contains("`a` held it with token 1 until") && now.contains("nobody holds it since")),
        "{refused:?}"
    );
    let renewed = leases
        .renew(&a, TTL)
        .await
        .expect("renew")
        .expect("nobody took it over");
    leases
        .check(&renewed)
        .await
        .expect("the renewed holder passes the fence");
}
