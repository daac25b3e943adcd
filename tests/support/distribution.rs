//! A `vupdate distribution run` for the end-to-end tests: started from a config text, its
//! address and first password read from what it prints, and an administrator logged in
//! (the first password changed, as the server demands).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use vupdate_client::{Client, PublicKeyPin};
use vupdate_test_support::isolate;

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A started distribution.
pub struct Started {
    /// The server process (killed when dropped).
    pub server: Server,
    /// Its URL, e.g. `http://127.0.0.1:40123`.
    pub base: String,
    /// Logged in as `admin`, whose password is now [`PASSWORD`].
    pub admin: Client,
    /// The administrator's session token.
    pub admin_token: String,
    /// The pin of its TLS key, when it serves HTTPS.
    pub pin: Option<PublicKeyPin>,
}

/// An anonymous client of `base`, trusting the key of `pin` when given.
pub fn client(base: &str, pin: Option<PublicKeyPin>) -> Client {
    let builder = Client::builder(base);
    match pin {
        Some(pin) => builder.pinned_public_key(pin),
        None => builder,
    }
    .build()
    .expect("client")
}

/// Where the server's stderr goes, in `dir`.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("distribution.log")
}

/// The server's log so far, for a failure message.
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(log_path(dir)).unwrap_or_default()
}

/// Writes `config` to `dir/distribution.yaml`, starts the server on it, and logs in.
pub async fn start(dir: &Path, config: &str) -> Started {
    let file = dir.join("distribution.yaml");
    std::fs::write(&file, config).expect("distribution config");
    start_from(dir, &file, None).await
}

/// Starts the server on the config file `file` (relative to `cwd` when given, the
/// server's working directory) with its log in `dir`, and logs in.
pub async fn start_from(dir: &Path, file: &Path, cwd: Option<&Path>) -> Started {
    let launch = Launch {
        cwd,
        ..Launch::default()
    };
    start_with(dir, file, &launch).await
}

/// How a server process is started beyond its config file.
#[derive(Default)]
pub struct Launch<'a> {
    /// Its working directory.
    pub cwd: Option<&'a Path>,
    /// Variables added to its environment.
    pub env: &'a [(&'a str, &'a str)],
    /// A program (and its arguments) that runs `vupdate` as its last arguments, e.g.
    /// `unshare` to give it a mount namespace.
    pub wrapper: &'a [String],
    /// The `vupdate` program to run instead of the one cargo built (a copy that a
    /// self-update may replace).
    pub program: Option<&'a Path>,
}

/// Starts the server for the first time on the config `file` as `launch` says, changes
/// the first password to [`PASSWORD`] and logs in.
pub async fn start_with(dir: &Path, file: &Path, launch: &Launch<'_>) -> Started {
    let mut spawned = spawn(dir, file, launch);
    let line = spawned.lines.next();
    let first = line
        .as_ref()
        .and_then(|line| line.as_ref().ok())
        .and_then(|line| line.split("password `").nth(1))
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no first password in {line:?}\n{}", log(dir)))
        .to_owned();
    let anonymous = client(&spawned.base, spawned.pin);
    let pending = anonymous.with_token(login(&anonymous, "admin", &first).await);
    let _: Value = pending
        .graphql(
            "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }",
            json!({"o": first, "n": PASSWORD}),
        )
        .await
        .expect("change the first password");
    spawned.into_started().await
}

/// Starts the server again on the data of an earlier start (`dir/distribution.yaml`), with
/// `env` added to its environment, and logs in as `admin` with [`PASSWORD`].
pub async fn restart(dir: &Path, env: &[(&str, &str)]) -> Started {
    let launch = Launch {
        env,
        ..Launch::default()
    };
    let spawned = spawn(dir, &dir.join("distribution.yaml"), &launch);
    spawned.into_started().await
}

/// A server process, killed when dropped if it still runs, so a test that fails leaves
/// no server behind; `Deref`s to its [`Child`].
pub struct Server(Child);

impl From<Child> for Server {
    fn from(child: Child) -> Server {
        Server(child)
    }
}

impl std::ops::Deref for Server {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A server process that printed its address; nobody logged in yet.
pub struct Spawned {
    /// The server process (killed when dropped).
    pub server: Server,
    /// Its URL.
    pub base: String,
    /// The pin of its TLS key, as it printed it.
    pub pin: Option<PublicKeyPin>,
    /// The rest of its stdout.
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Spawned {
    /// Logs in as `admin` with [`PASSWORD`] (the first password was changed).
    pub async fn into_started(self) -> Started {
        let lines = self.lines;
        // Nobody reads the rest; a thread keeps the pipe from filling up.
        std::thread::spawn(move || lines.for_each(drop));
        let anonymous = client(&self.base, self.pin);
        let admin_token = login(&anonymous, "admin", PASSWORD).await;
        Started {
            admin: anonymous.with_token(admin_token.clone()),
            server: self.server,
            base: self.base,
            admin_token,
            pin: self.pin,
        }
    }
}

/// Starts `vupdate distribution run --config file` as `launch` says, its stderr appended
/// to the log in `dir`, and waits until it prints where it serves.
pub fn spawn(dir: &Path, file: &Path, launch: &Launch<'_>) -> Spawned {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(dir))
        .expect("log file");
    let vupdate = launch
        .program
        .unwrap_or(Path::new(env!("CARGO_BIN_EXE_vupdate")));
    let mut command = match launch.wrapper.split_first() {
        None => Command::new(vupdate),
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(vupdate);
            command
        }
    };
    isolate(&mut command);
    if let Some(cwd) = launch.cwd {
        command.current_dir(cwd);
    }
    let mut server = command
        .args(["distribution", "run", "--config"])
        .arg(file)
        .envs(launch.env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("start the distribution");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let mut printed: Vec<String> = Vec::new();
    while !printed.iter().any(|l| l.contains("state repo:")) {
        match lines.next() {
            Some(Ok(line)) => printed.push(line),
            _ => panic!("the distribution stopped: {printed:?}\n{}", log(dir)),
        }
    }
    let base = printed[0].rsplit(' ').next().expect("the URL").to_owned();
    let pin = printed.iter().find_map(|line| {
        let pin = line.trim().strip_prefix("TLS key pin: ")?;
        Some(pin.split(' ').next()?.parse().expect("a pin"))
    });
    Spawned {
        server: Server(server),
        base,
        pin,
        lines,
    }
}

/// A session token of `account`.
pub async fn login(client: &Client, account: &str, password: &str) -> String {
    let data: Value = client
        .graphql(
            "mutation($a: String!, $p: String!) { login(account: $a, password: $p) { token } }",
            json!({"a": account, "p": password}),
        )
        .await
        .expect("login");
    data["login"]["token"].as_str().expect("token").to_owned()
}

/// A new access token of service or consumer account `account`, issued by `admin`.
pub async fn issue_access_token(admin: &Client, account: &str) -> String {
    let data: Value = admin
        .graphql(
            "mutation($a: String!) { issueAccessToken(account: $a) }",
            json!({"a": account}),
        )
        .await
        .unwrap_or_else(|e| panic!("an access token of {account}: {e}"));
    data["issueAccessToken"].as_str().expect("token").to_owned()
}

/// Stops a server (or updater) with SIGTERM, as systemd does, and checks it exited cleanly.
pub fn terminate(child: &mut Child) {
    stop_with(child, nix::sys::signal::Signal::SIGTERM);
}

/// Stops a server (or updater) with `signal` and checks it exited cleanly.
pub fn stop_with(child: &mut Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, signal);
    let status = child.wait().expect("exit");
    assert!(status.success(), "{signal}: {status}");
}

/// A copy of the built program in `dir/bin`, which self-updates may replace.
pub fn program_copy(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let program = bin.join("vupdate");
    std::fs::copy(env!("CARGO_BIN_EXE_vupdate"), &program).expect("copy the program");
    program
}

/// Uploads through `admin` the `distribution` client image `version` whose `bin/vupdate`
/// is `program`, zipped in `dir` (stored, not deflated: the debug binary is large).
pub async fn upload_program(admin: &Client, dir: &Path, version: &str, program: &[u8]) {
    use std::io::Write as _;
    let zip = dir.join(format!("distribution-{version}.zip"));
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip).expect("zip"));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true)
        .unix_permissions(0o755);
    writer.start_file("bin/vupdate", options).expect("entry");
    writer.write_all(program).expect("write");
    writer
        .start_file("install.json", zip::write::SimpleFileOptions::default())
        .expect("entry");
    writer.write_all(b"{}").expect("write");
    writer.finish().expect("finish");
    admin
        .upload_image(
            &vupdate_client::ImageRef::client("distribution", version),
            &zip,
            None,
        )
        .await
        .expect("upload the distribution image");
    std::fs::remove_file(zip).expect("remove the zip");
}
