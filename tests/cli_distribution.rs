//! `vupdate distribution run` end to end: the built binary serves a distribution from a
//! config file, prints where to log in, answers over HTTP and stops cleanly on SIGTERM; a
//! bad config file is refused with exit code 2 naming the file, line and value; the
//! memory of password checks goes back once they are done.

use std::io::{BufRead as _, BufReader, Lines, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use vupdate_test_support::{GitRepo, Person, isolate};

fn example_repo() -> GitRepo {
    let repo = GitRepo::init();
    repo.copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/state-repo"),
        "",
    );
    repo.commit("Example state", &Person::alice());
    repo
}

fn vupdate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command
}

/// One HTTP/1.1 exchange with the server at `address`; returns the whole answer.
fn http(address: &str, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

/// A distribution started from `config`, its output, the lines it printed up to the
/// first-start password, and the address it serves on.
fn start(config: &Path) -> (Child, Lines<BufReader<ChildStdout>>, Vec<String>, String) {
    let mut child = vupdate()
        .args(["distribution", "run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !printed.iter().any(|l: &String| l.contains("first start")) {
        assert!(Instant::now() < deadline, "no start-up lines: {printed:?}");
        printed.push(lines.next().expect("a line").expect("UTF-8"));
    }
    let address = printed[0]
        .rsplit("http://")
        .next()
        .expect("the address")
        .to_owned();
    (child, lines, printed, address)
}

/// Asks `child` to stop with SIGTERM and waits for it.
fn stop(mut child: Child) -> std::process::ExitStatus {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    child.wait().expect("exit")
}

#[test]
fn serves_from_a_config_prints_the_first_password_and_stops_on_sigterm() {
    let repo = example_repo();
    let dir = tempfile::TempDir::new().expect("dir");
    let config = dir.path().join("distribution.yaml");
    std::fs::write(
        &config,
        format!(
            "name: orbit\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\ntokenFiles:\n  updater: secrets/updater.token\n",
            repo.path().display()
        ),
    )
    .expect("config");
    let (child, lines, printed, address) = start(&config);
    assert!(
        printed.iter().any(|l| l.contains("/graphiql")),
        "{printed:?}"
    );
    let password_line = printed
        .iter()
        .find(|l| l.contains("first start"))
        .expect("password line");
    assert!(password_line.contains("`admin`"), "{password_line}");

    let health = http(
        &address,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok"),
        "{health}"
    );
    let body = r#"{"query":"{ distributionInfo { distribution } }"}"#;
    let info = http(
        &address,
        &format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(info.contains(r#"{"distribution":"orbit"}"#), "{info}");

    // The updater's token file is there, for this user only, and it authenticates.
    let token_file = dir.path().join("secrets/updater.token");
    let mode = std::fs::metadata(&token_file)
        .expect("the token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let token = std::fs::read_to_string(&token_file).expect("token");
    let body = r#"{"query":"{ whoAmI { account role } }"}"#;
    let me = http(
        &address,
        &format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            token.trim(),
            body.len()
        ),
    );
    assert!(me.contains(r#""account":"updater""#), "{me}");

    let status = stop(child);
    assert!(status.success(), "{status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
}

#[test]
fn a_bad_config_is_invalid_input_naming_file_line_and_value() {
    let dir = tempfile::TempDir::new().expect("dir");
    let config = dir.path().join("distribution.yaml");
    std::fs::write(
        &config,
        "name: orbit\nstateRepo:\n  path: state\n  pollInterval: soon\n",
    )
    .expect("config");
    let output = vupdate()
        .args(["distribution", "run", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("distribution.yaml:4:17"), "{stderr}");
    assert!(stderr.contains("`soon`"), "{stderr}");
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .expect("VmRSS")
}

#[test]
fn password_checks_give_their_memory_back() {
    // Each check takes argon2's 19 MiB and frees it. Under glibc's malloc the freed blocks
    // stayed in the hashing threads' arenas: each burst of wrong logins left the server
    // tens of MB larger for good.
    const ARGON2_KIB: u64 = 19 * 1024;
    let repo = example_repo();
    let dir = tempfile::TempDir::new().expect("dir");
    let config = dir.path().join("distribution.yaml");
    std::fs::write(
        &config,
        format!(
            "name: orbit\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\nlimits:\n  login:\n    hashWorkers: 2\n    freeFailures: 100000\n",
            repo.path().display()
        ),
    )
    .expect("config");
    let (child, _lines, _, address) = start(&config);
    // Four wrong logins at once (unknown accounts are checked against a hash all the
    // same), each answered once its check is done and its memory freed.
    let burst = |round: usize| {
        std::thread::scope(|threads| {
            for n in 0..4 {
                let address = &address;
                threads.spawn(move || {
                    let body = format!(
                        r#"{{"query":"mutation {{ login(account: \"nobody-{round}-{n}\", password: \"wrong\") {{ token }} }}"}}"#
                    );
                    let answer = http(
                        address,
                        &format!(
                            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                    );
                    assert!(answer.contains("INVALID_CREDENTIALS"), "{answer}");
                });
            }
        });
    };
    // Both hashing threads have hashed before the first figure.
    burst(0);
    let before = resident_kib(child.id());
    for round in 1..=8 {
        burst(round);
    }
    let after = resident_kib(child.id());
    assert!(
        after < before + ARGON2_KIB,
        "32 password checks left {} KiB more resident ({before} KiB -> {after} KiB): their argon2 memory stayed",
        after.saturating_sub(before)
    );
    assert!(stop(child).success());
}

#[test]
fn secrets_are_set_from_stdin_on_a_stopped_server_listed_without_values_and_removed() {
    let repo = example_repo();
    let dir = tempfile::TempDir::new().expect("dir");
    let config = dir.path().join("distribution.yaml");
    std::fs::write(
        &config,
        format!(
            "name: orbit\nstateRepo:\n  path: {}\ndataDirectory: data\n",
            repo.path().display()
        ),
    )
    .expect("config");
    let secret = |args: &[&str], stdin: &str| {
        let mut child = vupdate()
            .args(["distribution", "secret"])
            .args(args)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        let output = child.wait_with_output().expect("wait");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = secret(&["set", "jetto-token"], "tok-3f9a1c\n");
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("secret `jetto-token` set (10 bytes)"),
        "{said}"
    );
    // Sealed in the store: the value is in no file of the data directory.
    let data = dir.path().join("data");
    assert!(
        data.join("store.sqlite").exists(),
        "the store holds the secrets"
    );
    let found = vupdate_test_support::files_containing(&[&data], "tok-3f9a1c");
    assert!(found.is_empty(), "the value is stored sealed: {found:?}");
    let (code, listed) = secret(&["list"], "");
    assert_eq!(code, Some(0), "{listed}");
    assert!(listed.starts_with("jetto-token\t"), "{listed}");
    assert!(!listed.contains("tok-3f9a1c"), "{listed}");
    // Bad input is refused with exit code 2, and the value is never echoed.
    let (code, said) = secret(&["set", "no/slash"], "tok-3f9a1c");
    assert_eq!(code, Some(2), "{said}");
    assert!(!said.contains("tok-3f9a1c"), "{said}");
    let (code, said) = secret(&["set", "empty"], "\n");
    assert_eq!(code, Some(2), "{said}");
    let (code, said) = secret(&["remove", "jetto-token"], "");
    assert_eq!(code, Some(0), "{said}");
    let (code, listed) = secret(&["list"], "");
    assert_eq!((code, listed.as_str()), (Some(0), ""), "removed");
    let (code, said) = secret(&["remove", "jetto-token"], "");
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("there is no secret `jetto-token`"), "{said}");
}
