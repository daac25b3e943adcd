//! What a benchmark prints about the machine it ran on. Machines of one kind differ
//! several times in speed (the same store bench gave 207k and 53k lines/s on two of them),
//! so a figure means little without a measure of the machine beside it: the time of a
//! fixed loop, the same work everywhere, by which two runs' figures can be scaled.

use std::hint::black_box;
use std::time::Instant;

/// Steps of [`reference_ms`]'s loop: about a third of a second on a 2026 server core.
const REFERENCE_STEPS: u64 = 200_000_000;

/// Cores, load average and the reference loop, for a benchmark's first line:
/// `2 cores, load 0.82 1.59 1.85, reference loop 312 ms`.
pub fn describe() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cores} cores, load {}, reference loop {:.0} ms",
        load_average(),
        reference_ms()
    )
}

/// The 1, 5 and 15-minute load averages, or `unknown` where `/proc` does not say.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|load| !load.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Milliseconds one core takes for a fixed chain of integer steps, the fastest of three
/// (the least disturbed by other work): lower is a faster machine. Meaningful only in an
/// optimised build, as benchmarks are.
pub fn reference_ms() -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            black_box(chain(black_box(REFERENCE_STEPS)));
            started.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Each step depends on the one before, so the loop measures the core, not its
/// vector units or the memory.
fn chain(steps: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for step in 0..steps {
        x = (x ^ (x >> 29))
            .wrapping_mul(0xbf58_476d_1ce4_e5b9)
            .wrapping_add(step);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_loop_does_the_same_work_as_when_figures_were_taken() {
        // Another loop would make every figure printed before it incomparable.
        assert_eq!(chain(1_000), 0x1908_0f80_3c37_4d9d);
    }
}
