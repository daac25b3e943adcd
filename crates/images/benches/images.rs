//! Image store throughput: streams a 200 MB image in and out, printing MB/s and the growth
//! of peak RSS (`VmHWM`), which stays flat because no image is ever held in memory.
//!
//! Run with `cargo bench -p vupdate-images --bench images` (set `IMAGE_BENCH_MB` to
//! change the size).

use std::time::Instant;

use tokio::io::AsyncReadExt as _;
use vupdate_images::{ImageKind, ImageStore, ImageVersion};

const MB: usize = 1024 * 1024;

/// Peak resident set size in kB, from `/proc/self/status` (Linux only; 0 elsewhere).
fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / MB as f64 / seconds
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; when run as a test (`cargo test --benches`) do a
    // tiny round so the binary is exercised without the cost.
    let benching = std::env::args().any(|a| a == "--bench");
    let size_mb: usize = match std::env::var("IMAGE_BENCH_MB") {
        Ok(text) => text.parse()?,
        Err(_) if benching => 200,
        Err(_) => 4,
    };
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path()).await?;
    let service = "bench".parse()?;
    let version = ImageVersion::parse(ImageKind::Developer, "bench-1.0.0")?;
    // One 1 MB chunk, varied per write, stands in for a network body.
    let mut chunk: Vec<u8> = (0..MB).map(|i| (i * 31 % 251) as u8).collect();

    let hwm_start = vm_hwm_kb();
    let started = Instant::now();
    let mut upload = store.begin_upload(&service, &version, None).await?;
    for i in 0..size_mb {
        chunk[0] = i as u8;
        upload.write(&chunk).await?;
    }
    let info = upload.finish().await?;
    let upload_secs = started.elapsed().as_secs_f64();
    let hwm_after_upload = vm_hwm_kb();

    let started = Instant::now();
    let mut reader = store.open_image(&service, &version).await?.into_reader();
    let mut buf = vec![0u8; MB];
    let mut read = 0usize;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let download_secs = started.elapsed().as_secs_f64();
    let hwm_after_download = vm_hwm_kb();

    let started = Instant::now();
    store.verify(&service, &version).await?;
    let verify_secs = started.elapsed().as_secs_f64();

    assert_eq!(read as u64, info.size);
    let bytes = size_mb * MB;
    println!(
        "image store, {size_mb} MB image, 1 MB chunks ({})",
        info.digest
    );
    println!(
        "  upload   (hash + write + fsync + publish): {:8.1} MB/s",
        mb_per_s(bytes, upload_secs)
    );
    println!(
        "  download (stream the blob back):          {:8.1} MB/s",
        mb_per_s(bytes, download_secs)
    );
    println!(
        "  verify   (re-hash the blob):              {:8.1} MB/s",
        mb_per_s(bytes, verify_secs)
    );
    println!(
        "  peak RSS (VmHWM): {} kB at start, +{} kB after upload, +{} kB after download",
        hwm_start,
        hwm_after_upload.saturating_sub(hwm_start),
        hwm_after_download.saturating_sub(hwm_start)
    );
    Ok(())
}
