//! A distribution with a self-signed certificate, end to end: on its first start it makes
//! its key (0600) and certificate and prints the pin of the key; `status` and the install
//! line carry it; the line (curl pinned to the key, the token in the environment) installs
//! an updater into a temporary root whose config pins the key, and that updater runs
//! `hello` over HTTPS (GraphQL, the subscription, the image download) although the
//! certificate names neither 127.0.0.1 nor any authority; the server's own builder
//! reaches it the same way. An updater pinned to another key is refused with a message
//! that names the field and both pins. A restart keeps the key; a deleted certificate is
//! made again with the same key, so the pin stays.
//!
//! `vupdate distribution install --root DIR` writes the program, a config from its flags,
//! the unit and the self-signed key and certificate with the expected modes, prints the
//! pin, changes nothing when run again, and a server started from what it wrote (its
//! `/var/lib` bound to the root's in a mount namespace) serves with that key.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::{Client, PublicKeyPin};
use vupdate_test_support::{Patience, isolate};

#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;
#[allow(dead_code)]
#[path = "support/hello.rs"]
mod hello;
#[path = "support/install.rs"]
mod install;

use distribution::terminate;
use hello::{hello_config, hello_repos};
use install::{LIMIT, modes, snapshot, start_updater, stop_with_hello, text, wait_for_hello};
use nix::sys::signal::Signal;

/// Runs `line` (an install line as the distribution prints it) with `args` appended.
fn run_line(line: &str, args: &[&str]) -> Output {
    let quoted: Vec<String> = args
        .iter()
        .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
        .collect();
    let mut command = Command::new("sh");
    isolate(&mut command);
    command
        .args(["-c", &format!("{line} {}", quoted.join(" "))])
        .output()
        .expect("run the install line")
}

async fn pin_in_status(admin: &Client) -> Value {
    let status: Value = admin
        .graphql("{ status { publicKeyPin updaterInstallLine } }", json!({}))
        .await
        .expect("status");
    status["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updater_pinned_to_a_self_signed_distribution_runs_its_service() {
    let dir = TempDir::new().expect("dir");
    let repos = hello_repos();
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    let config = format!(
        "{}tls:\n  selfSigned:\n    names: [dist.example, 10.0.0.5]\n",
        hello_config(&repos.remote, "data")
    );
    let started = distribution::start(&dist, &config).await;
    let (mut server, admin, base) = (started.server, started.admin, started.base);
    let pin = started.pin.expect("the server prints its pin");
    assert!(base.starts_with("https://"), "{base}");

    // The key and certificate it made, and the pin everywhere.
    let key_file = dist.join("data/tls/key.pem");
    let certificate_file = dist.join("data/tls/certificate.pem");
    let key = std::fs::read(&key_file).expect("the key was made");
    assert_eq!(
        std::fs::metadata(&key_file)
            .expect("key")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let pem = std::fs::read(&certificate_file).expect("the certificate was made");
    let der = rustls_pem_certificate(&pem);
    assert_eq!(
        vupdate_client::pin::pin_of_certificate(&der).expect("a certificate"),
        pin
    );
    let status = pin_in_status(&admin).await;
    assert_eq!(status["publicKeyPin"], pin.to_string());
    assert_eq!(
        status["updaterInstallLine"],
        format!(
            "curl -fsSL --pinnedpubkey {pin} -k {base}/install/updater.sh | VUPDATE_ENROLMENT_TOKEN=<ENROLMENT-TOKEN> sh -s -- --services <SERVICES>"
        )
    );

    // The line an administrator gets, pasted as it is: curl checks the pin, the script
    // passes it on to its downloads and to the config.
    let issued: Value = admin
        .graphql(
            "mutation { issueEnrolmentToken(services: [\"hello-eu\"], expires: \"1h\", uses: 1) { token installLine } }",
            json!({}),
        )
        .await
        .expect("issue an enrolment token");
    let token = issued["issueEnrolmentToken"]["token"]
        .as_str()
        .expect("token");
    let line = issued["issueEnrolmentToken"]["installLine"]
        .as_str()
        .expect("line");
    assert_eq!(
        line,
        format!(
            "curl -fsSL --pinnedpubkey {pin} -k {base}/install/updater.sh | VUPDATE_ENROLMENT_TOKEN={token} sh -s -- --services hello-eu"
        )
    );
    let root = dir.path().join("root");
    let vm_work = dir.path().join("vm-work");
    std::fs::create_dir_all(&root).expect("root");
    let root_arg = root.to_str().expect("utf-8");
    let work_arg = vm_work.to_str().expect("utf-8");
    let installed = run_line(
        line,
        &[
            "--root",
            root_arg,
            "--instance",
            "vm-1",
            "--work-dir",
            work_arg,
        ],
    );
    assert!(installed.status.success(), "{}", text(&installed));
    let written = std::fs::read_to_string(root.join("etc/vupdate/updater.yaml")).expect("config");
    assert!(
        written.contains(&format!("pinnedPublicKey: \"{pin}\"\n"))
            && written.contains(&format!("distributionUrl: \"{base}\"\n")),
        "{written}"
    );

    // The installed updater runs hello over the pinned HTTPS (the subscription and the
    // image download included); the image was built by the server's own builder, which
    // reached it pinned too.
    let log = dir.path().join("updater.log");
    let mut updater = start_updater(&root, &root.join("etc/vupdate/updater.yaml"), &log);
    wait_for_hello(&admin, &log, &dist).await;
    // SIGQUIT is a graceful stop too (as for nginx), services included.
    stop_with_hello(&mut updater, &vm_work.join("hello-eu"), Signal::SIGQUIT).await;

    // The same updater pinned to another key is refused, and says so.
    let other = PublicKeyPin::of_public_key(b"not the distribution's key");
    let wrong_config = root.join("etc/vupdate/wrong.yaml");
    std::fs::write(
        &wrong_config,
        written.replace(&pin.to_string(), &other.to_string()),
    )
    .expect("config");
    let wrong_log = dir.path().join("wrong.log");
    let mut wrong = start_updater(&root, &wrong_config, &wrong_log);
    let expected = format!(
        "the server's public key is not the pinned one (`pinnedPublicKey`): expected {other}, the server presents {pin}"
    );
    Patience::up_to(LIMIT)
        .eventually_or(
            "the wrongly pinned updater says why it is refused",
            || async {
                std::fs::read_to_string(&wrong_log)
                    .ok()?
                    .contains(&expected)
                    .then_some(())
            },
            || async { std::fs::read_to_string(&wrong_log).unwrap_or_default() },
        )
        .await;
    terminate(&mut wrong);

    // A restart keeps the key; without its certificate, it makes one with the same key,
    // so the pin does not change.
    terminate(&mut server);
    std::fs::remove_file(&certificate_file).expect("remove the certificate");
    let again = distribution::restart(&dist, &[]).await;
    let mut server = again.server;
    assert_eq!(again.pin, Some(pin), "the same key after a restart");
    assert_eq!(
        std::fs::read(&key_file).expect("key"),
        key,
        "never rewritten"
    );
    let remade = std::fs::read(&certificate_file).expect("a certificate again");
    assert_ne!(remade, pem, "a new certificate");
    assert_eq!(
        vupdate_client::pin::pin_of_certificate(&rustls_pem_certificate(&remade))
            .expect("certificate"),
        pin
    );
    assert_eq!(
        pin_in_status(&again.admin).await["publicKeyPin"],
        pin.to_string()
    );
    terminate(&mut server);
}

/// The first certificate of a PEM text, DER-encoded.
fn rustls_pem_certificate(pem: &[u8]) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem).expect("a PEM certificate")
}

fn vupdate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command
}

/// The pin a `distribution install` printed.
fn printed_pin(output: &Output) -> PublicKeyPin {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("TLS key pin: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pin| pin.parse().ok())
        .unwrap_or_else(|| panic!("no pin printed:\n{}", text(output)))
}

/// Runs `command` with `/var/lib` bound to `root`'s in a mount namespace of its own, so
/// the paths a config written for the installed system names lead into `root`.
fn bound_var_lib(root: &Path) -> Vec<String> {
    [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        "mount --bind \"$0/var/lib\" /var/lib && exec \"$@\"",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([root.display().to_string()])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_install_writes_a_config_that_starts_a_pinned_server() {
    let dir = TempDir::new().expect("dir");
    let repos = hello_repos();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("root");
    let root_arg = root.to_str().expect("utf-8");
    let state = repos.remote.path().to_str().expect("utf-8").to_owned();
    let args = [
        "distribution",
        "install",
        "--root",
        root_arg,
        "--name",
        "acme",
        "--state-repo",
        &state,
        "--listen",
        "127.0.0.1:0",
        "--instance",
        "dist-1",
        "--tls-name",
        "dist.example",
        "--tls-name",
        "10.0.0.5",
    ];
    let first = vupdate().args(args).output().expect("install");
    assert!(first.status.success(), "{}", text(&first));
    let pin = printed_pin(&first);
    let files = snapshot(&root);
    assert_eq!(
        modes(&files),
        BTreeMap::from([
            (
                "etc/systemd/system/vupdate-distribution.service".to_owned(),
                0o644
            ),
            ("etc/vupdate/distribution.yaml".to_owned(), 0o644),
            ("var/lib/vupdate-distribution/bin/vupdate".to_owned(), 0o755),
            (
                "var/lib/vupdate-distribution/tls/certificate.pem".to_owned(),
                0o644
            ),
            ("var/lib/vupdate-distribution/tls/key.pem".to_owned(), 0o600),
        ]),
        "{}",
        text(&first)
    );
    let unit = vupdate()
        .args(["distribution", "systemd-unit"])
        .output()
        .expect("systemd-unit");
    assert_eq!(
        files[Path::new("etc/systemd/system/vupdate-distribution.service")].1,
        unit.stdout,
        "the installed unit is the one `systemd-unit` prints"
    );
    let config =
        String::from_utf8_lossy(&files[Path::new("etc/vupdate/distribution.yaml")].1).into_owned();
    assert!(
        config.contains("name: \"acme\"\n")
            && config.contains(&format!("  url: \"{state}\"\n"))
            && config.contains("    names: [\"dist.example\", \"10.0.0.5\"]\n"),
        "{config}"
    );

    // Again: nothing changes, the pin is the same.
    let second = vupdate().args(args).output().expect("install again");
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(snapshot(&root), files, "{}", text(&second));
    assert_eq!(printed_pin(&second), pin);
    assert!(
        !String::from_utf8_lossy(&second.stdout)
            .lines()
            .any(|line| line.starts_with("created") || line.starts_with("changed")),
        "{}",
        text(&second)
    );

    // A bad flag leaves a new root untouched.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).expect("bad root");
    let refused = vupdate()
        .args([
            "distribution",
            "install",
            "--root",
            bad.to_str().expect("utf-8"),
            "--name",
            "acme",
            "--state-repo",
            &state,
            "--tls-certificate",
            "/etc/vupdate/missing.pem",
            "--tls-key",
            "/etc/vupdate/missing.key",
        ])
        .output()
        .expect("install");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("--tls-certificate /etc/vupdate/missing.pem: no such file"),
        "{}",
        text(&refused)
    );
    assert!(snapshot(&bad).is_empty());

    // The server started from what was written serves with the installed key.
    let wrapper = bound_var_lib(&root);
    let mut probe = Command::new(&wrapper[0]);
    probe.args(&wrapper[1..]).arg("true");
    match probe.output() {
        Ok(output) if output.status.success() => {}
        outcome if std::env::var_os("CI").is_none() => {
            eprintln!(
                "SKIPPED starting the installed server: cannot bind /var/lib in a mount namespace here ({outcome:?})"
            );
            return;
        }
        outcome => panic!("a mount namespace is needed to start the installed server: {outcome:?}"),
    }
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    let launch = distribution::Launch {
        wrapper: &wrapper,
        ..distribution::Launch::default()
    };
    let started =
        distribution::start_with(&logs, &root.join("etc/vupdate/distribution.yaml"), &launch).await;
    let mut server = started.server;
    assert_eq!(started.pin, Some(pin), "{}", distribution::log(&logs));
    assert!(started.base.starts_with("https://"), "{}", started.base);
    let status = pin_in_status(&started.admin).await;
    assert_eq!(status["publicKeyPin"], pin.to_string());
    assert!(
        root.join("var/lib/vupdate-distribution/store.sqlite")
            .is_file(),
        "the server keeps its data under the installed data directory"
    );
    terminate(&mut server);
}

/// A consumer whose `providers.yaml` pins a self-signed provider's key follows it over
/// HTTPS; an entry pinning another key is refused with both pins named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_follows_a_self_signed_provider_by_its_pin() {
    use vupdate_test_support::{GitRepo, Person};

    let dir = TempDir::new().expect("dir");
    let repos = hello_repos();
    let work = GitRepo::clone_from(&repos.remote);
    work.write(
        "consumers.yaml",
        "consumers:\n  mirror:\n    profile: self\n",
    );
    work.commit("mirror follows us", &Person::bob());
    work.push("origin", "main");
    let provider_dir = dir.path().join("provider");
    std::fs::create_dir_all(&provider_dir).expect("provider dir");
    let config = format!(
        "{}tls:\n  selfSigned:\n    names: [acme.example]\n",
        hello_config(&repos.remote, "data")
    );
    let mut provider = distribution::start(&provider_dir, &config).await;
    let pin = provider.pin.expect("the provider prints its pin");
    let token = distribution::issue_access_token(&provider.admin, "mirror").await;

    let other = PublicKeyPin::of_public_key(b"not the provider's key");
    let state = GitRepo::init_bare();
    let consumer_work = GitRepo::clone_from(&state);
    for (path, text) in [
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        ("services/hello.yaml", "client: {}\n".to_owned()),
        ("desired/client.yaml", "versions: {}\n".to_owned()),
        (
            "providers.yaml",
            format!(
                "providers:\n  acme:\n    url: {base}\n    accessTokenSecret: acme-token\n    pinnedPublicKey: \"{pin}\"\n  acme-by-another-key:\n    url: {base}\n    accessTokenSecret: acme-token\n    pinnedPublicKey: \"{other}\"\n",
                base = provider.base
            ),
        ),
    ] {
        consumer_work.write(path, &text);
    }
    consumer_work.commit("follow acme", &Person::bob());
    consumer_work.push("origin", "main");
    let consumer_dir = dir.path().join("consumer");
    std::fs::create_dir_all(&consumer_dir).expect("consumer dir");
    let mut consumer = distribution::start(
        &consumer_dir,
        &format!(
            "name: mirror\nlisten: 127.0.0.1:0\ndataDirectory: data\nstateRepo:\n  url: {}\n  pollInterval: 1s\n",
            state.path().display()
        ),
    )
    .await;
    consumer
        .admin
        .graphql::<Value>(
            r#"mutation($v: String!) { setSecret(name: "acme-token", value: $v) { name } }"#,
            json!({"v": token}),
        )
        .await
        .expect("the secret set");

    let providers = Patience::up_to(LIMIT)
        .every(std::time::Duration::from_millis(300))
        .eventually_or(
            "the pinned provider reached and the other refused",
            || async {
                let data: Value = consumer
                    .admin
                    .graphql(
                        "{ providers { distribution reachable lastError offered { service version } } }",
                        json!({}),
                    )
                    .await
                    .ok()?;
                let list = data["providers"].as_array()?.clone();
                // The first attempts may come before the secret is set, and the first
                // offer before the provider built its version.
                let settled = |p: &Value| {
                    (p["reachable"] == true
                        && p["offered"].as_array().is_some_and(|o| !o.is_empty()))
                        || p["lastError"]
                            .as_str()
                            .is_some_and(|e| e.contains("not the pinned one"))
                };
                list.iter().all(settled).then_some(list)
            },
            || async {
                format!(
                    "{}\n{}",
                    distribution::log(&provider_dir),
                    distribution::log(&consumer_dir)
                )
            },
        )
        .await;
    let by_name = |name: &str| {
        providers
            .iter()
            .find(|p| p["distribution"] == name)
            .unwrap_or_else(|| panic!("{name} in {providers:#?}"))
            .clone()
    };
    let pinned = by_name("acme");
    assert_eq!(pinned["reachable"], true, "{pinned:#}");
    assert_eq!(
        pinned["offered"],
        json!([{"service": "hello", "version": "acme-1.0.0"}]),
        "{pinned:#}"
    );
    let refused = by_name("acme-by-another-key");
    assert_eq!(refused["reachable"], false, "{refused:#}");
    let error = refused["lastError"].as_str().expect("an error");
    assert!(
        error.contains("not the pinned one")
            && error.contains(&other.to_string())
            && error.contains(&pin.to_string()),
        "{error}"
    );
    terminate(&mut consumer.server);
    terminate(&mut provider.server);
}
