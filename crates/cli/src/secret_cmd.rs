//! `vupdate distribution secret set|list|remove`: the named secrets of a distribution, in
//! its store, sealed under a key derived from its JWT key (so this command reads the
//! config's `jwtKeyFile`, creating it as the server would when missing). Works whether the
//! server runs or not; running servers read the secrets again every 2 s.

use std::io::Read as _;

use anyhow::Context as _;
use vupdate_distribution::auth::JwtKey;
use vupdate_distribution::secrets::{SecretError, Secrets};

use crate::args::SecretCommand;
use crate::exit::InvalidInput;

/// Runs a `secret` subcommand on the config's store.
pub fn run(command: SecretCommand) -> anyhow::Result<()> {
    let (SecretCommand::Set { config, .. }
    | SecretCommand::List { config }
    | SecretCommand::Remove { config, .. }) = &command;
    let config = crate::distribution_cmd::load(config)?;
    // The value is read before the store is opened: nothing is written on a bad read.
    let value = match &command {
        SecretCommand::Set { .. } => Some(read_value()?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let store = vupdate_store::open(&config.store)
            .await
            .with_context(|| format!("distribution `{}`: cannot open the store", config.name))?;
        let key = JwtKey::load_or_create(&config.jwt_key_file)
            .with_context(|| format!("distribution `{}`", config.name))?;
        let secrets = Secrets::open(store, &key, &config.data_directory)
            .await
            .map_err(secret_error)?;
        match command {
            SecretCommand::Set { name, .. } => {
                let value = value.unwrap_or_default();
                let info = secrets.set(&name, &value).await.map_err(secret_error)?;
                println!(
                    "secret `{}` set ({} bytes), sealed in the store {}",
                    info.name,
                    value.len(),
                    secrets.description()
                );
            }
            SecretCommand::List { .. } => {
                for info in secrets.list().map_err(secret_error)? {
                    println!("{}\t{}", info.name, info.set_at.to_rfc3339());
                }
            }
            SecretCommand::Remove { name, .. } => {
                let removed = secrets.remove(&name).await.map_err(secret_error)?;
                if !removed {
                    return Err(InvalidInput::new(format!("there is no secret `{name}`")).into());
                }
                println!("secret `{name}` removed");
            }
        }
        Ok(())
    })
}

/// The value on stdin, without one trailing newline.
fn read_value() -> anyhow::Result<String> {
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .context("cannot read the secret's value from stdin")?;
    if let Some(line) = value.strip_suffix('\n') {
        value = line.strip_suffix('\r').unwrap_or(line).to_owned();
    }
    Ok(value)
}

/// A bad name or value is invalid input (exit 2); a store that cannot be written is not.
fn secret_error(error: SecretError) -> anyhow::Error {
    if error.is_invalid_input() {
        InvalidInput::new(error.to_string()).into()
    } else {
        error.into()
    }
}
