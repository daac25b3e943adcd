//! `vupdate updater systemd-unit|install|uninstall|cloud-init` and `vupdate distribution
//! systemd-unit|install`: raw arguments checked into the `install` module's settings.

use std::path::PathBuf;

use crate::args::UnitArgs;
#[cfg(feature = "updater")]
use crate::args::UpdaterCommand;
#[cfg(any(feature = "updater", feature = "distribution"))]
use crate::exit::InvalidInput;
use crate::install::units::{self, UnitOptions};

fn unit_options(
    unit: UnitArgs,
    default_binary: PathBuf,
    default_config: &str,
    work_directory: PathBuf,
) -> UnitOptions {
    UnitOptions {
        binary: unit.binary.unwrap_or(default_binary),
        config: unit.config.unwrap_or_else(|| default_config.into()),
        user: unit.user,
        work_directory,
    }
}

/// Where the updater's program is installed by default.
#[cfg(feature = "updater")]
const UPDATER_BINARY: &str = "/usr/local/bin/vupdate";

/// Where the distribution's program is installed by default: in its data directory, which
/// the server owns and `ProtectSystem=full` leaves writable, so its self-update can swap it.
#[cfg(feature = "distribution")]
fn distribution_binary(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("bin").join("vupdate")
}

/// Prints the distribution's unit.
#[cfg(feature = "distribution")]
pub fn distribution_unit(unit: UnitArgs, data_dir: PathBuf) {
    print!(
        "{}",
        units::distribution(&unit_options(
            unit,
            distribution_binary(&data_dir),
            "/etc/vupdate/distribution.yaml",
            data_dir
        ))
    );
}

/// Runs `distribution install`.
#[cfg(feature = "distribution")]
pub fn distribution(args: crate::args::DistributionInstallArgs) -> anyhow::Result<()> {
    use crate::install::distribution::{InstallSettings, Tls, install};
    use crate::install::files::Root;

    let crate::args::DistributionInstallArgs {
        name,
        state_repo,
        branch,
        listen,
        instance,
        data_dir,
        tls_name,
        tls_certificate,
        tls_key,
        no_tls,
        root,
        user,
        binary,
        config,
        no_start,
    } = args;
    let instance = instance.unwrap_or_else(host_name);
    let tls = match (tls_certificate, tls_key) {
        (Some(certificate), Some(key)) => Tls::Files {
            certificate: absolute("--tls-certificate", certificate)?,
            key: absolute("--tls-key", key)?,
        },
        _ if no_tls => Tls::Off,
        _ if tls_name.is_empty() => Tls::SelfSigned(vec![instance.clone()]),
        _ => Tls::SelfSigned(tls_name),
    };
    install(&InstallSettings {
        name,
        instance,
        listen,
        state_repo,
        branch,
        tls,
        root: Root::new(absolute("--root", root)?),
        user: user_arg(user)?,
        binary: absolute(
            "--binary",
            binary.unwrap_or_else(|| distribution_binary(&data_dir)),
        )?,
        data_directory: absolute("--data-dir", data_dir)?,
        config: absolute("--config", config)?,
        no_start,
    })
}

/// Runs an `updater` subcommand other than `run`.
#[cfg(feature = "updater")]
pub fn updater(command: UpdaterCommand) -> anyhow::Result<()> {
    use crate::install::cloud_init::CloudInit;
    use crate::install::files::Root;
    use crate::install::updater::{InstallSettings, UninstallSettings, install, uninstall};

    match command {
        UpdaterCommand::Run { .. } => unreachable!("`updater run` is dispatched by main"),
        UpdaterCommand::SystemdUnit { unit, work_dir } => {
            print!(
                "{}",
                units::updater(&unit_options(
                    unit,
                    UPDATER_BINARY.into(),
                    "/etc/vupdate/updater.yaml",
                    absolute("--work-dir", work_dir)?
                ))
            );
            Ok(())
        }
        UpdaterCommand::Install {
            distribution_url,
            services,
            instance,
            root,
            user,
            work_dir,
            ca_file,
            pinned_public_key,
            binary,
            no_start,
        } => install(&InstallSettings {
            distribution_url: distribution_url_arg(&distribution_url)?,
            services: services.map(|list| list_arg(&list)).transpose()?,
            instance: instance.unwrap_or_else(host_name),
            root: Root::new(absolute("--root", root)?),
            user: user_arg(user)?,
            work_directory: absolute("--work-dir", work_dir)?,
            ca_file,
            pinned_public_key,
            binary: absolute("--binary", binary)?,
            no_start,
        }),
        UpdaterCommand::Uninstall {
            root,
            purge,
            user,
            work_dir,
            binary,
        } => uninstall(&UninstallSettings {
            root: Root::new(absolute("--root", root)?),
            purge,
            user: user_arg(user)?,
            work_directory: absolute("--work-dir", work_dir)?,
            binary: absolute("--binary", binary)?,
        }),
        UpdaterCommand::CloudInit {
            distribution_url,
            token,
            services,
            instance,
            pinned_public_key,
        } => {
            if let Some(list) = &services {
                list_arg(list)?;
            }
            print!(
                "{}",
                CloudInit {
                    distribution_url: distribution_url_arg(&distribution_url)?,
                    token,
                    services,
                    instance,
                    pinned_public_key,
                }
                .document()
            );
            Ok(())
        }
    }
}

#[cfg(any(feature = "updater", feature = "distribution"))]
fn absolute(flag: &str, path: PathBuf) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(InvalidInput::new(format!("{flag} {}: give an absolute path", path.display())).into())
    }
}

#[cfg(feature = "updater")]
fn distribution_url_arg(url: &str) -> anyhow::Result<String> {
    let url = url.trim_end_matches('/');
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok
        || url
            .split_once("://")
            .is_none_or(|(_, rest)| rest.is_empty())
    {
        return Err(InvalidInput::new(format!(
            "--distribution-url `{url}`: give http(s)://host[:port]"
        ))
        .into());
    }
    Ok(url.to_owned())
}

#[cfg(feature = "updater")]
fn list_arg(list: &str) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(InvalidInput::new("--services: name at least one service").into());
    }
    Ok(names)
}

#[cfg(any(feature = "updater", feature = "distribution"))]
fn user_arg(user: String) -> anyhow::Result<String> {
    let valid = !user.is_empty()
        && user.len() <= 32
        && user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && !user.starts_with('-');
    if valid {
        Ok(user)
    } else {
        Err(InvalidInput::new(format!(
            "--user `{user}`: a system user name is lowercase letters, digits, `_` and `-`"
        ))
        .into())
    }
}

/// This machine's host name, the default instance name.
#[cfg(any(feature = "updater", feature = "distribution"))]
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
