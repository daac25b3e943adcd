//! The sample service `hello` (examples/hello-service) and a state that runs it: where the
//! end-to-end tests of the whole system start.

use std::path::Path;

use vupdate_test_support::{GitRepo, Person};

/// A new source repository with the sample service's files committed on `main`.
pub fn hello_source() -> GitRepo {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-service");
    let files: Vec<(String, String)> = ["update.json", "serve.py"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).expect("example file");
            (name.to_string(), text)
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let source = GitRepo::init();
    source.commit_files(&refs, "hello, the sample service", &Person::alice());
    source
}

/// Commits, in `work`, a state that builds `hello` from `source_url` and wants
/// `acme-1.0.0` everywhere.
pub fn commit_hello_state(work: &GitRepo, source_url: &Path) {
    let hello = format!(
        "developer:\n  sources:\n    - name: hello\n      git:\n        url: {}\n        branch: main\n",
        source_url.display()
    );
    work.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/hello.yaml", &hello),
            ("profiles.yaml", "profiles:\n  self: [hello]\n"),
            ("desired/developer.yaml", "versions:\n  hello: acme-1.0.0\n"),
            ("desired/client.yaml", "versions: {}\n"),
        ],
        "hello 1.0.0 for everyone",
        &Person::alice(),
    );
}
