use std::path::Path;

use super::*;

/// A store in `dir` (a second call opens the same one, as another replica or the CLI).
async fn store(dir: &Path) -> Store {
    let config = vupdate_store::StoreConfig::Sqlite {
        path: dir.join("store.sqlite"),
    };
    vupdate_store::open(&config).await.expect("store")
}

#[tokio::test]
async fn a_secret_is_sealed_in_the_store_shared_and_never_printed() {
    let data = tempfile::TempDir::new().expect("dir");
    let jwt = JwtKey::generate().expect("key");
    let secrets = Secrets::open(store(data.path()).await, &jwt, data.path())
        .await
        .expect("open");
    let mut changed = secrets.changed();
    changed.mark_unchanged();
    let info = secrets
        .set("jetto-token", "s3cr3t-value")
        .await
        .expect("set");
    assert!(changed.has_changed().expect("open channel"));
    changed.mark_unchanged();
    assert_eq!(info.name, "jetto-token");
    let value = secrets.get("jetto-token").expect("read").expect("set");
    assert_eq!(value.expose(), "s3cr3t-value");
    assert_eq!(format!("{value:?}"), "SecretValue(..)");
    let found = vupdate_test_support::files_containing(&[data.path()], "s3cr3t-value");
    assert!(
        found.is_empty(),
        "the store holds the value sealed: {found:?}"
    );
    assert_eq!(
        secrets
            .list()
            .expect("list")
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["jetto-token"]
    );
    // Another replica (or the CLI) on the same store, with the same JWT key: its change
    // is seen at the next refresh, which says so.
    let other = Secrets::open(store(data.path()).await, &jwt, data.path())
        .await
        .expect("open again");
    assert_eq!(
        other
            .get("jetto-token")
            .expect("read")
            .expect("set")
            .expose(),
        "s3cr3t-value"
    );
    other.set("jetto-token", "rotated").await.expect("set");
    secrets.refresh().await.expect("refresh");
    assert!(changed.has_changed().expect("open channel"));
    changed.mark_unchanged();
    assert_eq!(
        secrets
            .get("jetto-token")
            .expect("read")
            .expect("set")
            .expose(),
        "rotated"
    );
    secrets.refresh().await.expect("refresh");
    assert!(
        !changed.has_changed().expect("open channel"),
        "nothing new, no change"
    );
    assert!(secrets.remove("jetto-token").await.expect("remove"));
    assert!(!secrets.remove("jetto-token").await.expect("remove again"));
    assert!(changed.has_changed().expect("open channel"));
    assert!(secrets.get("jetto-token").expect("read").is_none());
    other.refresh().await.expect("refresh");
    assert!(other.get("jetto-token").expect("read").is_none());
}

#[tokio::test]
async fn refusals_name_the_secret_never_its_value() {
    let data = tempfile::TempDir::new().expect("dir");
    let secrets = Secrets::open(
        store(data.path()).await,
        &JwtKey::generate().expect("key"),
        data.path(),
    )
    .await
    .expect("open");
    for (name, value) in [
        ("../etc", "v4lue-x"),
        ("", "v4lue-x"),
        ("ok", ""),
        ("big", &"v4lue-x".repeat(MAX_VALUE_BYTES)),
    ] {
        let error = secrets.set(name, value).await.expect_err(name);
        assert!(error.is_invalid_input(), "{error}");
        assert!(!error.to_string().contains("v4lue-x"), "{error}");
    }
    // Set on a distribution with another JWT key: listed, but its value does not open.
    let elsewhere = Secrets::open(
        store(data.path()).await,
        &JwtKey::generate().expect("key"),
        data.path(),
    )
    .await
    .expect("open");
    elsewhere.set("foreign", "v4lue-x").await.expect("set");
    secrets.refresh().await.expect("refresh");
    assert!(secrets.info("foreign").expect("info").is_some());
    let error = secrets.get("foreign").expect_err("unreadable");
    assert!(!error.is_invalid_input());
    let said = error.to_string();
    assert!(
        said.contains("`foreign`") && said.contains("JWT key") && !said.contains("v4lue-x"),
        "{said}"
    );
}

#[tokio::test]
async fn an_older_server_s_secret_files_are_taken_in_sealed() {
    let data = tempfile::TempDir::new().expect("dir");
    let folder = data.path().join("secrets");
    std::fs::create_dir_all(&folder).expect("dir");
    let file = |name: &str, at: &str, value: &str| {
        std::fs::write(
            folder.join(format!("{name}.json")),
            format!("{{\"setAt\":\"{at}\",\"value\":\"{value}\"}}"),
        )
        .expect("write");
    };
    file("jetto-token", "2026-01-01T00:00:00Z", "old-t0ken");
    file("acme-token", "2026-01-01T00:00:00Z", "stale-t0ken");
    std::fs::write(folder.join("updater.token"), "a tokenFiles file").expect("write");
    std::fs::write(folder.join("broken.json"), "{").expect("write");
    let jwt = JwtKey::generate().expect("key");
    // acme-token was set in the store since (through another replica).
    let before = Secrets::open(store(data.path()).await, &jwt, Path::new("/nonexistent"))
        .await
        .expect("open");
    before.set("acme-token", "newer").await.expect("set");

    let secrets = Secrets::open(store(data.path()).await, &jwt, data.path())
        .await
        .expect("open");
    let value = |name: &str| {
        secrets
            .get(name)
            .expect("read")
            .map(|v| v.expose().to_owned())
    };
    assert_eq!(value("jetto-token").as_deref(), Some("old-t0ken"));
    assert_eq!(value("acme-token").as_deref(), Some("newer"));
    assert_eq!(
        secrets.info("jetto-token").expect("info").map(|i| i.set_at),
        Some("2026-01-01T00:00:00Z".parse().expect("time"))
    );
    assert!(folder.join("jetto-token.json.imported").exists());
    assert!(!folder.join("jetto-token.json").exists());
    assert!(folder.join("updater.token").exists(), "not a secret file");
    assert!(folder.join("broken.json").exists(), "not a secret file");
    // A second start finds nothing more to take.
    assert_eq!(legacy::import(&secrets, &folder).await.expect("again"), 0);
}
