//! The large state repo the benches share: 2,000 services in one commit.

use std::fmt::Write as _;

use vupdate_test_support::{GitRepo, Person};

/// How many services the bench repository declares.
pub const SERVICES: usize = 2_000;

/// The name of service `i`.
pub fn service(i: usize) -> String {
    format!("service-{i:04}")
}

/// A work-tree repository with [`SERVICES`] services in one commit: each with its own
/// sources, macros, environment, private file and client settings; every one desired, a
/// third with a client version; a provider and a consumer.
pub fn build_repo() -> GitRepo {
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
