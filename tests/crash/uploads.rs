//! kill -9 of the distribution during an image upload.

use std::path::Path;

use tokio::io::AsyncWriteExt as _;
use vupdate_client::ImageRef;

use crate::support::{Server, empty_state, entries, eventually};

/// The bytes of a test image of `size` bytes (not all equal, so a cut shows).
fn image_bytes(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for path in entries(dir) {
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Uploads `bytes` as the image and checks a download gives them back.
async fn upload_and_check(server: &Server, image: &ImageRef, bytes: &[u8]) {
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), bytes).expect("write");
    server
        .admin()
        .upload_image(image, file.path(), None)
        .await
        .expect("the upload after the restart");
    let back = tempfile::TempDir::new().expect("dir");
    let path = back.path().join("image.zip");
    server
        .admin()
        .download_image(image, &path)
        .await
        .expect("download");
    assert!(
        std::fs::read(&path).expect("read") == bytes,
        "the image came back changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_mid_body_leaves_no_image_and_the_version_free() {
    let state = empty_state();
    let mut server = Server::start(&Server::config(
        &format!("path: {}", state.path().display()),
        "",
    ))
    .await;
    let image = ImageRef::developer("api", "acme-1.0.0");
    let bytes = image_bytes(3 << 20, 7);
    // Half the body, sent by hand: the server holds an upload in progress.
    let address = server.base().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "PUT /images/developer/api/acme-1.0.0 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        server.token(),
        bytes.len()
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    let half = bytes.len() / 2;
    socket
        .write_all(&bytes[..half])
        .await
        .expect("half the body");
    socket.flush().await.expect("flush");
    let tmp = server.data().join("images").join("tmp");
    eventually("the server to store what it got", &server.dir, || async {
        let size: u64 = entries(&tmp)
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum();
        (size >= half as u64).then_some(())
    })
    .await;

    server.kill9();
    drop(socket);
    server.restart(None).await;

    assert_eq!(server.admin().image_info(&image).await.expect("head"), None);
    assert!(entries(&tmp).is_empty(), "{:?}", entries(&tmp));
    let images = server.data().join("images");
    assert!(files_under(&images.join("refs")).is_empty());
    assert!(files_under(&images.join("blobs")).is_empty());
    upload_and_check(&server, &image, &bytes).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_between_its_blob_and_its_ref_is_not_visible_and_the_version_free() {
    let state = empty_state();
    let mut server = Server::start(&Server::config(
        &format!("path: {}", state.path().display()),
        "",
    ))
    .await;
    server.kill9();
    let image = ImageRef::developer("api", "acme-1.0.0");
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), image_bytes(1 << 20, 3)).expect("write");
    let (sent, path) = (image.clone(), file.path().to_owned());
    server
        .cut("images.blob-stored", |admin| async move {
            admin.upload_image(&sent, &path, None).await
        })
        .await;
    // The crash left the blob and no ref.
    let images = server.data().join("images");
    assert_eq!(files_under(&images.join("blobs")).len(), 1);
    assert!(files_under(&images.join("refs")).is_empty());

    server.restart(None).await;
    assert_eq!(server.admin().image_info(&image).await.expect("head"), None);
    // The version is free: other content can take it (versions are immutable only once
    // they are visible).
    upload_and_check(&server, &image, &image_bytes(1 << 20, 5)).await;
    server.stop();
}
