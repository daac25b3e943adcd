//! What the builder's benchmarks share: generated text, medians, the baselines' `zip`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The words [`text`] draws from.
pub const WORDS: [&str; 32] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "0x1f", "42", "{", "}", ";", "=",
];

/// `name` from the environment as a number, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Text of `bytes` length from a xorshift generator: compressible like source code, not
/// trivially so.
pub fn text(seed: u64, bytes: usize) -> String {
    let mut state = seed | 1;
    let mut out = String::with_capacity(bytes + 16);
    let mut column = 0;
    while out.len() < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let word = WORDS[(state % WORDS.len() as u64) as usize];
        out.push_str(word);
        column += word.len() + 1;
        if column > 72 || state.is_multiple_of(11) {
            out.push('\n');
            column = 0;
        } else {
            out.push(' ');
        }
        if state.is_multiple_of(97) {
            // A run of digits breaks up the repetition.
            out.push_str(&format!("{:016x}\n", state));
        }
    }
    out.truncate(bytes);
    out
}

/// The middle of `times`.
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// A duration as `1.234 s`.
pub fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

/// Whether `program` is installed (answers `-v`).
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("-v")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// `zip -r -q ZIP WHAT` in `directory`, the baselines' packing.
pub fn zip_r(directory: &Path, what: &str, zip: &Path) {
    let status = Command::new("zip")
        .current_dir(directory)
        .args(["-r", "-q"])
        .arg(zip)
        .arg(what)
        .status()
        .expect("run zip");
    assert!(status.success(), "zip failed");
}

/// A baseline's time since `started` and its zip's size; its tree and zip removed.
pub fn baseline_done(started: Instant, tree: &Path, zip: &Path) -> (Duration, u64) {
    let elapsed = started.elapsed();
    let size = std::fs::metadata(zip).expect("zip").len();
    std::fs::remove_dir_all(tree).expect("clean up");
    std::fs::remove_file(zip).expect("clean up");
    (elapsed, size)
}
