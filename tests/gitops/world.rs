//! The world of one scenario: repositories, a distribution and its updaters, all real
//! processes and real Git repositories in one temp dir, on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{GitRepo, MAIN, Patience, Person, isolate};

use crate::distribution::{self, PASSWORD};
use crate::hello::{commit_hello_state, hello_source};

/// How long any wait may last: builds and installs on a loaded 2-core machine.
pub const LIMIT: Duration = Duration::from_secs(120);
/// The two instances of a world by default.
pub const INSTANCES: &[Instance] = &[
    Instance::new("vm-1", "hello"),
    Instance::new("vm-2", "hello-blue"),
];

/// One instance of a world: its updater and what it runs.
#[derive(Clone, Copy)]
pub struct Instance {
    /// The instance id.
    pub id: &'static str,
    /// The service it runs (`hello-blue`: hello in role `blue`).
    pub service: &'static str,
    /// Its `labels` in updater.yaml, as a YAML flow mapping (empty: none).
    pub labels: &'static str,
}

impl Instance {
    /// An instance without labels.
    pub const fn new(id: &'static str, service: &'static str) -> Instance {
        Instance {
            id,
            service,
            labels: "",
        }
    }
}

/// A running updater process.
pub struct Updater {
    /// Its instance id (`vm-1`).
    pub instance: &'static str,
    /// The service it runs (`hello` or `hello-blue`).
    pub service: &'static str,
    /// Its work directory.
    pub work: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Updater {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("updater log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
        isolate(&mut command);
        let child = command
            .args(["-v", "updater", "run", "--config"])
            .arg(&self.config)
            // As on a VM: the unit file names the services, `hello-blue` read by the dash rule.
            .args(["--services", self.service])
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the updater");
        self.child = Some(child);
    }

    /// Stops the updater (SIGTERM) and waits for it; its services stop with it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let status = child.wait().expect("updater exit");
            assert!(
                status.success(),
                "updater {} exited with {status}:\n{}",
                self.instance,
                self.log()
            );
        }
    }

    /// Starts it again after [`Updater::stop`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.start();
    }

    /// What the updater printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The version its `hello` answers with, if it answers.
    pub fn serving(&self) -> Option<String> {
        crate::hello::serving(&self.work.join(self.service))
    }
}

impl Drop for Updater {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

/// Options of a world.
#[derive(Clone, Copy)]
pub struct Options {
    /// The distribution's poll interval of the state repo.
    pub poll: &'static str,
    /// Whether the distribution reaches the state remote over smart HTTP (`git
    /// http-backend` behind a small server), as on a Git host, rather than by its path.
    pub http: bool,
    /// The instances, each with an updater of its own.
    pub instances: &'static [Instance],
}

impl Default for Options {
    fn default() -> Self {
        // Long: only the webhook brings a push in, so the tests do not wait on polls.
        Options {
            poll: "1h",
            http: false,
            instances: INSTANCES,
        }
    }
}

/// `tests/gitops/git_http_backend.py` serving the repositories under `root`; returns the
/// process and its base URL.
fn serve_git_over_http(root: &Path, dir: &Path) -> (Child, String) {
    let port_file = dir.join("git-http.port");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/gitops/git_http_backend.py");
    let child = Command::new("python3")
        .arg(script)
        .arg(root)
        .arg(&port_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the Git HTTP server (python3)");
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        if let Ok(port) = std::fs::read_to_string(&port_file) {
            break port;
        }
        assert!(
            Instant::now() < deadline,
            "the Git HTTP server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (child, format!("http://127.0.0.1:{}", port.trim()))
}

/// One scenario's world.
pub struct World {
    /// Everything lives under it.
    pub dir: TempDir,
    /// The state repo people push to (bare).
    pub remote: GitRepo,
    /// A clone people commit in.
    pub work: GitRepo,
    /// The sample service's source repo (work tree) and its bare remote.
    pub source: GitRepo,
    source_remote: GitRepo,
    server: distribution::Server,
    /// The distribution's URL.
    pub base: String,
    /// An administrator's client.
    pub admin: Client,
    admin_token: String,
    /// A developer's client (`dev`, "Dee Veloper").
    pub developer: Client,
    /// The updaters, one per instance.
    pub updaters: Vec<Updater>,
    /// The Git HTTP server, when the remote is reached over HTTP.
    git_http: Option<Child>,
}

impl World {
    /// A world where `hello acme-1.0.0` is desired, built and running on both instances.
    pub async fn start() -> World {
        World::start_with(Options::default()).await
    }

    /// As [`World::start`], with options.
    pub async fn start_with(options: Options) -> World {
        let dir = TempDir::new().expect("dir");
        let source_remote = GitRepo::init_bare();
        let source = hello_source();
        source.add_remote("origin", &source_remote);
        source.push("origin", MAIN);

        let remote = GitRepo::init_bare();
        let work = GitRepo::clone_from(&remote);
        commit_hello_state(&work, source_remote.path());
        work.push("origin", MAIN);

        let (git_http, remote_url) = if options.http {
            let root = remote.path().parent().expect("a remote in a folder");
            let (child, base) = serve_git_over_http(root, dir.path());
            let name = remote.path().file_name().expect("a named remote");
            (Some(child), format!("{base}/{}", name.to_string_lossy()))
        } else {
            (None, remote.path().display().to_string())
        };
        let distribution::Started {
            server,
            base,
            admin,
            admin_token,
            ..
        } = distribution::start(
            dir.path(),
            &format!(
                "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  url: {remote_url}\n  pollInterval: {}\n",
                options.poll
            ),
        )
        .await;
        let anonymous = Client::new(&base, None).expect("client");
        let _: Value = admin
            .graphql(
                "mutation($p: String!) { addUserAccount(account: \"dev\", name: \"Dee Veloper\", role: DEVELOPER, password: $p, mustChangePassword: false) { account } }",
                json!({"p": PASSWORD}),
            )
            .await
            .expect("add a developer");
        let developer =
            anonymous.with_token(distribution::login(&anonymous, "dev", PASSWORD).await);
        let token = distribution::issue_access_token(&admin, "updater").await;
        let token_file = dir.path().join("updater.token");
        std::fs::write(&token_file, token).expect("token file");

        let mut updaters = Vec::new();
        for &Instance {
            id: instance,
            service,
            labels,
        } in options.instances
        {
            let labels = match labels {
                "" => String::new(),
                labels => format!("labels: {labels}\n"),
            };
            let work = dir.path().join(instance);
            std::fs::create_dir_all(&work).expect("work dir");
            let config = work.join("updater.yaml");
            std::fs::write(
                &config,
                format!(
                    "instance: {instance}\n{labels}distributionUrl: {base}\naccessTokenFile: {}\nworkDirectory: {}\npollInterval: 1h\nstateInterval: 1s\ninstall:\n  startWindow: 2s\n  startAttempts: 2\nrestart:\n  initialDelay: 100ms\n",
                    token_file.display(),
                    work.display()
                ),
            )
            .expect("updater config");
            let mut updater = Updater {
                instance,
                service,
                log: work.join("updater.log"),
                work,
                config,
                child: None,
            };
            updater.start();
            updaters.push(updater);
        }
        let world = World {
            dir,
            remote,
            work,
            source,
            source_remote,
            server,
            base,
            admin,
            admin_token,
            developer,
            updaters,
            git_http,
        };
        world.wait_serving("acme-1.0.0").await;
        world
    }

    /// Pushes the work clone's `main` to the remote and calls the webhook; returns when
    /// the push happened.
    pub async fn push(&self) -> Instant {
        self.work.push("origin", MAIN);
        let pushed = Instant::now();
        self.hook().await;
        pushed
    }

    /// `POST /hooks/git`, as a Git host's push webhook would.
    pub async fn hook(&self) {
        let address = self.base.trim_start_matches("http://");
        let answer = http(
            address,
            &format!(
                "POST /hooks/git HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.admin_token
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    }

    /// Pushes the source repo's `main` (a new commit of the service's code).
    pub fn push_source(&self) {
        self.source.push("origin", MAIN);
        let _ = &self.source_remote;
    }

    /// Runs a GraphQL operation as the administrator.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        self.admin.graphql(query, variables).await.expect(query)
    }

    /// Waits until every running updater's `hello` answers `version`; returns when.
    pub async fn wait_serving(&self, version: &str) -> Instant {
        let running: Vec<&Updater> = self.updaters.iter().filter(|u| u.child.is_some()).collect();
        self.eventually(&format!("every instance to serve {version}"), || async {
            running
                .iter()
                .all(|u| u.serving().as_deref() == Some(version))
                .then(Instant::now)
        })
        .await
    }

    /// Waits until `check` gives a value; fails after [`LIMIT`] with every log.
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let report = || async {
            let status = self
                .admin
                .graphql::<Value>("{ status { stateRepo { commit tip lastError { commit } } services { service sync builds { version state message } instances { instance version updateError } } } }", json!({}))
                .await;
            let logs: Vec<String> = self
                .updaters
                .iter()
                .map(|u| format!("--- updater {} ---\n{}", u.instance, u.log()))
                .collect();
            format!(
                "status: {status:#?}\n--- distribution ---\n{}\n{}",
                std::fs::read_to_string(distribution::log_path(self.dir.path()))
                    .unwrap_or_default(),
                logs.join("\n")
            )
        };
        Patience::up_to(LIMIT)
            .every(Duration::from_millis(100))
            .eventually_or(what, check, report)
            .await
    }

    /// The `status` of `hello`.
    pub async fn hello_status(&self) -> Value {
        let data = self
            .query(
                "{ status { synced stateRepo { commit tip lastError { commit problems { file line message } } } services { service sync desiredClientVersion instancesOnDesired instancesNotOnDesired builds { version state } } } }",
                json!({}),
            )
            .await;
        data["status"].clone()
    }

    /// Tasks of a type, newest first.
    pub async fn tasks(&self, task_type: &str) -> Vec<Value> {
        let data = self
            .query(
                "query($t: String!) { tasks(type: $t, limit: 1000) { id parameters { name value } terminationStatus } }",
                json!({"t": task_type}),
            )
            .await;
        data["tasks"].as_array().cloned().unwrap_or_default()
    }

    /// Sets `hello`'s desired developer version in the work clone and commits it.
    pub fn commit_desired(&self, version: &str, message: &str) -> String {
        self.work.write(
            "desired/developer.yaml",
            &format!("versions:\n  hello: {version}\n"),
        );
        self.work.commit(message, &Person::bob())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for updater in &mut self.updaters {
            if let Some(mut child) = updater.child.take() {
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                let _ = child.wait();
            }
        }
        let pid = nix::unistd::Pid::from_raw(self.server.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.server.wait();
        if let Some(mut git_http) = self.git_http.take() {
            let _ = git_http.kill();
            let _ = git_http.wait();
        }
    }
}

/// One HTTP exchange on `address`, or `None` when nobody answers.
fn try_http(address: &str, request: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream =
        std::net::TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// One HTTP exchange that must happen.
fn http(address: &str, request: &str) -> String {
    try_http(address, request).unwrap_or_else(|| panic!("no answer from {address}"))
}
