//! Source repositories across builds: an earlier clone is fetched and checked out afresh;
//! a changed URL or branch, or a directory that is not a clone, is cloned again.

use vupdate_builder::log::UNIT_BUILD;
use vupdate_builder::{BuilderError, CancellationToken};
use vupdate_core::log::Level;
use vupdate_test_support::GitRepo;

use crate::support::{self, Source};

const UPDATE_JSON: &str = r#"{"update": [{"service": "api", "build": {
    "copyFiles": [{"sourceFile": "files", "destinationFile": "files"}]
}}]}"#;

#[tokio::test]
async fn a_clone_is_reused_fetched_and_replaced_when_its_url_changes() {
    let source = Source::new(&[
        ("update.json", UPDATE_JSON, false),
        ("files/a.txt", "a1\n", false),
        ("files/b.txt", "b\n", false),
    ]);
    let (_temp, builder) = support::builder();
    let checkout = builder
        .developer_directory(&"api".parse().expect("service"))
        .join("source/api");

    let (log, shared) = support::memory_log();
    let request = support::request("api", "acme-1", vec![source.repository("api")]);
    builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert!(
        support::logged(&log, Level::Info, UNIT_BUILD, "`api` cloned, at commit"),
        "{}",
        log.text()
    );

    // A new commit that changes one file and deletes another; a stray file in the checkout.
    source.work.remove("files/b.txt");
    let second = source.commit(&[("files/a.txt", "a2\n", false)], "change a, drop b");
    std::fs::write(checkout.join("files/stray.txt"), "left by a build\n").expect("write");
    let (log, shared) = support::memory_log();
    let request = support::request("api", "acme-2", vec![source.repository("api")]);
    let built = builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert!(
        support::logged(
            &log,
            Level::Info,
            UNIT_BUILD,
            &format!("`api` fetched into the earlier clone, at commit {second}")
        ),
        "{}",
        log.text()
    );
    assert_eq!(built.sources[0].commit, second);
    let files = support::read_zip(&built.zip.path);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["files/a.txt"], "{}", support::show(&files));
    assert_eq!(files["files/a.txt"].content, b"a2\n");

    // The same history under another URL: cloned again, not fetched from the old origin.
    let moved = GitRepo::clone_bare_from(&source.remote);
    let mut repository = source.repository("api");
    repository.url = moved.path().to_string_lossy().into_owned();
    let (log, shared) = support::memory_log();
    let request = support::request("api", "acme-3", vec![repository.clone()]);
    builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let expected = format!(
        "`api` cloned again (its origin is {}, the settings say {})",
        source.url(),
        repository.url
    );
    assert!(
        support::logged(&log, Level::Info, UNIT_BUILD, &expected),
        "{}",
        log.text()
    );
    assert!(
        moved
            .run(&["rev-parse", "--verify", "refs/tags/api-acme-3"], &[])
            .status
            .success()
    );

    // A directory that is not a repository at all is replaced by a clone.
    std::fs::remove_dir_all(checkout.join(".git")).expect("break the clone");
    let (log, shared) = support::memory_log();
    let request = support::request("api", "acme-4", vec![repository]);
    builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert!(
        support::logged(
            &log,
            Level::Info,
            UNIT_BUILD,
            "cloned again (not a repository"
        ),
        "{}",
        log.text()
    );
}

#[tokio::test]
async fn a_branch_and_a_sub_directory_are_used() {
    let source = Source::new(&[("README.md", "main has no update.json\n", false)]);
    source.work.branch("release").checkout("release");
    source.commit(
        &[
            ("service/update.json", UPDATE_JSON, false),
            ("service/files/r.txt", "release\n", false),
        ],
        "release branch",
    );
    source.work.push("origin", "release");
    let (_temp, builder) = support::builder();
    let mut repository = source.repository("api");
    repository.branch = "release".to_owned();
    repository.sub_directory = Some("service".to_owned());
    let (log, shared) = support::memory_log();
    let request = support::request("api", "acme-1", vec![repository.clone()]);
    let built = builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let files = support::read_zip(&built.zip.path);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["files/r.txt"]);
    assert_eq!(built.sources[0].commit, source.work.rev_parse("release"));

    // A branch the remote does not have is named in the error.
    repository.branch = "missing".to_owned();
    let request = support::request("api", "acme-2", vec![repository]);
    let error = builder
        .build_developer(request, support::memory_log().1, CancellationToken::new())
        .await
        .expect_err("no such branch");
    assert!(
        matches!(error, BuilderError::Git { step: "clone", .. }),
        "{error}"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "repository `api` ({}, branch `missing`): clone failed",
            source.url()
        )),
        "{error}"
    );
}
