//! A whole build job ([`vupdate_builder::job`]) against a real distribution on
//! 127.0.0.1:0, without the `vupdate` binary: the settings read from a state repo at a
//! commit, the image uploaded and the version recorded through the public API; and a
//! service the state does not declare refused as invalid input before anything is built.

use std::time::Duration;

use tempfile::TempDir;
use vupdate_builder::job::{self, JobRequest, JobSettings};
use vupdate_builder::{BuilderError, CancellationToken};
use vupdate_client::{Client, ImageRef};
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Person};

use crate::support::{Source, read_zip};

const UPDATE_JSON: &str = r#"{
  "update": [
    {
      "service": "api",
      "build": {
        "buildCommands": [{ "command": "sh", "args": ["build.sh", "%%version%%"], "exitCode": 0 }],
        "copyFiles": [{ "sourceFile": "out/version", "destinationFile": "version" }]
      },
      "install": { "runService": { "command": "true" } }
    }
  ]
}
"#;

const BUILD_SH: &str = "set -e\nmkdir -p out\necho \"$1\" > out/version\n";

/// A state repo declaring `api`, built from `source`, and desiring nothing (so the
/// distribution starts no build of its own).
fn state_repo(source: &Source) -> GitRepo {
    let state = GitRepo::init();
    let api = format!(
        "developer:\n  sources:\n    - name: api\n      git:\n        url: {}\n        branch: main\n",
        source.url()
    );
    state.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", &api),
            ("desired/developer.yaml", "versions: {}\n"),
        ],
        "Declare api",
        &Person::alice(),
    );
    state
}

fn settings(state: &GitRepo, dir: &TempDir) -> JobSettings {
    JobSettings {
        state_repo: state.path().to_path_buf(),
        commit: None,
        branch: None,
        task: None,
        work_dir: dir.path().join("work"),
        author: Some("Alice <alice@example.com>".to_owned()),
        comment: Some("a job run from a test".to_owned()),
        instance: Some("test".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_job_uploads_and_records_its_version() {
    let source = Source::new(&[
        ("update.json", UPDATE_JSON, false),
        ("build.sh", BUILD_SH, false),
    ]);
    let state = state_repo(&source);
    let dir = TempDir::new().expect("dir");
    let yaml = format!(
        "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\n  pollInterval: 1h\ntokenFiles:\n  builder: builder.token\n",
        state.path().display()
    );
    let config = DistributionConfig::from_str(&yaml, dir.path()).expect("config");
    let distribution = Distribution::start(
        &config,
        StartOptions {
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
            ..StartOptions::default()
        },
    )
    .await
    .expect("start");
    let token = std::fs::read_to_string(dir.path().join("builder.token")).expect("token file");
    let base = format!("http://{}", distribution.local_addr());
    let client = Client::new(&base, Some(token.trim().to_owned())).expect("client");

    let service: vupdate_core::service::ServiceName = "api".parse().expect("service");
    let version: vupdate_core::version::DeveloperVersion = "acme-1.0.0".parse().expect("version");
    job::run(
        client.clone(),
        &settings(&state, &dir),
        &service,
        JobRequest::Developer(version.clone()),
        CancellationToken::new(),
    )
    .await
    .expect("the job succeeds");

    let records = client
        .developer_versions_info(&service, Some("acme-1.0.0"))
        .await
        .expect("records");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].build_info.author, "Alice <alice@example.com>");
    assert_eq!(records[0].build_info.comment, "a job run from a test");
    let commit = source.work.git(&["rev-parse", "HEAD"]);
    assert_eq!(
        records[0].build_info.sources[0].commit.as_deref(),
        Some(commit.trim())
    );
    let image = dir.path().join("downloaded.zip");
    client
        .download_image(&ImageRef::developer(&service, &version), &image)
        .await
        .expect("download the image");
    let files = read_zip(&image);
    assert_eq!(files["version"].content, b"acme-1.0.0\n");
    tokio::time::timeout(Duration::from_secs(60), distribution.shutdown())
        .await
        .expect("shutdown in time")
        .expect("shutdown");
}

#[tokio::test]
async fn an_undeclared_service_is_invalid_input_named_by_its_step() {
    let source = Source::new(&[("update.json", UPDATE_JSON, false)]);
    let state = state_repo(&source);
    let dir = TempDir::new().expect("dir");
    // Nothing listens there: the job must fail before it talks to a distribution.
    let client = Client::new("http://127.0.0.1:9", None).expect("client");
    let error = job::run(
        client,
        &settings(&state, &dir),
        &"web".parse().expect("service"),
        JobRequest::Developer("acme-1.0.0".parse().expect("version")),
        CancellationToken::new(),
    )
    .await
    .expect_err("web is not declared");
    assert!(
        matches!(&error, BuilderError::Step { step, .. } if *step == "reading the build settings"),
        "{error:?}"
    );
    assert!(error.is_invalid_input(), "{error:?}");
    let message = error.chain();
    assert!(
        message.starts_with("step `reading the build settings`: service `web` is not declared"),
        "{message}"
    );
}
