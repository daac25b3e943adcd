//! The follower of the desired versions ([`vupdate_updater::remote::follow`]) against a
//! real distribution on 127.0.0.1:0: a commit to the state repo reaches the agent's
//! `watch` through the subscription, and the last list is kept in the work directory for
//! an updater that restarts while the distribution is away; the image of a version the
//! distribution has not built is told apart from a failed download.

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::watch;
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Person};
use vupdate_updater::agent::DesiredVersions;
use vupdate_updater::config::UpdaterConfig;
use vupdate_updater::images::ImageSource;
use vupdate_updater::remote::seams::ApiImages;
use vupdate_updater::remote::{Api, follow, seams};

/// How long the distribution may take to see a commit and tell its subscribers.
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desired_version_committed_reaches_the_follower_and_its_cache() {
    let state = GitRepo::init();
    state.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", ""),
            ("desired/developer.yaml", "versions: {}\n"),
            ("desired/client.yaml", "versions: {}\n"),
        ],
        "Declare api",
        &Person::alice(),
    );
    let dir = TempDir::new().expect("dir");
    let yaml = format!(
        "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\n  pollInterval: 1s\ntokenFiles:\n  updater: updater.token\n",
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
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work directory");
    let updater = UpdaterConfig::from_str(
        &format!(
            "instance: vm-1\ndistributionUrl: http://{}\naccessTokenFile: {}\nworkDirectory: {}\n",
            distribution.local_addr(),
            dir.path().join("updater.token").display(),
            work.display()
        ),
        dir.path(),
    )
    .expect("updater config");
    let api = Arc::new(Api::new(&updater).expect("the link"));
    let (sender, mut desired) = watch::channel(DesiredVersions::new());
    let _following = follow::start(
        Arc::clone(&api),
        vec!["api".parse().expect("service")],
        Duration::from_secs(3600),
        &work,
        sender,
    );

    state.commit_files(
        &[("desired/client.yaml", "versions:\n  api: acme-1.0.0_1\n")],
        "Roll out api",
        &Person::bob(),
    );
    let expected: DesiredVersions = [(
        "api".parse().expect("service"),
        "acme-1.0.0_1".parse().expect("version"),
    )]
    .into_iter()
    .collect();
    tokio::time::timeout(LIMIT, desired.wait_for(|map| *map == expected))
        .await
        .expect("the new version in time")
        .expect("the follower runs");
    assert_eq!(follow::read_cache(&work), Some(expected));

    // The version is desired but has no image (nothing builds it here): the updater
    // waits for one, which it tells apart from a failed download.
    let images = seams(&api).images;
    let (service, version) = (
        "api".parse().expect("service"),
        "acme-1.0.0_1".parse().expect("version"),
    );
    let dest = work.join("api.zip");
    let absent = images
        .fetch(&service, &version, &dest)
        .await
        .expect_err("no image");
    assert!(ApiImages::is_absent(&absent), "{absent}");
    distribution.shutdown().await.expect("shutdown");
    let unreachable = images
        .fetch(&service, &version, &dest)
        .await
        .expect_err("no distribution");
    assert!(!ApiImages::is_absent(&unreachable), "{unreachable}");
}
