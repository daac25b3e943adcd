//! Replays every seed (`fuzz/seeds/<target>/`) and every input that once failed
//! (`fuzz/regressions/<target>/`) through its target's check, on stable, so CI runs them
//! where nightly and cargo-fuzz are missing; and keeps `fuzz/` and [`TARGETS`] in step.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use vupdate_fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_passes_its_check() {
    let mut failed = Vec::new();
    for target in TARGETS {
        let seeds = inputs(&fuzz_dir().join("seeds").join(target.name));
        assert!(
            !seeds.is_empty(),
            "fuzz/seeds/{} holds no seed",
            target.name
        );
        let regressions = inputs(&fuzz_dir().join("regressions").join(target.name));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("read an input");
            if catch_unwind(AssertUnwindSafe(|| (target.check)(&data))).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "inputs that fail their check: {failed:#?}"
    );
}

#[test]
fn each_target_has_a_fuzz_binary_and_each_binary_a_target() {
    let binaries: BTreeSet<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .map(|entry| entry.expect("a directory entry").path())
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    let targets: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    assert_eq!(binaries, targets);
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in &targets {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml lists no [[bin]] `{target}`"
        );
    }
}
