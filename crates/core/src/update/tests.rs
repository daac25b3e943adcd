//! Tests of the update.json / install.json models: a full file, error paths, defaults,
//! expansion, and the install.json round trip.

use proptest::prelude::*;

use super::*;
use crate::macros::{MacroError, Macros};

/// An update.json using every field, as a service repository would hold it.
const FULL: &str = r#"{
  "update": [
    {
      "service": "payment-api",
      "build": {
        "buildCommands": [
          {
            "command": "sbt",
            "args": ["-Dversion=%%version%%", "clean", "assembly"],
            "env": { "JAVA_OPTS": "-Xmx1g", "SBT_OPTS": "-Dsbt.log.noformat=true" },
            "directory": "server",
            "exitCode": 0,
            "outputMatch": "(?s).*\\[success\\].*"
          },
          { "command": "./check.sh" }
        ],
        "copyFiles": [
          {
            "sourceFile": "server/target/payment.jar",
            "destinationFile": "payment.jar"
          },
          {
            "sourceFile": "server/conf",
            "destinationFile": "conf",
            "except": ["conf/local.conf", "conf/test"],
            "settings": { "port": "8080", "dbName": "payments" }
          }
        ]
      },
      "install": {
        "installCommands": [
          { "command": "/bin/sh", "args": ["-c", "./migrate.sh --role=%%role%%"] }
        ],
        "postInstallCommands": [
          { "command": "chmod", "args": ["+x", "run.sh"], "exitCode": 0 }
        ],
        "runService": {
          "command": "/usr/bin/java",
          "args": ["-jar", "payment.jar", "--role", "%%role%%"],
          "env": { "PAYMENT_VERSION": "%%version%%" },
          "writeLogs": {
            "directory": "log",
            "filePrefix": "payment-%%role%%",
            "maxFileSizeMB": 20,
            "maxFilesCount": 10
          },
          "uploadLogs": true,
          "faultFilesMatch": "hs_err_pid.*\\.log|core",
          "restartOnFault": false,
          "restartConditions": {
            "maxMemoryMB": 2048,
            "maxCpu": { "percents": 250, "durationSec": 60 },
            "makeCore": true,
            "checkTimeoutMs": 5000
          },
          "stopSignal": "INT",
          "stopTimeoutMs": 30000
        }
      }
    },
    {
      "service": "web",
      "build": {
        "copyFiles": [ { "sourceFile": "dist", "destinationFile": "." } ]
      }
    }
  ]
}"#;

fn full() -> UpdateFile {
    UpdateFile::from_json(FULL).expect("the full example parses")
}

#[test]
fn full_update_json_parses_every_field() {
    let file = full();
    assert_eq!(file.update.len(), 2);
    let payment = file
        .service("payment-api")
        .expect("payment-api is described");
    assert!(file.service("payment").is_none());

    let build = &payment.build.build_commands[0];
    assert_eq!(build.command, "sbt");
    assert_eq!(build.args, ["-Dversion=%%version%%", "clean", "assembly"]);
    assert_eq!(
        build.env.get_index(1),
        Some((
            &"SBT_OPTS".to_owned(),
            &"-Dsbt.log.noformat=true".to_owned()
        ))
    );
    assert_eq!(build.directory.as_deref(), Some("server"));
    assert_eq!(build.exit_code, Some(0));
    let output = build.output_match.as_ref().expect("outputMatch given");
    assert!(output.is_match("[info] x\n[success] Total time: 3 s\n"));
    assert!(!output.is_match("[error] failed"));

    let conf = &payment.build.copy_files[1];
    assert_eq!(conf.except, ["conf/local.conf", "conf/test"]);
    assert_eq!(
        conf.macros().expand_known("%%port%%/%%dbName%%/%%host%%").1,
        ["host"]
    );

    let install = payment.install.as_ref().expect("install given");
    assert_eq!(
        install.install_commands[0].args[1],
        "./migrate.sh --role=%%role%%"
    );
    assert_eq!(install.post_install_commands[0].command, "chmod");
    let run = install.run_service.as_ref().expect("runService given");
    let logs = run.write_logs.as_ref().expect("writeLogs given");
    assert_eq!((logs.max_file_size_mb, logs.max_files_count), (20, 10));
    assert!(run.upload_logs);
    assert!(run.fault_files_match.matches_whole("hs_err_pid42.log"));
    assert!(run.fault_files_match.matches_whole("core"));
    assert!(!run.fault_files_match.matches_whole("core.1"));
    assert!(!run.restart_on_fault);
    let conditions = run
        .restart_conditions
        .as_ref()
        .expect("restartConditions given");
    assert_eq!(conditions.max_memory_mb, Some(2048));
    assert_eq!(
        conditions.max_cpu,
        Some(MaxCpu {
            percents: 250,
            duration_sec: 60
        })
    );
    assert!(conditions.make_core);
    assert_eq!(conditions.check_timeout_ms, 5000);
    assert_eq!(run.stop_signal, StopSignal::Int);
    assert_eq!(run.stop_timeout_ms, 30000);

    let web = file.service("web").expect("web is described");
    assert!(web.build.build_commands.is_empty());
    assert!(web.install.is_none());
}

#[test]
fn defaults_apply_when_fields_are_left_out() {
    let install = InstallRules::from_json(r#"{ "runService": { "command": "./run.sh", "restartConditions": { "checkTimeoutMs": 1000 } } }"#)
        .expect("a minimal install.json parses");
    assert!(install.install_commands.is_empty() && install.post_install_commands.is_empty());
    let run = install.run_service.expect("runService given");
    let mut expected = RunService::new("./run.sh");
    expected.restart_conditions = Some(RestartConditions {
        max_memory_mb: None,
        max_cpu: None,
        make_core: false,
        check_timeout_ms: 1000,
    });
    assert_eq!(run, expected);
    assert_eq!(
        run.fault_files_match.as_str(),
        run::DEFAULT_FAULT_FILES_MATCH
    );
    assert!(run.restart_on_fault && !run.upload_logs);
    assert_eq!(
        (run.stop_signal, run.stop_timeout_ms),
        (StopSignal::Term, 5000)
    );
    assert_eq!(InstallRules::from_json("{}"), Ok(InstallRules::default()));
}

/// Replaces the first `from` in the full example by `to`, so each case breaks one value.
fn broken(from: &str, to: &str) -> String {
    assert!(FULL.contains(from), "the example has no {from:?}");
    FULL.replacen(from, to, 1)
}

#[test]
fn each_kind_of_error_names_its_path() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            broken(r#""percents": 250"#, r#""percents": "x""#),
            "update[0].install.runService.restartConditions.maxCpu.percents",
            r#"invalid type: string "x", expected a CPU percentage (100 per core) from 1 to 10000"#,
        ),
        (
            broken(r#""exitCode": 0,"#, r#""exitcode": 0,"#),
            "update[0].build.buildCommands[0].exitcode",
            "unknown field `exitcode`, expected one of `command`, `args`, `env`, `directory`, `exitCode`, `outputMatch`",
        ),
        (
            broken(r#""service": "web""#, r#""service": "payment-api""#),
            "update[1].service",
            "service `payment-api` is already described at update[0]",
        ),
        (
            broken(r#""command": "./check.sh""#, r#""command": " ""#),
            "update[0].build.buildCommands[1].command",
            "the command is empty: give the program to run",
        ),
        (
            broken(r#""maxFileSizeMB": 20"#, r#""maxFileSizeMB": 0"#),
            "update[0].install.runService.writeLogs.maxFileSizeMB",
            "invalid value: integer `0`, expected a number from 1 up",
        ),
        (
            broken(r#""maxFilesCount": 10"#, r#""maxFilesCount": 0"#),
            "update[0].install.runService.writeLogs.maxFilesCount",
            "invalid value: integer `0`, expected a number from 1 to 4294967295",
        ),
        (
            broken(r#""percents": 250"#, r#""percents": 0"#),
            "update[0].install.runService.restartConditions.maxCpu.percents",
            "invalid value: integer `0`, expected a CPU percentage (100 per core) from 1 to 10000",
        ),
        (
            broken(r#""percents": 250"#, r#""percents": 10001"#),
            "update[0].install.runService.restartConditions.maxCpu.percents",
            "invalid value: integer `10001`, expected a CPU percentage (100 per core) from 1 to 10000",
        ),
        (
            broken(r#""checkTimeoutMs": 5000"#, r#""checkTimeoutMs": 0"#),
            "update[0].install.runService.restartConditions.checkTimeoutMs",
            "invalid value: integer `0`, expected a number from 1 up",
        ),
        (
            broken(
                r#""destinationFile": "conf""#,
                r#""destinationFile": "/etc/conf""#,
            ),
            "update[0].build.copyFiles[1].destinationFile",
            "`/etc/conf` is absolute: give a path relative to the image root",
        ),
        (
            broken(
                r#""destinationFile": "conf""#,
                r#""destinationFile": "conf/../../x""#,
            ),
            "update[0].build.copyFiles[1].destinationFile",
            "`conf/../../x` contains `..`: the path must stay inside the image",
        ),
        (
            broken(
                r#""faultFilesMatch": "hs_err_pid.*\\.log|core""#,
                r#""faultFilesMatch": "core(""#,
            ),
            "update[0].install.runService.faultFilesMatch",
            "`core(` is not a valid regular expression: unclosed group",
        ),
        (
            broken(r#""stopSignal": "INT""#, r#""stopSignal": "STOP""#),
            "update[0].install.runService.stopSignal",
            "`STOP` is not a stop signal: use one of TERM, INT, QUIT, HUP, KILL, USR1, USR2",
        ),
        (
            broken(r#""service": "web""#, r#""service": "we b""#),
            "update[1].service",
            "service name `we b` is not valid",
        ),
        (
            broken(r#""sourceFile": "dist", "#, ""),
            "update[1].build.copyFiles[0]",
            "missing field `sourceFile`",
        ),
        (
            broken(r#""args": ["+x", "run.sh"]"#, r#""args": "+x""#),
            "update[0].install.postInstallCommands[0].args",
            r#"invalid type: string "+x", expected a sequence"#,
        ),
        (format!("{FULL} x"), parse::TOP_LEVEL, "trailing characters"),
        (
            "{".to_owned(),
            parse::TOP_LEVEL,
            "EOF while parsing an object",
        ),
        (
            r#"{"update": [{"service": "x", "#.to_owned(),
            "update[0]",
            "EOF while parsing a value",
        ),
        (
            r#"{"update": [], "extra": 1}"#.to_owned(),
            "extra",
            "unknown field `extra`, expected `update`",
        ),
    ];
    for (text, path, message) in cases {
        let error = UpdateFile::from_json(&text).expect_err(path);
        assert_eq!(error.path(), path, "{error}");
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("{path}: {message}")),
            "{shown}\nexpected {message}"
        );
    }
}

/// Found by the `update_json` fuzz target: an unknown empty key gave the path `` (and the
/// message `: unknown field …`); keys that are not plain words are quoted in a path.
#[test]
fn a_key_that_is_no_plain_word_is_quoted_in_the_path() {
    for (text, path) in [
        (r#"{"update": [], "": 1}"#, r#"[""]"#),
        (r#"{"update": [], "a.b c": 1}"#, r#"["a.b c"]"#),
        (
            r#"{"update": [{"service": "a", "build": {"copyFiles": []}, "x\"y": 1}]}"#,
            r#"update[0]["x\"y"]"#,
        ),
    ] {
        let error = UpdateFile::from_json(text).expect_err(path);
        assert_eq!(error.path(), path, "{error}");
    }
}

#[test]
fn missing_check_interval_is_reported_where_restart_conditions_sit() {
    let text = broken(r#""makeCore": true,"#, r#""makeCore": true"#).replacen(
        r#""checkTimeoutMs": 5000"#,
        "",
        1,
    );
    let error = UpdateFile::from_json(&text).expect_err("checkTimeoutMs is required");
    assert_eq!(
        error.path(),
        "update[0].install.runService.restartConditions"
    );
    assert!(
        error.to_string().contains("missing field `checkTimeoutMs`"),
        "{error}"
    );
}

#[test]
fn parse_errors_carry_the_line_and_column_of_the_value() {
    // Type errors and checked values (raised by a visitor) both point just past the value.
    for (from, to) in [
        (r#""percents": 250"#, r#""percents": "x""#),
        (r#""maxFileSizeMB": 20"#, r#""maxFileSizeMB": 0"#),
    ] {
        let text = broken(from, to);
        let error = UpdateFile::from_json(&text).expect_err(to);
        let (line, line_text) = text
            .lines()
            .enumerate()
            .find(|(_, line)| line.contains(to))
            .expect("the line is there");
        let column = line_text.find(to).expect("on the line") + to.len();
        assert_eq!(error.line_column(), Some((line + 1, column)), "{error}");
        assert!(
            error
                .to_string()
                .ends_with(&format!("(line {}, column {column})", line + 1)),
            "{error}"
        );
    }
    let duplicate = UpdateFile::from_json(&broken(
        r#""service": "web""#,
        r#""service": "payment-api""#,
    ))
    .expect_err("duplicate");
    assert_eq!(duplicate.line_column(), None);
}

#[test]
fn files_serialise_back_to_themselves() {
    let file = full();
    assert_eq!(
        UpdateFile::from_json(&file.to_json_pretty()),
        Ok(file.clone())
    );
    let install = file.update[0].install.clone().expect("install given");
    let json = install.to_json_pretty();
    assert!(
        json.contains(r#""maxFileSizeMB": 20"#) && json.contains(r#""maxMemoryMB": 2048"#),
        "{json}"
    );
    assert_eq!(InstallRules::from_json(&json), Ok(install));
}

#[test]
fn expansion_fills_every_string_field() {
    let macros = Macros::new().with("version", "1.2.3").with("role", "e.u");
    let file = full();
    let install = file.update[0]
        .install
        .as_ref()
        .expect("install given")
        .expand(&macros)
        .expect("all defined");
    assert_eq!(
        install.install_commands[0].args[1],
        "./migrate.sh --role=e.u"
    );
    let run = install.run_service.expect("runService given");
    assert_eq!(run.args, ["-jar", "payment.jar", "--role", "e.u"]);
    assert_eq!(run.env["PAYMENT_VERSION"], "1.2.3");
    assert_eq!(
        run.write_logs.expect("writeLogs given").file_prefix,
        "payment-e.u"
    );

    let build = file.update[0].build.build_commands[0]
        .expand(&macros)
        .expect("all defined");
    assert_eq!(build.args[0], "-Dversion=1.2.3");

    // Values go into patterns as literal text: `.` in a role matches only a dot.
    let mut pattern_run = RunService::new("x");
    pattern_run.fault_files_match = Pattern::new("core-%%role%%").expect("valid");
    let expanded = pattern_run
        .expand(&macros)
        .expect("role defined")
        .fault_files_match;
    assert!(expanded.matches_whole("core-e.u"));
    assert!(!expanded.matches_whole("core-eXu"));
}

#[test]
fn undefined_macros_name_their_field() {
    let file = full();
    let install = file.update[0].install.as_ref().expect("install given");
    let cases: &[(&Macros, &str, &str)] = &[
        (
            &Macros::new().with("version", "1"),
            "installCommands[0].args[1]",
            "role",
        ),
        (
            &Macros::new().with("role", "eu"),
            "runService.env.PAYMENT_VERSION",
            "version",
        ),
    ];
    for (macros, field, name) in cases {
        match install.expand(macros) {
            Err(MacroError::Undefined {
                name: got,
                field: got_field,
                ..
            }) => {
                assert_eq!((got_field.as_deref(), got.as_str()), (Some(*field), *name));
            }
            other => panic!("expected undefined macro, got {other:?}"),
        }
    }
    let mut command = Command::new("run");
    command.directory = Some("%%home%%/x".to_owned());
    let error = command.expand(&Macros::new()).expect_err("home undefined");
    assert_eq!(
        error.to_string(),
        "directory: undefined macro `%%home%%` in `%%home%%/x`"
    );
    let mut run = RunService::new("%%bin%%");
    run.write_logs = Some(WriteLogs {
        directory: "%%logs%%".to_owned(),
        file_prefix: "p".to_owned(),
        max_file_size_mb: 1,
        max_files_count: 1,
    });
    let error = run
        .expand(&Macros::new().with("bin", "b"))
        .expect_err("logs undefined");
    assert_eq!(error.field(), Some("writeLogs.directory"));
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z%./ -]{0,10}", ".{0,6}"]
}

fn env() -> impl Strategy<Value = indexmap::IndexMap<String, String>> {
    prop::collection::vec(("[A-Z_]{1,6}", text()), 0..3)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn pattern() -> impl Strategy<Value = Pattern> {
    prop::sample::select(vec!["core", ".*", "a|b", r"\d+\.log", "(?s)x.*y"])
        .prop_map(|source| Pattern::new(source).expect("valid sources"))
}

fn command() -> impl Strategy<Value = Command> {
    (
        "[a-z./]{1,8}",
        prop::collection::vec(text(), 0..3),
        env(),
        prop::option::of(text()),
        prop::option::of(any::<i32>()),
        prop::option::of(pattern()),
    )
        .prop_map(
            |(command, args, env, directory, exit_code, output_match)| Command {
                command,
                args,
                env,
                directory,
                exit_code,
                output_match,
            },
        )
}

fn run_service() -> impl Strategy<Value = RunService> {
    let logs = ("[a-z]{1,5}", "[a-z%]{1,5}", 1..u64::MAX, 1..u32::MAX).prop_map(
        |(directory, file_prefix, max_file_size_mb, max_files_count)| WriteLogs {
            directory,
            file_prefix,
            max_file_size_mb,
            max_files_count,
        },
    );
    let conditions = (
        prop::option::of(1..u64::MAX),
        prop::option::of((1..=10_000u32, any::<u64>())),
        any::<bool>(),
        1..u64::MAX,
    )
        .prop_map(
            |(max_memory_mb, cpu, make_core, check_timeout_ms)| RestartConditions {
                max_memory_mb,
                max_cpu: cpu.map(|(percents, duration_sec)| MaxCpu {
                    percents,
                    duration_sec,
                }),
                make_core,
                check_timeout_ms,
            },
        );
    let signal = prop::sample::select(vec![
        StopSignal::Term,
        StopSignal::Int,
        StopSignal::Quit,
        StopSignal::Kill,
    ]);
    (
        command(),
        prop::option::of(logs),
        any::<bool>(),
        pattern(),
        any::<bool>(),
        prop::option::of(conditions),
        signal,
        any::<u64>(),
        prop::option::of(health_check()),
    )
        .prop_map(
            |(
                command,
                write_logs,
                upload_logs,
                fault_files_match,
                restart_on_fault,
                restart_conditions,
                stop_signal,
                stop_timeout_ms,
                health_check,
            )| RunService {
                command: command.command,
                args: command.args,
                env: command.env,
                write_logs,
                upload_logs,
                fault_files_match,
                restart_on_fault,
                restart_conditions,
                stop_signal,
                stop_timeout_ms,
                health_check,
            },
        )
}

fn health_check() -> impl Strategy<Value = HealthCheck> {
    let probe = prop_oneof![
        "[a-z]{1,8}(:[0-9]{1,5})?(/[a-z%]{0,6})?"
            .prop_map(|rest| Probe::Http(format!("http://{rest}"))),
        "[a-z0-9.]{1,8}:[0-9]{1,5}".prop_map(Probe::Tcp),
        command().prop_map(|command| Probe::Command(Box::new(command))),
    ];
    (
        probe,
        1..u64::MAX,
        1..u64::MAX,
        1..u32::MAX,
        1..u32::MAX,
        1..u64::MAX,
    )
        .prop_map(
            |(probe, interval_ms, timeout_ms, healthy_after, unhealthy_after, start_window_ms)| {
                HealthCheck {
                    interval_ms,
                    timeout_ms,
                    healthy_after,
                    unhealthy_after,
                    start_window_ms,
                    ..HealthCheck::new(probe)
                }
            },
        )
}

proptest! {
    #[test]
    fn install_json_round_trips(
        install_commands in prop::collection::vec(command(), 0..3),
        post_install_commands in prop::collection::vec(command(), 0..3),
        run_service in prop::option::of(run_service()),
    ) {
        let install = InstallRules { install_commands, post_install_commands, run_service };
        prop_assert_eq!(InstallRules::from_json(&install.to_json_pretty()), Ok(install));
    }
}

/// The repository's own `update.json`: its builds of the service `updater` are the small
/// updater program (scripts/build-updater) where the updater's image holds it.
#[test]
fn the_repositorys_update_json_builds_the_small_updater() {
    let file = UpdateFile::from_json(include_str!("../../../../update.json")).expect("parses");
    let updater = file.service("updater").expect("the updater is described");
    let build = &updater.build.build_commands[0];
    assert_eq!(
        (build.command.as_str(), build.args.as_slice()),
        (
            "sh",
            &["scripts/build-updater".to_owned(), "image".to_owned()][..]
        )
    );
    let copy = &updater.build.copy_files[0];
    assert_eq!(copy.destination_file, "bin/vupdate");
    let install = updater
        .install
        .as_ref()
        .expect("an install.json, as every image has");
    assert!(
        install.run_service.is_none(),
        "the updater's start is its handover"
    );
}
