//! Bad input at start-up: one clear error, nothing half-done.

use vupdate_store::{StoreConfig, StoreError};

/// 8 KiB that are no SQLite file.
fn garbage() -> Vec<u8> {
    (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[tokio::test]
async fn a_corrupt_sqlite_file_is_one_clear_error_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let garbage = garbage();
    std::fs::write(&path, &garbage).expect("write garbage");
    let error = vupdate_store::open(&StoreConfig::Sqlite { path: path.clone() })
        .await
        .expect_err("corrupt");
    assert!(
        matches!(&error, StoreError::OpenSqlite { path: p, .. } if *p == path),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("not a database"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read back"),
        garbage,
        "the file is left as it was"
    );
}

#[tokio::test]
async fn a_sqlite_path_under_a_file_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let path = blocker.join("store.sqlite");
    let error = vupdate_store::open(&StoreConfig::Sqlite { path: path.clone() })
        .await
        .expect_err("not a directory");
    assert!(
        error.to_string().contains("cannot create its directory"),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let config = StoreConfig::Sqlite { path: path.clone() };
    drop(vupdate_store::open(&config).await.expect("create"));
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.pragma_update(None, "user_version", 99)
        .expect("bump the schema version");
    drop(conn);
    let error = vupdate_store::open(&config).await.expect_err("newer");
    assert!(
        error.to_string().contains("newer vupdate (schema 99"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_mongodb_is_one_clear_error() {
    // A port of ours where no MongoDB answers: each connection is closed at once. (Held
    // for the whole test: a port merely probed free could be taken meanwhile.)
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let closer = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let url = format!(
        "mongodb://vupdate:secret@127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=300"
    );
    let config = StoreConfig::Mongo {
        url,
        database: "vupdate".into(),
        logs: None,
    };
    let error = vupdate_store::open(&config)
        .await
        .expect_err("nothing listens");
    closer.abort();
    let message = error.to_string();
    assert!(
        matches!(error, StoreError::ConnectMongo { .. }),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("vupdate"),
        "{message}"
    );
    assert!(
        !message.contains("secret"),
        "the password is not shown: {message}"
    );
}

#[tokio::test]
async fn a_mongodb_srv_url_is_refused_clearly() {
    let config = StoreConfig::Mongo {
        url: "mongodb+srv://cluster.example.invalid/".into(),
        database: "vupdate".into(),
        logs: None,
    };
    let error = vupdate_store::open(&config)
        .await
        .expect_err("no DNS resolver in this build");
    assert!(matches!(error, StoreError::ConnectMongo { .. }), "{error}");
}

#[tokio::test]
async fn a_corrupt_text_index_file_is_one_clear_error_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let index = dir.path().join("store.sqlite-text");
    let garbage = garbage();
    std::fs::write(&index, &garbage).expect("write garbage");
    let error = vupdate_store::open(&StoreConfig::Sqlite { path })
        .await
        .expect_err("corrupt");
    assert!(
        matches!(&error, StoreError::OpenSqlite { path: p, .. } if *p == index),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("store.sqlite-text")
            && message.contains("not a database")
            && message.contains("text index"),
        "{message}"
    );
    assert!(
        std::fs::read(&index).expect("read back") == garbage,
        "the file is left as it was"
    );
}
