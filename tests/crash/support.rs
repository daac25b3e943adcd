//! A distribution that a test kills with SIGKILL and starts again on the same data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_test_support::{GitRepo, Patience, Person};

use crate::distribution::{self, Started};

/// How long any wait may last (a loaded 2-core machine is slow).
pub const LIMIT: Duration = Duration::from_secs(120);

/// A state repo that desires nothing (`vupdate.yaml` only), for tests of the server's own
/// data; keep it for as long as a server follows it.
pub fn empty_state() -> GitRepo {
    let state = GitRepo::init();
    state.commit_files(
        &[("vupdate.yaml", "schema: 1\n")],
        "state",
        &Person::alice(),
    );
    state
}

/// A server over a data directory that outlives its processes.
pub struct Server {
    /// The config, the log and the data directory (`data/`).
    pub dir: TempDir,
    started: Option<Started>,
}

impl Server {
    /// The config of a server following the state repo at `state` (a path or a URL key
    /// line, e.g. `path: /x` or `url: file:///x`), plus `extra` top-level lines.
    pub fn config(state: &str, extra: &str) -> String {
        format!(
            "name: acme\nlisten: 127.0.0.1:0\ndataDirectory: data\nstateRepo:\n  {state}\n  pollInterval: 1s\nexpiration:\n  serviceStates: 1d\n{extra}"
        )
    }

    /// The config of a server following the local repo `state`, plus `extra` lines.
    pub fn config_following(state: &GitRepo, extra: &str) -> String {
        Server::config(&format!("path: {}", state.path().display()), extra)
    }

    /// Starts a first server on `config`.
    pub async fn start(config: &str) -> Server {
        let dir = TempDir::new().expect("dir");
        let started = distribution::start(dir.path(), config).await;
        Server {
            dir,
            started: Some(started),
        }
    }

    /// Starts a first server on `config` in `dir`, as `launch` says.
    pub async fn start_in(dir: TempDir, config: &str, launch: &distribution::Launch<'_>) -> Server {
        let file = dir.path().join("distribution.yaml");
        std::fs::write(&file, config).expect("config");
        let started = distribution::start_with(dir.path(), &file, launch).await;
        Server {
            dir,
            started: Some(started),
        }
    }

    fn started(&self) -> &Started {
        self.started.as_ref().expect("the server runs")
    }

    /// The administrator's client.
    pub fn admin(&self) -> &Client {
        &self.started().admin
    }

    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.started().base
    }

    /// The administrator's session token.
    pub fn token(&self) -> &str {
        &self.started().admin_token
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.started().server.id()
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        distribution::log(self.dir.path())
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        let mut started = self.started.take().expect("the server runs");
        started.server.kill().expect("SIGKILL");
        let status = started.server.wait().expect("wait");
        assert!(!status.success(), "{status}");
    }

    /// Starts the server again on the same data (after [`kill9`](Self::kill9)), stopping at
    /// crash point `point` when given.
    pub async fn restart(&mut self, point: Option<&str>) {
        assert!(self.started.is_none(), "kill the server first");
        let env: Vec<(&str, &str)> = point
            .map(|point| (vupdate_crashpoint::ENV, point))
            .into_iter()
            .collect();
        self.started = Some(distribution::restart(self.dir.path(), &env).await);
    }

    /// Waits until the server stopped at crash point `point`.
    pub async fn reach(&self, point: &str) {
        let line = vupdate_crashpoint::announcement(point);
        eventually(&format!("crash point {point}"), &self.dir, || async {
            self.log().contains(&line).then_some(())
        })
        .await;
    }

    /// Starts the (killed) server armed at `point`, sends what `send` sends with the
    /// administrator's client, waits for the server to stop at the point and kills it
    /// again: what was sent must not have been acknowledged.
    pub async fn cut<T, F, Fut>(&mut self, point: &str, send: F)
    where
        T: std::fmt::Debug + Send + 'static,
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, vupdate_client::ClientError>> + Send + 'static,
    {
        self.restart(Some(point)).await;
        let sending = tokio::spawn(send(self.admin().clone()));
        self.reach(point).await;
        self.kill9();
        let answer = sending.await.expect("join");
        assert!(answer.is_err(), "acknowledged: {answer:?}");
    }

    /// SIGTERM; the server must stop cleanly.
    pub fn stop(mut self) {
        let mut started = self.started.take().expect("the server runs");
        let pid = nix::unistd::Pid::from_raw(started.server.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let status = started.server.wait().expect("exit");
        assert!(status.success(), "{status}\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(started) = &mut self.started {
            let _ = started.server.kill();
            let _ = started.server.wait();
        }
    }
}

/// Waits until `check` gives a value; fails after [`LIMIT`] with the log in `dir`.
pub async fn eventually<T, F, Fut>(what: &str, dir: &TempDir, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    Patience::up_to(LIMIT)
        .eventually_or(what, check, || async {
            format!("server log:\n{}", distribution::log(dir.path()))
        })
        .await
}

/// Whether process `pid` is gone (or only a zombie waiting for its parent).
pub fn gone(pid: i32) -> bool {
    !vupdate_process::table::is_running(pid)
}

/// The entries of a folder (none when it does not exist).
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}
