//! Image download throughput over HTTP on 127.0.0.1: a distribution (in a child process)
//! serving an image of `IMAGE_BENCH_MB` (256) MiB, next to nginx serving the very same
//! blob file (root = the image store's blob directory, `sendfile on`), with the same
//! clients: this bench's reqwest client (HTTP/1.1, body streamed and counted) and, when
//! installed, `curl -o /dev/null`. Both caches are hot (one download of each first), the
//! servers alternate run by run (`BENCH_RUNS`, 5), and the medians and their ratio
//! (distribution / nginx; target at least 0.8) are printed with each server's CPU time
//! per GiB.
//!
//! nginx is `$NGINX_BIN`, or `nginx` on `PATH` or in `/usr/sbin`; without one only the
//! distribution's figures are printed. `scripts/bench-images-vs-nginx` installs nginx and
//! runs this. Run alone with `cargo bench -p vupdate-distribution --bench image_download`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use support::{BenchResult, Server, ServerInfo};

const MIB: u64 = 1024 * 1024;
const CHUNK: usize = 1024 * 1024;

/// Chunk `i` of the image: deterministic, and not all alike.
fn chunk(i: u64) -> Vec<u8> {
    (0..CHUNK)
        .map(|j| ((i as usize * 31 + j * 7) % 251) as u8)
        .collect()
}

/// Uploads an image of `mib` MiB as the builder; returns its sha256 hex.
async fn upload(info: &ServerInfo, url: &str, mib: u64) -> BenchResult<String> {
    let client = support::client(1)?;
    let body = futures::stream::iter(0..mib).map(|i| Ok::<_, std::io::Error>(chunk(i)));
    let response = client
        .put(url)
        .bearer_auth(&info.builder)
        .body(reqwest::Body::wrap_stream(body))
        .timeout(Duration::from_secs(1200))
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if status != reqwest::StatusCode::CREATED {
        return Err(format!("upload: HTTP {status}: {}", String::from_utf8_lossy(&bytes)).into());
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)?;
    let digest = value["digest"]
        .as_str()
        .ok_or("the upload's answer has no digest")?;
    Ok(digest.trim_start_matches("sha256:").to_owned())
}

/// One download with the reqwest client; returns the seconds it took.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    size: u64,
) -> BenchResult<f64> {
    let started = Instant::now();
    let mut request = client.get(url).timeout(Duration::from_secs(600));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()).into());
    }
    let mut stream = response.bytes_stream();
    let mut received = 0u64;
    while let Some(bytes) = stream.next().await {
        received += bytes?.len() as u64;
    }
    if received != size {
        return Err(format!("GET {url}: {received} bytes, not {size}").into());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// One download with `curl -o /dev/null`; returns the seconds curl measured.
async fn curl(url: &str, token: Option<&str>, size: u64) -> BenchResult<f64> {
    let mut command = Command::new("curl");
    command.args([
        "--silent",
        "--show-error",
        "--noproxy",
        "*",
        "--output",
        "/dev/null",
        "--write-out",
        "%{size_download} %{time_total}",
    ]);
    if let Some(token) = token {
        command
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}"));
    }
    command.arg(url);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut parts = text.split_whitespace();
    let (Some(bytes), Some(seconds)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "curl {url}: `{text}` {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    };
    if bytes.parse::<f64>()? as u64 != size {
        return Err(format!("curl {url}: {bytes} bytes, not {size}").into());
    }
    Ok(seconds.parse()?)
}

/// Whether a `curl` program runs here.
fn has_curl() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The nginx program: `$NGINX_BIN`, `nginx` on `PATH`, or `/usr/sbin/nginx`.
fn find_nginx() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("NGINX_BIN") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.is_file().then_some(sbin)
    })
}

/// An nginx serving `root` on a free 127.0.0.1 port; stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(program: &Path, root: &Path) -> BenchResult<Nginx> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.path().display();
        // One process, no user switch (so it reads the blob wherever it is), no logs.
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_timeout 65;\n  default_type application/octet-stream;\n\
             \x20 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             \x20 server {{\n    listen 127.0.0.1:{port};\n    root {};\n  }}\n}}\n",
            root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(program)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            // nginx reads `NGINX` as a list of inherited sockets.
            .env_remove("NGINX")
            .spawn()?;
        let mut nginx = Nginx {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nginx.child.try_wait()? {
                return Err(format!("nginx ended with {status} before listening").into());
            }
            if Instant::now() > deadline {
                return Err("nginx did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Only this child, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The throughputs of one server with one client.
#[derive(Default)]
struct Series {
    mib_per_s: Vec<f64>,
    cpu_seconds: f64,
    bytes: u64,
}

impl Series {
    fn add(&mut self, size: u64, seconds: f64, cpu: f64) {
        self.mib_per_s.push(size as f64 / MIB as f64 / seconds);
        self.cpu_seconds += cpu;
        self.bytes += size;
    }

    fn median(&self) -> f64 {
        let mut sorted = self.mib_per_s.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    fn line(&self, name: &str) -> String {
        let runs: Vec<String> = self.mib_per_s.iter().map(|v| format!("{v:.0}")).collect();
        format!(
            "{name:<13} median {:7.0} MiB/s  (runs: {})  server cpu {:.2} s/GiB",
            self.median(),
            runs.join(", "),
            self.cpu_seconds / (self.bytes.max(1) as f64 / (1024.0 * MIB as f64))
        )
    }
}

/// Where the image store keeps the blob with digest `hex`.
fn blob_path(data: &Path, hex: &str) -> PathBuf {
    data.join("images")
        .join("blobs")
        .join("sha256")
        .join(&hex[..2])
        .join(hex)
}

async fn run() -> BenchResult<()> {
    let full = support::benching();
    let mib: u64 = support::env_or("IMAGE_BENCH_MB", if full { 256 } else { 8 })?;
    let runs: usize = support::env_or("BENCH_RUNS", if full { 5 } else { 1 })?;
    let size = mib * MIB;
    let server = Server::start(1).await?;
    let info = server.info().clone();
    let url = format!(
        "{}/images/developer/svc01/{}-9.9.9",
        info.base,
        support::DISTRIBUTION
    );
    let started = Instant::now();
    let hex = upload(&info, &url, mib).await?;
    let upload_secs = started.elapsed().as_secs_f64();
    let blob = blob_path(&info.data, &hex);
    if std::fs::metadata(&blob)?.len() != size {
        return Err(format!("{} is not the {size}-byte blob", blob.display()).into());
    }
    let blob_dir = blob.parent().ok_or("the blob has no directory")?;
    let nginx = match find_nginx() {
        Some(program) => Some(Nginx::start(&program, blob_dir)?),
        None => None,
    };
    let nginx_url = nginx
        .as_ref()
        .map(|n| format!("http://127.0.0.1:{}/{hex}", n.port));
    let curl_ok = has_curl();
    println!(
        "image download: {mib} MiB image ({}), {}, uploaded at {:.0} MiB/s; {runs} runs per series; machine: {}",
        blob.display(),
        server.describe(),
        mib as f64 / upload_secs,
        vupdate_test_support::machine::describe()
    );
    if nginx.is_none() {
        println!(
            "  nginx not found (set NGINX_BIN or run scripts/bench-images-vs-nginx): distribution only"
        );
    }
    if !curl_ok {
        println!("  curl not found: reqwest client only");
    }

    let client = support::client(2)?;
    let token = Some(info.builder.as_str());
    // Hot caches (page cache, connections) for both servers.
    fetch(&client, &url, token, size).await?;
    if let Some(nginx_url) = &nginx_url {
        fetch(&client, nginx_url, None, size).await?;
    }
    let nginx_pid = nginx.as_ref().map(|n| n.child.id());
    let mut series: Vec<(&str, Series)> = [
        "distribution/reqwest",
        "nginx/reqwest",
        "distribution/curl",
        "nginx/curl",
    ]
    .into_iter()
    .map(|name| (name, Series::default()))
    .collect();
    for _ in 0..runs {
        let cpu = support::cpu_seconds(info.pid);
        let seconds = fetch(&client, &url, token, size).await?;
        series[0]
            .1
            .add(size, seconds, support::cpu_seconds(info.pid) - cpu);
        if let (Some(nginx_url), Some(pid)) = (&nginx_url, nginx_pid) {
            let cpu = support::cpu_seconds(pid);
            let seconds = fetch(&client, nginx_url, None, size).await?;
            series[1]
                .1
                .add(size, seconds, support::cpu_seconds(pid) - cpu);
        }
        if curl_ok {
            let cpu = support::cpu_seconds(info.pid);
            let seconds = curl(&url, token, size).await?;
            series[2]
                .1
                .add(size, seconds, support::cpu_seconds(info.pid) - cpu);
            if let (Some(nginx_url), Some(pid)) = (&nginx_url, nginx_pid) {
                let cpu = support::cpu_seconds(pid);
                let seconds = curl(nginx_url, None, size).await?;
                series[3]
                    .1
                    .add(size, seconds, support::cpu_seconds(pid) - cpu);
            }
        }
    }
    for (name, s) in &series {
        if !s.mib_per_s.is_empty() {
            println!("  {}", s.line(name));
        }
    }
    for (client_name, dist, nginx) in [("reqwest", 0, 1), ("curl", 2, 3)] {
        let (d, n) = (series[dist].1.median(), series[nginx].1.median());
        if d > 0.0 && n > 0.0 {
            println!(
                "  ratio distribution/nginx ({client_name}): {:.2} (target >= 0.80)",
                d / n
            );
        }
    }
    println!("  load avg after: {}", support::load_average());
    drop(nginx);
    server.stop().await
}

fn main() -> BenchResult<()> {
    if support::serve_if_child()? {
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}
