//! What names an image (kind, service, version) and what describes one (digest and size).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use vupdate_core::version::{ClientVersion, DeveloperVersion, VersionError};

/// Which family of versions an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageKind {
    /// Developer versions, built from source repositories.
    Developer,
    /// Client versions, a developer version customised for one distribution.
    Client,
}

impl ImageKind {
    /// Both kinds, in the order their directories are walked.
    pub const ALL: [ImageKind; 2] = [ImageKind::Developer, ImageKind::Client];

    /// The kind's directory name under `refs/` (`developer` or `client`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Developer => "developer",
            ImageKind::Client => "client",
        }
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version an image belongs to; its variant decides the [`ImageKind`].
///
/// Typed rather than a `(kind, string)` pair so a developer image can never be filed under
/// a client version spelling (`_N`) and the order of a listing is the versions' real order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageVersion {
    /// A developer version such as `jetto-1.2.3`.
    Developer(DeveloperVersion),
    /// A client version such as `jetto-1.2.3_2`.
    Client(ClientVersion),
}

impl ImageVersion {
    /// The kind of image this version names.
    pub fn kind(&self) -> ImageKind {
        match self {
            ImageVersion::Developer(_) => ImageKind::Developer,
            ImageVersion::Client(_) => ImageKind::Client,
        }
    }

    /// Parses `text` as a version of `kind` (a developer version refuses `_N`).
    pub fn parse(kind: ImageKind, text: &str) -> Result<Self, VersionError> {
        Ok(match kind {
            ImageKind::Developer => ImageVersion::Developer(text.parse()?),
            ImageKind::Client => ImageVersion::Client(text.parse()?),
        })
    }
}

impl fmt::Display for ImageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageVersion::Developer(v) => v.fmt(f),
            ImageVersion::Client(v) => v.fmt(f),
        }
    }
}

impl From<DeveloperVersion> for ImageVersion {
    fn from(version: DeveloperVersion) -> Self {
        ImageVersion::Developer(version)
    }
}

impl From<ClientVersion> for ImageVersion {
    fn from(version: ClientVersion) -> Self {
        ImageVersion::Client(version)
    }
}

/// The prefix of every digest string the store hands out.
pub const DIGEST_PREFIX: &str = "sha256:";

/// A stored image: its content digest (`sha256:<64 hex>`) and its size in bytes.
///
/// The same shape as the store crate's version record field, so the two can be compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The content digest, `sha256:` followed by 64 lowercase hex digits.
    pub digest: String,
    /// The image's size in bytes.
    pub size: u64,
}

impl ImageInfo {
    /// The 64 hex digits of the digest, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        self.digest
            .strip_prefix(DIGEST_PREFIX)
            .unwrap_or(&self.digest)
    }
}

/// Normalises a digest given by a caller (`sha256:<hex>` or bare hex, any case) to its
/// lowercase hex; `None` when it is not 64 hex digits.
pub fn normalize_sha256(text: &str) -> Option<String> {
    let hex = text.strip_prefix(DIGEST_PREFIX).unwrap_or(text);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Whether `name` could be a blob file name (64 lowercase hex digits).
pub(crate) fn is_blob_name(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `sha256:<hex>` digest of a finished hasher.
pub(crate) fn digest_string(hasher: sha2::Sha256) -> String {
    format!("{DIGEST_PREFIX}{}", hex::encode(hasher.finalize()))
}
