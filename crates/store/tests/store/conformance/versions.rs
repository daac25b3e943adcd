//! Version records: filters, numeric version order, no reuse, batches, archive and restore,
//! and what a client image was made from (content digest, settings stamp).

use vupdate_store::StoreError;
use vupdate_store::model::versions::{SettingsStamp, SourceRef, VersionQuery};

use super::Ctx;
use super::fixtures::{client, days, dev, service};

fn texts<R>(found: &[vupdate_store::Stored<R>], f: impl Fn(&R) -> String) -> Vec<String> {
    found.iter().map(|s| f(&s.record)).collect()
}

pub async fn query_filters_and_orders_newest_version_first(ctx: Ctx) {
    let versions = ctx.store.developer_versions();
    for (svc, version) in [
        ("api", "jetto-1.9.0"),
        ("api", "jetto-1.10.0"),
        ("api", "other-2.0.0"),
        ("web", "jetto-1.0.0"),
        ("api", "jetto-1.2"),
    ] {
        versions.add(dev(svc, version)).await.expect("add");
    }
    let all = versions
        .query(&VersionQuery::default())
        .await
        .expect("query");
    let key = |r: &vupdate_store::model::versions::DeveloperVersionRecord| {
        format!("{} {}", r.service, r.version)
    };
    assert_eq!(
        texts(&all, key),
        [
            "api other-2.0.0",
            "api jetto-1.10.0",
            "api jetto-1.9.0",
            "api jetto-1.2",
            "web jetto-1.0.0"
        ]
    );
    let jetto_api = VersionQuery {
        service: Some(service("api")),
        distribution: Some("jetto".into()),
        version: None,
    };
    assert_eq!(
        texts(&versions.query(&jetto_api).await.expect("query"), key),
        ["api jetto-1.10.0", "api jetto-1.9.0", "api jetto-1.2"]
    );
    let one = VersionQuery {
        version: Some("jetto-1.9.0".into()),
        ..VersionQuery::default()
    };
    assert_eq!(
        texts(&versions.query(&one).await.expect("query"), key),
        ["api jetto-1.9.0"]
    );
    let got = versions
        .get(&service("api"), &"jetto-1.10.0".parse().expect("version"))
        .await
        .expect("get");
    assert_eq!(got.expect("exists").record, dev("api", "jetto-1.10.0"));
    assert!(
        versions
            .get(&service("web"), &"jetto-1.9.0".parse().expect("v"))
            .await
            .expect("get")
            .is_none()
    );
}

pub async fn a_version_number_is_never_reused(ctx: Ctx) {
    let versions = ctx.store.developer_versions();
    versions.add(dev("api", "jetto-1.0.0")).await.expect("add");
    let mut other = dev("api", "jetto-1.0.0");
    other.image.digest = "sha256:different".into();
    let error = versions.add(other).await.expect_err("reused");
    assert!(
        matches!(&error, StoreError::Duplicate { collection: "developer_versions", key } if key == "api/jetto-1.0.0"),
        "{error}"
    );
    let kept = versions
        .get(&service("api"), &"jetto-1.0.0".parse().expect("v"))
        .await
        .expect("get");
    assert_eq!(
        kept.expect("kept").record.image.digest,
        "sha256:jetto-1.0.0"
    );
}

pub async fn add_many_is_all_or_nothing(ctx: Ctx) {
    let versions = ctx.store.client_versions();
    versions
        .add(client("api", "jetto-1.0.0_2"))
        .await
        .expect("add");
    let batch = vec![
        client("api", "jetto-1.0.0_1"),
        client("api", "jetto-1.0.0_2"),
        client("api", "jetto-1.0.0_3"),
    ];
    let error = versions
        .add_many(batch)
        .await
        .expect_err("the middle one exists");
    assert!(
        matches!(&error, StoreError::Duplicate { collection: "client_versions", key } if key == "api/jetto-1.0.0_2"),
        "{error}"
    );
    let left = versions
        .query(&VersionQuery::default())
        .await
        .expect("query");
    assert_eq!(
        texts(&left, |r| r.version.to_string()),
        ["jetto-1.0.0_2"],
        "nothing of the batch was written"
    );

    let written = versions
        .add_many(vec![
            client("api", "jetto-1.0.0_1"),
            client("api", "jetto-1.0.0_3"),
        ])
        .await
        .expect("a clean batch");
    assert_eq!(written.len(), 2);
    assert!(written[0].sequence < written[1].sequence);
    assert_eq!(
        versions
            .query(&VersionQuery::default())
            .await
            .expect("query")
            .len(),
        3
    );
}

pub async fn remove_and_restore_a_client_version(ctx: Ctx) {
    let versions = ctx.store.client_versions();
    let v: vupdate_core::version::ClientVersion = "jetto-2.0.0_1".parse().expect("v");
    let added = versions
        .add(client("api", "jetto-2.0.0_1"))
        .await
        .expect("add");
    assert!(versions.remove(&service("api"), &v).await.expect("remove"));
    assert!(
        !versions
            .remove(&service("api"), &v)
            .await
            .expect("remove again")
    );
    assert!(
        versions
            .get(&service("api"), &v)
            .await
            .expect("get")
            .is_none()
    );
    ctx.clock.advance(days(3));
    let restored = versions.restore(added.sequence).await.expect("restore");
    assert_eq!(restored.record, added.record);
    let history = versions
        .history(&service("api"), &v)
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|h| h.archive_time.is_some())
            .collect::<Vec<_>>(),
        [true, false]
    );
}

pub async fn sizes_beyond_32_bits_round_trip(ctx: Ctx) {
    // MongoDB stand-ins may answer 64-bit integers as Int32 when they fit; the store reads
    // either width, and values beyond 32 bits must survive.
    let mut record = dev("api", "jetto-3.0.0");
    record.image.size = 5 * (1 << 32) + 7;
    let versions = ctx.store.developer_versions();
    versions.add(record.clone()).await.expect("add");
    let got = versions
        .get(&service("api"), &record.version)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.record.image.size, record.image.size);
    assert!(got.sequence > 0);
}

pub async fn a_client_record_keeps_its_content_digest_and_settings_stamp(ctx: Ctx) {
    let versions = ctx.store.client_versions();
    let mut stamped = client("api", "jetto-1.0.0_1");
    stamped.content_digest = Some("c0ffee".repeat(10));
    stamped.settings = Some(SettingsStamp {
        hash: "sha256:5e771n95".to_owned(),
        commit: Some("a".repeat(40)),
        repositories: vec![SourceRef {
            name: "api-settings".to_owned(),
            url: "file:///srv/settings.git".to_owned(),
            branch: "main".to_owned(),
            commit: Some("b".repeat(40)),
        }],
    });
    versions.add(stamped.clone()).await.expect("add stamped");
    // A record as older builders made it sits beside it, without either field.
    versions
        .add(client("api", "jetto-1.0.0"))
        .await
        .expect("add plain");
    let found = versions
        .query(&VersionQuery {
            service: Some(service("api")),
            ..VersionQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(
        texts(&found, |r| r.version.to_string()),
        ["jetto-1.0.0_1", "jetto-1.0.0"]
    );
    assert_eq!(found[0].record, stamped);
    assert_eq!(found[1].record.content_digest, None);
    assert_eq!(found[1].record.settings, None);
    let reopened = ctx.reopen().await;
    let again = reopened
        .client_versions()
        .get(&service("api"), &stamped.version)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(again.record, stamped);
}
