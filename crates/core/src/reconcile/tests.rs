//! Table tests of the reconcile plan.

use std::collections::{BTreeMap, BTreeSet};

use super::{Build, BuildKey, plan_builds};

/// One case, written as `service=version` strings; images are `service=version` too.
struct Input {
    developer: &'static [&'static str],
    client: &'static [&'static str],
    have_developer: &'static [&'static str],
    have_client: &'static [&'static str],
    /// `d:service=version` or `c:service=version`.
    failed: &'static [&'static str],
}

fn pair(text: &str) -> (String, String) {
    let (s, v) = text.split_once('=').expect("service=version");
    (s.to_owned(), v.to_owned())
}

fn map<V: std::str::FromStr>(pairs: &[&str]) -> BTreeMap<crate::service::ServiceName, V>
where
    V::Err: std::fmt::Debug,
{
    pairs
        .iter()
        .map(|p| {
            let (s, v) = pair(p);
            (s.parse().expect("service"), v.parse().expect("version"))
        })
        .collect()
}

/// Renders a plan as `dev service=version` / `client service=version<-from` lines.
fn render(plan: &[Build]) -> Vec<String> {
    plan.iter()
        .map(|b| match b {
            Build::Developer { service, version } => format!("dev {service}={version}"),
            Build::Client {
                service,
                version,
                from,
            } => format!("client {service}={version}<-{from}"),
            // plan_builds never plans checks; `generations` has its own tests.
            Build::Generation { service, .. } => format!("generation check {service}"),
        })
        .collect()
}

fn check(input: Input, expected: &[&str]) {
    let have_developer: BTreeSet<(String, String)> =
        input.have_developer.iter().map(|p| pair(p)).collect();
    let have_client: BTreeSet<(String, String)> =
        input.have_client.iter().map(|p| pair(p)).collect();
    let failed: BTreeSet<BuildKey> = input
        .failed
        .iter()
        .map(|f| {
            let (kind, rest) = f.split_once(':').expect("d: or c:");
            let (s, v) = pair(rest);
            let service = s.parse().expect("service");
            match kind {
                "d" => BuildKey::Developer(service, v.parse().expect("version")),
                _ => BuildKey::Client(service, v.parse().expect("version")),
            }
        })
        .collect();
    let plan = plan_builds(
        &map(input.developer),
        &map(input.client),
        &|s, v| have_developer.contains(&(s.to_string(), v.to_string())),
        &|s, v| have_client.contains(&(s.to_string(), v.to_string())),
        &failed,
    );
    assert_eq!(render(&plan), expected);
    // Every client build comes after the developer build it needs, when that is planned.
    for (i, build) in plan.iter().enumerate() {
        if let Build::Client { service, from, .. } = build {
            let dev = BuildKey::Developer(service.clone(), from.clone());
            if let Some(j) = plan.iter().position(|b| b.key() == dev) {
                assert!(j < i, "{build:?} is planned before its developer build");
            }
        }
    }
}

const NONE: &[&str] = &[];

#[test]
fn plans_builds_for_missing_images() {
    let cases: Vec<(&str, Input, &[&str])> = vec![
        (
            "everything built: nothing to do",
            Input {
                developer: &["api=orbit-1.0.0"],
                client: &["api=orbit-1.0.0"],
                have_developer: &["api=orbit-1.0.0"],
                have_client: &["api=orbit-1.0.0"],
                failed: NONE,
            },
            &[],
        ),
        (
            "a new developer version: developer build, then the client build it feeds",
            Input {
                developer: &["api=orbit-1.0.1", "web=orbit-1.0.0"],
                client: &["api=orbit-1.0.1", "web=orbit-1.0.0"],
                have_developer: &["web=orbit-1.0.0"],
                have_client: &["web=orbit-1.0.0"],
                failed: NONE,
            },
            &["dev api=orbit-1.0.1", "client api=orbit-1.0.1<-orbit-1.0.1"],
        ),
        (
            "a new client generation over an existing developer image: client build only",
            Input {
                developer: &["db=orbit-1.0.0"],
                client: &["db=orbit-1.0.0_2"],
                have_developer: &["db=orbit-1.0.0"],
                have_client: &["db=orbit-1.0.0", "db=orbit-1.0.0_1"],
                failed: NONE,
            },
            &["client db=orbit-1.0.0_2<-orbit-1.0.0"],
        ),
        (
            "a held-back client version whose developer image is gone: both, once",
            Input {
                developer: &["pay=orbit-1.12.0"],
                client: &["pay=orbit-1.11.4_2"],
                have_developer: &["pay=orbit-1.12.0"],
                have_client: NONE,
                failed: NONE,
            },
            &[
                "dev pay=orbit-1.11.4",
                "client pay=orbit-1.11.4_2<-orbit-1.11.4",
            ],
        ),
        (
            "developer builds first, each group sorted by service",
            Input {
                developer: &["web=orbit-2.0.0", "api=orbit-2.0.0"],
                client: &["web=orbit-2.0.0", "api=orbit-2.0.0"],
                have_developer: NONE,
                have_client: NONE,
                failed: NONE,
            },
            &[
                "dev api=orbit-2.0.0",
                "dev web=orbit-2.0.0",
                "client api=orbit-2.0.0<-orbit-2.0.0",
                "client web=orbit-2.0.0<-orbit-2.0.0",
            ],
        ),
        (
            "a failed developer build is not planned again and blocks its client build",
            Input {
                developer: &["api=orbit-1.0.1", "web=orbit-1.0.1"],
                client: &["api=orbit-1.0.1", "web=orbit-1.0.1"],
                have_developer: NONE,
                have_client: NONE,
                failed: &["d:api=orbit-1.0.1"],
            },
            &["dev web=orbit-1.0.1", "client web=orbit-1.0.1<-orbit-1.0.1"],
        ),
        (
            "a failed client build is not planned again; its developer build still is",
            Input {
                developer: &["api=orbit-1.0.1"],
                client: &["api=orbit-1.0.1"],
                have_developer: NONE,
                have_client: NONE,
                failed: &["c:api=orbit-1.0.1"],
            },
            &["dev api=orbit-1.0.1"],
        ),
        (
            "a failure of another version does not block this one",
            Input {
                developer: &["api=orbit-1.0.2"],
                client: NONE,
                have_developer: NONE,
                have_client: NONE,
                failed: &["d:api=orbit-1.0.1"],
            },
            &["dev api=orbit-1.0.2"],
        ),
        (
            "images are per service: the same version of another service does not count",
            Input {
                developer: &["api=orbit-1.0.0"],
                client: NONE,
                have_developer: &["web=orbit-1.0.0"],
                have_client: NONE,
                failed: NONE,
            },
            &["dev api=orbit-1.0.0"],
        ),
    ];
    for (name, input, expected) in cases {
        eprintln!("case: {name}");
        check(input, expected);
    }
}
