//! `vupdate distribution install`: this program as the machine's distribution server.
//!
//! In order, stopping at the first problem with nothing left behind:
//! 1. checks: the arguments, root and systemd on the running system;
//! 2. the config from the flags, checked by loading it as the server will;
//! 3. the system user, then the files (all or nothing, see `files`): the program, the
//!    config, the data directory, the unit;
//! 4. with TLS self-signed (the default), the key (0600) and certificate the server would
//!    make on its first start are made now, so the pin can be printed before any updater
//!    is installed (existing ones are kept: the pin of a second run is the same);
//! 5. the unit enabled and (re)started.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use vupdate_distribution::config::{
    DistributionConfig, SELF_SIGNED_CERTIFICATE, SELF_SIGNED_KEY, SelfSigned, TlsConfig,
};

use super::files::{Changes, Outcome, Root, quoted};
use super::system;
use super::units::{self, UnitOptions};
use crate::exit::InvalidInput;

/// The distribution's unit file name.
pub const DISTRIBUTION_UNIT: &str = "vupdate-distribution.service";

/// How the server speaks TLS.
#[derive(Debug)]
pub enum Tls {
    /// A certificate it makes for these names (host names, IP addresses).
    SelfSigned(Vec<String>),
    /// PEM files that exist on the machine.
    Files {
        /// The certificate chain.
        certificate: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// Plain HTTP.
    Off,
}

/// What `distribution install` was asked for, checked.
#[derive(Debug)]
pub struct InstallSettings {
    /// The distribution's name.
    pub name: String,
    /// The instance this server runs on.
    pub instance: String,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The state repo's URL (or path on this machine).
    pub state_repo: String,
    /// The branch followed.
    pub branch: String,
    /// The data directory.
    pub data_directory: PathBuf,
    /// TLS.
    pub tls: Tls,
    /// Where to install.
    pub root: Root,
    /// The system user.
    pub user: String,
    /// Where the program goes.
    pub binary: PathBuf,
    /// Where the config goes.
    pub config: PathBuf,
    /// Write the files but leave the unit stopped.
    pub no_start: bool,
}

/// The config file's text.
fn config_text(settings: &InstallSettings) -> String {
    let mut text = format!(
        "# Written by `vupdate distribution install`. Every setting, with its default:\n\
         # examples/distribution.yaml in the vupdate repository.\n\
         name: {name}\n\
         instance: {instance}\n\
         listen: {listen}\n\
         dataDirectory: {data}\n\
         stateRepo:\n  url: {url}\n  branch: {branch}\n",
        name = quoted(&settings.name),
        instance = quoted(&settings.instance),
        listen = quoted(&settings.listen.to_string()),
        data = quoted(&settings.data_directory.to_string_lossy()),
        url = quoted(&settings.state_repo),
        branch = quoted(&settings.branch),
    );
    match &settings.tls {
        Tls::SelfSigned(names) => {
            let names: Vec<String> = names.iter().map(|name| quoted(name)).collect();
            text.push_str(&format!(
                "# A self-signed certificate, made with its key on the first start under\n\
                 # dataDirectory/tls; updaters pin the key (`pinnedPublicKey`).\n\
                 tls:\n  selfSigned:\n    names: [{}]\n",
                names.join(", ")
            ));
        }
        Tls::Files { certificate, key } => text.push_str(&format!(
            "tls:\n  certificate: {}\n  key: {}\n",
            quoted(&certificate.to_string_lossy()),
            quoted(&key.to_string_lossy())
        )),
        Tls::Off => text.push_str("# Plain HTTP: give `tls` for HTTPS.\n"),
    }
    text
}

/// Loads `text` as the server will (`tls` files checked under the root, since the config
/// names them as the installed system sees them).
fn check_config(settings: &InstallSettings, text: &str) -> anyhow::Result<()> {
    let checked = match &settings.tls {
        Tls::Files { certificate, key } => {
            for (flag, path) in [("--tls-certificate", certificate), ("--tls-key", key)] {
                if !settings.root.at(path).is_file() {
                    bail!(InvalidInput::new(format!(
                        "{flag} {}: no such file",
                        path.display()
                    )));
                }
            }
            // The files are checked; the rest is checked without them.
            text.split("tls:\n").next().unwrap_or(text)
        }
        _ => text,
    };
    DistributionConfig::from_str(checked, settings.root.at(Path::new("/etc/vupdate")))
        .map_err(|error| InvalidInput::new(format!("the config would be invalid: {error}")))?;
    Ok(())
}

/// Installs (or confirms) the distribution as `settings` say.
pub fn install(settings: &InstallSettings) -> anyhow::Result<()> {
    let system = settings.root.is_system();
    system::check_can_install(
        &settings.root,
        settings.no_start,
        &format!(
            "vupdate distribution run --config {}",
            settings.config.display()
        ),
    )?;
    let text = config_text(settings);
    check_config(settings, &text)?;
    let program = system::this_program()?;

    let owner = system::owner(&settings.root, &settings.user, &settings.data_directory)?;
    let mut changes = Changes::default();
    let written = write_files(settings, &mut changes, &program, &text, owner);
    let (outcomes, pin) = match written {
        Ok(done) => done,
        Err(error) => {
            changes.undo();
            return Err(error.context("nothing was installed"));
        }
    };
    for (path, outcome) in &outcomes {
        println!("{:9} {}", outcome.word(), path.display());
    }
    let scheme = match settings.tls {
        Tls::Off => "http",
        _ => "https",
    };
    println!(
        "distribution `{}` will serve on {scheme}://{}",
        settings.name, settings.listen
    );
    if let Some(pin) = pin {
        println!(
            "TLS key pin: {pin}  (updater.yaml `pinnedPublicKey`, curl --pinnedpubkey; `status` shows it too)"
        );
    }
    if settings.listen.ip().is_loopback() {
        println!(
            "it listens on {} only: give --listen 0.0.0.0:{} for VMs to reach it",
            settings.listen.ip(),
            settings.listen.port()
        );
    }
    if !system {
        println!(
            "--root: no user made, no unit started; on the machine: systemctl enable --now {DISTRIBUTION_UNIT}"
        );
        return Ok(());
    }
    if settings.no_start {
        println!("--no-start: the unit is written, not started");
        return Ok(());
    }
    system::enable_and_start(DISTRIBUTION_UNIT, changes.any())?;
    println!(
        "the first start prints the `admin` password once: journalctl -u {DISTRIBUTION_UNIT} | grep password"
    );
    Ok(())
}

/// The TLS files of the config as they are under the root.
fn tls_under_root(settings: &InstallSettings) -> Option<TlsConfig> {
    let data = settings.root.at(&settings.data_directory);
    match &settings.tls {
        Tls::SelfSigned(names) => Some(TlsConfig {
            certificate: data.join(SELF_SIGNED_CERTIFICATE),
            key: data.join(SELF_SIGNED_KEY),
            self_signed: Some(SelfSigned {
                names: names.clone(),
            }),
        }),
        Tls::Files { certificate, key } => Some(TlsConfig {
            certificate: settings.root.at(certificate),
            key: settings.root.at(key),
            self_signed: None,
        }),
        Tls::Off => None,
    }
}

type Written = (
    Vec<(PathBuf, Outcome)>,
    Option<vupdate_client::PublicKeyPin>,
);

fn write_files(
    settings: &InstallSettings,
    changes: &mut Changes,
    program: &[u8],
    config: &str,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<Written> {
    let root = &settings.root;
    let mut outcomes = Vec::new();
    let mut put = |changes: &mut Changes, path: &Path, content: &[u8], mode: u32| {
        let outcome = changes.file(&root.at(path), content, mode, None)?;
        outcomes.push((path.to_path_buf(), outcome));
        anyhow::Ok(())
    };
    put(changes, &settings.binary, program, 0o755)?;
    put(changes, &settings.config, config.as_bytes(), 0o644)?;
    let unit = units::distribution(&UnitOptions {
        binary: settings.binary.clone(),
        config: settings.config.clone(),
        user: settings.user.clone(),
        work_directory: settings.data_directory.clone(),
    });
    let unit_path = Path::new(units::UNIT_DIRECTORY).join(DISTRIBUTION_UNIT);
    put(changes, &unit_path, unit.as_bytes(), 0o644)?;

    let data = root.at(&settings.data_directory);
    changes.dir(&data, 0o750)?;
    let tls = tls_under_root(settings);
    let pin = match &tls {
        Some(tls) => {
            let made: Vec<PathBuf> = [&tls.key, &tls.certificate]
                .into_iter()
                .filter(|path| tls.self_signed.is_some() && !path.exists())
                .cloned()
                .collect();
            let tls_dir = tls.key.parent().map(Path::to_path_buf);
            if let Some(dir) = &tls_dir
                && tls.self_signed.is_some()
            {
                changes.dir(dir, 0o750)?;
            }
            let prepared = vupdate_distribution::server::tls::prepare(tls);
            // What it made is undone with the rest, even when it then failed.
            for path in made.into_iter().filter(|path| path.exists()) {
                changes.adopt(&path);
                let shown = Path::new("/").join(path.strip_prefix(root.path()).unwrap_or(&path));
                outcomes.push((shown, Outcome::Created));
            }
            Some(prepared.map_err(|error| InvalidInput::new(error.to_string()))?)
        }
        None => None,
    };
    if let Some((uid, gid)) = owner {
        // The server reads and writes all of its data directory, its key included.
        for entry in walk(&data)? {
            std::os::unix::fs::lchown(&entry, Some(uid), Some(gid)).with_context(|| {
                format!("cannot give {} to `{}`", entry.display(), settings.user)
            })?;
        }
    }
    Ok((outcomes, pin))
}

/// `dir` and everything under it.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = vec![dir.to_path_buf()];
    let mut at = 0;
    while at < found.len() {
        let path = found[at].clone();
        at += 1;
        if std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .is_dir()
        {
            for entry in std::fs::read_dir(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
            {
                found.push(entry?.path());
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tls: Tls) -> InstallSettings {
        InstallSettings {
            name: "acme".into(),
            instance: "dist-1".into(),
            listen: "0.0.0.0:8000".parse().expect("address"),
            state_repo: "https://git.example.com/acme/state.git".into(),
            branch: "main".into(),
            data_directory: "/var/lib/vupdate-distribution".into(),
            tls,
            root: Root::new("/".into()),
            user: "vupdate".into(),
            binary: "/usr/local/bin/vupdate".into(),
            config: "/etc/vupdate/distribution.yaml".into(),
            no_start: false,
        }
    }

    #[test]
    fn the_config_says_what_the_flags_say_and_loads() {
        let config = settings(Tls::SelfSigned(vec![
            "dist.example".into(),
            "10.0.0.5".into(),
        ]));
        let text = config_text(&config);
        let loaded = DistributionConfig::from_str(&text, Path::new("/etc/vupdate")).expect("loads");
        assert_eq!(loaded.name.as_str(), "acme");
        assert_eq!(loaded.instance, "dist-1");
        assert_eq!(loaded.listen, config.listen);
        assert_eq!(
            loaded.data_directory,
            Path::new("/var/lib/vupdate-distribution")
        );
        assert_eq!(
            loaded.tls.and_then(|tls| tls.self_signed),
            Some(SelfSigned {
                names: vec!["dist.example".into(), "10.0.0.5".into()]
            })
        );
        let plain = config_text(&settings(Tls::Off));
        let loaded =
            DistributionConfig::from_str(&plain, Path::new("/etc/vupdate")).expect("loads");
        assert_eq!(loaded.tls, None);
    }
}
