//! How fast a consumer takes its provider's change: from a commit that changes the
//! provider's desired developer version to the consumer's commit of the new desired client
//! version (`autoUpdate: commit`), with every image already present on the consumer, so
//! what is measured is the mesh itself: the provider's state watcher, the offer reaching
//! the consumer (by the subscription, or by polls alone), and the consumer's commit.
//!
//! Two real distributions in this process, each over a Git state repo in a temp dir, with
//! the embedded store; the provider's version flips between two each round.
//!
//! `cargo bench -p vupdate-distribution --bench mesh`; `MESH_BENCH_ROUNDS` (default 40)
//! sets the rounds per mode, `MESH_BENCH_POLL` (default 1s) the poll interval of the
//! polling-only mode.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::images::ImageVersion;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_state::{Author, StateEdit};
use vupdate_test_support::{GitRepo, Person};

use support::{BenchResult, Latencies, benching, env_or};

const VERSIONS: [&str; 2] = ["acme-1.0.0", "acme-1.0.1"];

/// A distribution in this process over a state repo with a work tree.
struct Node {
    distribution: Distribution,
    repo: GitRepo,
    _data: TempDir,
}

async fn start(name: &str, files: &[(&str, String)], extra: &str) -> BenchResult<Node> {
    let repo = GitRepo::init();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    repo.commit_files(&refs, "Bench state", &Person::alice());
    let data = TempDir::new()?;
    let yaml = format!(
        "name: {name}\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\n  pollInterval: 1h\n{extra}",
        repo.path().display()
    );
    let config = DistributionConfig::from_str(&yaml, data.path())?;
    let distribution = Distribution::start(
        &config,
        StartOptions {
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
            ..StartOptions::default()
        },
    )
    .await?;
    Ok(Node {
        distribution,
        repo,
        _data: data,
    })
}

/// The provider `acme` with both versions' developer images, and a consumer `mirror`
/// (token set as its secret) with every developer and client image it will need.
async fn pair(mesh: &str) -> BenchResult<(Node, Node)> {
    let provider = start(
        "acme",
        &[
            ("vupdate.yaml", "schema: 1\n".to_owned()),
            ("services/api.yaml", String::new()),
            ("profiles.yaml", "profiles:\n  partner: [api]\n".to_owned()),
            (
                "consumers.yaml",
                "consumers:\n  mirror:\n    profile: partner\n".to_owned(),
            ),
            (
                "desired/developer.yaml",
                format!("versions:\n  api: {}\n", VERSIONS[0]),
            ),
        ],
        "",
    )
    .await?;
    let context = provider.distribution.context();
    // The commit that names `mirror` in consumers.yaml makes its account.
    let deadline = Instant::now() + Duration::from_secs(60);
    while context.auth.account("mirror").await.is_err() {
        if Instant::now() > deadline {
            return Err("the provider made no account for its consumer within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = context.auth.issue_access_token("mirror").await?;
    let api = "api".parse()?;
    for version in VERSIONS {
        let image = format!("developer image of {version}").into_bytes();
        let developer = ImageVersion::Developer(version.parse()?);
        context.images.put_bytes(&api, &developer, &image).await?;
    }
    let base = format!("http://{}", provider.distribution.local_addr());
    let consumer = start(
        "mirror",
        &[
            ("vupdate.yaml", "schema: 1\n".to_owned()),
            ("services/api.yaml", "client: {}\n".to_owned()),
            ("desired/client.yaml", "versions: {}\n".to_owned()),
            (
                "providers.yaml",
                format!(
                    "providers:\n  acme:\n    url: {base}\n    accessTokenSecret: acme-token\n    autoUpdate: commit\n"
                ),
            ),
        ],
        mesh,
    )
    .await?;
    let context = consumer.distribution.context();
    for version in VERSIONS {
        let developer = ImageVersion::Developer(version.parse()?);
        let client = ImageVersion::Client(version.parse()?);
        context
            .images
            .put_bytes(
                &api,
                &developer,
                format!("developer image of {version}").as_bytes(),
            )
            .await?;
        context
            .images
            .put_bytes(
                &api,
                &client,
                format!("client image of {version}").as_bytes(),
            )
            .await?;
    }
    context.secrets.set("acme-token", &token).await?;
    Ok((provider, consumer))
}

/// Commits `version` as the provider's desired version of `api`.
async fn release(provider: &Node, version: &str) -> BenchResult<()> {
    let context = provider.distribution.context();
    let repo = std::sync::Arc::clone(&context.repo);
    let list: BTreeMap<_, _> = [("api".parse()?, version.parse()?)].into_iter().collect();
    tokio::task::spawn_blocking(move || {
        let tip = repo.head()?;
        repo.edit(
            StateEdit::SetDesiredDeveloper(list),
            &tip.id,
            &Author::new("Bench", "bench@example.invalid"),
            "release",
        )
    })
    .await??;
    context.watch_trigger.trigger();
    Ok(())
}

/// Waits until the consumer's branch desires `version` of `api`; fails after a minute.
async fn committed(consumer: &Node, version: &str) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = format!("api: {version}");
    loop {
        let text = consumer.repo.show("main", "desired/client.yaml");
        if text.contains(&wanted) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the consumer did not commit {version} within 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Rounds of provider change -> consumer commit with `mesh` settings.
async fn measure(mesh: &str, rounds: usize) -> BenchResult<Latencies> {
    let (provider, consumer) = pair(mesh).await?;
    // The first offer takes the first version (and records its developer version).
    committed(&consumer, VERSIONS[0]).await?;
    let mut latencies = Latencies::default();
    for round in 1..=rounds + 1 {
        let version = VERSIONS[round % 2];
        let started = Instant::now();
        release(&provider, version).await?;
        committed(&consumer, version).await?;
        // The first flip also records the second developer version: a warm-up.
        if round > 1 {
            latencies.record(started.elapsed());
        }
    }
    consumer.distribution.shutdown().await?;
    provider.distribution.shutdown().await?;
    Ok(latencies)
}

fn main() -> BenchResult<()> {
    let rounds = if benching() {
        env_or("MESH_BENCH_ROUNDS", 40usize)?
    } else {
        3
    };
    let poll: String = env_or("MESH_BENCH_POLL", "1s".to_owned())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut subscription = measure("mesh:\n  pollInterval: 1h\n", rounds).await?;
        println!(
            "provider change -> consumer commit, subscription ({} rounds): {}",
            subscription.len(),
            subscription.summary()
        );
        let mut polling = measure(
            &format!("mesh:\n  subscription: false\n  pollInterval: {poll}\n"),
            rounds,
        )
        .await?;
        println!(
            "provider change -> consumer commit, polling every {poll} only ({} rounds): {}",
            polling.len(),
            polling.summary()
        );
        Ok(())
    })
}
