//! `objectStore:` in `distribution.yaml`: where replicas keep images, fault archives and
//! private files (an S3-compatible bucket) instead of the data directory. The credentials
//! are never in the config: they come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`) or from a file of the same
//! `NAME=value` lines (`credentialsFile`, the format of a systemd `EnvironmentFile`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vupdate_images::S3Settings;

/// An S3-compatible bucket for images, fault archives and private files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Its region; default `us-east-1`.
    pub region: String,
    /// The server's URL for an S3-compatible store (MinIO, Ceph…); AWS when absent.
    pub endpoint: Option<String>,
    /// A key prefix, so several distributions can share a bucket; default none.
    pub prefix: String,
    /// A file of `AWS_ACCESS_KEY_ID=…` lines; the environment when absent.
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawObjectStore {
    pub s3: RawS3,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawS3 {
    pub bucket: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub prefix: Option<String>,
    pub credentials_file: Option<PathBuf>,
}

impl RawObjectStore {
    /// The config, `credentialsFile` resolved by `at` (against the config's folder).
    pub(crate) fn resolve(self, at: impl Fn(PathBuf) -> PathBuf) -> S3Config {
        S3Config {
            bucket: self.s3.bucket,
            region: self.s3.region.unwrap_or_else(|| "us-east-1".to_owned()),
            endpoint: self.s3.endpoint,
            prefix: self.s3.prefix.unwrap_or_default(),
            credentials_file: self.s3.credentials_file.map(at),
        }
    }
}

impl S3Config {
    /// The settings with the credentials read now, from the file or the environment; the
    /// error names the file or variable that is missing.
    pub fn settings(&self) -> Result<S3Settings, String> {
        let file = self
            .credentials_file
            .as_deref()
            .map(read_credentials)
            .transpose()?;
        let lookup = |name: &str| match &file {
            Some(values) => values
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone()),
            None => std::env::var(name).ok().filter(|v| !v.is_empty()),
        };
        let from = || match &self.credentials_file {
            Some(file) => format!("in {}", file.display()),
            None => "in the environment".to_owned(),
        };
        let required = |name: &str| lookup(name).ok_or_else(|| format!("no {name} {}", from()));
        Ok(S3Settings {
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            prefix: self.prefix.clone(),
            access_key_id: required("AWS_ACCESS_KEY_ID")?,
            secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
            session_token: lookup("AWS_SESSION_TOKEN"),
        })
    }
}

/// `NAME=value` lines; blank lines and `#` comments skipped, values optionally quoted.
fn read_credentials(file: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the credentials file {}: {e}", file.display()))?;
    let mut values = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "{}:{}: expected NAME=value",
                file.display(),
                number + 1
            ));
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        values.push((name.trim().to_owned(), value.to_owned()));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(file: Option<PathBuf>) -> S3Config {
        S3Config {
            bucket: "images".into(),
            region: "us-east-1".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            prefix: "acme/".into(),
            credentials_file: file,
        }
    }

    #[test]
    fn credentials_come_from_the_file_and_say_what_is_missing() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("s3.env");
        std::fs::write(
            &file,
            "# the bucket's keys\nAWS_ACCESS_KEY_ID=AKIA1\nAWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n",
        )
        .expect("write");
        let settings = config(Some(file.clone())).settings().expect("settings");
        assert_eq!(settings.access_key_id, "AKIA1");
        assert_eq!(settings.secret_access_key, "s3cr3t");
        assert_eq!(settings.session_token, None);
        assert!(
            !format!("{settings:?}").contains("s3cr3t"),
            "the secret stays out of Debug"
        );

        std::fs::write(&file, "AWS_ACCESS_KEY_ID=AKIA1\n").expect("write");
        let missing = config(Some(file.clone()))
            .settings()
            .expect_err("no secret");
        assert_eq!(
            missing,
            format!("no AWS_SECRET_ACCESS_KEY in {}", file.display())
        );
        std::fs::write(&file, "AWS_ACCESS_KEY_ID\n").expect("write");
        let bad = config(Some(file.clone())).settings().expect_err("bad line");
        assert_eq!(bad, format!("{}:1: expected NAME=value", file.display()));
    }
}
