//! What a new VM needs to install its updater with one line: the install script
//! (`GET /install/updater.sh`), the updater binary with its SHA-256, and the enrolment
//! tokens that let a VM in ([`crate::enrolment`]).
//!
//! The binary served is the updater that self-update installs: `bin/vupdate` of the image
//! of the desired client version of the service `updater`, taken out of the zip once into
//! `<data>/install/`. When the state names no such version (or it has no image yet), it is
//! this distribution's own program (`vupdate` built with every feature holds the
//! updater). Either is offered only for the architecture its ELF header names; the
//! script runs it as `vupdate updater install`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;
use vupdate_client::PublicKeyPin;
use vupdate_core::service::ServiceName;
use vupdate_images::{ImageStore, ImageVersion};

use crate::enrolment::Enrolments;
use crate::watcher::InForce;

/// The service whose client image holds the updater (as the updater names it).
const UPDATER_SERVICE: &str = "updater";
/// Where the binary is in that image (as the updater's self-update reads it), and in the
/// image of `distribution` (its self-update).
pub(crate) const UPDATER_BINARY: &str = "bin/vupdate";
/// The most a binary taken out of an image may be.
const MAX_BINARY: u64 = 512 << 20;

/// The install script; `@DISTRIBUTION_URL@` is replaced by the address it was fetched from.
const SCRIPT: &str = include_str!("install/updater.sh");

/// The install side of a running distribution; cheap to clone.
#[derive(Debug, Clone)]
pub struct Installer {
    /// The enrolment tokens.
    pub enrolments: Enrolments,
    /// This program, offered when the state names no updater image.
    binary: Option<Arc<UpdaterBinary>>,
    /// Where the updater's image comes from, when the server follows a state.
    images: Option<UpdaterImages>,
    /// `http` or `https`, how this server is reached.
    scheme: &'static str,
    /// The key HTTPS serves, when it does.
    served_key: Option<ServedKey>,
    /// The address the install line names when a request does not say (`status`).
    public_url: String,
}

/// The key a distribution serves HTTPS with.
#[derive(Debug, Clone, Copy)]
pub struct ServedKey {
    /// Its pin, `sha256//…`.
    pub pin: PublicKeyPin,
    /// Whether its certificate is self-signed: then install lines pin it.
    pub self_signed: bool,
}

/// The desired updater image's binary, taken out of its zip once.
#[derive(Debug, Clone)]
struct UpdaterImages {
    images: ImageStore,
    in_force: watch::Receiver<Option<InForce>>,
    directory: PathBuf,
    /// The last binary taken out, by client version.
    last: Arc<tokio::sync::Mutex<Option<TakenOut>>>,
}

/// A client version of `updater` and its binary, taken out.
type TakenOut = (String, Arc<UpdaterBinary>);

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
    /// The installer of a distribution keeping enrolment tokens in `store` and its data in
    /// `data_directory`, reached at
    /// `public_url` (over HTTPS with `served_key`), offering `binary` (none: the routes
    /// say that no binary is offered).
    pub fn new(
        store: vupdate_store::Store,
        data_directory: &Path,
        public_url: String,
        served_key: Option<ServedKey>,
        binary: Option<UpdaterBinary>,
    ) -> Installer {
        Installer {
            enrolments: Enrolments::new(store, data_directory),
            binary: binary.map(Arc::new),
            images: None,
            scheme: if served_key.is_some() {
                "https"
            } else {
                "http"
            },
            served_key,
            public_url,
        }
    }

    /// The pin of the key HTTPS serves; `None` over plain HTTP.
    pub fn public_key_pin(&self) -> Option<PublicKeyPin> {
        self.served_key.map(|key| key.pin)
    }

    /// The pin install lines and the script use: the key of a self-signed certificate,
    /// which no authority vouches for.
    fn install_pin(&self) -> Option<PublicKeyPin> {
        self.served_key
            .filter(|key| key.self_signed)
            .map(|key| key.pin)
    }

    /// The same installer, offering the updater image the state in force names (taken
    /// out into `<data_directory>/install`) before its own binary.
    pub fn with_images(
        mut self,
        data_directory: &Path,
        images: ImageStore,
        in_force: watch::Receiver<Option<InForce>>,
    ) -> Installer {
        self.images = Some(UpdaterImages {
            images,
            in_force,
            directory: data_directory.join("install"),
            last: Arc::default(),
        });
        self
    }

    /// The binary offered now: the desired updater image's, else this program; `None`
    /// when there is neither.
    pub async fn binary(&self) -> std::io::Result<Option<Arc<UpdaterBinary>>> {
        if let Some(images) = &self.images
            && let Some(binary) = images.desired().await?
        {
            return Ok(Some(binary));
        }
        Ok(self.binary.clone())
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

    /// The install script, pointed at `url` (and pinned to a self-signed key).
    pub fn script(&self, url: &str) -> String {
        let pin = self
            .install_pin()
            .map(|pin| pin.to_string())
            .unwrap_or_default();
        SCRIPT
            .replace("@DISTRIBUTION_URL@", url)
            .replace("@PINNED_PUBLIC_KEY@", &pin)
    }

    /// The line to paste on a VM. The token goes to the script in its environment, never
    /// on a command line (where `ps` would show it); a self-signed key is pinned from the
    /// first download on.
    pub fn line(&self, token: &str, services: &[String]) -> String {
        let curl = match self.install_pin() {
            // -k: no authority vouches for the certificate; the pin does.
            Some(pin) => format!("curl -fsSL --pinnedpubkey {pin} -k"),
            None => "curl -fsSL".to_owned(),
        };
        format!(
            "{curl} {}/install/updater.sh | VUPDATE_ENROLMENT_TOKEN={token} sh -s -- --services {}",
            self.public_url,
            services.join(",")
        )
    }
}

impl UpdaterImages {
    /// The binary of the desired client version of `updater`, when it has an image.
    async fn desired(&self) -> std::io::Result<Option<Arc<UpdaterBinary>>> {
        let service: ServiceName = UPDATER_SERVICE.parse().expect("a valid service name");
        let version = {
            let in_force = self.in_force.borrow();
            let Some(in_force) = in_force.as_ref() else {
                return Ok(None);
            };
            match in_force.state.effective_client_versions().remove(&service) {
                Some(version) => version,
                None => return Ok(None),
            }
        };
        let mut last = self.last.lock().await;
        if let Some((known, binary)) = last.as_ref()
            && *known == version.to_string()
        {
            return Ok(Some(Arc::clone(binary)));
        }
        let image = ImageVersion::Client(version.clone());
        let Some(info) = self
            .images
            .info(&service, &image)
            .await
            .map_err(std::io::Error::other)?
        else {
            return Ok(None);
        };
        let zip = self
            .images
            .local_blob(&service, &image, &info)
            .await
            .map_err(std::io::Error::other)?;
        let target = self.directory.join(format!("vupdate-{version}"));
        let taken = target.clone();
        let arch = tokio::task::spawn_blocking(move || take_out(&zip, &taken))
            .await
            .map_err(std::io::Error::other)??;
        let Some(arch) = arch else {
            tracing::warn!(%version, "the updater image holds no {UPDATER_BINARY}; offering this program instead");
            return Ok(None);
        };
        let binary = Arc::new(UpdaterBinary::new(target, arch));
        *last = Some((version.to_string(), Arc::clone(&binary)));
        Ok(Some(binary))
    }
}

/// Takes [`UPDATER_BINARY`] out of the image `zip` into `target` (once: an existing file
/// is the same, as images never change) and says its architecture; `None` when the image
/// has no such file or it is not a Linux program this code knows.
pub(crate) fn take_out(zip: &Path, target: &Path) -> std::io::Result<Option<&'static str>> {
    if !target.exists() {
        let file = std::fs::File::open(zip)?;
        let mut archive = zip::ZipArchive::new(file).map_err(std::io::Error::other)?;
        let mut entry = match archive.by_name(UPDATER_BINARY) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(error) => return Err(std::io::Error::other(error)),
        };
        if entry.size() > MAX_BINARY {
            return Err(std::io::Error::other(format!(
                "{UPDATER_BINARY} in {} is larger than {MAX_BINARY} bytes",
                zip.display()
            )));
        }
        let parent = target.parent().expect("a file in a directory");
        std::fs::create_dir_all(parent)?;
        let mut temporary = tempfile::NamedTempFile::new_in(parent)?;
        std::io::copy(&mut (&mut entry).take(MAX_BINARY), temporary.as_file_mut())?;
        temporary.as_file().sync_all()?;
        temporary.persist(target).map_err(|error| error.error)?;
    }
    let mut head = [0u8; 20];
    std::fs::File::open(target)?.read_exact(&mut head)?;
    Ok(elf_arch(&head))
}

/// The architecture (as `uname -m` names it) of a little-endian ELF program's header.
fn elf_arch(head: &[u8; 20]) -> Option<&'static str> {
    if head[..4] != *b"\x7fELF" || head[5] != 1 {
        return None;
    }
    match u16::from_le_bytes([head[18], head[19]]) {
        0x3e => Some("x86_64"),
        0xb7 => Some("aarch64"),
        0xf3 => Some("riscv64"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_architecture_is_read_from_the_elf_header() {
        let own = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        let head: [u8; 20] = own[..20].try_into().expect("20 bytes");
        assert_eq!(elf_arch(&head), Some(std::env::consts::ARCH));
        assert_eq!(elf_arch(b"#!/bin/sh\necho hi\n\n\n"), None);
    }

    fn image(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("image.zip");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).expect("zip"));
        for (name, content) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("entry");
            std::io::Write::write_all(&mut writer, content).expect("write");
        }
        writer.finish().expect("finish");
        path
    }

    #[test]
    fn the_updater_binary_is_taken_out_of_its_image_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        // This program's ELF header (the whole would take a minute to deflate in debug).
        let mut own = vec![0u8; 64];
        std::io::Read::read_exact(
            &mut std::fs::File::open(std::env::current_exe().expect("exe")).expect("open"),
            &mut own,
        )
        .expect("read");
        own.extend_from_slice(b"the rest of the program");
        let zip = image(
            dir.path(),
            &[("install.json", b"{}"), (UPDATER_BINARY, &own)],
        );
        let target = dir.path().join("install/vupdate-acme-1.0.0_1");
        assert_eq!(
            take_out(&zip, &target).expect("take out"),
            Some(std::env::consts::ARCH)
        );
        assert!(std::fs::read(&target).expect("taken out") == own);
        std::fs::remove_file(&zip).expect("remove the image");
        assert_eq!(
            take_out(&zip, &target).expect("kept"),
            Some(std::env::consts::ARCH),
            "taken out once"
        );
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).expect("dir");
        let without = image(&other, &[("install.json", b"{}")]);
        assert_eq!(
            take_out(&without, &other.join("vupdate")).expect("read"),
            None
        );
    }
}
