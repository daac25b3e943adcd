//! Sealed secrets: set replaces by name, listed by name, removed once.

use vupdate_store::model::secrets::SealedSecret;

use super::Ctx;
use super::fixtures::at;

fn sealed(name: &str, sealed: &str, seconds: i64) -> SealedSecret {
    SealedSecret {
        name: name.to_owned(),
        set_at: at(seconds),
        sealed: sealed.to_owned(),
    }
}

pub async fn a_secret_is_replaced_by_name_listed_and_removed(ctx: Ctx) {
    let secrets = ctx.store.secrets();
    secrets
        .set(sealed("jetto-token", "AAAA", 1))
        .await
        .expect("set");
    secrets
        .set(sealed("acme-token", "BBBB", 2))
        .await
        .expect("set");
    secrets
        .set(sealed("jetto-token", "CCCC", 3))
        .await
        .expect("set again");
    assert_eq!(
        secrets.list().await.expect("list"),
        [
            sealed("acme-token", "BBBB", 2),
            sealed("jetto-token", "CCCC", 3)
        ]
    );
    assert!(secrets.remove("jetto-token").await.expect("remove"));
    assert!(!secrets.remove("jetto-token").await.expect("remove again"));
    assert_eq!(
        secrets.list().await.expect("list"),
        [sealed("acme-token", "BBBB", 2)]
    );
    let debug = format!("{:?}", sealed("x", "DDDD", 0));
    assert!(!debug.contains("DDDD"), "{debug}");
}
