//! Each distribution's commit in force: the last record replaces the one before, per
//! distribution, and reads back whole.

use chrono::TimeDelta;

use super::Ctx;

pub async fn the_last_record_is_read_back_per_distribution(ctx: Ctx) {
    let commits = ctx.store.commits_in_force();
    assert_eq!(commits.current("prod").await.expect("read"), None);
    let first = commits
        .record("prod", "main", "aaaa")
        .await
        .expect("record");
    assert_eq!(
        (first.branch.as_str(), first.revision.as_str()),
        ("main", "aaaa")
    );
    assert_eq!(first.at, ctx.store.now());
    assert_eq!(commits.current("prod").await.expect("read"), Some(first));

    ctx.clock.advance(TimeDelta::seconds(3));
    let second = commits
        .record("prod", "live", "bbbb")
        .await
        .expect("record");
    commits
        .record("test", "main", "cccc")
        .await
        .expect("record");
    assert_eq!(
        commits.current("prod").await.expect("read"),
        Some(second),
        "a new record replaces the distribution's last one, branch and time included"
    );
    assert_eq!(
        commits
            .current("test")
            .await
            .expect("read")
            .map(|c| c.revision),
        Some("cccc".to_owned()),
        "each distribution has its own record"
    );
}
