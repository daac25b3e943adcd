//! `vupdate state plan` on a large state repo: 2,000 services, 10,000 reporting instances,
//! a change that bumps 200 versions, renames 10 services and removes 10.
//!
//! - `plan/load_both_compute_render`: what the command does besides asking a
//!   distribution: load and validate BASE and HEAD from Git, compute the plan with every
//!   fact given (images, instances, known-bad versions), render it as Markdown.
//! - `plan/compute_only`: [`Plan::compute`] on the loaded states and facts.
//!
//! Run: `scripts/bench-plan` (or `cargo bench -p vupdate-state --bench plan`); the
//! target is under 1 s for the first.

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vupdate_state::plan::{Images, InstanceFact, render};
use vupdate_state::{Facts, KnownBad, Plan, State, StateRepo};
use vupdate_test_support::Person;

mod common;

use common::{SERVICES, build_repo, service};

const INSTANCES: usize = 10_000;

fn facts(base: &State) -> Facts {
    let versions = base.effective_client_versions();
    let instances = (0..INSTANCES)
        .map(|i| {
            let name = service(i % SERVICES).parse().expect("name");
            InstanceFact {
                instance: format!("vm-{i:05}"),
                version: versions.get(&name).cloned(),
                service: name,
                role: (i % 2 == 0).then(|| format!("r{}", i % 4)),
            }
        })
        .collect();
    let developer: BTreeSet<_> = base
        .desired
        .developer
        .iter()
        .map(|(s, v)| (s.clone(), v.clone()))
        .collect();
    let client: BTreeSet<_> = versions.into_iter().collect();
    let known_bad = (0..50)
        .map(|i| KnownBad {
            service: service(i * 40).parse().expect("name"),
            version: "big-2.0.0".parse().expect("version"),
            reason: "rolled back: health check failed".to_owned(),
        })
        .collect();
    Facts {
        distribution: Some("big".to_owned()),
        images: Some(Images { developer, client }),
        instances: Some(instances),
        known_bad: Some(known_bad),
    }
}

fn bench(c: &mut Criterion) {
    let repo = build_repo();
    let base_id = repo.rev_parse("HEAD");
    let mut developer = repo.read("desired/developer.yaml");
    for i in (0..SERVICES).step_by(10) {
        let name = service(i);
        let line = format!("  {name}: big-1.{}.{}\n", i / 100, i % 100);
        developer = developer.replacen(&line, &format!("  {name}: big-2.0.0\n"), 1);
    }
    repo.write("desired/developer.yaml", &developer);
    for i in 0..10 {
        repo.remove(&format!("services/{}.yaml", service(1001 + i * 2)));
    }
    for i in 0..10 {
        let old = service(1501 + i * 2);
        let text = repo.read(&format!("services/{old}.yaml"));
        repo.remove(&format!("services/{old}.yaml"));
        repo.write(&format!("services/renamed-{i}.yaml"), &text);
    }
    // Removed and renamed services leave the lists too.
    for file in [
        "desired/developer.yaml",
        "desired/client.yaml",
        "profiles.yaml",
    ] {
        let text = repo.read(file);
        let kept: Vec<&str> = text
            .lines()
            .filter(|line| {
                !(0..10).any(|i| {
                    line.contains(&service(1001 + i * 2)) || line.contains(&service(1501 + i * 2))
                })
            })
            .collect();
        repo.write(file, &(kept.join("\n") + "\n"));
    }
    let head_id = repo.commit("200 bumps, 10 renames, 10 removals", &Person::bob());
    let state_repo = StateRepo::open(repo.path(), "main").expect("open the bench repo");
    let base = state_repo.load(&base_id).expect("valid base");
    let head = state_repo.load(&head_id).expect("valid head");
    let facts = facts(&base);
    let plan = Plan::compute(Ok(&base), Ok(&head), &facts);
    assert_eq!(
        plan.services.len(),
        220,
        "200 bumps, 10 renames, 10 removals"
    );
    // Every 40th service is known bad at big-2.0.0; those pinned by the client list (every
    // third) keep their client version, so 50 - 17 desire it again.
    assert_eq!(plan.known_bad_count(), 33);

    c.bench_function("plan/load_both_compute_render", |b| {
        b.iter(|| {
            let base = state_repo.load(black_box(&base_id)).expect("valid");
            let head = state_repo.load(black_box(&head_id)).expect("valid");
            let plan = Plan::compute(Ok(&base), Ok(&head), black_box(&facts));
            black_box(render::markdown(&plan, "base", "head"))
        })
    });
    c.bench_function("plan/compute_only", |b| {
        b.iter(|| black_box(Plan::compute(Ok(&base), Ok(&head), black_box(&facts))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
