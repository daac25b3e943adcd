//! Failing builds: the error names the step, the command and what went wrong; no image is
//! left and no tag is pushed.

use vupdate_builder::{BuilderError, CancellationToken};

use crate::support::{self, Source};

fn update_json(commands: &str) -> String {
    format!(
        r#"{{"update": [{{"service": "api", "build": {{
            "buildCommands": {commands},
            "copyFiles": [{{"sourceFile": "update.json", "destinationFile": "update.json"}}]
        }}}}]}}"#
    )
}

#[tokio::test]
async fn a_wrong_exit_code_fails_the_build_with_the_step_command_and_code() {
    let commands = r#"[
        {"command": "true"},
        {"command": "sh", "args": ["-c", "echo compiling; echo 'error: x.c:3' >&2; exit 3"], "exitCode": 0}
    ]"#;
    let source = Source::new(&[("update.json", &update_json(commands), false)]);
    let (_temp, builder) = support::builder();
    let (log, shared) = support::memory_log();
    let request = support::request("api", "acme-1.0", vec![source.repository("api")]);
    let error = builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .expect_err("exit code 3 is not 0");
    let BuilderError::ExitCode {
        step,
        command,
        status,
        expected,
        tail,
    } = &error
    else {
        panic!("not an exit code error: {error}");
    };
    assert_eq!(step, "buildCommands[1]");
    assert_eq!(
        command,
        "sh -c echo compiling; echo 'error: x.c:3' >&2; exit 3"
    );
    assert_eq!(status, "exit code 3");
    assert_eq!(*expected, 0);
    assert!(
        tail.contains("compiling") && tail.contains("error: x.c:3"),
        "{tail}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("buildCommands[1]: `sh -c echo compiling;"),
        "{message}"
    );
    assert!(
        message.contains("exited with exit code 3, expected exit code 0"),
        "{message}"
    );
    // The failure is the last line of the build log too.
    assert_eq!(log.lines().last().map(|(_, _, m)| m.clone()), Some(message));
    assert!(support::no_zips(
        &builder.developer_directory(&"api".parse().expect("service"))
    ));
    assert_eq!(source.remote_tag("api-acme-1.0"), None);
}

#[tokio::test]
async fn output_that_does_not_match_fails_the_build_with_the_pattern_and_output() {
    let commands = r#"[
        {"command": "sh", "args": ["-c", "echo 'ran 3 tests'; echo '1 failed' >&2"], "outputMatch": "ran \\d+ tests\\n(?s:.*)0 failed"}
    ]"#;
    let source = Source::new(&[("update.json", &update_json(commands), false)]);
    let (_temp, builder) = support::builder();
    let (_log, shared) = support::memory_log();
    let request = support::request("api", "acme-1.1", vec![source.repository("api")]);
    let error = builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .expect_err("no `0 failed` in the output");
    let BuilderError::OutputMismatch {
        step,
        pattern,
        tail,
        ..
    } = &error
    else {
        panic!("not an output mismatch: {error}");
    };
    assert_eq!(step, "buildCommands[0]");
    assert_eq!(pattern, r"ran \d+ tests\n(?s:.*)0 failed");
    assert!(
        tail.contains("ran 3 tests") && tail.contains("1 failed"),
        "{tail}"
    );
    assert!(
        error
            .to_string()
            .contains("does not match outputMatch `ran \\d+ tests\\n(?s:.*)0 failed`"),
        "{error}"
    );
    assert!(support::no_zips(
        &builder.developer_directory(&"api".parse().expect("service"))
    ));
    assert_eq!(source.remote_tag("api-acme-1.1"), None);
}

#[tokio::test]
async fn output_of_both_streams_is_matched() {
    // The match spans stdout and stderr: the pattern needs a line from each.
    let commands = r#"[
        {"command": "sh", "args": ["-c", "echo 'out line'; echo 'err line' >&2"], "outputMatch": "(?s)(out line.*err line|err line.*out line)", "exitCode": 0}
    ]"#;
    let source = Source::new(&[("update.json", &update_json(commands), false)]);
    let (_temp, builder) = support::builder();
    let (log, shared) = support::memory_log();
    let request = support::request("api", "acme-1.2", vec![source.repository("api")]);
    builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
}

#[tokio::test]
async fn a_tag_another_run_of_the_same_build_pushed_first_is_taken_as_pushed() {
    let source = Source::new(&[("update.json", &update_json("[]"), false)]);
    // Another run of this build (one cut by a server's kill, or a builder a new lease
    // holder fenced off) pushes the same tag while this one pushes: the remote takes that
    // one and refuses this one.
    let hook = source.remote.path().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new name; do env -u GIT_QUARANTINE_PATH git update-ref \"$name\" \"$new\"; done\necho 'cannot lock ref' >&2\nexit 1\n",
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (_temp, builder) = support::builder();
    let request = support::request("api", "acme-2.1", vec![source.repository("api")]);
    let (log, shared) = support::memory_log();
    builder
        .build_developer(request, shared, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("the tag is where this build puts it: {e}\n{}", log.text()));
    assert_eq!(
        source.remote_tag("api-acme-2.1"),
        Some(source.work.rev_parse("HEAD"))
    );
}

#[tokio::test]
async fn a_tag_the_remote_holds_at_another_commit_fails_the_build_and_leaves_no_image() {
    let source = Source::new(&[("update.json", &update_json("[]"), false)]);
    let (_temp, builder) = support::builder();
    let request = || support::request("api", "acme-2.0", vec![source.repository("api")]);
    let first = builder
        .build_developer(request(), support::memory_log().1, CancellationToken::new())
        .await
        .expect("first build");
    let tagged = source.work.rev_parse("HEAD");
    assert_eq!(
        source.remote_tag("api-acme-2.0").as_deref(),
        Some(tagged.as_str())
    );

    // The same version again from other sources: the push of the tag is refused.
    source.commit(&[("later.txt", "later\n", false)], "later");
    let error = builder
        .build_developer(request(), support::memory_log().1, CancellationToken::new())
        .await
        .expect_err("the tag already names another commit");
    let message = error.to_string();
    assert!(
        matches!(error, BuilderError::Tag { .. }),
        "not a tag error: {message}"
    );
    assert!(
        message.starts_with("tagging repository `api` ("),
        "{message}"
    );
    assert!(message.contains("with `api-acme-2.0`"), "{message}");
    assert!(
        !first.zip.path.exists(),
        "the image of the failed build is gone"
    );
    assert!(support::no_zips(
        &builder.developer_directory(&"api".parse().expect("service"))
    ));
    assert_eq!(
        source.remote_tag("api-acme-2.0").as_deref(),
        Some(tagged.as_str())
    );
}

#[tokio::test]
async fn a_missing_update_json_and_an_undefined_macro_are_named() {
    let source = Source::new(&[("README.md", "no update.json here\n", false)]);
    let (_temp, builder) = support::builder();
    let request = support::request("api", "acme-3", vec![source.repository("api")]);
    let error = builder
        .build_developer(request, support::memory_log().1, CancellationToken::new())
        .await
        .expect_err("no update.json");
    assert!(
        error.to_string().ends_with(
            "source/api/update.json` does not exist: the first source repository must hold the service's update.json"
        ),
        "{error}"
    );

    let commands = r#"[{"command": "echo", "args": ["%%undefined%%"]}]"#;
    let source = Source::new(&[("update.json", &update_json(commands), false)]);
    let request = support::request("api", "acme-4", vec![source.repository("api")]);
    let error = builder
        .build_developer(request, support::memory_log().1, CancellationToken::new())
        .await
        .expect_err("undefined macro");
    assert!(
        error
            .to_string()
            .starts_with("buildCommands[0]: args[0]: undefined macro `%%undefined%%`"),
        "{error}"
    );
}
