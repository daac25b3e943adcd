//! The sample service `hello` (examples/hello-service) and a state that runs it: where the
//! end-to-end tests of the whole system start.

use std::path::Path;
use std::time::Duration;

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

/// The repositories of a distribution that runs `hello`: its source and a bare state
/// repo whose `main` holds [`commit_hello_state`]'s state (kept alive together).
pub struct HelloRepos {
    /// hello's source repository, kept for as long as the state names it.
    _source: GitRepo,
    /// The bare state repo a distribution follows by its path.
    pub remote: GitRepo,
}

/// A bare state repo that wants hello `acme-1.0.0`, built from a new source repository.
pub fn hello_repos() -> HelloRepos {
    let source = hello_source();
    let remote = GitRepo::init_bare();
    let work = GitRepo::clone_from(&remote);
    commit_hello_state(&work, source.path());
    work.push("origin", "main");
    HelloRepos {
        _source: source,
        remote,
    }
}

/// A distribution config that follows `remote`, its data in `data`, on a free port.
pub fn hello_config(remote: &GitRepo, data: &str) -> String {
    format!(
        "name: acme\nlisten: 127.0.0.1:0\ndataDirectory: {data}\nstateRepo:\n  url: {}\n  pollInterval: 1s\n",
        remote.path().display()
    )
}

/// The version the `hello` installed in `service_dir` (its `current/port`) answers with,
/// if it answers.
pub fn serving(service_dir: &Path) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let port = std::fs::read_to_string(service_dir.join("current/port")).ok()?;
    let address: std::net::SocketAddr = format!("127.0.0.1:{}", port.trim()).parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.0 200").then(|| {
        answer
            .rsplit("\r\n\r\n")
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    })
}
