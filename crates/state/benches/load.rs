//! Loading a large state repo: 2,000 services in one commit.
//!
//! - `load_at_commit`: `StateRepo::load` = read the tree and 2,000+ blobs with gix, then parse
//!   and validate (what the distribution does for each new commit).
//! - `parse_only`: `State::parse` on files already in memory (the YAML and validation cost).
//! - `edit_apply`: `StateEdit::apply` changing one service in a 2,000-line desired list
//!   (the splice editor, which re-parses the file to check itself).
//!
//! Run: `cargo bench -p vupdate-state -- --warm-up-time 1 --measurement-time 3`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vupdate_state::{FileSet, State, StateEdit, StateRepo};

mod common;

use common::{SERVICES, build_repo, service};

fn bench(c: &mut Criterion) {
    let repo = build_repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("open the bench repo");
    let head = state_repo.head().expect("head").id;
    let state = state_repo.load(&head).expect("the bench repo is valid");
    assert_eq!(state.services.len(), SERVICES);

    c.bench_function("load_at_commit/2000_services", |b| {
        b.iter(|| black_box(state_repo.load(black_box(&head)).expect("valid")))
    });

    let files = FileSet::from_dir(repo.path()).expect("read the work tree");
    c.bench_function("parse_only/2000_services", |b| {
        b.iter(|| black_box(State::parse(black_box(&files)).expect("valid")))
    });

    let mut list: BTreeMap<_, _> = state.desired.developer.clone();
    list.insert(
        service(1234).parse().expect("name"),
        "big-9.9.9".parse().expect("version"),
    );
    let edit = StateEdit::SetDesiredDeveloper(list);
    let now = chrono::Utc::now();
    c.bench_function("edit_apply/one_of_2000_lines", |b| {
        b.iter(|| black_box(edit.apply(black_box(&files), now).expect("applies")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
