//! Images: streamed upload with its digest, download verified, resumed after a cut.

use vupdate_client::images::{CONTENT_SHA256, hash_file};
use vupdate_client::{ClientError, ImageRef};

use super::support::{self, pattern_file};

#[tokio::test]
async fn an_uploaded_image_downloads_verified_and_a_cut_download_resumes() {
    let mut server = support::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let source = pattern_file(dir.path(), "image.zip", 3 * 1024 * 1024 + 17);
    let (sha256, size) = hash_file(&source).await.expect("hash");
    let image = ImageRef::developer("api", "acme-1.0.0");

    let uploaded = server
        .builder
        .upload_image(&image, &source, Some(&sha256))
        .await
        .expect("upload");
    assert_eq!(uploaded.digest, format!("sha256:{sha256}"));
    assert_eq!(uploaded.size, size);

    // Versions are immutable: the same content again counts as uploaded, other content
    // is refused.
    let again = server
        .builder
        .upload_image(&image, &source, None)
        .await
        .expect("the same content");
    assert_eq!(again, uploaded);
    assert_eq!(
        server.builder.image_info(&image).await.expect("head"),
        Some(uploaded.clone())
    );
    let changed = pattern_file(dir.path(), "changed.zip", 1000);
    let refused = server
        .builder
        .upload_image(&image, &changed, None)
        .await
        .expect_err("other content");
    assert_eq!(refused.code(), Some("CONFLICT"), "{refused}");

    // A whole download.
    let target = dir.path().join("down/api.zip");
    let done = server
        .builder
        .download_image(&image, &target)
        .await
        .expect("download");
    assert_eq!(
        (done.sha256.as_str(), done.size, done.resumed_from),
        (sha256.as_str(), size, 0)
    );
    assert_eq!(
        std::fs::read(&target).expect("read"),
        std::fs::read(&source).expect("read")
    );

    // What a cut leaves: the first bytes in `.partial` and the announced digest beside it.
    let bytes = std::fs::read(&source).expect("read");
    let resumed = dir.path().join("resumed.zip");
    let cut = 1_000_000;
    std::fs::write(dir.path().join("resumed.zip.partial"), &bytes[..cut]).expect("write");
    std::fs::write(dir.path().join("resumed.zip.partial.sha256"), &sha256).expect("write");
    let done = server
        .builder
        .download_image(&image, &resumed)
        .await
        .expect("resume");
    assert_eq!(done.resumed_from, cut as u64);
    assert_eq!(done.sha256, sha256);
    assert_eq!(std::fs::read(&resumed).expect("read"), bytes);
    assert!(!dir.path().join("resumed.zip.partial").exists());
    assert!(!dir.path().join("resumed.zip.partial.sha256").exists());

    // A partial of another image (another digest beside it) is not resumed but replaced.
    let other = dir.path().join("other.zip");
    std::fs::write(dir.path().join("other.zip.partial"), b"not this image").expect("write");
    std::fs::write(dir.path().join("other.zip.partial.sha256"), "00".repeat(32)).expect("write");
    let done = server
        .builder
        .download_image(&image, &other)
        .await
        .expect("fresh");
    assert_eq!(
        (done.resumed_from, done.sha256.as_str()),
        (0, sha256.as_str())
    );

    // A corrupt partial with the right digest fails verification and leaves nothing.
    let corrupt = dir.path().join("corrupt.zip");
    let mut wrong = bytes[..cut].to_vec();
    wrong[10] ^= 0xff;
    std::fs::write(dir.path().join("corrupt.zip.partial"), &wrong).expect("write");
    std::fs::write(dir.path().join("corrupt.zip.partial.sha256"), &sha256).expect("write");
    let error = server
        .builder
        .download_image(&image, &corrupt)
        .await
        .expect_err("corrupt");
    assert!(
        matches!(&error, ClientError::Checksum { expected, .. } if *expected == sha256),
        "{error}"
    );
    assert!(!corrupt.exists());
    assert!(!dir.path().join("corrupt.zip.partial").exists());

    // A wrong announced digest on upload is refused and stores nothing.
    let client_image = ImageRef::client("api", "acme-1.0.0");
    let error = server
        .builder
        .upload_image(&client_image, &source, Some(&"ab".repeat(32)))
        .await
        .expect_err("digest mismatch");
    assert_eq!(error.code(), Some("BAD_REQUEST"), "{error}");
    let missing = server
        .builder
        .download_image(&client_image, &dir.path().join("none.zip"))
        .await
        .expect_err("no image");
    assert_eq!(missing.code(), Some("NOT_FOUND"), "{missing}");
    assert!(!dir.path().join("none.zip").exists());

    // Updaters fetch client images only.
    let error = server
        .updater
        .download_image(&image, &dir.path().join("forbidden.zip"))
        .await
        .expect_err("forbidden");
    assert_eq!(error.code(), Some("FORBIDDEN"), "{error}");
    assert_eq!(CONTENT_SHA256, "x-content-sha256");
    server.stop().await;
}
