//! Public-key pins: the SHA-256 of a server's public key (its certificate's
//! SubjectPublicKeyInfo), written as curl's `--pinnedpubkey` takes it, `sha256//BASE64`.
//! The value lives here so the state repo's files (`providers.yaml`) and the configs can
//! check a pin; `vupdate-client` trusts exactly the key it names.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// The prefix of a pin's text: the hash it is made with.
const PREFIX: &str = "sha256//";

/// The SHA-256 of a public key (DER SubjectPublicKeyInfo), `sha256//BASE64` as text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeyPin([u8; 32]);

impl PublicKeyPin {
    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_public_key(spki_der: &[u8]) -> PublicKeyPin {
        PublicKeyPin(Sha256::digest(spki_der).into())
    }
}

impl fmt::Display for PublicKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublicKeyPin {
    type Err = String;

    fn from_str(text: &str) -> Result<PublicKeyPin, String> {
        let encoded = text.trim().strip_prefix(PREFIX).ok_or_else(|| {
            format!("`{text}` is not a public-key pin: write `{PREFIX}` and the base64 SHA-256 of the key, as `vupdate distribution run` prints it")
        })?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|e| format!("`{text}`: the text after `{PREFIX}` is not base64: {e}"))?;
        let hash: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "`{text}`: a SHA-256 has 32 bytes, this one {} (44 base64 characters ending in `=`)",
                bytes.len()
            )
        })?;
        Ok(PublicKeyPin(hash))
    }
}

impl serde::Serialize for PublicKeyPin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKeyPin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_read_back_as_written_and_bad_ones_say_why() {
        let pin = PublicKeyPin::of_public_key(b"a key");
        let text = pin.to_string();
        assert!(
            text.starts_with("sha256//") && text.len() == 8 + 44,
            "{text}"
        );
        assert_eq!(text.parse::<PublicKeyPin>(), Ok(pin));
        assert_eq!(format!(" {text}\n").parse::<PublicKeyPin>(), Ok(pin));
        for (bad, says) in [
            ("abc", "is not a public-key pin"),
            ("sha1//abc", "is not a public-key pin"),
            ("sha256//!!", "is not base64"),
            ("sha256//YWJj", "a SHA-256 has 32 bytes, this one 3"),
        ] {
            let error = bad.parse::<PublicKeyPin>().expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
