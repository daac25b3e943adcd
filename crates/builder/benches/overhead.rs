//! The builder's own overhead: a developer build of a 50 MB source tree with no build
//! commands, next to `git clone` plus `zip -r` of the same tree. Prints both times and their
//! ratio (target: at most 1.2).
//!
//! The tree (pseudo-random text, deflates about 3:1, in 20 folders) is generated in a temp
//! dir at each run and committed with `git`; both sides clone it over `file://`, so both go
//! through git's pack transport as a remote would. Each side runs `OVERHEAD_BENCH_RUNS`
//! times (default 3), alternating, and the median is reported. `OVERHEAD_BENCH_MB` sets the
//! size. The baseline needs the `zip` program (`apt-get install -y zip`); without it only
//! the builder's figure is printed.
//!
//! Run: `cargo bench -p vupdate-builder --bench overhead`.
//!
//! Measured 2026-12-01 on the 2-core development machine, with other builds running:
//! builder 7.43 s, `git clone` + `zip -r` 9.57 s, ratio 0.78 (a second run: 8.45 s vs
//! 10.55 s, 0.80); a build that fetches into its earlier clone took 3.1 s.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vupdate_builder::{BuildLog, Builder, CancellationToken, DeveloperRequest};
use vupdate_core::log::Level;
use vupdate_state::model::{DeveloperBuild, GitRepository};
use vupdate_test_support::{GitRepo, MAIN, Person};

mod common;
use common::{baseline_done, env_number, installed, median, seconds, text, zip_r};

const UPDATE_JSON: &str = r#"{"update": [{"service": "big", "build": {
    "copyFiles": [{"sourceFile": "data", "destinationFile": "data"}]
}}]}"#;

/// A repository holding `update.json` and `megabytes` of text under `data/`.
fn source_tree(megabytes: u64) -> (GitRepo, u64, usize) {
    let repo = GitRepo::init();
    repo.write("update.json", UPDATE_JSON);
    let total = megabytes * 1_000_000;
    let file_size = 128 * 1024;
    let files = total.div_ceil(file_size as u64) as usize;
    for index in 0..files {
        let path = format!("data/d{:02}/f{index:04}.txt", index % 20);
        repo.write(&path, &text(index as u64 + 1, file_size));
    }
    repo.commit("a big tree", &Person::alice());
    (repo, files as u64 * file_size as u64, files)
}

/// `git clone` then `zip -r` of the tree's `data` folder; returns the time and zip size.
fn baseline(url: &str, scratch: &Path, run: u64) -> (Duration, u64) {
    let clone = scratch.join(format!("baseline-{run}"));
    let zip = scratch.join(format!("baseline-{run}.zip"));
    let started = Instant::now();
    let mut git = Command::new("git");
    vupdate_test_support::isolate(&mut git);
    let status = git
        .args(["clone", "--quiet", "--branch", MAIN, url])
        .arg(&clone)
        .status()
        .expect("run git clone");
    assert!(status.success(), "git clone failed");
    zip_r(&clone, "data", &zip);
    baseline_done(started, &clone, &zip)
}

/// The builder's developer build of version `acme-1.0.<run>` in `directory`.
fn builder_build(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    directory: &Path,
    run: u64,
) -> (Duration, u64) {
    let builder = Builder::new(directory);
    let request = DeveloperRequest {
        service: "big".parse().expect("service name"),
        version: format!("acme-1.0.{run}").parse().expect("version"),
        settings: DeveloperBuild {
            sources: vec![GitRepository {
                name: "big".to_owned(),
                url: url.to_owned(),
                branch: MAIN.to_owned(),
                clone_submodules: true,
                sub_directory: None,
            }],
            ..DeveloperBuild::default()
        },
        private_files: None,
    };
    let log: Arc<dyn BuildLog> = Arc::new(|_: Level, _: &str, _: &str| {});
    let started = Instant::now();
    let built = runtime
        .block_on(builder.build_developer(request, log, CancellationToken::new()))
        .unwrap_or_else(|e| panic!("the builder failed: {e}"));
    (started.elapsed(), built.zip.size)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful here.
    let megabytes = env_number("OVERHEAD_BENCH_MB", 50);
    let runs = env_number("OVERHEAD_BENCH_RUNS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    println!("machine: {}", vupdate_test_support::machine::describe());
    let generating = Instant::now();
    let (repo, bytes, files) = source_tree(megabytes);
    let url = format!("file://{}", repo.path().display());
    println!(
        "source tree: {files} files, {:.1} MB, generated and committed in {}",
        bytes as f64 / 1e6,
        seconds(generating.elapsed())
    );
    let scratch = tempfile::tempdir().expect("temp dir");
    let have_zip = installed("zip");
    if !have_zip {
        println!(
            "the `zip` program is not installed, so the baseline cannot run: install it with `apt-get install -y zip`"
        );
    }

    let mut builder_times = Vec::new();
    let mut baseline_times = Vec::new();
    let (mut builder_zip, mut baseline_zip) = (0, 0);
    for run in 0..runs {
        // A fresh work directory each time: clone, copy, zip, tag and push, like a first build.
        let directory = scratch.path().join(format!("builder-{run}"));
        let (time, size) = builder_build(&runtime, &url, &directory, run);
        builder_times.push(time);
        builder_zip = size;
        std::fs::remove_dir_all(&directory).expect("clean up");
        if have_zip {
            let (time, size) = baseline(&url, scratch.path(), run);
            baseline_times.push(time);
            baseline_zip = size;
        }
    }
    // A second build in the same work directory fetches instead of cloning.
    let reused = scratch.path().join("builder-reused");
    builder_build(&runtime, &url, &reused, runs);
    let (fetched, _) = builder_build(&runtime, &url, &reused, runs + 1);

    let builder_median = median(builder_times);
    println!(
        "builder (clone + copy + zip + tag), median of {runs}: {} (zip {:.1} MB)",
        seconds(builder_median),
        builder_zip as f64 / 1e6
    );
    println!(
        "builder with its earlier clone (fetch + checkout + copy + zip + tag): {}",
        seconds(fetched)
    );
    if have_zip {
        let baseline_median = median(baseline_times);
        println!(
            "git clone + zip -r, median of {runs}: {} (zip {:.1} MB)",
            seconds(baseline_median),
            baseline_zip as f64 / 1e6
        );
        println!(
            "ratio builder / (git clone + zip -r): {:.2} (target at most 1.2)",
            builder_median.as_secs_f64() / baseline_median.as_secs_f64()
        );
    }
}
