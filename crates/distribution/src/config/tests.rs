//! Loading `distribution.yaml`: defaults, path resolution, the example file, and a table
//! of errors with their exact messages.

use std::path::Path;

use super::*;

const MINIMAL: &str = "name: acme\nstateRepo:\n  path: state\n";

#[test]
fn defaults_follow_the_original_and_paths_resolve_against_the_file() {
    let config = DistributionConfig::from_str(MINIMAL, "/etc/vupdate").expect("loads");
    assert_eq!(config.name.as_str(), "acme");
    assert_eq!(config.title, "acme");
    assert_eq!(config.instance, "local");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8000");
    assert_eq!(config.tls, None);
    assert_eq!(config.data_directory, Path::new("/etc/vupdate"));
    assert_eq!(
        config.store,
        StoreConfig::Sqlite {
            path: "/etc/vupdate/store.sqlite".into()
        }
    );
    assert_eq!(
        config.state_repo,
        StateRepoConfig {
            source: StateRepoSource::Path("/etc/vupdate/state".into()),
            branch: "main".into(),
            poll_interval: Duration::from_secs(30),
            clone: "/etc/vupdate/state".into(),
            webhook_secret_file: "/etc/vupdate/webhook.secret".into(),
        }
    );
    assert_eq!(config.versions.max_history_size, 25);
    assert_eq!(config.expiration.policy(), ExpiryPolicy::default());
    assert_eq!(config.expiration.schedule.expression(), "0 3 * * *");
    assert_eq!(config.jwt_key_file, Path::new("/etc/vupdate/jwt.key"));
    assert_eq!(
        config.builder,
        BuilderConfig {
            directory: "/etc/vupdate/builder".into(),
            max_parallel_builds: 2,
        }
    );
    assert_eq!(
        config.lease,
        LeaseConfig {
            ttl: Duration::from_secs(5),
            renew_every: Duration::from_millis(1500),
        }
    );
    let tuned = format!("{MINIMAL}lease: {{ttl: 10s, renewEvery: 2s}}\n");
    let tuned = DistributionConfig::from_str(&tuned, "/etc/vupdate").expect("loads");
    assert_eq!(
        (tuned.lease.ttl, tuned.lease.renew_every),
        (Duration::from_secs(10), Duration::from_secs(2))
    );
}

#[test]
fn data_directory_moves_the_defaults_and_absolute_paths_stay() {
    let text = "name: acme\ndataDirectory: data\nstore: {kind: sqlite}\n\
                stateRepo: {url: 'https://git.example/state.git', pollInterval: 2m}\n\
                jwtKeyFile: /secrets/jwt.key\n\
                expiration: {serviceLogs: 3d, maxFaultReports: 5, schedule: '30 1 * * 1-5'}\n";
    let config = DistributionConfig::from_str(text, "/srv").expect("loads");
    assert_eq!(config.data_directory, Path::new("/srv/data"));
    assert_eq!(
        config.store,
        StoreConfig::Sqlite {
            path: "/srv/data/store.sqlite".into()
        }
    );
    assert_eq!(
        config.state_repo.source,
        StateRepoSource::Url("https://git.example/state.git".into())
    );
    assert_eq!(config.state_repo.poll_interval, Duration::from_secs(120));
    assert_eq!(config.state_repo.clone, Path::new("/srv/data/state"));
    assert_eq!(config.jwt_key_file, Path::new("/secrets/jwt.key"));
    let policy = config.expiration.policy();
    assert_eq!(policy.service_logs, Duration::from_secs(3 * 24 * 3600));
    assert_eq!(policy.fault_reports_max_count, 5);
    assert_eq!(policy.task_logs, ExpiryPolicy::default().task_logs);
    assert_eq!(config.builder.directory, Path::new("/srv/data/builder"));

    let text =
        "name: acme\nstateRepo: {path: s}\nbuilder: {directory: work, maxParallelBuilds: 4}\n";
    let config = DistributionConfig::from_str(text, "/srv").expect("loads");
    assert_eq!(
        config.builder,
        BuilderConfig {
            directory: "/srv/work".into(),
            max_parallel_builds: 4,
        }
    );
}

#[test]
fn mongo_store_maps_to_the_store_config() {
    let text = "name: acme\nstateRepo: {path: s}\nstore:\n  kind: mongo\n  url: mongodb://db:27017/\n  database: acme\n  logs: {url: 'mongodb://logs:27017/', database: acme-logs}\n";
    let config = DistributionConfig::from_str(text, "/srv").expect("loads");
    assert_eq!(
        config.store,
        StoreConfig::Mongo {
            url: "mongodb://db:27017/".into(),
            database: "acme".into(),
            logs: Some(vupdate_store::MongoLogs {
                url: "mongodb://logs:27017/".into(),
                database: "acme-logs".into()
            }),
        }
    );
}

#[test]
fn the_replica_example_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/replica.yaml");
    let text = std::fs::read_to_string(&example).expect("the example exists");
    let config = DistributionConfig::from_str(&text, "/etc/vupdate").expect("the example loads");
    assert!(matches!(config.store, StoreConfig::Mongo { .. }));
    assert_eq!(
        config.object_store,
        Some(S3Config {
            bucket: "acme-images".into(),
            region: "eu-west-1".into(),
            endpoint: None,
            prefix: "acme".into(),
            credentials_file: Some("/etc/vupdate/s3.env".into()),
        })
    );
    assert_eq!(config.jwt_key_file, Path::new("/etc/vupdate/jwt.key"));
    assert_eq!(config.lease, LeaseConfig::default());
}

#[test]
fn the_example_file_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/distribution.yaml");
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = std::fs::read_to_string(&example).expect("the example exists");
    let copy = dir.path().join("distribution.yaml");
    std::fs::write(&copy, &text).expect("write");
    let config = DistributionConfig::load(&copy).expect("the example loads");
    assert_eq!(config.name.as_str(), "acme");
    assert_eq!(config.title, "ACME distribution");
    assert_eq!(
        config.tls,
        Some(crate::config::TlsConfig {
            certificate: dir.path().join("data/tls/certificate.pem"),
            key: dir.path().join("data/tls/key.pem"),
            self_signed: Some(crate::config::SelfSigned {
                names: vec!["dist.example.com".to_owned(), "10.0.0.5".to_owned()]
            }),
        })
    );
    assert_eq!(config.data_directory, dir.path().join("data"));
    assert_eq!(config.builder.directory, dir.path().join("data/builder"));
    assert_eq!(config.builder.max_parallel_builds, 2);
    // The example writes every limit out at its default (the hashing threads at 2).
    let mut defaults = crate::config::LimitsConfig::default();
    defaults.login.hashing = crate::auth::HashPoolSize {
        workers: 2,
        queue: 8,
    };
    assert_eq!(config.limits, defaults);
}

#[test]
fn relative_paths_resolve_against_the_files_folder() {
    for (file, folder) in [
        ("distribution.yaml", "."),
        ("conf/distribution.yaml", "conf"),
        ("/etc/vupdate/distribution.yaml", "/etc/vupdate"),
    ] {
        assert_eq!(folder_of(Path::new(file)), Path::new(folder), "{file}");
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("distribution.yaml");
    std::fs::write(&file, MINIMAL).expect("write");
    let config = DistributionConfig::load(&file).expect("loads");
    assert_eq!(config.data_directory, dir.path());
    assert_eq!(config.jwt_key_file, dir.path().join("jwt.key"));
}

#[test]
fn a_relative_config_path_gives_absolute_paths_resolved_once() {
    // The case: `--config distribution.yaml` with `dataDirectory: data` cloned
    // into `data/data/state`, since the clone ran inside `data` with a relative target.
    let text = "name: acme\ndataDirectory: ./data\nstateRepo: {url: 'https://git.example/s.git'}\n\
                tokenFiles: {updater: ./data/../updater.token}\nbuilder: {directory: work/}\n";
    let config = DistributionConfig::from_str(text, ".").expect("loads");
    let cwd = std::env::current_dir().expect("working directory");
    assert_eq!(config.data_directory, cwd.join("data"));
    assert_eq!(config.state_repo.clone, cwd.join("data/state"));
    assert_eq!(
        config.store,
        StoreConfig::Sqlite {
            path: cwd.join("data/store.sqlite")
        }
    );
    assert_eq!(config.jwt_key_file, cwd.join("data/jwt.key"));
    assert_eq!(config.builder.directory, cwd.join("work"));
    assert_eq!(
        config.token_files["updater"],
        cwd.join("data/../updater.token")
    );
    let text = "name: acme\nstateRepo: {path: ../state}\n";
    let config = DistributionConfig::from_str(text, "conf/.").expect("loads");
    assert_eq!(config.data_directory, cwd.join("conf"));
    assert_eq!(
        config.state_repo.source,
        StateRepoSource::Path(cwd.join("conf/../state"))
    );
}

#[test]
fn a_missing_file_is_named() {
    let error = DistributionConfig::load("/nonexistent/distribution.yaml").expect_err("fails");
    assert!(
        error
            .to_string()
            .starts_with("cannot read the distribution config /nonexistent/distribution.yaml: "),
        "{error}"
    );
}

#[test]
fn errors_name_the_file_position_and_field() {
    let cases: &[(&str, &str)] = &[
        (
            "name: acme\nstateRepo: {path: s}\nlisten: 127.0.0.1:80\ntitel: x\n",
            "/srv/distribution.yaml:4:1: unknown field `titel`, expected one of name, title, instance, listen, tls, dataDirectory, store, stateRepo, versions, expiration, jwtKeyFile, tokenFiles, builder, mesh, lease, objectStore, limits",
        ),
        (
            "name: acme\nstateRepo: {path: s}\nexpiration:\n  serviceLogs: 7 dayz\n",
            "/srv/distribution.yaml:4:16: invalid duration `7 dayz` (unknown time unit \"dayz\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. `30s`, `15m`, `12h` or `7d`",
        ),
        (
            "name: acme/prod\nstateRepo: {path: s}\n",
            "/srv/distribution.yaml:1:7: invalid distribution name `acme/prod`: `/` is not allowed (use letters, digits, `.`, `_`, `-`)",
        ),
        (
            "name: acme\nstateRepo:\n  path: s\n  url: https://git.example/s.git\n",
            "/srv/distribution.yaml:3:3: stateRepo: give either `path` or `url`, not both",
        ),
        (
            "name: acme\nstateRepo: {branch: main}\n",
            "/srv/distribution.yaml:2:12: stateRepo: give `path` (a local repository) or `url`",
        ),
        (
            "name: acme\nstateRepo: {path: s}\nexpiration: {schedule: '0 0 3 * * *'}\n",
            "/srv/distribution.yaml:3:24: invalid schedule `0 0 3 * * *`: it has 6 fields (expected 5 fields: minute hour day-of-month month day-of-week, e.g. `0 3 * * *`)",
        ),
        (
            "name: acme\nstateRepo: {path: s}\nbuilder: {maxParallelBuilds: 0}\n",
            "/srv/distribution.yaml: `builder.maxParallelBuilds`: must be at least 1 (builds would never start)",
        ),
        (
            "name: acme\nstateRepo: {path: s}\nbuilder: {maxParalelBuilds: 3}\n",
            "/srv/distribution.yaml:3:11: unknown field `maxParalelBuilds`, expected one of directory, maxParallelBuilds",
        ),
        (
            "name: acme\nstateRepo: {path: s}\nmesh: {uploadInterval: 0s}\n",
            "/srv/distribution.yaml: `mesh.uploadInterval`: must be longer than 0s",
        ),
        (
            "name: acme\nstateRepo: {path: s}\nlease: {ttl: 2s, renewEvery: 1500ms}\n",
            "/srv/distribution.yaml: `lease.renewEvery`: must be at most half of lease.ttl (2000 ms), so one late renewal does not lose the lease",
        ),
        (
            "name: acme\nstateRepo: {path: s}\nlease: {renewEvery: 0s}\n",
            "/srv/distribution.yaml: `lease.renewEvery`: must be longer than 0s",
        ),
        (
            "name: acme\nstateRepo: {path: s}\ntls: {certificate: nope.pem, key: nope.key}\n",
            "/srv/distribution.yaml: `tls.certificate`: no such file /srv/nope.pem",
        ),
        (
            "name: acme\nstateRepo: {path: s}\ntls: {certificate: cert.pem}\n",
            "/srv/distribution.yaml: `tls`: give `certificate` and `key` (PEM files), or `selfSigned: {names: [host, ...]}` for a certificate the server makes",
        ),
        (
            "name: acme\nstateRepo: {path: s}\ntls: {selfSigned: {names: [\"dïst.example\"]}}\n",
            "/srv/distribution.yaml: `tls.selfSigned.names`: give host names or IP addresses: Invalid IA5String: 'dïst.example'",
        ),
    ];
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let error = DistributionConfig::from_str(text, "/srv").expect_err(text);
            (error.to_string() != *expected).then(|| format!("{text:?}\n  got: {error}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn limits_take_sizes_and_durations_and_refuse_zeros() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let yaml = format!(
        "{MINIMAL}limits:\n  requests:\n    maxGraphqlBody: 512KiB\n    maxImage: 10000\n    bodyTimeout: 2s\n  login:\n    hashWorkers: 3\n"
    );
    let config = DistributionConfig::from_str(&yaml, dir.path()).expect("loads");
    assert_eq!(config.limits.requests.max_graphql_body, 512 << 10);
    assert_eq!(config.limits.requests.max_image, 10_000);
    assert_eq!(config.limits.requests.body_timeout, Duration::from_secs(2));
    assert_eq!(config.limits.login.hashing.workers, 3);
    assert_eq!(
        config.limits.login.hashing.queue, 12,
        "4 per worker by default"
    );
    assert_eq!(
        config.limits.requests.max, 512,
        "the rest keeps its defaults"
    );

    let zero = format!("{MINIMAL}limits:\n  connections:\n    perAddress: 0\n");
    let error = DistributionConfig::from_str(&zero, dir.path()).expect_err("zero refused");
    let message = error.to_string();
    assert!(
        message.contains("limits.connections.perAddress"),
        "{message}"
    );
    let idle = format!("{MINIMAL}limits:\n  connections:\n    keepAliveTimeout: 2m\n");
    let config = DistributionConfig::from_str(&idle, dir.path()).expect("loads");
    assert_eq!(
        config.limits.connections.keep_alive_timeout,
        Duration::from_secs(120)
    );
    assert_eq!(
        config.limits.connections.header_timeout,
        Duration::from_secs(10),
        "the head's own timeout is apart"
    );
    let zero = format!("{MINIMAL}limits:\n  connections:\n    keepAliveTimeout: 0s\n");
    let message = DistributionConfig::from_str(&zero, dir.path())
        .expect_err("zero refused")
        .to_string();
    assert!(
        message.contains("limits.connections.keepAliveTimeout"),
        "{message}"
    );
    let typo = format!("{MINIMAL}limits:\n  requests:\n    maxBodies: 1\n");
    let message = DistributionConfig::from_str(&typo, dir.path())
        .expect_err("unknown field refused")
        .to_string();
    assert!(message.contains("maxBodies"), "{message}");
}

#[test]
fn log_uploads_have_places_of_their_own_and_never_none() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let limits = |lines: &str| {
        DistributionConfig::from_str(
            &format!("{MINIMAL}limits:\n  requests:\n{lines}"),
            dir.path(),
        )
        .map(|config| config.limits.requests)
        .map_err(|error| error.to_string())
    };
    let default = DistributionConfig::from_str(MINIMAL, dir.path()).expect("loads");
    assert_eq!(default.limits.requests.max_log_uploads, 256);
    let told = limits("    max: 100\n    maxLogUploads: 900\n").expect("loads");
    assert_eq!((told.max, told.max_log_uploads), (100, 900));
    let zero = limits("    maxLogUploads: 0\n").expect_err("zero refused");
    assert!(zero.contains("limits.requests.maxLogUploads"), "{zero}");
    assert_eq!(default.limits.requests.max_log_upload_bytes, 64 << 20);
    let told = limits("    maxLogUploadBytes: 8 MiB\n").expect("loads");
    assert_eq!(told.max_log_upload_bytes, 8 << 20);
    let zero = limits("    maxLogUploadBytes: 0\n").expect_err("zero refused");
    assert!(zero.contains("limits.requests.maxLogUploadBytes"), "{zero}");
}

#[test]
fn a_self_signed_certificate_lives_in_the_data_directory_and_names_the_instance() {
    let config = DistributionConfig::from_str(
        "name: acme\ninstance: dist-1\ndataDirectory: data\nstateRepo: {path: s}\ntls: {selfSigned: {}}\n",
        "/srv",
    )
    .expect("loads");
    assert_eq!(
        config.tls,
        Some(crate::config::TlsConfig {
            certificate: "/srv/data/tls/certificate.pem".into(),
            key: "/srv/data/tls/key.pem".into(),
            self_signed: Some(crate::config::SelfSigned {
                names: vec!["dist-1".to_owned()]
            }),
        })
    );
}
