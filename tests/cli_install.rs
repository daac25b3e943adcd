//! The one-line install of an updater, from the built binary against a real distribution:
//! `curl …/install/updater.sh | sh -s -- --token … --root DIR` (the old flag, kept) writes the expected files
//! with the expected modes, an updater started from the written config runs `hello` in
//! role `eu`, a second run changes nothing, `uninstall` removes the unit and program
//! (and with `--purge` the rest), and each bad input (wrong, expired and used-up
//! token, unreachable distribution, checksum mismatch) says why and leaves the root
//! untouched. Also: the generated systemd units pass `systemd-analyze verify`, and the
//! cloud-init document passes `cloud-init schema`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{Patience, isolate};

#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;
// Shared with the other end-to-end tests.
#[allow(dead_code)]
#[path = "support/hello.rs"]
mod hello;
#[path = "support/install.rs"]
mod install;

use distribution::terminate;
use hello::{hello_config, hello_repos};
use install::{LIMIT, modes, snapshot, start_updater, stop_with_hello, text, wait_for_hello};
use nix::sys::signal::Signal;

fn vupdate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command
}

/// `curl -fsSL BASE/install/updater.sh | sh -s -- ARGS`, as a person pastes it.
fn install_line(base: &str, args: &[&str]) -> Output {
    let quoted: Vec<String> = args
        .iter()
        .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
        .collect();
    let line = format!(
        "curl -fsSL {base}/install/updater.sh | sh -s -- {}",
        quoted.join(" ")
    );
    let mut command = Command::new("sh");
    isolate(&mut command);
    command
        .args(["-c", &line])
        .output()
        .expect("run the install line")
}

async fn issue(admin: &Client, expires: &str, uses: u32) -> Value {
    let data: Value = admin
        .graphql(
            "mutation($e: String!, $u: Int!) { issueEnrolmentToken(services: [\"hello-eu\"], expires: $e, uses: $u) { token installLine info { id expiresAt } } }",
            json!({"e": expires, "u": uses}),
        )
        .await
        .expect("issue an enrolment token");
    data["issueEnrolmentToken"].clone()
}

/// Runs the install line into a new empty root; it must fail saying `reason` and leave
/// the root empty.
fn refused(base: &str, root: &Path, args: &[&str], reason: &str) {
    std::fs::create_dir_all(root).expect("root");
    let mut all = vec![
        "--root",
        root.to_str().expect("utf-8"),
        "--instance",
        "vm-x",
    ];
    all.extend_from_slice(args);
    let output = install_line(base, &all);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(reason),
        "expected `{reason}`:\n{}",
        text(&output)
    );
    assert!(
        stderr.contains("nothing was installed"),
        "{}",
        text(&output)
    );
    assert!(
        snapshot(root).is_empty(),
        "the root stays untouched: {root:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_installs_an_updater_that_runs_its_service_and_refuses_bad_input() {
    let dir = TempDir::new().expect("dir");
    let repos = hello_repos();
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    let started = distribution::start(&dist, &hello_config(&repos.remote, "data")).await;
    let (mut server, admin, base) = (started.server, started.admin, started.base);
    Patience::up_to(LIMIT)
        .eventually("the state is in force", || async {
            let data: Value = admin
                .graphql("{ status { stateRepo { commit } } }", json!({}))
                .await
                .ok()?;
            data["status"]["stateRepo"]["commit"].as_str().map(drop)
        })
        .await;

    // `status` shows the line to paste; the token's own line names it.
    let status: Value = admin
        .graphql("{ status { updaterInstallLine } }", json!({}))
        .await
        .expect("status");
    assert_eq!(
        status["status"]["updaterInstallLine"],
        format!(
            "curl -fsSL {base}/install/updater.sh | VUPDATE_ENROLMENT_TOKEN=<ENROLMENT-TOKEN> sh -s -- --services <SERVICES>"
        )
    );
    let issued = issue(&admin, "1h", 1).await;
    let token = issued["token"].as_str().expect("token").to_owned();
    assert_eq!(
        issued["installLine"],
        format!(
            "curl -fsSL {base}/install/updater.sh | VUPDATE_ENROLMENT_TOKEN={token} sh -s -- --services hello-eu"
        )
    );

    // The install into a root.
    let root = dir.path().join("root");
    let vm_work = dir.path().join("vm-work");
    std::fs::create_dir_all(&root).expect("root");
    let args = [
        "--token",
        &token,
        "--root",
        root.to_str().expect("utf-8"),
        "--instance",
        "vm-1",
        "--work-dir",
        vm_work.to_str().expect("utf-8"),
    ];
    let first = install_line(&base, &args);
    assert!(first.status.success(), "{}", text(&first));
    let files = snapshot(&root);
    assert_eq!(
        modes(&files),
        BTreeMap::from([
            (
                "etc/systemd/system/vupdate-updater.service".to_owned(),
                0o644
            ),
            ("etc/vupdate/updater.token".to_owned(), 0o600),
            ("etc/vupdate/updater.yaml".to_owned(), 0o644),
            ("usr/local/bin/vupdate".to_owned(), 0o755),
        ]),
        "{}",
        text(&first)
    );
    assert_eq!(
        files[Path::new("usr/local/bin/vupdate")].1,
        std::fs::read(env!("CARGO_BIN_EXE_vupdate")).expect("binary"),
        "the distribution's own program stands in for the updater's image"
    );
    let config =
        String::from_utf8_lossy(&files[Path::new("etc/vupdate/updater.yaml")].1).into_owned();
    assert!(
        config.contains("instance: \"vm-1\"\n")
            && config.contains(&format!("distributionUrl: \"{base}\"\n"))
            && config.contains("accessTokenFile: updater.token\n")
            && config.contains("  - service: \"hello\"\n    role: \"eu\"\n"),
        "{config}"
    );
    let unit = vupdate()
        .args(["updater", "systemd-unit", "--work-dir"])
        .arg(&vm_work)
        .output()
        .expect("systemd-unit");
    assert_eq!(
        files[Path::new("etc/systemd/system/vupdate-updater.service")].1,
        unit.stdout,
        "the installed unit is the one `systemd-unit` prints"
    );
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        out.contains("enrolled as `updater@vm-1` with distribution `acme`, for hello-eu"),
        "{}",
        text(&first)
    );

    // A second run changes nothing and spends no use of the token.
    let second = install_line(&base, &args);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(snapshot(&root), files, "{}", text(&second));
    let again = String::from_utf8_lossy(&second.stdout);
    assert!(
        again.contains("already enrolled")
            && !again
                .lines()
                .any(|line| line.starts_with("created") || line.starts_with("changed")),
        "{}",
        text(&second)
    );

    // The updater, started from the installed program and config, runs hello in role eu.
    let log_path = dir.path().join("updater.log");
    let mut updater = start_updater(&root, &root.join("etc/vupdate/updater.yaml"), &log_path);
    wait_for_hello(&admin, &log_path, &dist).await;
    // Ctrl-C stops it as SIGTERM does: cleanly, and its services with it (a process
    // started in the background by a shell has SIGINT ignored, so it must listen).
    stop_with_hello(&mut updater, &vm_work.join("hello-eu"), Signal::SIGINT).await;
    assert!(
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("SIGINT"),
        "the updater says why it stops"
    );

    // Uninstall keeps the config and token unless asked to purge.
    let root_arg = root.to_str().expect("utf-8");
    let kept = vupdate()
        .args(["updater", "uninstall", "--root", root_arg])
        .output()
        .expect("uninstall");
    assert!(kept.status.success(), "{}", text(&kept));
    let left: Vec<PathBuf> = snapshot(&root).into_keys().collect();
    assert_eq!(
        left,
        [
            PathBuf::from("etc/vupdate/updater.token"),
            PathBuf::from("etc/vupdate/updater.yaml")
        ],
        "{}",
        text(&kept)
    );
    let purged = vupdate()
        .args(["updater", "uninstall", "--purge", "--root", root_arg])
        .output()
        .expect("uninstall --purge");
    assert!(purged.status.success(), "{}", text(&purged));
    assert!(snapshot(&root).is_empty(), "{}", text(&purged));

    let tokens: Value = admin
        .graphql("{ enrolmentTokens { id enrolled } }", json!({}))
        .await
        .expect("tokens");
    assert_eq!(
        tokens["enrolmentTokens"],
        json!([{"id": issued["info"]["id"], "enrolled": ["vm-1"]}])
    );

    // Bad inputs: each says why, and the root stays untouched.
    let bad = dir.path().join("bad");
    refused(
        &base,
        &bad.join("wrong"),
        &["--token", "vue_0000000000000000"],
        "this enrolment token is not known to this distribution",
    );
    refused(
        &base,
        &bad.join("used-up"),
        &["--token", &token],
        "is used up",
    );
    let short = issue(&admin, "1s", 5).await;
    let expires: chrono::DateTime<chrono::Utc> = short["info"]["expiresAt"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .expect("expiresAt");
    // Waits for the clock to pass the expiry, not for the server.
    if let Ok(left) = (expires - chrono::Utc::now()).to_std() {
        tokio::time::sleep(left + Duration::from_millis(100)).await;
    }
    refused(
        &base,
        &bad.join("expired"),
        &["--token", short["token"].as_str().expect("token")],
        "expired at",
    );
    let fresh = issue(&admin, "1h", 5).await;
    let fresh_token = fresh["token"].as_str().expect("token");
    refused(
        &base,
        &bad.join("unreachable"),
        &[
            "--token",
            fresh_token,
            "--distribution-url",
            "http://127.0.0.1:1",
        ],
        "cannot reach the distribution at http://127.0.0.1:1",
    );
    // A download that does not match its checksum: the script from this distribution,
    // pointed at a plain file server whose binary is not the one its checksum names.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir_all(tampered.join("install")).expect("dir");
    std::fs::write(
        tampered.join("install/updater.sha256"),
        format!("{}  vupdate\n", "0".repeat(64)),
    )
    .expect("sum");
    std::fs::write(
        tampered.join("install/updater"),
        "#!/bin/sh\necho tampered\n",
    )
    .expect("binary");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("port")
        .port();
    let mut files_server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .current_dir(&tampered)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let tampered_url = format!("http://127.0.0.1:{port}");
    Patience::up_to(LIMIT)
        .eventually("the file server answers", || async {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(drop)
        })
        .await;
    refused(
        &base,
        &bad.join("checksum"),
        &["--token", fresh_token, "--distribution-url", &tampered_url],
        "checksum mismatch",
    );
    let _ = files_server.kill();
    let _ = files_server.wait();
    let spent: Value = admin
        .graphql("{ enrolmentTokens { id enrolled } }", json!({}))
        .await
        .expect("tokens");
    let fresh_record = spent["enrolmentTokens"]
        .as_array()
        .and_then(|list| list.iter().find(|t| t["id"] == fresh["info"]["id"]))
        .expect("the fresh token");
    assert_eq!(
        fresh_record["enrolled"],
        json!([]),
        "a failed install spends no use"
    );

    terminate(&mut server);
}

/// `systemd-analyze verify` accepts the unit with no warning at all (it prints, and
/// still exits 0, for a setting it does not know).
fn verify_unit(dir: &Path, name: &str, unit: &[u8]) {
    let path = dir.join(name);
    std::fs::write(&path, unit).expect("unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/install-test-deps.sh installs systemd)");
    assert!(
        output.status.success() && output.stderr.is_empty() && output.stdout.is_empty(),
        "{name}:\n{}\n{}",
        String::from_utf8_lossy(unit),
        text(&output)
    );
}

#[test]
fn the_generated_units_pass_systemd_analyze_verify() {
    let dir = TempDir::new().expect("dir");
    let binary = env!("CARGO_BIN_EXE_vupdate");
    for (part, name, work) in [
        ("updater", "vupdate-updater.service", "/var/lib/vupdate"),
        ("updater", "vupdate-updater.service", "/srv/vupdate work"),
        (
            "distribution",
            "vupdate-distribution.service",
            "/var/lib/vupdate-distribution",
        ),
    ] {
        let flag = if part == "updater" {
            "--work-dir"
        } else {
            "--data-dir"
        };
        let output = vupdate()
            .args([
                part,
                "systemd-unit",
                "--binary",
                binary,
                "--user",
                "svc",
                flag,
                work,
            ])
            .output()
            .expect("systemd-unit");
        assert!(output.status.success(), "{}", text(&output));
        verify_unit(dir.path(), name, &output.stdout);
    }
}

#[test]
fn the_cloud_init_document_passes_the_cloud_init_schema() {
    let output = vupdate()
        .args([
            "updater",
            "cloud-init",
            "--distribution-url",
            "https://dist.example.com",
            "--token",
            "vue_abc",
            "--services",
            "api,worker-eu",
        ])
        .output()
        .expect("cloud-init");
    assert!(output.status.success(), "{}", text(&output));
    let dir = TempDir::new().expect("dir");
    let path = dir.path().join("user-data");
    std::fs::write(&path, &output.stdout).expect("user-data");
    let checked = match Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&path)
        .output()
    {
        Ok(checked) => checked,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "SKIPPED: no cloud-init to check the schema ({error}); scripts/install-test-deps.sh installs it"
            );
            return;
        }
        Err(error) => panic!("cloud-init is needed (scripts/install-test-deps.sh): {error}"),
    };
    assert!(
        checked.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        text(&checked)
    );
}
