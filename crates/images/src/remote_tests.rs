//! Two image stores (two replicas' data directories) on one S3 bucket: moto's server, or
//! `VUPDATE_TEST_S3_URL`. Skipped, loudly, where no stand-in is installed (failing in CI).

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStoreExt as _, PutPayload};
use sha2::Digest as _;
use vupdate_test_support::servers;

use super::tests::{dev, read_all, service};
use super::*;

const ACCESS: &str = "vupdate-test";

/// A fresh bucket on the S3 stand-in, or `None` (said why) where there is none.
async fn bucket(name: &str) -> Option<(String, String)> {
    let url = match servers::s3() {
        Ok((url, _)) => url,
        Err(why) if servers::required() => panic!("no S3 stand-in: {why}"),
        Err(why) => {
            servers::announce(&format!(
                "\n*** SKIPPING an S3 image store test: {why} ***\n"
            ));
            return None;
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bucket = format!("{name}-{}", std::process::id());
    let made = reqwest::Client::new()
        .put(format!("{url}/{bucket}"))
        .send()
        .await
        .expect("create the bucket");
    assert!(
        made.status().is_success(),
        "create bucket: {}",
        made.status()
    );
    Some((url, bucket))
}

fn settings(url: &str, bucket: &str) -> S3Settings {
    S3Settings {
        bucket: bucket.to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(url.to_owned()),
        prefix: "acme/".to_owned(),
        access_key_id: ACCESS.to_owned(),
        secret_access_key: "secret".to_owned(),
        session_token: None,
    }
}

async fn replica(dir: &tempfile::TempDir, settings: &S3Settings) -> ImageStore {
    ImageStore::open_with(
        dir.path(),
        ImageStoreOptions {
            max_image_bytes: None,
            remote: Some(RemoteImages::s3(settings).expect("the bucket's settings")),
        },
    )
    .await
    .expect("open")
}

/// Two replicas' image stores (their own directories) on `bucket`.
async fn two_replicas(
    settings: &S3Settings,
) -> (
    (tempfile::TempDir, ImageStore),
    (tempfile::TempDir, ImageStore),
) {
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (a, b) = (
        replica(&dir_a, settings).await,
        replica(&dir_b, settings).await,
    );
    ((dir_a, a), (dir_b, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_stored_through_one_replica_is_served_by_the_other() {
    let Some((url, bucket)) = bucket("shared").await else {
        return;
    };
    let settings = settings(&url, &bucket);
    let ((_dir_a, a), (_dir_b, b)) = two_replicas(&settings).await;
    let svc = service("api");
    // Larger than one multipart part (5 MiB), so the upload takes two.
    let bytes: Vec<u8> = (0..6 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let stored = a
        .put_bytes(&svc, &dev("acme-1.0.0"), &bytes)
        .await
        .expect("store through a");
    assert_eq!(
        stored.digest,
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
    );

    assert_eq!(
        b.info(&svc, &dev("acme-1.0.0")).await.expect("info"),
        Some(stored.clone())
    );
    let served = read_all(
        b.open_image(&svc, &dev("acme-1.0.0"))
            .await
            .expect("open through b"),
    )
    .await;
    assert!(served == bytes, "b serves a's bytes");
    let range = read_all(
        b.open_range(&svc, &dev("acme-1.0.0"), (10, 19))
            .await
            .expect("range through b"),
    )
    .await;
    assert_eq!(range, bytes[10..20]);
    b.verify(&svc, &dev("acme-1.0.0"))
        .await
        .expect("b's cached copy verifies");

    // Versions stay immutable across replicas.
    let again = b.begin_upload(&svc, &dev("acme-1.0.0"), None).await;
    assert!(
        matches!(again, Err(ImageError::VersionExists { .. })),
        "{again:?}"
    );
    let mut late = a
        .begin_upload(&svc, &dev("acme-1.0.1"), None)
        .await
        .expect("begin");
    late.write(b"first").await.expect("write");
    b.put_bytes(&svc, &dev("acme-1.0.1"), b"second")
        .await
        .expect("b stores 1.0.1 first");
    let refused = late.finish().await;
    assert!(
        matches!(refused, Err(ImageError::VersionExists { .. })),
        "the ref is created once: {refused:?}"
    );
    let kept = read_all(a.open_image(&svc, &dev("acme-1.0.1")).await.expect("open")).await;
    assert_eq!(kept, b"second");

    let listed: Vec<String> = a
        .list(ImageKind::Developer, &svc)
        .await
        .expect("list")
        .into_iter()
        .map(|(v, _)| v.to_string())
        .collect();
    assert_eq!(listed, ["acme-1.0.0", "acme-1.0.1"]);
    b.remove(&svc, &dev("acme-1.0.0"))
        .await
        .expect("remove through b");
    assert_eq!(a.info(&svc, &dev("acme-1.0.0")).await.expect("info"), None);
    // a's cache drops the blob no ref names any more.
    let report = a.gc().await.expect("gc");
    assert_eq!(report.removed, [stored.digest]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_changed_in_the_bucket_is_refused_not_served() {
    let Some((url, bucket)) = bucket("tampered").await else {
        return;
    };
    let settings = settings(&url, &bucket);
    let ((_dir_a, a), (_dir_b, b)) = two_replicas(&settings).await;
    let svc = service("api");
    let stored = a
        .put_bytes(&svc, &dev("acme-2.0.0"), b"the real image")
        .await
        .expect("store");
    let raw = AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_endpoint(&url)
        .with_allow_http(true)
        .with_access_key_id(ACCESS)
        .with_secret_access_key("secret")
        .build()
        .expect("client");
    let key = format!("acme/blobs/sha256/{}/{}", &stored.hex()[..2], stored.hex());
    Arc::new(raw)
        .put(
            &key.as_str().into(),
            PutPayload::from_static(b"the fake image"),
        )
        .await
        .expect("tamper");
    let refused = b.open_image(&svc, &dev("acme-2.0.0")).await;
    assert!(
        matches!(refused, Err(ImageError::Corrupt { .. })),
        "{refused:?}"
    );
    assert!(
        !b.blob_path(&stored).exists(),
        "nothing unverified enters the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_blobs_leave_the_bucket_only_after_the_grace_period() {
    let Some((url, bucket)) = bucket("collect").await else {
        return;
    };
    let settings = settings(&url, &bucket);
    let ((_dir_a, a), (dir_b, b)) = two_replicas(&settings).await;
    let svc = service("api");
    let kept = a
        .put_bytes(&svc, &dev("acme-1.0.0"), b"still desired")
        .await
        .expect("store");
    let dropped = a
        .put_bytes(&svc, &dev("acme-0.9.0"), b"removed since")
        .await
        .expect("store");
    a.remove(&svc, &dev("acme-0.9.0")).await.expect("remove");
    // An upload between its blob and its ref: the blob is in the bucket, no ref names it.
    let remote = RemoteImages::s3(&settings).expect("settings");
    let in_flight = dir_b.path().join("in-flight");
    std::fs::write(&in_flight, b"uploading").expect("write");
    let in_flight_info = ImageInfo {
        digest: format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"uploading"))),
        size: 9,
    };
    remote
        .put_blob(&in_flight, &in_flight_info)
        .await
        .expect("the upload's blob");

    let hour = std::time::Duration::from_secs(3600);
    let held = || async { true };
    let young = b.collect_remote_blobs(hour, held).await.expect("collect");
    assert!(young.is_empty(), "within the grace period: {young:?}");
    // A replica that lost the lease meanwhile deletes nothing.
    let lost = b
        .collect_remote_blobs(std::time::Duration::ZERO, || async { false })
        .await
        .expect("collect");
    assert!(lost.is_empty(), "fenced off: {lost:?}");
    let mut collected = b
        .collect_remote_blobs(std::time::Duration::ZERO, held)
        .await
        .expect("collect");
    collected.sort();
    let mut expected = vec![dropped.digest.clone(), in_flight_info.digest.clone()];
    expected.sort();
    assert_eq!(collected, expected, "every unreferenced blob, none other");
    let served = read_all(b.open_image(&svc, &dev("acme-1.0.0")).await.expect("open")).await;
    assert_eq!(served, b"still desired", "{kept:?} stays");

    // The same content stored again under a new version brings its blob back.
    a.put_bytes(&svc, &dev("acme-0.9.1"), b"removed since")
        .await
        .expect("store again");
    let again = read_all(
        b.open_image(&svc, &dev("acme-0.9.1"))
            .await
            .expect("open through b"),
    )
    .await;
    assert_eq!(again, b"removed since");
}
