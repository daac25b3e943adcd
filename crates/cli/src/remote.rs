//! The client of a command that asks a distribution (`state plan --distribution`,
//! `status`): its token from --token-file, else --token or VUPDATE_TOKEN.

use anyhow::Context as _;
use vupdate_client::Client;

use crate::args::AccessArgs;

/// A client of the distribution at `url` with the token and certificates of `access`.
pub fn client(url: &str, access: &AccessArgs) -> anyhow::Result<Client> {
    let token = match (&access.token_file, &access.token) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("--token-file {}", file.display()))?
            .trim()
            .to_owned(),
        (None, Some(token)) => token.clone(),
        (None, None) => anyhow::bail!(
            "--distribution needs an access token: set VUPDATE_TOKEN or give --token-file"
        ),
    };
    let mut client = Client::builder(url).token(token);
    if let Some(file) = &access.ca_file {
        let pem = std::fs::read(file).with_context(|| format!("--ca-file {}", file.display()))?;
        client = client.root_certificate_pem(pem);
    }
    client
        .build()
        .with_context(|| format!("--distribution {url}"))
}

/// A runtime for one command's requests.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime to ask the distribution")
}
