//! What a new VM needs to install its updater with one line: the install script
//! (`GET /install/updater.sh`), the updater binary with its SHA-256, and the enrolment
//! tokens that let a VM in ([`crate::enrolment`]).
//!
//! The binary served is this distribution's own program (`vupdate` built with every
//! feature holds the updater; the script runs it as `vupdate updater install`), offered
//! only for the architecture it was built for. Serving the updater-only build kept as a
//! client image of the service `updater` is future work (see README, "Put it on your
//! servers").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::enrolment::Enrolments;

/// The install script; `@DISTRIBUTION_URL@` is replaced by the address it was fetched from.
const SCRIPT: &str = include_str!("install/updater.sh");

/// The install side of a running distribution; cheap to clone.
#[derive(Debug, Clone)]
pub struct Installer {
    /// The enrolment tokens.
    pub enrolments: Enrolments,
    /// The binary offered to VMs, and its digest once computed.
    binary: Option<Arc<UpdaterBinary>>,
    /// `http` or `https`, how this server is reached.
    scheme: &'static str,
    /// The address the install line names when a request does not say (`status`).
    public_url: String,
}

/// An updater binary on disk and its digest (computed at the first request).
#[derive(Debug)]
pub struct UpdaterBinary {
    path: PathBuf,
    arch: &'static str,
    digest: tokio::sync::OnceCell<(String, u64)>,
}

impl UpdaterBinary {
    /// The binary at `path`, built for `arch` (as `uname -m` names it).
    pub fn new(path: PathBuf, arch: &'static str) -> UpdaterBinary {
        UpdaterBinary {
            path,
            arch,
            digest: tokio::sync::OnceCell::new(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The architecture it runs on.
    pub fn arch(&self) -> &'static str {
        self.arch
    }

    /// Its SHA-256 (hex) and size, read once.
    pub async fn digest(&self) -> std::io::Result<(String, u64)> {
        self.digest
            .get_or_try_init(|| async {
                let mut file = tokio::fs::File::open(&self.path).await?;
                let mut hasher = Sha256::new();
                let mut buffer = vec![0u8; 1 << 16];
                let mut size = 0u64;
                loop {
                    let read = file.read(&mut buffer).await?;
                    if read == 0 {
                        break;
                    }
                    hasher.update(&buffer[..read]);
                    size += read as u64;
                }
                Ok((hex::encode(hasher.finalize()), size))
            })
            .await
            .cloned()
    }
}

impl Installer {
    /// The installer of a distribution whose data lives in `data_directory`, reached at
    /// `public_url`, offering `binary` (none: the routes say that no binary is offered).
    pub fn new(
        data_directory: &Path,
        public_url: String,
        tls: bool,
        binary: Option<UpdaterBinary>,
    ) -> Installer {
        Installer {
            enrolments: Enrolments::new(data_directory),
            binary: binary.map(Arc::new),
            scheme: if tls { "https" } else { "http" },
            public_url,
        }
    }

    /// The binary offered, if any.
    pub fn binary(&self) -> Option<&UpdaterBinary> {
        self.binary.as_deref()
    }

    /// The address of this distribution as seen by a client that sent `host`.
    pub fn url_for_host(&self, host: Option<&str>) -> String {
        match host {
            Some(host) => format!("{}://{host}", self.scheme),
            None => self.public_url.clone(),
        }
    }

    /// The address an install line names by default.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The install script, pointed at `url`.
    pub fn script(&self, url: &str) -> String {
        SCRIPT.replace("@DISTRIBUTION_URL@", url)
    }

    /// The line to paste on a VM.
    pub fn line(&self, token: &str, services: &[String]) -> String {
        format!(
            "curl -fsSL {}/install/updater.sh | sh -s -- --token {token} --services {}",
            self.public_url,
            services.join(",")
        )
    }
}
