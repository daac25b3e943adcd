//! What the updater benches share: the `offline_updater` example started on bench
//! services, each installed from an image zip of its own.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The version every bench service is installed at.
const VERSION: &str = "bench-1.0.0";

/// A command for `program` (clippy's `disallowed-methods` keeps `Command::new` to the
/// updater's `spawn` module; the benches start supervisors, not services).
#[allow(clippy::disallowed_methods)]
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::new(program)
}

/// Starts the `offline_updater` at `binary` in `dir` with `services` (name, `runService`),
/// each installed from `dir/images/<name>/bench-1.0.0.zip`; `settings` are lines added to
/// its `updater.yaml`. Its log is `dir/updater.log`.
pub fn start_updater(
    binary: &Path,
    dir: &Path,
    services: &[(String, serde_json::Value)],
    settings: &str,
) -> Child {
    let images = dir.join("images");
    let mut desired = serde_json::Map::new();
    for (name, run) in services {
        write_image(
            &images.join(name),
            &serde_json::json!({ "runService": run }),
        );
        desired.insert(name.clone(), VERSION.into());
    }
    fs::write(
        dir.join("desired.json"),
        serde_json::Value::Object(desired).to_string(),
    )
    .expect("desired.json");
    let names: Vec<&str> = services.iter().map(|(name, _)| name.as_str()).collect();
    let config = format!(
        "instance: bench\ndistributionUrl: http://127.0.0.1:9\naccessToken: t\n\
         workDirectory: {}\nservices: [{}]\n{settings}",
        dir.join("work").display(),
        names.join(", "),
    );
    fs::write(dir.join("updater.yaml"), config).expect("updater.yaml");
    command(binary)
        .arg(dir.join("updater.yaml"))
        .arg(&images)
        .arg(dir.join("desired.json"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("updater.log")).expect("log"))
        .spawn()
        .expect("start the updater")
}

/// The image zip of a bench service, `<dir>/bench-1.0.0.zip`, holding `install`.
fn write_image(dir: &Path, install: &serde_json::Value) {
    fs::create_dir_all(dir).expect("images");
    let file = fs::File::create(dir.join(format!("{VERSION}.zip"))).expect("image");
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("install.json", zip::write::SimpleFileOptions::default())
        .expect("zip");
    zip.write_all(install.to_string().as_bytes()).expect("zip");
    zip.finish().expect("zip");
}
