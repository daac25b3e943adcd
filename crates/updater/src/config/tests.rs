//! Loading `updater.yaml`: defaults, path resolution, the example file, and a table of
//! errors with their exact messages.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

const MINIMAL: &str =
    "instance: vm-1\ndistributionUrl: https://dist.example/\naccessToken: t0k3n\n";

#[test]
fn defaults_apply_and_paths_resolve_against_the_file() {
    let config = UpdaterConfig::from_str(MINIMAL, "/etc/vupdate").expect("loads");
    assert_eq!(config.instance, "vm-1");
    assert_eq!(config.distribution_url, "https://dist.example");
    assert_eq!(config.access_token, AccessToken::Inline("t0k3n".to_owned()));
    assert_eq!(config.work_directory, Path::new("/etc/vupdate"));
    assert!(config.services.is_empty());
    assert_eq!(config.ca_file, None);
    assert_eq!(config.poll_interval, Duration::from_secs(10));
    assert_eq!(config.state_interval, Duration::from_secs(10));
    let defaults = RunnerOptions::default();
    assert_eq!(config.runner.start_window, defaults.start_window);
    assert_eq!(config.runner.start_attempts, 3);
    assert_eq!(config.runner.supervisor, SupervisorOptions::default());
    assert_eq!(config.runner.log, LogOptions::default());
    assert_eq!(config.drain, DrainOptions::default());
    assert_eq!(config.self_update, SelfUpdateOptions::default());
}

#[test]
fn a_pinned_public_key_is_read_and_excludes_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), "PEM\n").expect("ca");
    let pin = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let text = format!(
        "instance: vm\ndistributionUrl: https://d\naccessToken: t\npinnedPublicKey: {pin}\n"
    );
    let config = UpdaterConfig::from_str(&text, dir.path()).expect("loads");
    assert_eq!(
        config.pinned_public_key.map(|p| p.to_string()).as_deref(),
        Some(pin)
    );
    let both = format!("{text}caFile: ca.pem\n");
    let error = UpdaterConfig::from_str(&both, dir.path()).expect_err("both");
    assert!(
        error.to_string().contains(
            ":4:18: `pinnedPublicKey` and `caFile` exclude each other: a pinned key is trusted alone; remove one"
        ),
        "{error}"
    );
}

#[test]
fn every_setting_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "  secret\n").expect("token");
    std::fs::write(dir.path().join("ca.pem"), "PEM\n").expect("ca");
    let text = "instance: vm-2\ndistributionUrl: http://127.0.0.1:8000\naccessTokenFile: token\n\
        caFile: ca.pem\nworkDirectory: services\nservices: [api, {service: worker, role: eu}]\n\
        pollInterval: 1m\nstateInterval: 5s\ncgroups: off\n\
        install: {startWindow: 30s, startAttempts: 5, commandTimeout: 1h, maxImageMB: 10}\n\
        restart: {initialDelay: 1s, maxDelay: 1m, stableAfter: 5m, crashLoopAfter: 4, sampleInterval: 2s}\n\
        logs: {tailLines: 100, uploadBatchLines: 50, uploadBatchWait: 2s, maxSpoolMB: 3}\n\
        faults: {maxTotalMB: 7}\n\
        selfUpdate: {probeTimeout: 3s, readyWindow: 45s, handoverWait: 2m}\n";
    let config = UpdaterConfig::from_str(text, dir.path()).expect("loads");
    assert_eq!(
        config.access_token,
        AccessToken::File(dir.path().join("token"))
    );
    assert_eq!(config.access_token.read().expect("read"), "secret");
    assert_eq!(config.ca_file, Some(dir.path().join("ca.pem")));
    assert_eq!(config.work_directory, dir.path().join("services"));
    let services: Vec<String> = config.services.iter().map(ToString::to_string).collect();
    assert_eq!(services, ["api", "worker-eu"]);
    assert_eq!(config.poll_interval, Duration::from_secs(60));
    assert_eq!(config.state_interval, Duration::from_secs(5));
    let runner = &config.runner;
    assert_eq!(runner.start_window, Duration::from_secs(30));
    assert_eq!(runner.start_attempts, 5);
    assert_eq!(runner.command_timeout, Duration::from_secs(3600));
    assert_eq!(runner.max_image_bytes, 10 * 1024 * 1024);
    assert_eq!(runner.supervisor.cgroups, CgroupMode::Off);
    assert_eq!(
        runner.supervisor.restart,
        RestartPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            stable_after: Duration::from_secs(300),
            crash_loop_after: 4,
        }
    );
    assert_eq!(runner.supervisor.sample_interval, Duration::from_secs(2));
    assert_eq!(runner.log.tail_lines, 100);
    assert_eq!(runner.spool_max_bytes, 3 * 1024 * 1024);
    assert_eq!(runner.faults_max_bytes, 7 * 1024 * 1024);
    assert_eq!(
        (config.drain.max_lines, config.drain.max_wait),
        (50, Duration::from_secs(2))
    );
    assert_eq!(
        config.self_update,
        SelfUpdateOptions {
            probe_timeout: Duration::from_secs(3),
            ready_window: Duration::from_secs(45),
            handover_wait: Duration::from_secs(120),
        }
    );
}

#[test]
fn a_relative_config_path_gives_absolute_cleaned_paths() {
    // `workDirectory: .` once made services report `/var/lib/vupdate/./worker-eu`.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "t").expect("token");
    let text =
        "instance: vm\ndistributionUrl: http://d\naccessTokenFile: ./token\nworkDirectory: .\n";
    let config = UpdaterConfig::from_str(text, dir.path().join(".")).expect("loads");
    assert_eq!(config.work_directory, dir.path());
    assert_eq!(
        config.access_token,
        AccessToken::File(dir.path().join("token"))
    );
    let text =
        "instance: vm\ndistributionUrl: http://d\naccessToken: t\nworkDirectory: services/\n";
    let config = UpdaterConfig::from_str(text, "vm").expect("loads");
    let cwd = std::env::current_dir().expect("working directory");
    assert_eq!(config.work_directory, cwd.join("vm/services"));
    assert!(config.work_directory.is_absolute());
}

#[test]
fn the_example_file_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/updater.yaml");
    let text = std::fs::read_to_string(&example).expect("examples/updater.yaml");
    // Its token file lives on a real VM; point it at one that exists here.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("updater.token"), "t").expect("token");
    let text = text.replace("/etc/vupdate/updater.token", "updater.token");
    let config = UpdaterConfig::from_str(&text, dir.path()).expect("the example loads");
    assert_eq!(config.instance, "vm-eu-1");
    assert_eq!(config.services.len(), 2);
    assert_eq!(
        config.labels,
        BTreeMap::from([
            ("ring".to_owned(), "canary".to_owned()),
            ("zone".to_owned(), "eu".to_owned())
        ])
    );
    assert_eq!(config.work_directory, Path::new("/var/lib/vupdate"));
    // Every value the example gives is the default it names.
    assert_eq!(config.self_update, SelfUpdateOptions::default());
}

#[test]
fn errors_name_the_file_position_and_field() {
    let cases: &[(&str, &str)] = &[
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\npollIntervall: 5s\n",
            "/srv/updater.yaml:4:1: unknown field `pollIntervall`, expected one of instance, distributionUrl, accessToken, accessTokenFile, caFile, pinnedPublicKey, workDirectory, labels, services, pollInterval, stateInterval, cgroups, install, restart, logs, faults, selfUpdate",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\ninstall:\n  startWindow: 7 dayz\n",
            "/srv/updater.yaml:5:16: invalid duration `7 dayz` (unknown time unit \"dayz\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. `500ms`, `30s`, `10m` or `1h`",
        ),
        (
            "instance: vm\ndistributionUrl: ftp://d\naccessToken: t\n",
            "/srv/updater.yaml:2:18: `distributionUrl`: `ftp://d` is not an http:// or https:// URL",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\naccessTokenFile: t.txt\n",
            "/srv/updater.yaml:3:14: give either `accessToken` or `accessTokenFile`, not both",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\n",
            "/srv/updater.yaml: give `accessToken` or `accessTokenFile` (the updater's service account token)",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\ncaFile: ca.pem\n",
            "/srv/updater.yaml:4:9: `caFile`: no such file /srv/ca.pem",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\npinnedPublicKey: sha256//YWJj\n",
            "/srv/updater.yaml:4:18: `pinnedPublicKey`: `sha256//YWJj`: a SHA-256 has 32 bytes, this one 3 (44 base64 characters ending in `=`)",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\npinnedPublicKey: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
            "/srv/updater.yaml:4:18: `pinnedPublicKey`: `47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=` is not a public-key pin: write `sha256//` and the base64 SHA-256 of the key, as `vupdate distribution run` prints it",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessTokenFile: missing.token\n",
            "/srv/updater.yaml:3:18: `accessTokenFile`: no such file /srv/missing.token",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\nlabels:\n  ring: canary\n  zone: ''\n",
            "/srv/updater.yaml:6:9: `labels.zone`: give a non-empty value without control characters",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\nlabels: {'': eu}\n",
            "/srv/updater.yaml:4:14: `labels`: the label name `` is empty or holds control characters",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\nlabels: [canary]\n",
            "/srv/updater.yaml:4:9: expected mapping start",
        ),
        (
            "instance: ''\ndistributionUrl: https://d\naccessToken: t\n",
            "/srv/updater.yaml:1:11: `instance`: give this VM's instance id (non-empty, no control characters)",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\nservices:\n  - api\n  - {service: worker, role: e-u}\n",
            "/srv/updater.yaml:6:5: `services[1]`: role `e-u` is not valid: use letters, digits, `_` or `.` (no `-`: it separates service and role), at most 64 characters",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\ninstall: {startAttempts: 0}\n",
            "/srv/updater.yaml:4:26: 0 is not a whole number from 1 to 4294967295",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\nservices: [api, updater]\n",
            "/srv/updater.yaml:4:17: `services[1]`: `updater` is the updater itself, which updates itself: do not list it",
        ),
        (
            "instance: vm\ndistributionUrl: https://d\naccessToken: t\ncgroups: maybe\n",
            "/srv/updater.yaml:4:10: unknown variant `maybe`, expected one of auto, off",
        ),
    ];
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let error = UpdaterConfig::from_str(text, "/srv").expect_err(text);
            (error.to_string() != *expected)
                .then(|| format!("{text:?}\n  got: {error}\n want: {expected}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
