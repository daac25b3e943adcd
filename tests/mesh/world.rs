//! The world of the mesh scenario: distributions (`vupdate distribution run`), each with
//! its own state repo (a bare remote and a work clone), on fixed ports of 127.0.0.1 so a
//! stopped one comes back where its consumers look for it; and updaters on "VMs" (work
//! directories) running the sample service `hello`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use vupdate_client::Client;
use vupdate_test_support::{GitRepo, MAIN, Patience, Person, isolate};

use crate::distribution;

/// How long any wait may last: builds and installs on a loaded 2-core machine.
pub const LIMIT: Duration = Duration::from_secs(180);

/// A port of 127.0.0.1 nobody listens on now (the OS gave it out and it was let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Stops a child process with SIGTERM and waits for it.
pub fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
}

/// One distribution process and its state repo.
pub struct Node {
    /// Its name.
    pub name: &'static str,
    /// Its folder: config, data, log.
    pub dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The bare state remote it follows.
    pub remote: GitRepo,
    /// A work clone people commit in.
    pub work: GitRepo,
    /// Logged in as `admin`.
    pub admin: Client,
    admin_token: String,
    server: std::sync::Mutex<Option<distribution::Server>>,
}

impl Node {
    /// Writes `files` as the first commit of a new state repo and the config (listening on
    /// `port`, with `extra` lines) into `root/<name>`; sets `secrets` with the CLI before the
    /// first start, as an administrator would on a stopped server; starts the server.
    pub async fn start(
        root: &Path,
        name: &'static str,
        port: u16,
        files: &[(&str, String)],
        extra: &str,
        secrets: &[(&str, &str)],
    ) -> Node {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let remote = GitRepo::init_bare();
        let work = GitRepo::clone_from(&remote);
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        work.commit_files(&refs, &format!("{name}: first state"), &Person::alice());
        work.push("origin", MAIN);
        let config = format!(
            "name: {name}\nlisten: 127.0.0.1:{port}\nstateRepo:\n  url: {}\n  pollInterval: 1s\ntokenFiles:\n  updater: updater.token\n{extra}",
            remote.path().display()
        );
        std::fs::write(dir.join("distribution.yaml"), &config).expect("config");
        for (secret, value) in secrets {
            set_secret_by_cli(&dir, secret, value);
        }
        let distribution::Started {
            server,
            base,
            admin,
            admin_token,
            ..
        } = distribution::start(&dir, &config).await;
        Node {
            name,
            dir,
            base,
            remote,
            work,
            admin,
            admin_token,
            server: std::sync::Mutex::new(Some(server)),
        }
    }

    /// Runs a GraphQL operation as the administrator; it must succeed.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        self.admin
            .graphql(query, variables)
            .await
            .unwrap_or_else(|e| panic!("{}: `{query}` failed: {e}\n{}", self.name, self.log()))
    }

    /// An access token of the consumer account `account`, which the node made for the
    /// consumer of that name in its consumers.yaml.
    pub async fn consumer_token(&self, account: &str) -> String {
        eventually(
            &format!("{}'s account {account}", self.name),
            || self.log(),
            || async {
                let data = self
                    .admin
                    .graphql::<Value>(
                        "query($a: String!) { accounts(account: $a) { type } }",
                        json!({"a": account}),
                    )
                    .await
                    .ok()?;
                (data["accounts"][0]["type"] == "CONSUMER").then_some(())
            },
        )
        .await;
        let data = self
            .query(
                "mutation($a: String!) { issueAccessToken(account: $a) }",
                json!({"a": account}),
            )
            .await;
        data["issueAccessToken"].as_str().expect("token").to_owned()
    }

    /// Pushes the work clone's `main` to the state remote and calls `POST /hooks/git`, as
    /// a Git host's push webhook would.
    pub fn push_and_hook(&self) {
        use std::io::{Read as _, Write as _};
        self.work.push("origin", MAIN);
        let address = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        write!(
            stream,
            "POST /hooks/git HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.admin_token
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer");
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        distribution::log(&self.dir)
    }

    /// Stops the server (SIGTERM).
    pub fn stop(&self) {
        let server = self.server.lock().expect("lock").take();
        if let Some(mut server) = server {
            terminate(&mut server);
        }
    }

    /// Starts the stopped server again on its data and port.
    pub fn restart(&self) {
        assert!(
            self.server.lock().expect("lock").is_none(),
            "{} is running",
            self.name
        );
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(distribution::log_path(&self.dir))
            .expect("log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
        isolate(&mut command);
        let mut server = command
            .args(["distribution", "run", "--config"])
            .arg(self.dir.join("distribution.yaml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("restart");
        let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("serving on") => {}
            other => panic!(
                "{} did not start again: {other:?}\n{}",
                self.name,
                self.log()
            ),
        }
        std::thread::spawn(move || lines.for_each(drop));
        *self.server.lock().expect("lock") = Some(server.into());
    }

    /// The access token `tokenFiles` wrote for the `updater` account.
    pub fn updater_token_file(&self) -> PathBuf {
        self.dir.join("updater.token")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `vupdate distribution secret set NAME` with the value on stdin, for the node in `dir`.
pub fn set_secret_by_cli(dir: &Path, name: &str, value: &str) {
    use std::io::Write as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    let mut child = command
        .args(["distribution", "secret", "set", name, "--config"])
        .arg(dir.join("distribution.yaml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("secret set");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{value}\n").as_bytes())
        .expect("value");
    let output = child.wait_with_output().expect("secret set");
    assert!(
        output.status.success(),
        "secret set: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An updater on a VM of `node`, running `hello`.
pub struct Vm {
    /// Its work directory.
    pub work: PathBuf,
    /// What it printed.
    pub log: PathBuf,
    child: Child,
}

impl Vm {
    /// Starts an updater with instance id `instance` following `node`.
    pub fn start(root: &Path, node: &Node, instance: &str) -> Vm {
        let work = root.join(instance);
        std::fs::create_dir_all(&work).expect("vm dir");
        let config = work.join("updater.yaml");
        std::fs::write(
            &config,
            format!(
                "instance: {instance}\ndistributionUrl: {}\naccessTokenFile: {}\nworkDirectory: {}\nservices: [hello]\npollInterval: 1h\nstateInterval: 1s\ninstall:\n  startWindow: 2s\n",
                node.base,
                node.updater_token_file().display(),
                work.display()
            ),
        )
        .expect("updater config");
        let log = work.join("updater.log");
        let out = std::fs::File::create(&log).expect("log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
        isolate(&mut command);
        let child = command
            .args(["-v", "updater", "run", "--config"])
            .arg(&config)
            .stdout(Stdio::from(out.try_clone().expect("log")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start the updater");
        Vm { work, log, child }
    }

    /// The version `hello` answers with, if it answers.
    pub fn serving(&self) -> Option<String> {
        crate::hello::serving(&self.work.join("hello"))
    }

    /// A file of the running version.
    pub fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.work.join("hello/current").join(name)).ok()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Waits until `check` gives a value; fails after [`LIMIT`] with `logs()`.
pub async fn eventually<T, F, Fut>(what: &str, logs: impl FnOnce() -> String, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    Patience::up_to(LIMIT)
        .every(Duration::from_millis(200))
        .eventually_or(what, check, || async { logs() })
        .await
}

/// A repository of client settings that adds `site.txt` saying `site`.
pub fn settings_repo(site: &str) -> GitRepo {
    let repo = GitRepo::init();
    repo.commit_files(
        &[("site.txt", &format!("{site}\n"))],
        "site settings",
        &Person::alice(),
    );
    repo
}
