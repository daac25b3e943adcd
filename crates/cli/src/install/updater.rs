//! `vupdate updater install` and `uninstall`: what the one-line install script runs once
//! it has downloaded and checked this program.
//!
//! Install, in order, stopping at the first problem with nothing written:
//! 1. checks: the arguments, root and systemd on the running system;
//! 2. enrolment (skipped when this root already holds an installation for the same
//!    distribution and instance, so running it twice changes nothing): the enrolment
//!    token from `VUPDATE_ENROLMENT_TOKEN` is exchanged for the instance's access token;
//! 3. the config, checked by loading it as the updater will, before it is written;
//! 4. the system user, then the files (all or nothing, see `files`), then the unit
//!    enabled and (re)started.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use vupdate_client::enrol::{EnrolledService, Enrolment};

use super::files::{Changes, Outcome, Root, quoted};
use super::system;
use super::units::{self, UPDATER_UNIT, UnitOptions};
use crate::exit::InvalidInput;

/// The environment variable the enrolment token comes in (never the command line).
pub const ENROLMENT_TOKEN_ENV: &str = "VUPDATE_ENROLMENT_TOKEN";
/// The configuration directory.
const CONFIG_DIR: &str = "/etc/vupdate";
/// The config file.
const CONFIG_FILE: &str = "/etc/vupdate/updater.yaml";
/// The access token, beside the config (the config names it relatively).
const TOKEN_FILE: &str = "/etc/vupdate/updater.token";
/// The distribution's certificate, when one is given.
const CA_FILE: &str = "/etc/vupdate/distribution.pem";

/// What `updater install` was asked for, checked.
#[derive(Debug)]
pub struct InstallSettings {
    /// The distribution, `http(s)://host[:port]`.
    pub distribution_url: String,
    /// The services to ask for (default: the token's).
    pub services: Option<Vec<String>>,
    /// This VM's instance name.
    pub instance: String,
    /// Where to install.
    pub root: Root,
    /// The system user.
    pub user: String,
    /// The services' work directory.
    pub work_directory: PathBuf,
    /// A PEM file of the distribution's certificate, copied beside the config.
    pub ca_file: Option<PathBuf>,
    /// The distribution's public key, trusted alone (the config's `pinnedPublicKey`).
    pub pinned_public_key: Option<vupdate_client::PublicKeyPin>,
    /// Where the program goes.
    pub binary: PathBuf,
    /// Write the files but leave the unit stopped.
    pub no_start: bool,
}

/// The paths of the installed system, as the unit and the config name them.
fn unit_options(settings: &InstallSettings) -> UnitOptions {
    UnitOptions {
        binary: settings.binary.clone(),
        config: CONFIG_FILE.into(),
        user: settings.user.clone(),
        work_directory: settings.work_directory.clone(),
    }
}

/// Installs (or confirms) the updater as `settings` say.
pub fn install(settings: &InstallSettings) -> anyhow::Result<()> {
    let system = settings.root.is_system();
    system::check_can_install(
        &settings.root,
        settings.no_start,
        "vupdate updater run --config /etc/vupdate/updater.yaml",
    )?;
    let ca = match &settings.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|error| {
            InvalidInput::new(format!("--ca-file {}: {error}", path.display()))
        })?),
        None => None,
    };
    let program = system::this_program()?;

    let config_path = settings.root.at(Path::new(CONFIG_FILE));
    let existing = existing_installation(&config_path, settings)?;
    let enrolled = match &existing {
        Some(account) => {
            println!(
                "already enrolled with {} as instance `{}`: keeping its token and config ({account})",
                settings.distribution_url, settings.instance
            );
            None
        }
        None => Some(enrol(settings, ca.as_deref())?),
    };
    let config = enrolled
        .as_ref()
        .map(|enrolment| config_text(settings, enrolment))
        .transpose()?;

    let owner = system::owner(&settings.root, &settings.user, &settings.work_directory)?;
    let mut changes = Changes::default();
    let written = write_files(
        settings,
        &mut changes,
        &program,
        config.as_deref(),
        enrolled.as_ref(),
        ca.as_deref(),
        owner,
    );
    let outcomes = match written {
        Ok(outcomes) => outcomes,
        Err(error) => {
            changes.undo();
            return Err(error.context("nothing was installed"));
        }
    };
    for (path, outcome) in &outcomes {
        println!("{:9} {}", outcome.word(), path.display());
    }
    if let Some(enrolment) = &enrolled {
        println!(
            "enrolled as `{}` with distribution `{}`, for {}",
            enrolment.account,
            enrolment.distribution,
            names(&enrolment.services)
        );
    }
    if !system {
        println!(
            "--root: no user made, no unit started; on the machine: systemctl enable --now {UPDATER_UNIT}"
        );
        return Ok(());
    }
    if settings.no_start {
        println!("--no-start: the unit is written, not started");
        return Ok(());
    }
    system::enable_and_start(UPDATER_UNIT, changes.any())
}

/// The account of an installation in this root for the same distribution and instance.
fn existing_installation(
    config_path: &Path,
    settings: &InstallSettings,
) -> anyhow::Result<Option<String>> {
    if !config_path.exists() {
        return Ok(None);
    }
    let config = vupdate_updater::config::UpdaterConfig::load(config_path).map_err(|error| {
        InvalidInput::new(format!(
            "the installed config is not usable ({error}); remove it to install again"
        ))
    })?;
    if config.distribution_url.trim_end_matches('/') != settings.distribution_url
        || config.instance != settings.instance
    {
        bail!(InvalidInput::new(format!(
            "{} is the config of instance `{}` of {}: uninstall first (`vupdate updater uninstall`) to install for instance `{}` of {}",
            config_path.display(),
            config.instance,
            config.distribution_url,
            settings.instance,
            settings.distribution_url
        )));
    }
    Ok(Some(format!("{}{}", "updater@", config.instance)))
}

fn enrol(settings: &InstallSettings, ca: Option<&[u8]>) -> anyhow::Result<Enrolment> {
    let token = std::env::var(ENROLMENT_TOKEN_ENV)
        .ok()
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            InvalidInput::new(format!(
                "no enrolment token: put it in the environment variable {ENROLMENT_TOKEN_ENV} (the install script does)"
            ))
        })?;
    let mut builder = vupdate_client::Client::builder(settings.distribution_url.clone());
    if let Some(pem) = ca {
        builder = builder.root_certificate_pem(pem.to_vec());
    }
    if let Some(pin) = settings.pinned_public_key {
        builder = builder.pinned_public_key(pin);
    }
    let client = builder.build().context("cannot set up the client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(client.enrol_updater(&token, &settings.instance, settings.services.as_deref()))
        .map_err(|error| match error.code() {
            Some(_) => anyhow::Error::new(InvalidInput::new(format!("enrolment refused: {error}"))),
            None => anyhow::Error::new(error).context(format!(
                "cannot enrol with the distribution at {}",
                settings.distribution_url
            )),
        })
        .map_err(|error| error.context("nothing was installed"))
}

fn names(services: &[EnrolledService]) -> String {
    services
        .iter()
        .map(|s| match &s.role {
            Some(role) => format!("{}-{role}", s.service),
            None => s.service.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The config for an enrolment, checked by loading it as the updater will.
fn config_text(settings: &InstallSettings, enrolment: &Enrolment) -> anyhow::Result<String> {
    let mut text = format!(
        "# Written by `vupdate updater install` for `{account}` of distribution `{distribution}`.\n\
         # Every setting: examples/updater.yaml in the vupdate repository. Relative paths\n\
         # are read from this file's folder.\n\
         instance: {instance}\n\
         distributionUrl: {url}\n\
         accessTokenFile: updater.token\n\
         workDirectory: {work}\n",
        account = enrolment.account,
        distribution = enrolment.distribution,
        instance = quoted(&settings.instance),
        url = quoted(&settings.distribution_url),
        work = quoted(&settings.work_directory.to_string_lossy()),
    );
    if settings.ca_file.is_some() {
        text.push_str("caFile: distribution.pem\n");
    }
    if let Some(pin) = settings.pinned_public_key {
        text.push_str(&format!("pinnedPublicKey: {}\n", quoted(&pin.to_string())));
    }
    text.push_str("services:\n");
    for service in &enrolment.services {
        match &service.role {
            None => text.push_str(&format!("  - {}\n", quoted(&service.service))),
            Some(role) => text.push_str(&format!(
                "  - service: {}\n    role: {}\n",
                quoted(&service.service),
                quoted(role)
            )),
        }
    }
    let check = tempfile::tempdir().context("cannot make a temporary directory")?;
    std::fs::write(check.path().join("updater.yaml"), &text)
        .and_then(|()| std::fs::write(check.path().join("updater.token"), "x"))
        .and_then(|()| match &settings.ca_file {
            Some(_) => std::fs::write(check.path().join("distribution.pem"), ""),
            None => Ok(()),
        })
        .context("cannot write the config to check it")?;
    vupdate_updater::config::UpdaterConfig::load(check.path().join("updater.yaml"))
        .map_err(|error| InvalidInput::new(format!("the config would be invalid: {error}")))?;
    Ok(text)
}

fn write_files(
    settings: &InstallSettings,
    changes: &mut Changes,
    program: &[u8],
    config: Option<&str>,
    enrolled: Option<&Enrolment>,
    ca: Option<&[u8]>,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<Vec<(PathBuf, Outcome)>> {
    let root = &settings.root;
    let mut outcomes = Vec::new();
    let mut put = |changes: &mut Changes, path: &str, content: &[u8], mode: u32, owner| {
        let path = Path::new(path);
        let outcome = changes.file(&root.at(path), content, mode, owner)?;
        outcomes.push((path.to_path_buf(), outcome));
        anyhow::Ok(())
    };
    changes.dir(&root.at(Path::new(CONFIG_DIR)), 0o755)?;
    put(
        changes,
        &settings.binary.to_string_lossy(),
        program,
        0o755,
        None,
    )?;
    if let Some(pem) = ca {
        put(changes, CA_FILE, pem, 0o644, None)?;
    }
    if let (Some(config), Some(enrolment)) = (config, enrolled) {
        put(
            changes,
            TOKEN_FILE,
            enrolment.access_token.as_bytes(),
            0o600,
            owner,
        )?;
        put(changes, CONFIG_FILE, config.as_bytes(), 0o644, None)?;
    }
    let unit = units::updater(&unit_options(settings));
    let unit_path = format!("{}/{UPDATER_UNIT}", units::UNIT_DIRECTORY);
    put(changes, &unit_path, unit.as_bytes(), 0o644, None)?;
    if root.is_system() && !settings.work_directory.exists() {
        changes.dir(&settings.work_directory, 0o750)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&settings.work_directory, Some(uid), Some(gid)).with_context(
                || {
                    format!(
                        "cannot give {} to `{}`",
                        settings.work_directory.display(),
                        settings.user
                    )
                },
            )?;
        }
    }
    Ok(outcomes)
}

/// What `updater uninstall` was asked for.
#[derive(Debug)]
pub struct UninstallSettings {
    /// Where the installation is.
    pub root: Root,
    /// Also remove the config, the token, the work directory and the user.
    pub purge: bool,
    /// The system user.
    pub user: String,
    /// The services' work directory.
    pub work_directory: PathBuf,
    /// Where the program is.
    pub binary: PathBuf,
}

/// Stops and removes the unit and the program; with `purge`, the config, the token, the
/// services' work directory and the user too.
pub fn uninstall(settings: &UninstallSettings) -> anyhow::Result<()> {
    let root = &settings.root;
    let system = root.is_system();
    if system && !system::is_root() {
        bail!(InvalidInput::new(
            "run the uninstall as root (sudo), or give --root DIR"
        ));
    }
    let unit_path = root.at(&Path::new(units::UNIT_DIRECTORY).join(UPDATER_UNIT));
    if system && unit_path.exists() && system::systemd_runs() {
        // Stopping the updater stops every service it runs.
        system::systemctl(&["disable", "--now", UPDATER_UNIT])?;
        println!("stopped and disabled {UPDATER_UNIT} (and the services it ran)");
    }
    let mut removed = vec![unit_path, root.at(&settings.binary)];
    if settings.purge {
        removed.push(root.at(Path::new(CONFIG_DIR)));
        removed.push(root.at(&settings.work_directory));
    }
    for path in removed {
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => println!("removed   {}", path.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot remove {}", path.display()));
            }
        }
    }
    if system && system::systemd_runs() {
        system::systemctl(&["daemon-reload"])?;
    }
    if settings.purge {
        if system && system::user_ids(&settings.user)?.is_some() {
            system::remove_user(&settings.user)?;
            println!("removed the system user `{}`", settings.user);
        }
        println!(
            "revoke the instance's token on the distribution: mutation revokeAccessTokens(account: \"updater@<instance>\")"
        );
    } else {
        println!(
            "kept {CONFIG_DIR} and {} (the config, the token, the services' files); --purge removes them",
            settings.work_directory.display()
        );
    }
    Ok(())
}
