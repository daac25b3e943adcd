//! Client versions: a developer image overlaid with settings repositories by core's merge
//! rules, private files added, modes kept; a settings change makes the next generation.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use vupdate_builder::{
    Builder, BuilderError, CancellationToken, ClientRequest, NextClient, next_client_version,
};
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::model::ClientBuild;

use crate::support::{self, Entry, Source};

const UPDATE_JSON: &str = r#"{"update": [{"service": "web", "build": {
    "copyFiles": [
        {"sourceFile": "bin", "destinationFile": "bin"},
        {"sourceFile": "config", "destinationFile": "config"}
    ]
}, "install": {"runService": {"command": "bin/run.sh"}}}]}"#;

/// Builds the developer image `acme-1.0.0` of `web`; returns its zip.
async fn developer_image(builder: &Builder) -> PathBuf {
    let source = Source::new(&[
        ("update.json", UPDATE_JSON, false),
        ("bin/run.sh", "#!/bin/sh\necho web\n", true),
        (
            "config/app.json",
            "{\n  \"server\": {\"port\": 8000, \"host\": \"0.0.0.0\"},\n  \"features\": [\"a\"]\n}\n",
            false,
        ),
        (
            "config/db.properties",
            "# database\nurl=jdbc:pg://db/app\nuser=app\n",
            false,
        ),
        (
            "config/app.conf",
            "http {\n  port = 8000\n}\nname = dev\n",
            false,
        ),
        (
            "config/motd.txt",
            "Welcome to %%site%%, run by %%owner%%, on %%version%%\n",
            false,
        ),
    ]);
    let request = support::request("web", "acme-1.0.0", vec![source.repository("web")]);
    let (log, shared) = support::memory_log();
    let built = builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    // Keep the zip apart from the builder's own files, as a downloaded image would be.
    let downloaded = builder.directory().join("web-acme-1.0.0.download.zip");
    std::fs::copy(&built.zip.path, &downloaded).expect("copy the image");
    downloaded
}

/// The first settings repository (used through its `web` folder) and the second (whole).
fn settings_repositories() -> (Source, Source) {
    let first = Source::new(&[
        (
            "web/config/app.json",
            "{\"server\": {\"port\": 9000}}\n",
            false,
        ),
        ("web/config/app.json.1", "{\"features\": [\"b\"]}\n", false),
        (
            "web/config/app.json.2",
            "{\"server\": {\"host\": \"127.0.0.1\"}}\n",
            false,
        ),
        (
            "web/config/db.properties",
            "user=client\npassword=secret\n",
            false,
        ),
        ("web/config/app.conf", "http.port = 9000\n", false),
        (
            "web/config/motd.txt.defines",
            "site=Example Corp\nowner=ops\n",
            false,
        ),
        (
            "web/install.json",
            "{\"runService\": {\"args\": [\"--client\"]}}\n",
            false,
        ),
        ("web/extra/notes.txt", "client notes\n", false),
        ("other/ignored.txt", "outside the web folder\n", false),
    ]);
    // Used without subDirectory: its `.git` must not reach the image.
    let second = Source::new(&[(
        "config/app.json.1",
        "{\"server\": {\"port\": 9100}}\n",
        false,
    )]);
    (first, second)
}

fn client_settings(first: &Source, second: &Source) -> ClientBuild {
    let mut web = first.repository("settings");
    web.sub_directory = Some("web".to_owned());
    ClientBuild {
        settings: vec![web, second.repository("overrides")],
        macro_values: BTreeMap::from([("site".to_owned(), "ACME".to_owned())]),
        private_files: vec!["keys/tls.key".to_owned()],
        ..ClientBuild::default()
    }
}

fn client_version(text: &str) -> ClientVersion {
    text.parse().expect("client version")
}

#[tokio::test]
async fn a_client_version_merges_json_properties_conf_defines_and_indexed_overlays() {
    let (temp, builder) = support::builder();
    let image = developer_image(&builder).await;
    let (first, second) = settings_repositories();
    let private = temp.path().join("private");
    std::fs::create_dir_all(private.join("keys")).expect("mkdir");
    std::fs::write(private.join("keys/tls.key"), "TLS KEY\n").expect("write");
    let request = ClientRequest {
        service: "web".parse().expect("service"),
        version: client_version("acme-1.0.0"),
        developer_image: image.clone(),
        settings: Some(client_settings(&first, &second)),
        private_files: Some(private.clone()),
    };
    let (log, shared) = support::memory_log();
    let built = builder
        .build_client(request.clone(), shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert!(
        built
            .zip
            .path
            .ends_with("client/services/web/web-acme-1.0.0.zip")
    );

    let files = support::read_zip(&built.zip.path);
    let json = |path: &str| -> serde_json::Value {
        serde_json::from_slice(&files[path].content).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    // JSON: merged by key, base first, then the overlay's file, its `.1`, `.2`, then the
    // second overlay's `.1`; arrays are replaced.
    assert_eq!(
        json("config/app.json"),
        serde_json::json!({"server": {"port": 9100, "host": "127.0.0.1"}, "features": ["b"]})
    );
    // install.json merges the same way.
    assert_eq!(
        json("install.json"),
        serde_json::json!({"runService": {
            "command": "bin/run.sh",
            "uploadLogs": false,
            "faultFilesMatch": "core",
            "restartOnFault": true,
            "stopSignal": "TERM",
            "stopTimeoutMs": 5000,
            "args": ["--client"]
        }})
    );
    let text = |path: &str| String::from_utf8_lossy(&files[path].content).into_owned();
    // Properties: the base's lines kept, a key replaced, a new key appended.
    assert_eq!(
        text("config/db.properties"),
        "# database\nurl=jdbc:pg://db/app\nuser=client\npassword=secret\n"
    );
    // `.defines` values, with the build's macro values winning; `%%version%%` is the
    // developer version.
    assert_eq!(
        text("config/motd.txt"),
        "Welcome to ACME, run by ops, on acme-1.0.0\n"
    );
    // HOCON: the overlay's dotted key merged into the base's object, rendered again.
    assert_eq!(
        text("config/app.conf"),
        "http {\n  port = 9000\n}\nname = dev\n"
    );

    let expected_paths = [
        "bin/run.sh",
        "config/app.conf",
        "config/app.json",
        "config/db.properties",
        "config/motd.txt",
        "extra/notes.txt",
        "install.json",
        "keys/tls.key",
    ];
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_paths,
        "no layers, no .defines, no .git, nothing outside the subDirectory:\n{}",
        support::show(&files)
    );
    assert_eq!(
        files["bin/run.sh"],
        Entry::text(0o755, "#!/bin/sh\necho web\n")
    );
    assert_eq!(
        files["extra/notes.txt"],
        Entry::text(0o644, "client notes\n")
    );
    assert_eq!(files["keys/tls.key"], Entry::text(0o644, "TLS KEY\n"));
    let commits: Vec<&str> = built.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(commits, ["settings", "overrides"]);
    assert_eq!(built.sources[0].commit, first.work.rev_parse("HEAD"));

    // Same settings again: the same content, so no new generation is needed.
    let developer: DeveloperVersion = "acme-1.0.0".parse().expect("version");
    let existing = [(request.version.clone(), built.zip.content_digest.clone())];
    let pairs = || existing.iter().map(|(v, d)| (v, d.as_str()));
    let mut again = request.clone();
    again.version = ClientVersion::next_for(&developer, existing.iter().map(|(v, _)| v));
    let rebuilt = builder
        .build_client(again, support::memory_log().1, CancellationToken::new())
        .await
        .expect("rebuild");
    assert_eq!(
        next_client_version(&developer, pairs(), &rebuilt.zip.content_digest),
        NextClient::Unchanged(client_version("acme-1.0.0"))
    );

    // A settings change: new content, the next generation `_1`.
    first.commit(
        &[(
            "web/config/app.json.2",
            "{\"server\": {\"host\": \"10.0.0.1\"}}\n",
            false,
        )],
        "move",
    );
    let mut changed = request.clone();
    changed.version = client_version("acme-1.0.0_1");
    let changed = builder
        .build_client(changed, support::memory_log().1, CancellationToken::new())
        .await
        .expect("build after the change");
    assert_eq!(
        next_client_version(&developer, pairs(), &changed.zip.content_digest),
        NextClient::New(client_version("acme-1.0.0_1"))
    );
    let files = support::read_zip(&changed.zip.path);
    assert!(String::from_utf8_lossy(&files["config/app.json"].content).contains("10.0.0.1"));
}

#[tokio::test]
async fn without_settings_the_image_is_repackaged_with_its_private_files() {
    let (temp, builder) = support::builder();
    let image = developer_image(&builder).await;
    let private = temp.path().join("private");
    std::fs::create_dir_all(private.join("keys")).expect("mkdir");
    std::fs::write(private.join("keys/tls.key"), "TLS KEY\n").expect("write");
    std::fs::set_permissions(
        private.join("keys/tls.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let request = ClientRequest {
        service: "web".parse().expect("service"),
        version: client_version("acme-1.0.0"),
        developer_image: image.clone(),
        settings: None,
        private_files: Some(private),
    };
    let (log, shared) = support::memory_log();
    let built = builder
        .build_client(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let (before, after) = (
        support::read_zip(&image),
        support::read_zip(&built.zip.path),
    );
    assert_eq!(after["keys/tls.key"].content, b"TLS KEY\n");
    assert_eq!(after["keys/tls.key"].mode & 0o777, 0o600);
    for (path, entry) in &before {
        assert_eq!(after[path].content, entry.content, "{path}");
        assert_eq!(after[path].mode, entry.mode, "{path}");
    }
    assert_eq!(after.len(), before.len() + 1, "the key added");
}

#[tokio::test]
async fn a_merge_error_names_the_repository_and_leaves_no_image() {
    let (_temp, builder) = support::builder();
    let image = developer_image(&builder).await;
    let broken = Source::new(&[("config/app.json", "{ not json\n", false)]);
    let request = ClientRequest {
        service: "web".parse().expect("service"),
        version: client_version("acme-1.0.0"),
        developer_image: image,
        settings: Some(ClientBuild {
            settings: vec![broken.repository("broken")],
            ..ClientBuild::default()
        }),
        private_files: None,
    };
    let error = builder
        .build_client(request, support::memory_log().1, CancellationToken::new())
        .await
        .expect_err("not JSON");
    let message = error.to_string();
    assert!(matches!(error, BuilderError::Merge { .. }), "{message}");
    assert!(
        message.starts_with(&format!(
            "merging client settings (overlay #1 is `broken` ({})): overlay #1: `config/app.json` is not valid JSON",
            broken.url()
        )),
        "{message}"
    );
    assert!(support::no_zips(
        &builder.client_directory(&"web".parse().expect("service"))
    ));
}

#[tokio::test]
async fn an_image_with_an_escaping_path_is_refused() {
    let (temp, builder) = support::builder();
    let evil = temp.path().join("evil.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&evil).expect("create"));
    zip.start_file(
        "../../outside.txt",
        zip::write::SimpleFileOptions::default(),
    )
    .expect("entry");
    zip.write_all(b"x").expect("write");
    zip.finish().expect("finish");
    let request = ClientRequest {
        service: "web".parse().expect("service"),
        version: client_version("acme-1.0.0"),
        developer_image: evil,
        settings: None,
        private_files: None,
    };
    let error = builder
        .build_client(request, support::memory_log().1, CancellationToken::new())
        .await
        .expect_err("escaping entry");
    assert!(matches!(error, BuilderError::Unpack { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("`../../outside.txt` would be written outside the image"),
        "{error}"
    );
    assert!(!builder.directory().join("outside.txt").exists());
    assert!(!builder.directory().join("client/outside.txt").exists());
}
