//! The wave decisions: membership, counting, halting, promoting, and what an instance gets.

use super::*;

fn wave(name: &str, instances: &[&str], labels: &[(&str, &str)]) -> Wave {
    Wave {
        name: name.to_owned(),
        instances: instances.iter().map(|s| (*s).to_owned()).collect(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        healthy_for: Duration::from_secs(60),
        max_failures: MaxFailures::Count(0),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("a time")
}

fn member(instance: &str, since: Option<i64>, failed: bool) -> Member {
    Member {
        instance: instance.to_owned(),
        running_since: since.map(at),
        failed,
    }
}

#[test]
fn an_instance_is_in_the_first_wave_that_selects_it_else_the_last() {
    let waves = [
        wave("canary", &["web-canary-*"], &[]),
        wave("eu", &[], &[("zone", "eu")]),
        wave("eu-web", &["web-*"], &[("zone", "eu")]),
        wave("rest", &["nothing-matches"], &[]),
    ];
    let none = labels(&[]);
    assert_eq!(wave_of(&waves, "web-canary-1", &none), 0);
    assert_eq!(
        wave_of(&waves, "web-canary-1", &labels(&[("zone", "eu")])),
        0
    );
    assert_eq!(wave_of(&waves, "db-1", &labels(&[("zone", "eu")])), 1);
    // Patterns and labels must all match: a label of another value is not enough.
    assert_eq!(wave_of(&waves, "web-2", &labels(&[("zone", "us")])), 3);
    assert_eq!(wave_of(&waves, "web-2", &none), 3);
    let both = [
        wave("a", &["web-*"], &[("ring", "canary")]),
        wave("b", &["x"], &[]),
    ];
    assert_eq!(wave_of(&both, "web-1", &labels(&[("ring", "canary")])), 0);
    assert_eq!(wave_of(&both, "web-1", &none), 1);
    assert_eq!(wave_of(&both, "db-1", &labels(&[("ring", "canary")])), 1);
}

#[test]
fn a_wave_promotes_once_every_instance_ran_the_version_for_healthy_for() {
    let wave = wave("canary", &["*"], &[]);
    let members = [member("a", Some(0), false), member("b", Some(30), false)];
    assert_eq!(step(&wave, &members, at(59)), Step::Wait);
    assert_eq!(step(&wave, &members, at(89)), Step::Wait);
    assert_eq!(step(&wave, &members, at(90)), Step::Promote);
    // One not updated yet holds the wave.
    let waiting = [member("a", Some(0), false), member("b", None, false)];
    assert_eq!(step(&wave, &waiting, at(1_000)), Step::Wait);
    assert_eq!(
        WaveCount::of(&wave, &waiting, at(1_000)),
        WaveCount {
            instances: 2,
            updated: 1,
            healthy: 1,
            failed: 0
        }
    );
    // A wave with no instance is passed.
    assert_eq!(step(&wave, &[], at(0)), Step::Promote);
}

#[test]
fn failures_beyond_max_failures_halt_and_within_it_do_not() {
    let mut wave = wave("canary", &["*"], &[]);
    let members = [
        member("a", Some(0), false),
        member("b", None, true),
        member("c", Some(0), false),
        member("d", Some(0), false),
    ];
    assert_eq!(
        step(&wave, &members, at(100)),
        Step::Halt {
            failed: 1,
            allowed: 0
        }
    );
    wave.max_failures = MaxFailures::Count(1);
    assert_eq!(step(&wave, &members, at(100)), Step::Promote);
    // 25% of 4 is 1; 24% of 4 rounds down to 0.
    wave.max_failures = MaxFailures::Share(25);
    assert_eq!(step(&wave, &members, at(100)), Step::Promote);
    wave.max_failures = MaxFailures::Share(24);
    assert!(matches!(step(&wave, &members, at(100)), Step::Halt { .. }));
    wave.max_failures = MaxFailures::Share(100);
    let all_failed = [member("a", None, true), member("b", None, true)];
    assert_eq!(step(&wave, &all_failed, at(0)), Step::Promote);
}

#[test]
fn an_instance_gets_the_new_version_only_once_its_wave_is_reached() {
    let v = |text: &str| text.parse::<ClientVersion>().expect("version");
    let svc = |text: &str| text.parse::<ServiceName>().expect("service");
    let rollouts = BTreeMap::from([(
        svc("web"),
        Progress {
            from: v("d-1.0.0"),
            to: v("d-1.1.0"),
            reached: 1,
        },
    )]);
    let desired = BTreeMap::from([(svc("web"), v("d-1.1.0")), (svc("db"), v("d-2.0.0"))]);
    for (wave, web) in [(0, "d-1.1.0"), (1, "d-1.1.0"), (2, "d-1.0.0")] {
        let got = desired_for(desired.clone(), &rollouts, |_| wave);
        assert_eq!(got[&svc("web")], v(web), "wave {wave}");
        assert_eq!(got[&svc("db")], v("d-2.0.0"), "no rollout: as desired");
    }
    // A rollout of another version than the one desired (a newer commit) changes nothing.
    let newer = BTreeMap::from([(svc("web"), v("d-1.2.0"))]);
    assert_eq!(desired_for(newer.clone(), &rollouts, |_| 2), newer);
}
