//! Rollouts: one record per distribution and service, replaced by the next rollout and
//! listed by distribution with every field as written.

use vupdate_store::model::rollouts::{RolloutRecord, RolloutState, WaveTimes};

use super::Ctx;
use super::fixtures::{at, service};

fn rollout(distribution: &str, svc: &str, to: &str, state: RolloutState) -> RolloutRecord {
    RolloutRecord {
        distribution: distribution.to_owned(),
        service: service(svc),
        from_version: "jetto-1.0.0".parse().expect("version"),
        to_version: to.parse().expect("version"),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        state,
        current_wave: 1,
        waves: vec![
            WaveTimes {
                name: "canary".to_owned(),
                reached_at: Some(at(10)),
                promoted_at: Some(at(20)),
            },
            WaveTimes {
                name: "rest".to_owned(),
                reached_at: Some(at(20)),
                promoted_at: None,
            },
        ],
        started_at: at(10),
        halted_because: (state == RolloutState::Halted).then(|| "2 of 2 failed".to_owned()),
    }
}

pub async fn a_rollout_replaces_the_service_s_last_and_lists_by_distribution(ctx: Ctx) {
    let rollouts = ctx.store.rollouts();
    let first = rollout("jetto", "api", "jetto-1.1.0", RolloutState::Rolling);
    rollouts.put(&first).await.expect("put");
    rollouts
        .put(&rollout("jetto", "web", "jetto-2.0.0", RolloutState::Done))
        .await
        .expect("put web");
    rollouts
        .put(&rollout("other", "api", "jetto-1.1.0", RolloutState::Done))
        .await
        .expect("put other");
    assert_eq!(
        rollouts.list("jetto").await.expect("list"),
        [
            first,
            rollout("jetto", "web", "jetto-2.0.0", RolloutState::Done)
        ]
    );
    let halted = rollout("jetto", "api", "jetto-1.2.0", RolloutState::Halted);
    rollouts.put(&halted).await.expect("replace");
    let listed = rollouts.list("jetto").await.expect("list again");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], halted);
    let invalid = RolloutRecord {
        current_wave: 2,
        ..halted
    };
    rollouts
        .put(&invalid)
        .await
        .expect_err("a current wave past the last is refused");
}
