//! Two replicas' lease keepers on one store (two connections to one SQLite file, which
//! applies the same lease rule as MongoDB): one holds at a time, a released lease is taken
//! over at once, a dead holder's when it ends, and guarded work runs only while held.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use vupdate_store::{Store, StoreConfig};

use super::*;

const CONFIG: LeaseConfig = LeaseConfig {
    ttl: Duration::from_millis(600),
    renew_every: Duration::from_millis(100),
};
/// The bound of every wait: far above what any step takes.
const PATIENCE: Duration = Duration::from_secs(20);

async fn store(dir: &tempfile::TempDir) -> Store {
    vupdate_store::open(&StoreConfig::Sqlite {
        path: dir.path().join("store.sqlite"),
    })
    .await
    .expect("open the store")
}

async fn until_held(leadership: &Leadership) -> Lease {
    let mut held = leadership.subscribe();
    let lease = tokio::time::timeout(PATIENCE, held.wait_for(Option::is_some))
        .await
        .expect("the lease is taken in time")
        .expect("the keeper runs")
        .clone();
    lease.expect("held")
}

/// Another replica takes over the lease `mine` holds, behind its keeper's back (as if this
/// replica had been paused past its expiry).
async fn take_over_behind_its_back(shared: &Store, mine: &Leadership) {
    let held = mine.current().expect("held");
    shared
        .leases()
        .release(&held)
        .await
        .expect("release behind its back");
    shared
        .leases()
        .take(LEASE_NAME, "thief", Duration::from_secs(60))
        .await
        .expect("take")
        .expect("taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_holds_and_the_other_takes_over_a_release_and_a_death() {
    let dir = tempfile::TempDir::new().expect("dir");
    let (stop_a, stopped_a) = watch::channel(false);
    let (_stop_b, stopped_b) = watch::channel(false);
    let (a, keeper_a) = Leadership::keep(store(&dir).await, "a".into(), CONFIG, stopped_a);
    let first = until_held(&a).await;
    let (b, keeper_b) = Leadership::keep(store(&dir).await, "b".into(), CONFIG, stopped_b);
    // Several renewal periods: `b` keeps trying and never gets it while `a` renews.
    for _ in 0..5 {
        let renewed = tokio::time::timeout(PATIENCE, a.subscribe().changed()).await;
        assert!(renewed.is_ok(), "a renews");
        assert!(!b.is_held(), "b never holds while a renews");
    }
    a.fence().await.expect("the holder passes the fence");
    assert!(b.fence().await.is_err(), "a standby is fenced off");

    // `a` shuts down: it releases, and `b` takes over with the next token.
    stop_a.send(true).expect("stop a");
    tokio::time::timeout(PATIENCE, keeper_a)
        .await
        .expect("a's keeper ends")
        .expect("a's keeper does not panic");
    let second = until_held(&b).await;
    assert_eq!(second.token, first.token + 1);
    assert!(!a.is_held());

    // `b` dies without releasing: a third replica takes over once its lease ended.
    keeper_b.abort();
    let (_stop_c, stopped_c) = watch::channel(false);
    let (c, _keeper_c) = Leadership::keep(store(&dir).await, "c".into(), CONFIG, stopped_c);
    let third = until_held(&c).await;
    assert_eq!(third.token, second.token + 1);
    assert!(
        third.expires - chrono::Utc::now() <= chrono::TimeDelta::milliseconds(600),
        "a fresh lease lasts the ttl"
    );
    let refused = b.fence().await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_work_runs_only_while_held_and_stops_with_the_lease() {
    let dir = tempfile::TempDir::new().expect("dir");
    let shared = store(&dir).await;
    // Another holder has the lease first.
    let other = shared
        .leases()
        .take(LEASE_NAME, "other", Duration::from_secs(60))
        .await
        .expect("take")
        .expect("taken");
    let (stop, stopped) = watch::channel(false);
    let (mine, _keeper) =
        Leadership::keep(store(&dir).await, "mine".into(), CONFIG, stopped.clone());
    let started = Arc::new(AtomicUsize::new(0));
    let (running_tx, mut running) = watch::channel(false);
    let running_tx = Arc::new(running_tx);
    let work = {
        let (mine, started, running_tx) = (mine.clone(), started.clone(), running_tx.clone());
        tokio::spawn(async move {
            mine.while_held(stopped, |_| {
                started.fetch_add(1, Ordering::SeqCst);
                let running_tx = running_tx.clone();
                async move {
                    running_tx.send_replace(true);
                    // Cancelled from outside: marks itself stopped when dropped.
                    let _guard = Reset(running_tx);
                    std::future::pending::<()>().await;
                }
            })
            .await;
        })
    };
    // A few renewal periods pass without the work starting.
    for _ in 0..3 {
        let _ = tokio::time::timeout(CONFIG.renew_every, running.changed()).await;
        assert_eq!(started.load(Ordering::SeqCst), 0, "not held: not started");
    }
    assert!(shared.leases().release(&other).await.expect("release"));
    tokio::time::timeout(PATIENCE, running.wait_for(|r| *r))
        .await
        .expect("the work starts once the lease is taken")
        .expect("running");
    assert_eq!(started.load(Ordering::SeqCst), 1);

    // Someone takes the lease over (as if this replica had been paused past its expiry):
    // the keeper's next renewal fails and the work is stopped.
    take_over_behind_its_back(&shared, &mine).await;
    tokio::time::timeout(PATIENCE, running.wait_for(|r| !*r))
        .await
        .expect("the work stops when the lease is lost")
        .expect("stopped");
    assert!(!mine.is_held());
    stop.send(true).expect("stop");
    tokio::time::timeout(PATIENCE, work)
        .await
        .expect("while_held ends at stop")
        .expect("no panic");
}

/// Sets the flag back to false when dropped (the work was cancelled).
struct Reset(Arc<watch::Sender<bool>>);

impl Drop for Reset {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

#[tokio::test]
async fn a_stop_ends_the_guard_even_when_the_work_ended_first() {
    // Work that ends at the stop itself (expiry's loop) must not leave the guard waiting
    // for a lease change that never comes (a sole lease never changes).
    let sole = Leadership::sole("only");
    let (stop, stopped) = watch::channel(false);
    let work_stopped = stopped.clone();
    let guard = tokio::spawn(async move {
        sole.while_held(stopped, move |_| {
            let mut work_stopped = work_stopped.clone();
            async move {
                let _ = work_stopped.wait_for(|stop| *stop).await.map(|_| ());
            }
        })
        .await;
    });
    stop.send(true).expect("stop");
    tokio::time::timeout(PATIENCE, guard)
        .await
        .expect("the guard ends at the stop")
        .expect("no panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_view_is_held_only_after_its_set_up_and_lost_with_the_lease() {
    let dir = tempfile::TempDir::new().expect("dir");
    let shared = store(&dir).await;
    let (_stop, stopped) = watch::channel(false);
    let (mine, _keeper) =
        Leadership::keep(store(&dir).await, "mine".into(), CONFIG, stopped.clone());
    let (go_tx, go) = watch::channel(false);
    let prepared_for = Arc::new(AtomicUsize::new(0));
    let (view, _task) = {
        let prepared_for = Arc::clone(&prepared_for);
        mine.prepared(stopped, move |lease| {
            let (mut go, prepared_for) = (go.clone(), Arc::clone(&prepared_for));
            async move {
                let _ = go.wait_for(|go| *go).await.map(drop);
                prepared_for.store(
                    usize::try_from(lease.token).expect("token"),
                    Ordering::SeqCst,
                );
            }
        })
    };
    let lease = until_held(&mine).await;
    // Held by the keeper, but the set-up has not ended: the view is not held yet.
    for _ in 0..3 {
        let _ = tokio::time::timeout(CONFIG.renew_every, mine.subscribe().changed()).await;
        assert!(!view.is_held(), "held before its set-up ended");
    }
    go_tx.send_replace(true);
    let viewed = until_held(&view).await;
    assert_eq!(viewed.token, lease.token);
    assert_eq!(prepared_for.load(Ordering::SeqCst) as i64, lease.token);
    view.fence()
        .await
        .expect("the prepared holder passes the fence");

    // Taken over behind its back: the view is lost with the lease, and fenced off.
    take_over_behind_its_back(&shared, &mine).await;
    let mut watched = view.subscribe();
    tokio::time::timeout(PATIENCE, watched.wait_for(Option::is_none))
        .await
        .expect("the view is lost with the lease")
        .expect("the view's task runs");
    assert!(matches!(
        view.fence().await,
        Err(StoreError::LeaseLost { .. })
    ));
}

#[tokio::test]
async fn a_builder_is_fenced_off_once_its_lease_ran_out_before_anyone_takes_over() {
    let dir = tempfile::TempDir::new().expect("dir");
    let store = store(&dir).await;
    let lease = store
        .leases()
        .take(LEASE_NAME, "a", Duration::from_millis(300))
        .await
        .expect("take")
        .expect("taken");
    let builder = |holder: &str, token: i64| crate::auth::Principal {
        account: "builder".to_owned(),
        role: crate::auth::Role::Builder,
        kind: crate::auth::PrincipalKind::Service,
        must_change_password: false,
        lease: Some(IssuedUnder {
            holder: holder.to_owned(),
            token,
        }),
    };
    fence_builder(&store, &builder("a", lease.token))
        .await
        .expect("in force");
    let other = fence_builder(&store, &builder("a", lease.token + 1)).await;
    assert!(
        matches!(other, Err(StoreError::LeaseLost { .. })),
        "{other:?}"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let ran_out = fence_builder(&store, &builder("a", lease.token)).await;
    assert!(
        matches!(&ran_out, Err(StoreError::LeaseLost { now, .. }) if now.contains("nobody holds it since")),
        "{ran_out:?}"
    );
    let unleased = crate::auth::Principal {
        lease: None,
        ..builder("a", 0)
    };
    fence_builder(&store, &unleased)
        .await
        .expect("a token issued under no lease is not a holder's builder's");
}
