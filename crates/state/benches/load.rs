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
use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vupdate_state::{FileSet, State, StateEdit, StateRepo};
use vupdate_test_support::{GitRepo, Person};

const SERVICES: usize = 2_000;

fn service(i: usize) -> String {
    format!("service-{i:04}")
}

fn build_repo() -> GitRepo {
    let repo = GitRepo::init();
    repo.write("vupdate.yaml", "schema: 1\n");
    repo.write(
        "common.yaml",
        "developer:\n  macroValues: { registry: registry.example.com }\n  environment: { JAVA_HOME: /usr/lib/jvm/java-21 }\n",
    );
    let mut developer = String::from("versions:\n");
    let mut client = String::from("versions:\n");
    let mut own = String::from("profiles:\n  self:\n");
    for i in 0..SERVICES {
        let name = service(i);
        repo.write(
            &format!("services/{name}.yaml"),
            &format!(
                "# {name}\ndeveloper:\n  sources:\n    - name: {name}\n      git:\n        url: \"git@git.example.com:big/{name}.git\"\n        branch: main\n      subDirectory: server\n  macroValues:\n    port: \"{port}\"\n  environment:\n    SERVICE: {name}\n  privateFiles: [keys/{name}.pem]\nclient:\n  settings:\n    - name: settings\n      git: {{ url: \"git@git.example.com:big/settings.git\", branch: main }}\n      subDirectory: {name}\n",
                port = 8000 + i
            ),
        );
        writeln!(developer, "  {name}: big-1.{}.{}", i / 100, i % 100).expect("write to string");
        if i % 3 == 0 {
            writeln!(client, "  {name}: big-1.{}.{}_1", i / 100, i % 100).expect("write to string");
        }
        writeln!(own, "    - {name}").expect("write to string");
    }
    own.push_str("  partner: [service-0000, service-0001, service-0002]\n");
    repo.write("desired/developer.yaml", &developer);
    repo.write("desired/client.yaml", &client);
    repo.write("profiles.yaml", &own);
    repo.write(
        "providers.yaml",
        "providers:\n  jetto:\n    url: https://jetto.example.com/graphql\n    accessTokenSecret: jetto-token\n",
    );
    repo.write(
        "consumers.yaml",
        "consumers:\n  acme: { profile: partner }\n",
    );
    repo.commit("2,000 services", &Person::alice());
    repo
}

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
