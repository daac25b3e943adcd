//! Private files: a service's own wins over common's; a missing one is NOT_FOUND.

use vupdate_client::ImageKind;

use super::support;

#[tokio::test]
async fn private_files_download_the_services_own_else_the_common_one() {
    let mut server = support::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    };
    let common = write("common.pem", "common key\n");
    let own = write("own.pem", "api's own key\n");
    let admin = &server.admin;
    admin
        .upload_private_file(ImageKind::Developer, "_common", "keys/tls.pem", &common)
        .await
        .expect("upload common");
    admin
        .upload_private_file(ImageKind::Developer, "_common", "keys/shared.pem", &common)
        .await
        .expect("upload common");
    admin
        .upload_private_file(ImageKind::Developer, "api", "keys/tls.pem", &own)
        .await
        .expect("upload own");

    let builder = &server.builder;
    let target = dir.path().join("out/keys/tls.pem");
    let size = builder
        .download_private_file(ImageKind::Developer, "api", "keys/tls.pem", &target)
        .await
        .expect("own");
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "api's own key\n"
    );
    assert_eq!(size, 14);
    builder
        .download_private_file(ImageKind::Developer, "web", "keys/tls.pem", &target)
        .await
        .expect("common");
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "common key\n"
    );
    builder
        .download_private_file(
            ImageKind::Developer,
            "api",
            "keys/shared.pem",
            &dir.path().join("shared.pem"),
        )
        .await
        .expect("common for api");

    let missing = dir.path().join("missing.pem");
    let error = builder
        .download_private_file(ImageKind::Client, "api", "keys/tls.pem", &missing)
        .await
        .expect_err("no client file");
    assert_eq!(error.code(), Some("NOT_FOUND"), "{error}");
    assert!(!missing.exists());
    let error = server
        .updater
        .download_private_file(ImageKind::Developer, "api", "keys/tls.pem", &missing)
        .await
        .expect_err("updaters may not");
    assert_eq!(error.code(), Some("FORBIDDEN"), "{error}");
    server.stop().await;
}
