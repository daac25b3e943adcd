//! A `vupdate distribution run` for the end-to-end tests: started from a config text, its
//! address and first password read from what it prints, and an administrator logged in
//! (the first password changed, as the server demands).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use vupdate_client::Client;
use vupdate_test_support::isolate;

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A started distribution.
pub struct Started {
    /// The server process.
    pub server: Child,
    /// Its URL, e.g. `http://127.0.0.1:40123`.
    pub base: String,
    /// Logged in as `admin`, whose password is now [`PASSWORD`].
    pub admin: Client,
    /// The administrator's session token.
    pub admin_token: String,
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
    let stderr = std::fs::File::create(log_path(dir)).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut server = command
        .args(["distribution", "run", "--config"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("start the distribution");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let mut printed: Vec<String> = Vec::new();
    while !printed.iter().any(|l| l.contains("first start")) {
        match lines.next() {
            Some(Ok(line)) => printed.push(line),
            _ => panic!("the distribution stopped: {printed:?}\n{}", log(dir)),
        }
    }
    // Nobody reads the rest; a thread keeps the pipe from filling up.
    std::thread::spawn(move || lines.for_each(drop));
    let base = printed[0].rsplit(' ').next().expect("the URL").to_owned();
    let first = printed
        .iter()
        .find_map(|l| l.split("password `").nth(1))
        .and_then(|rest| rest.split('`').next())
        .expect("the first password")
        .to_owned();
    let anonymous = Client::new(&base, None).expect("client");
    let pending = anonymous.with_token(login(&anonymous, "admin", &first).await);
    let _: Value = pending
        .graphql(
            "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }",
            json!({"o": first, "n": PASSWORD}),
        )
        .await
        .expect("change the first password");
    let admin_token = login(&anonymous, "admin", PASSWORD).await;
    let admin = anonymous.with_token(admin_token.clone());
    Started {
        server,
        base,
        admin,
        admin_token,
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
