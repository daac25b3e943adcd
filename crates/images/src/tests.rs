//! Image store tests on real files in temp dirs.

use std::collections::BTreeSet;
use std::path::Path;

use sha2::Digest as _;
use tokio::io::AsyncReadExt as _;
use vupdate_core::service::ServiceName;

use super::*;

pub(super) fn service(name: &str) -> ServiceName {
    name.parse().expect("test service names are valid")
}

pub(super) fn dev(text: &str) -> ImageVersion {
    ImageVersion::parse(ImageKind::Developer, text).expect("test versions are valid")
}

fn client(text: &str) -> ImageVersion {
    ImageVersion::parse(ImageKind::Client, text).expect("test versions are valid")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Deterministic, non-repeating test content.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

pub(super) async fn read_all(reader: ImageReader) -> Vec<u8> {
    let mut out = Vec::new();
    reader
        .into_reader()
        .read_to_end(&mut out)
        .await
        .expect("reading an open image");
    out
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What is left in the store's `tmp` directory.
fn tmp_files(root: &Path) -> Vec<String> {
    files_in(&root.join("tmp"))
}

/// A temp dir with an image store opened at its root.
async fn fixture() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).await.expect("open");
    (dir, store)
}

/// Uploads `bytes` in `chunk`-sized writes and returns what `finish` says.
async fn upload_all(
    store: &ImageStore,
    svc: &ServiceName,
    v: &ImageVersion,
    expected: Option<&str>,
    bytes: &[u8],
    chunk: usize,
) -> Result<ImageInfo, ImageError> {
    let mut writer = store.begin_upload(svc, v, expected).await.expect("begin");
    for part in bytes.chunks(chunk) {
        writer.write(part).await.expect("write");
    }
    writer.finish().await
}

/// The whole content of a stored image.
async fn read_image(store: &ImageStore, svc: &ServiceName, v: &ImageVersion) -> Vec<u8> {
    read_all(store.open_image(svc, v).await.expect("open")).await
}

async fn assert_not_found(store: &ImageStore, svc: &ServiceName, v: &ImageVersion) {
    assert!(matches!(
        store.open_image(svc, v).await,
        Err(ImageError::NotFound { .. })
    ));
}

/// The listed versions of one kind of one service, in list order.
async fn listed(store: &ImageStore, kind: ImageKind, svc: &ServiceName) -> Vec<String> {
    store
        .list(kind, svc)
        .await
        .expect("list")
        .into_iter()
        .map(|(v, _)| v.to_string())
        .collect()
}

fn blob_count(root: &Path) -> usize {
    let blobs = root.join("blobs/sha256");
    std::fs::read_dir(&blobs)
        .expect("blobs dir")
        .map(|prefix| files_in(&prefix.expect("entry").path()).len())
        .sum()
}

#[tokio::test]
async fn upload_and_download_round_trip_with_digest() {
    let (dir, store) = fixture().await;
    let svc = service("payment-api");
    let v = dev("jetto-1.2.3");
    let bytes = content(3 * 1024 * 1024 + 17, 1);

    let info = upload_all(&store, &svc, &v, Some(&sha256(&bytes)), &bytes, 100_000)
        .await
        .expect("finish");
    assert_eq!(info.digest, sha256(&bytes));
    assert_eq!(info.size, bytes.len() as u64);
    assert!(store.blob_path(&info).is_file());

    let reader = store.open_image(&svc, &v).await.expect("open image");
    assert_eq!(reader.info, info);
    assert_eq!(read_all(reader).await, bytes);
    assert_eq!(
        store.info(&svc, &v).await.expect("info"),
        Some(info.clone())
    );
    assert_eq!(store.verify(&svc, &v).await.expect("verify"), info);
    // Kinds are separate name spaces.
    assert_not_found(&store, &svc, &client("jetto-1.2.3")).await;
    // Nothing is left in tmp.
    assert!(tmp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn wrong_expected_digest_is_refused_and_nothing_is_visible() {
    let (dir, store) = fixture().await;
    let svc = service("builder");
    let v = dev("jetto-1.0.0");
    let wrong = sha256(b"something else");
    let bytes = b"the real bytes";
    let err = upload_all(&store, &svc, &v, Some(&wrong), bytes, bytes.len())
        .await
        .expect_err("digest differs");
    match &err {
        ImageError::UploadDigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &sha256(b"the real bytes"));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("builder") && err.to_string().contains("jetto-1.0.0"));
    assert_not_found(&store, &svc, &v).await;
    assert!(listed(&store, ImageKind::Developer, &svc).await.is_empty());
    assert_eq!(blob_count(dir.path()), 0);
    assert!(tmp_files(dir.path()).is_empty());
    // The version is still free.
    store
        .put_bytes(&svc, &v, b"the real bytes")
        .await
        .expect("retry");
}

#[tokio::test]
async fn malformed_expected_digest_is_refused_up_front() {
    let (_dir, store) = fixture().await;
    for bad in ["", "sha256:abc", "md5:00", &"g".repeat(64)] {
        let result = store
            .begin_upload(&service("a"), &dev("d-1.0"), Some(bad))
            .await;
        assert!(
            matches!(result, Err(ImageError::BadExpectedDigest { .. })),
            "{bad}"
        );
    }
    // Upper case and bare hex are accepted.
    let good = sha256(b"x")
        .trim_start_matches("sha256:")
        .to_ascii_uppercase();
    upload_all(&store, &service("a"), &dev("d-1.0"), Some(&good), b"x", 1)
        .await
        .expect("finish");
}

#[tokio::test]
async fn dropped_upload_is_invisible_and_tmp_is_cleaned_at_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = service("svc");
    let v = dev("jetto-2.0");
    {
        let store = ImageStore::open(dir.path()).await.expect("open");
        // A dropped upload removes its temp file itself...
        let mut dropped = store.begin_upload(&svc, &v, None).await.expect("begin");
        dropped.write(b"half an image").await.expect("write");
        drop(dropped);
        assert!(tmp_files(dir.path()).is_empty());
        // ...while a killed process runs no destructor: simulate it with forget.
        let mut killed = store
            .begin_upload(&svc, &v, None)
            .await
            .expect("begin again");
        killed.write(b"half an image").await.expect("write");
        std::mem::forget(killed);
        assert_eq!(tmp_files(dir.path()).len(), 1);
        assert_not_found(&store, &svc, &v).await;
        assert!(listed(&store, ImageKind::Developer, &svc).await.is_empty());
    }
    let store = ImageStore::open(dir.path()).await.expect("reopen");
    assert!(tmp_files(dir.path()).is_empty());
    assert_eq!(blob_count(dir.path()), 0);
    store
        .put_bytes(&svc, &v, b"whole image")
        .await
        .expect("the version is free");
}

#[tokio::test]
async fn existing_version_is_refused_before_storing_and_at_finish() {
    let (dir, store) = fixture().await;
    let svc = service("svc");
    let v = dev("jetto-1.0.0");
    let first = store.put_bytes(&svc, &v, b"first").await.expect("first");

    // Before any byte: refused at begin.
    let err = store.begin_upload(&svc, &v, None).await.expect_err("taken");
    assert!(matches!(err, ImageError::VersionExists { .. }), "{err}");
    assert!(err.to_string().contains("jetto-1.0.0"), "{err}");
    assert!(tmp_files(dir.path()).is_empty());

    // Race: two uploads of a free version from two store handles (two processes' view):
    // the second to finish is refused and the first one's image is untouched.
    let v2 = dev("jetto-1.0.1");
    let other = ImageStore::open(dir.path()).await.expect("second handle");
    let mut a = store.begin_upload(&svc, &v2, None).await.expect("a");
    let mut b = other.begin_upload(&svc, &v2, None).await.expect("b");
    a.write(b"from a").await.expect("write a");
    b.write(b"from b").await.expect("write b");
    let a_info = a.finish().await.expect("a wins");
    let err = b.finish().await.expect_err("b loses");
    assert!(matches!(err, ImageError::VersionExists { .. }), "{err}");
    assert_eq!(read_image(&store, &svc, &v2).await, b"from a");
    assert_eq!(store.verify(&svc, &v2).await.expect("verify"), a_info);
    assert_eq!(read_image(&store, &svc, &v).await, b"first");
    assert_eq!(store.info(&svc, &v).await.expect("info"), Some(first));
    // b's bytes never became a blob: only `first` and `from a` are stored.
    assert_eq!(blob_count(dir.path()), 2);
    assert!(tmp_files(dir.path()).is_empty());
    assert!(store.gc().await.expect("gc").removed.is_empty());

    // Within one handle a concurrent upload of the same version is refused at begin.
    let v3 = dev("jetto-1.0.2");
    let held = store
        .begin_upload(&svc, &v3, None)
        .await
        .expect("first upload");
    assert!(matches!(
        store.begin_upload(&svc, &v3, None).await,
        Err(ImageError::UploadInProgress { .. })
    ));
    drop(held);
    store
        .begin_upload(&svc, &v3, None)
        .await
        .expect("free again after drop");
}

#[test]
fn publishing_a_ref_never_replaces_an_existing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let target = dir.path().join("refs/svc/v.json");
    assert!(matches!(
        fsutil::publish_new(&tmp, &target, b"first"),
        Ok(fsutil::Published::Done)
    ));
    assert!(matches!(
        fsutil::publish_new(&tmp, &target, b"second"),
        Ok(fsutil::Published::Exists)
    ));
    assert_eq!(std::fs::read(&target).expect("read"), b"first");
    assert!(files_in(&tmp).is_empty());
}

#[tokio::test]
async fn identical_content_shares_one_blob_until_both_refs_go() {
    let (dir, store) = fixture().await;
    let svc = service("svc");
    let (v1, v2) = (dev("jetto-1.0"), dev("jetto-1.1"));
    let bytes = content(10_000, 7);
    let i1 = store.put_bytes(&svc, &v1, &bytes).await.expect("v1");
    let i2 = store.put_bytes(&svc, &v2, &bytes).await.expect("v2");
    assert_eq!(i1, i2);
    assert_eq!(blob_count(dir.path()), 1);

    store.remove(&svc, &v1).await.expect("remove v1");
    let report = store.gc().await.expect("gc");
    assert!(report.removed.is_empty());
    assert_eq!(report.kept, 1);
    assert_eq!(read_image(&store, &svc, &v2).await, bytes);

    store.remove(&svc, &v2).await.expect("remove v2");
    let report = store.gc().await.expect("gc");
    assert_eq!(report.removed, vec![i1.digest.clone()]);
    assert_eq!(report.freed_bytes, bytes.len() as u64);
    assert_eq!(blob_count(dir.path()), 0);
    assert!(matches!(
        store.remove(&svc, &v2).await,
        Err(ImageError::NotFound { .. })
    ));
}

#[tokio::test]
async fn range_reads() {
    let (_dir, store) = fixture().await;
    let svc = service("svc");
    let v = client("jetto-1.0_2");
    let bytes = content(1000, 3);
    store.put_bytes(&svc, &v, &bytes).await.expect("put");

    let ok: &[(u64, u64)] = &[(0, 0), (999, 999), (100, 499), (0, 999)];
    for &(start, end) in ok {
        let reader = store
            .open_range(&svc, &v, (start, end))
            .await
            .expect("range");
        assert_eq!((reader.start, reader.len), (start, end - start + 1));
        assert_eq!(
            read_all(reader).await,
            &bytes[start as usize..=end as usize]
        );
    }
    let bad: &[(u64, u64)] = &[(1000, 1000), (0, 1000), (500, 499), (u64::MAX, u64::MAX)];
    for &(start, end) in bad {
        match store.open_range(&svc, &v, (start, end)).await {
            Err(ImageError::RangeNotSatisfiable { size, .. }) => assert_eq!(size, 1000),
            other => panic!("({start}, {end}): expected 416, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn list_is_in_version_order_and_retain_keeps_newest_and_kept() {
    let (_dir, store) = fixture().await;
    let svc = service("svc");
    // Inserted out of order; 1.10 is newer than 1.9 (numeric, not lexical).
    let names = [
        "jetto-1.10",
        "jetto-1.2",
        "jetto-1.9",
        "jetto-1.1",
        "jetto-1.3",
        "jetto-1.0",
    ];
    for (i, name) in names.iter().enumerate() {
        store
            .put_bytes(&svc, &dev(name), &content(100, i as u8))
            .await
            .expect("put");
    }
    // Another service and kind are untouched by everything below.
    store
        .put_bytes(&service("other"), &dev("jetto-1.0"), b"o")
        .await
        .expect("other");
    store
        .put_bytes(&svc, &client("jetto-1.0_1"), b"c")
        .await
        .expect("client");

    assert_eq!(
        listed(&store, ImageKind::Developer, &svc).await,
        [
            "jetto-1.0",
            "jetto-1.1",
            "jetto-1.2",
            "jetto-1.3",
            "jetto-1.9",
            "jetto-1.10"
        ]
    );

    let keep = BTreeSet::from([dev("jetto-1.1"), dev("jetto-1.9")]);
    let removed = store
        .retain(ImageKind::Developer, &svc, 2, &keep)
        .await
        .expect("retain");
    assert_eq!(
        removed,
        vec![dev("jetto-1.0"), dev("jetto-1.2"), dev("jetto-1.3")]
    );
    let left = listed(&store, ImageKind::Developer, &svc).await;
    // 1.9 and 1.10 are the newest two (1.9 is also kept); 1.1 is kept.
    assert_eq!(left, ["jetto-1.1", "jetto-1.9", "jetto-1.10"]);
    assert_eq!(listed(&store, ImageKind::Client, &svc).await.len(), 1);
    assert_eq!(
        listed(&store, ImageKind::Developer, &service("other"))
            .await
            .len(),
        1
    );

    // max_history 0 with everything kept removes nothing.
    let all: BTreeSet<ImageVersion> = left.iter().map(|v| dev(v)).collect();
    assert!(
        store
            .retain(ImageKind::Developer, &svc, 0, &all)
            .await
            .expect("retain")
            .is_empty()
    );
}

#[tokio::test]
async fn verify_detects_a_corrupted_blob() {
    let (_dir, store) = fixture().await;
    let svc = service("svc");
    let v = dev("jetto-1.0");
    let info = store
        .put_bytes(&svc, &v, &content(5000, 9))
        .await
        .expect("put");
    let blob = store.blob_path(&info);

    // Same size, one byte flipped: only re-hashing finds it.
    let mut bytes = std::fs::read(&blob).expect("read blob");
    bytes[1234] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("corrupt");
    let err = store.verify(&svc, &v).await.expect_err("corrupt");
    match &err {
        ImageError::Corrupt {
            expected,
            actual,
            path,
            ..
        } => {
            assert_eq!(expected, &info.digest);
            assert_eq!(actual, &sha256(&bytes));
            assert_eq!(path, &blob);
        }
        other => panic!("unexpected {other}"),
    }

    // Truncated: even opening notices.
    std::fs::write(&blob, &bytes[..10]).expect("truncate");
    assert!(matches!(
        store.open_image(&svc, &v).await,
        Err(ImageError::Corrupt { .. })
    ));
    std::fs::remove_file(&blob).expect("delete");
    assert!(matches!(
        store.open_image(&svc, &v).await,
        Err(ImageError::BlobMissing { .. })
    ));
    assert!(matches!(
        store.verify(&svc, &v).await,
        Err(ImageError::BlobMissing { .. })
    ));
}

#[tokio::test]
async fn size_cap_stops_the_upload_mid_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ImageStoreOptions {
        max_image_bytes: Some(1000),
        ..ImageStoreOptions::default()
    };
    let store = ImageStore::open_with(dir.path(), options)
        .await
        .expect("open");
    let svc = service("svc");
    let v = dev("jetto-1.0");
    let mut upload = store.begin_upload(&svc, &v, None).await.expect("begin");
    upload.write(&[0; 600]).await.expect("under the cap");
    let err = upload.write(&[0; 600]).await.expect_err("over the cap");
    assert!(
        matches!(err, ImageError::TooLarge { limit: 1000, .. }),
        "{err}"
    );
    assert!(tmp_files(dir.path()).is_empty());
    assert!(matches!(
        upload.write(b"x").await,
        Err(ImageError::UploadFailed { .. })
    ));
    assert!(matches!(
        upload.finish().await,
        Err(ImageError::UploadFailed { .. })
    ));
    assert_not_found(&store, &svc, &v).await;
    // Exactly at the cap is fine.
    store
        .put_bytes(&svc, &v, &[1; 1000])
        .await
        .expect("at the cap");
}

#[tokio::test]
async fn damaged_ref_is_reported_and_gc_deletes_nothing() {
    let (dir, store) = fixture().await;
    let svc = service("svc");
    store
        .put_bytes(&svc, &dev("jetto-1.0"), b"a")
        .await
        .expect("a");
    let bad = store.ref_path(&svc, &dev("jetto-1.1"));
    std::fs::write(&bad, b"{not json").expect("write bad ref");
    let err = store.gc().await.expect_err("gc refuses");
    assert!(
        matches!(&err, ImageError::BadRef { path, .. } if path == &bad),
        "{err}"
    );
    assert_eq!(blob_count(dir.path()), 1);
}

#[tokio::test]
async fn put_file_streams_a_file_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("store"))
        .await
        .expect("open");
    let source = dir.path().join("image.zip");
    let bytes = content(2 * 1024 * 1024 + 5, 4);
    std::fs::write(&source, &bytes).expect("write source");
    let info = store
        .put_file(&service("svc"), &dev("jetto-3.0"), &source)
        .await
        .expect("put_file");
    assert_eq!(info.digest, sha256(&bytes));
    assert_eq!(
        read_image(&store, &service("svc"), &dev("jetto-3.0")).await,
        bytes
    );
}

/// Streams 200 MB through the store; run with `cargo test -p vupdate-images
/// --release -- --ignored large`. Memory is measured by `benches/images.rs`.
#[tokio::test]
#[ignore = "streams 200 MB; slow in debug builds"]
async fn large_image_streams_through() {
    const MB: usize = 1024 * 1024;
    let (_dir, store) = fixture().await;
    let svc = service("svc");
    let v = dev("jetto-1.0");
    let mut hasher = sha2::Sha256::new();
    let mut upload = store.begin_upload(&svc, &v, None).await.expect("begin");
    for i in 0..200 {
        let chunk = content(MB, i as u8);
        hasher.update(&chunk);
        upload.write(&chunk).await.expect("write");
    }
    let info = upload.finish().await.expect("finish");
    assert_eq!(info.size, (200 * MB) as u64);
    assert_eq!(
        info.digest,
        format!("sha256:{}", hex::encode(hasher.finalize()))
    );
    assert_eq!(store.verify(&svc, &v).await.expect("verify"), info);
}
