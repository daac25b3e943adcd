//! `vupdate status`: where the fleet stands against the state repo, from the
//! distribution's `status` and `instanceCommits`; with `--wait`, looks again every
//! [`LOOK_EVERY`] until it has arrived (exit 0), cannot arrive without a new commit
//! (exit 4, at once: a deploy pipeline should not sit out its timeout on a failed build),
//! or `--timeout` passes (exit 3). `fleet` decides, `render` prints.

mod fleet;
mod render;

use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::json;
use vupdate_client::Client;

use self::fleet::{Fleet, HostCommit, Status, Verdict};
use crate::args::{StatusArgs, StatusFormat};
use crate::exit::WaitEnded;

/// How often `--wait` looks again.
const LOOK_EVERY: Duration = Duration::from_secs(2);

const STATUS: &str = "query FleetStatus { distributionInfo { distribution } status { synced \
    stateRepo { branch commit fetchError } services { service sync desiredClientVersion heldBack \
    builds { target version state task message } \
    instances { instance role version onDesired updateToVersion updateError } } \
    rollouts { service fromVersion toVersion state currentWave haltedBecause } \
    knownBadVersions { service version reason } } }";

const NOT_ON: &str = "query HostsNotOn($commit: String!) { instanceCommits(notOn: $commit) { instance stateCommit } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    distribution_info: Info,
    status: Status,
}

#[derive(Deserialize)]
struct Info {
    distribution: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotOn {
    instance_commits: Vec<HostCommit>,
}

/// Prints where the fleet stands; with `--wait`, once it has arrived or cannot.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let client = crate::remote::client(&args.distribution, &args.access)?;
    crate::remote::runtime()?.block_on(async {
        if !args.wait {
            let fleet = look(&client, args).await?;
            print(&fleet, args.format)?;
            return Ok(());
        }
        wait(&client, args).await
    })
}

async fn wait(client: &Client, args: &StatusArgs) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut said: Vec<String> = Vec::new();
    loop {
        let (lines, fleet) = match look(client, args).await {
            Ok(fleet) => {
                let verdict = fleet.verdict();
                if !matches!(verdict, Verdict::Waiting(_)) {
                    print(&fleet, args.format)?;
                }
                match verdict {
                    Verdict::Arrived => {
                        eprintln!("every service is synced and every host is on the commit");
                        return Ok(());
                    }
                    Verdict::Stuck(lines) => {
                        return Err(WaitEnded::stuck(format!(
                            "it cannot get there without a new commit:\n  {}",
                            lines.join("\n  ")
                        ))
                        .into());
                    }
                    Verdict::Waiting(lines) => (lines, Some(fleet)),
                }
            }
            // A distribution restarting (a self-update, say) is waited for too.
            Err(error) if is_transient(&error) => (vec![format!("{error:#}")], None),
            Err(error) => return Err(error),
        };
        if lines != said {
            eprintln!("waiting: {}", lines.join("; "));
            said = lines;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            if let Some(fleet) = &fleet {
                print(fleet, args.format)?;
            }
            return Err(WaitEnded::timed_out(format!(
                "not there after {}:\n  {}",
                humantime::format_duration(args.timeout),
                said.join("\n  ")
            ))
            .into());
        }
        tokio::time::sleep(LOOK_EVERY.min(deadline - now)).await;
    }
}

/// One look: `status`, then the hosts not on the target commit.
async fn look(client: &Client, args: &StatusArgs) -> anyhow::Result<Fleet> {
    let url = &args.distribution;
    let answer: Answer = client
        .graphql(STATUS, json!({}))
        .await
        .with_context(|| format!("asking {url} for its status"))?;
    let target = args
        .commit
        .clone()
        .or_else(|| answer.status.state_repo.commit.clone());
    let not_on_target = match &target {
        None => Some(Vec::new()),
        Some(commit) => {
            match client
                .graphql::<NotOn>(NOT_ON, json!({ "commit": commit }))
                .await
            {
                Ok(answer) => Some(answer.instance_commits),
                // An abbreviated commit the distribution has not fetched yet.
                Err(error) if error.code() == Some("NOT_FOUND") && args.wait => None,
                Err(error) => {
                    return Err(error).with_context(|| {
                        format!("asking {url} which hosts are not on commit {commit}")
                    });
                }
            }
        }
    };
    Ok(Fleet {
        distribution: answer.distribution_info.distribution,
        status: answer.status,
        target,
        not_on_target,
    })
}

fn print(fleet: &Fleet, format: StatusFormat) -> anyhow::Result<()> {
    match format {
        StatusFormat::Text => print!("{}", render::text(fleet)),
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(fleet)?),
    }
    Ok(())
}

/// Whether `error` is the distribution being away for a moment.
fn is_transient(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<vupdate_client::ClientError>())
        .any(vupdate_client::ClientError::is_transient)
}
