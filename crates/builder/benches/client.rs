//! Client builds of a large developer image: the builder's client build (one settings
//! file changed by a settings repository) next to `unzip` + the same file written +
//! `zip -r` of the image, the way a hand-made pipeline (and this builder before it
//! repacked images) does it. Prints both medians and their ratio.
//!
//! The image (`CLIENT_BENCH_MB`, default 200) is half text in 128 KiB files (deflates
//! about 3:1) and half one file of noise (stored), made with the builder's own zip. Each
//! side runs `CLIENT_BENCH_RUNS` times (default 3), alternating, each builder run in a
//! fresh work directory (its settings clone included). The baseline needs `zip` and
//! `unzip` (`apt-get install -y zip unzip`); without them only the builder is timed.
//! `CLIENT_BENCH_LOG=1` prints each build's log lines with the seconds since it started.
//!
//! Run: `cargo bench -p vupdate-builder --bench client`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use vupdate_builder::{BuildLog, Builder, CancellationToken, ClientRequest};
use vupdate_core::log::Level;
use vupdate_state::model::{ClientBuild, GitRepository};
use vupdate_test_support::{GitRepo, MAIN, Person};

mod common;
use common::{baseline_done, env_number, installed, median, seconds, text, zip_r};

/// The settings file the overlay changes.
const SETTINGS: &str = "config/app.json";

/// A developer image of about `megabytes`: half text, half noise, and [`SETTINGS`].
fn developer_image(scratch: &Path, megabytes: u64) -> PathBuf {
    let tree = scratch.join("developer-tree");
    let half = megabytes * 1_000_000 / 2;
    let file_size = 128 * 1024;
    for index in 0..half.div_ceil(file_size as u64) {
        let path = tree.join(format!("data/d{:02}/f{index:04}.txt", index % 20));
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text(index + 1, file_size)).expect("write");
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..half)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    std::fs::create_dir_all(tree.join("assets")).expect("mkdir");
    std::fs::write(tree.join("assets/model.bin"), noise).expect("write");
    std::fs::create_dir_all(tree.join("config")).expect("mkdir");
    std::fs::write(
        tree.join(SETTINGS),
        "{\"port\": 8000, \"host\": \"0.0.0.0\"}\n",
    )
    .expect("write");
    let zip = scratch.join("developer.zip");
    vupdate_builder::image::zip_directory(&tree, &zip, &AtomicBool::new(false)).expect("zip");
    std::fs::remove_dir_all(&tree).expect("clean up");
    zip
}

/// The builder's client build of `acme-1.0.0_<run>` with the settings repository at `url`.
fn builder_build(
    runtime: &tokio::runtime::Runtime,
    image: &Path,
    url: &str,
    directory: &Path,
    run: u64,
) -> (Duration, u64) {
    let builder = Builder::new(directory);
    let request = ClientRequest {
        service: "big".parse().expect("service name"),
        version: format!("acme-1.0.0_{}", run + 1).parse().expect("version"),
        developer_image: image.to_path_buf(),
        settings: Some(ClientBuild {
            settings: vec![GitRepository {
                name: "settings".to_owned(),
                url: url.to_owned(),
                branch: MAIN.to_owned(),
                clone_submodules: false,
                sub_directory: None,
            }],
            ..ClientBuild::default()
        }),
        private_files: None,
    };
    let started = Instant::now();
    let log: Arc<dyn BuildLog> = Arc::new(move |_: Level, _: &str, line: &str| {
        if std::env::var_os("CLIENT_BENCH_LOG").is_some() {
            eprintln!("{:>8.3} {line}", started.elapsed().as_secs_f64());
        }
    });
    let built = runtime
        .block_on(builder.build_client(request, log, CancellationToken::new()))
        .unwrap_or_else(|e| panic!("the builder failed: {e}"));
    (started.elapsed(), built.zip.size)
}

/// `unzip`, the settings file written, `zip -r`: the time and the zip's size.
fn baseline(image: &Path, scratch: &Path, run: u64) -> (Duration, u64) {
    let tree = scratch.join(format!("baseline-{run}"));
    let zip = scratch.join(format!("baseline-{run}.zip"));
    let started = Instant::now();
    let status = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(image)
        .arg("-d")
        .arg(&tree)
        .status()
        .expect("run unzip");
    assert!(status.success(), "unzip failed");
    std::fs::write(
        tree.join(SETTINGS),
        "{\"port\": 9000, \"host\": \"0.0.0.0\"}\n",
    )
    .expect("write");
    zip_r(&tree, ".", &zip);
    baseline_done(started, &tree, &zip)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful here.
    let megabytes = env_number("CLIENT_BENCH_MB", 200);
    let runs = env_number("CLIENT_BENCH_RUNS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("machine: {}", vupdate_test_support::machine::describe());

    let scratch = tempfile::tempdir().expect("temp dir");
    let generating = Instant::now();
    let image = developer_image(scratch.path(), megabytes);
    let settings = GitRepo::init();
    settings.write(SETTINGS, "{\"port\": 9000}\n");
    settings.commit("the client's port", &Person::alice());
    let url = format!("file://{}", settings.path().display());
    println!(
        "developer image: {:.1} MB ({megabytes} MB of files, half text, half noise), made in {}",
        std::fs::metadata(&image).expect("image").len() as f64 / 1e6,
        seconds(generating.elapsed())
    );
    let have_tools = installed("zip") && installed("unzip");
    if !have_tools {
        println!(
            "`zip` or `unzip` is not installed, so the baseline cannot run: `apt-get install -y zip unzip`"
        );
    }

    let (mut builder_times, mut baseline_times) = (Vec::new(), Vec::new());
    let (mut builder_zip, mut baseline_zip) = (0, 0);
    for run in 0..runs {
        let directory = scratch.path().join(format!("builder-{run}"));
        let (time, size) = builder_build(&runtime, &image, &url, &directory, run);
        builder_times.push(time);
        builder_zip = size;
        std::fs::remove_dir_all(&directory).expect("clean up");
        if have_tools {
            let (time, size) = baseline(&image, scratch.path(), run);
            baseline_times.push(time);
            baseline_zip = size;
        }
    }
    let builder_median = median(builder_times);
    println!(
        "builder client build (settings clone + merge + image), median of {runs}: {} (zip {:.1} MB)",
        seconds(builder_median),
        builder_zip as f64 / 1e6
    );
    if have_tools {
        let baseline_median = median(baseline_times);
        println!(
            "unzip + zip -r, median of {runs}: {} (zip {:.1} MB)",
            seconds(baseline_median),
            baseline_zip as f64 / 1e6
        );
        println!(
            "ratio builder / (unzip + zip -r): {:.2}",
            builder_median.as_secs_f64() / baseline_median.as_secs_f64()
        );
    }
}
