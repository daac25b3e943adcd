//! A small valid state repo and helpers shared by the integration tests.

use std::collections::BTreeMap;

use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;
use vupdate_state::Author;
use vupdate_test_support::{GitRepo, Person};

/// The desired developer versions of the fixture, one line per service, sorted.
pub const DEVELOPER: &str = "\
# Desired developer versions (edited by the dashboard too).
versions:
  api: orbit-1.0.0  # the public API
  db: orbit-1.0.0
  mail: orbit-1.0.0
  web: orbit-1.0.0
  worker: orbit-1.0.0
";

/// The files of a valid state repo with five services.
pub fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("vupdate.yaml", "schema: 1\n"),
        (
            "services/api.yaml",
            "developer:\n  sources:\n    - name: api\n      git: { url: \"git@example.com:api.git\", branch: main }\n",
        ),
        ("services/db.yaml", ""),
        ("services/mail.yaml", ""),
        ("services/web.yaml", ""),
        ("services/worker.yaml", ""),
        (
            "profiles.yaml",
            "profiles:\n  self: [api, db, mail, web, worker]\n  partner: [api]\n",
        ),
        ("desired/developer.yaml", DEVELOPER),
        ("desired/client.yaml", "versions:\n  db: orbit-1.0.0_1\n"),
        ("README.md", "Not part of the schema: never parsed.\n"),
    ]
}

/// A work-tree repository on `main` holding the fixture in one commit; returns it and the id.
pub fn repo() -> (GitRepo, String) {
    let repo = GitRepo::init();
    let first = repo.commit_files(&files(), "Start the state repo", &Person::alice());
    (repo, first)
}

/// The person editing through the library.
pub fn carol() -> Author {
    Author::new("Carol Operator", "carol@example.com")
}

/// A desired developer list from `service=version` pairs.
pub fn developer(pairs: &[(&str, &str)]) -> BTreeMap<ServiceName, DeveloperVersion> {
    pairs
        .iter()
        .map(|(s, v)| {
            (
                s.parse().expect("service name"),
                v.parse().expect("version"),
            )
        })
        .collect()
}

/// The fixture's developer list with some services changed.
pub fn developer_with(changes: &[(&str, &str)]) -> BTreeMap<ServiceName, DeveloperVersion> {
    let mut list = developer(&[
        ("api", "orbit-1.0.0"),
        ("db", "orbit-1.0.0"),
        ("mail", "orbit-1.0.0"),
        ("web", "orbit-1.0.0"),
        ("worker", "orbit-1.0.0"),
    ]);
    list.extend(developer(changes));
    list
}

/// `DEVELOPER` with one service's version replaced.
pub fn developer_text_with(service: &str, version: &str) -> String {
    DEVELOPER
        .lines()
        .map(|line| {
            let prefix = format!("  {service}: ");
            match line.strip_prefix(&prefix) {
                Some(rest) => {
                    let comment = rest.find("  #").map(|i| &rest[i..]).unwrap_or("");
                    format!("{prefix}{version}{comment}\n")
                }
                None => format!("{line}\n"),
            }
        })
        .collect()
}
