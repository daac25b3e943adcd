//! A full disk under the distribution's data directory.
//!
//! The server runs in a mount namespace of its own (`unshare --user --map-root-user
//! --mount`) with a 16 MiB tmpfs over its data directory, so the disk it fills is the
//! test's alone and vanishes with the process. The test fills what is left through
//! `/proc/<pid>/root`, which shows the server's view of the files.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vupdate_client::{Client, ClientError, ImageRef};

use crate::distribution::Launch;
use crate::support::{Server, empty_state, entries};

/// The size of the server's disk.
const DISK: &str = "16m";

/// The wrapper that starts the server on its own tmpfs at `data`.
fn wrapper(data: &Path) -> Vec<String> {
    [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        &format!("mount -t tmpfs -o size={DISK} tmpfs \"$0\" && exec \"$@\""),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([data.display().to_string()])
    .collect()
}

/// Why a small filesystem of its own cannot be made here, if it cannot.
fn cannot_mount() -> Option<String> {
    let dir = tempfile::TempDir::new().expect("dir");
    let mut args = wrapper(dir.path());
    args.push("true".to_owned());
    match std::process::Command::new(&args[0])
        .args(&args[1..])
        .output()
    {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "`unshare --user --map-root-user --mount` with a tmpfs failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("cannot run `unshare`: {error}")),
    }
}

/// A file of `size` bytes.
fn file_of(size: usize) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("file");
    let bytes: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    std::fs::write(file.path(), bytes).expect("write");
    file
}

/// Fills the disk under `dir` with `filler` until it refuses a byte.
fn fill(filler: &Path) {
    let mut file = std::fs::File::create(filler).expect("filler");
    let chunk = vec![0u8; 256 * 1024];
    loop {
        if let Err(error) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(error.raw_os_error(), Some(28), "{error}");
            return;
        }
    }
}

/// Stores a batch of `lines` lines of 1 KiB from process `process`.
async fn log_batch(admin: &Client, process: &str, lines: usize) -> Result<Value, ClientError> {
    let now = chrono::Utc::now().to_rfc3339();
    let logs: Vec<Value> = (0..lines)
        .map(|i| json!({"time": now, "level": "INFO", "unit": "TEST", "message": format!("{i:06} {}", "x".repeat(1024))}))
        .collect();
    admin
        .graphql(
            "mutation($p: String!, $l: [LogLineInput!]!) { addLogs(service: \"api\", role: null, instance: \"vm-1\", directory: \"/srv/api\", process: $p, logs: $l) }",
            json!({"p": process, "l": logs}),
        )
        .await
}

async fn lines_of(admin: &Client, process: &str) -> usize {
    let data: Value = admin
        .graphql(
            "query($p: String!) { logs(filter: {process: $p}, limit: 100000) { sequence } }",
            json!({"p": process}),
        )
        .await
        .expect("the logs query");
    data["logs"].as_array().map_or(0, Vec::len)
}

/// `GET /health` by hand: the status line.
fn health(base: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(address).expect("connect");
    write!(
        socket,
        "GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).expect("answer");
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Asserts `error` is the full-disk refusal naming the data directory.
fn assert_disk_full(error: &ClientError, data: &Path) {
    assert_eq!(error.code(), Some("DISK_FULL"), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&data.display().to_string()) && message.contains("free space"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_uploads_and_log_batches_clearly_and_reads_go_on() {
    if let Some(reason) = cannot_mount() {
        eprintln!(
            "SKIPPED a_full_disk_refuses_uploads_and_log_batches_clearly_and_reads_go_on: {reason}"
        );
        return;
    }
    let state = empty_state();
    let home = tempfile::TempDir::new().expect("dir");
    let data = home.path().join("data");
    std::fs::create_dir(&data).expect("data");
    let wrapper = wrapper(&data);
    let config = Server::config_following(&state, "");
    let server = Server::start_in(
        home,
        &config,
        &Launch {
            wrapper: &wrapper,
            ..Launch::default()
        },
    )
    .await;
    // The server's view of its data directory (its tmpfs), from outside its namespace.
    let seen: PathBuf = format!("/proc/{}/root{}", server.pid(), server.data().display()).into();
    let admin = server.admin().clone();

    // Stored before the disk fills: read back later.
    let kept = ImageRef::developer("api", "acme-1.0.0");
    let small = file_of(64 * 1024);
    admin
        .upload_image(&kept, small.path(), None)
        .await
        .expect("a small image");
    log_batch(&admin, "before", 10).await.expect("a log batch");

    // An image larger than the disk.
    let big = ImageRef::developer("api", "acme-2.0.0");
    let error = admin
        .upload_image(&big, file_of(24 << 20).path(), None)
        .await
        .expect_err("an image larger than the disk");
    assert_disk_full(&error, &server.data());
    assert_eq!(admin.image_info(&big).await.expect("head"), None);
    assert!(
        entries(&seen.join("images").join("tmp")).is_empty(),
        "a partial upload was kept"
    );

    // A log batch on a full disk: refused whole, earlier batches kept.
    fill(&seen.join("filler"));
    let mut failed = None;
    for batch in 0..100 {
        let process = format!("p{batch}");
        if let Err(error) = log_batch(&admin, &process, 200).await {
            failed = Some((process, error));
            break;
        }
    }
    let (process, error) = failed.expect("100 batches of 200 KiB on a full 16 MiB disk");
    assert_disk_full(&error, &server.data());
    assert_eq!(
        lines_of(&admin, &process).await,
        0,
        "a refused batch was half stored"
    );

    // Reads go on.
    assert_eq!(health(server.base()), "HTTP/1.1 200 OK");
    assert_eq!(lines_of(&admin, "before").await, 10);
    let back = tempfile::TempDir::new().expect("dir");
    admin
        .download_image(&kept, &back.path().join("image"))
        .await
        .expect("a download on a full disk");
    assert_eq!(
        std::fs::read(back.path().join("image")).expect("read"),
        std::fs::read(small.path()).expect("read")
    );
    let status: Value = admin
        .graphql(
            "{ status { synced } serviceStates { instance } }",
            json!({}),
        )
        .await
        .expect("queries on a full disk");
    assert!(status["status"].is_object(), "{status}");

    // Once there is space, writes work again without a restart.
    std::fs::remove_file(seen.join("filler")).expect("free the space");
    log_batch(&admin, "after", 10)
        .await
        .expect("a log batch with space");
    admin
        .upload_image(&big, file_of(1 << 20).path(), None)
        .await
        .expect("an upload with space");
    server.stop();
}
