//! Sealing secret values for the store: ChaCha20-Poly1305 (ring) under a key derived with
//! HKDF-SHA256 from the distribution's JWT key. Replicas must share the JWT key file
//! anyway (tokens signed by one are checked by all), so they open each other's secrets
//! with no second key to distribute; a copy of the store alone reveals no value.
//!
//! A sealed value is `v1:` and the base64 of a random 96-bit nonce followed by the
//! ciphertext and its tag. The secret's name is the associated data, so a sealed value
//! moved to another name does not open.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};

use crate::auth::JwtKey;

/// What every sealed value starts with: the format, so a later one can be told apart.
const FORMAT: &str = "v1:";
/// HKDF's salt and info: this key is for secrets and nothing else.
const SALT: &[u8] = b"vupdate secrets";
const INFO: &[u8] = b"chacha20-poly1305 v1";

/// The key secrets are sealed with.
pub(super) struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// The key derived from `jwt`.
    pub(super) fn derive(jwt: &JwtKey) -> SealingKey {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(jwt.bytes());
        let okm = prk
            .expand(&[INFO], &CHACHA20_POLY1305)
            .expect("32 bytes are within HKDF-SHA256's output limit");
        SealingKey(LessSafeKey::new(UnboundKey::from(okm)))
    }

    /// `value` sealed for the secret `name`.
    pub(super) fn seal(&self, name: &str, value: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random nonce: {e}"))?;
        let mut sealed = value.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "sealing failed".to_owned())?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{FORMAT}{}", STANDARD.encode(bytes)))
    }

    /// The value `sealed` holds for the secret `name`, or why it does not open (never
    /// any part of the value).
    pub(super) fn open(&self, name: &str, sealed: &str) -> Result<String, String> {
        let encoded = sealed
            .strip_prefix(FORMAT)
            .ok_or("it is not in a format this build knows")?;
        let mut bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "it is not valid base64")?;
        if bytes.len() < NONCE_LEN {
            return Err("it is too short".to_owned());
        }
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| "bad nonce")?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut sealed)
            .map_err(|_| {
                "it does not open with this distribution's JWT key (set on a distribution with another `jwt.key`, or the key changed)"
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| "it is not UTF-8".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_under_its_name_and_key() {
        let key = SealingKey::derive(&JwtKey::generate().expect("key"));
        let sealed = key.seal("jetto-token", "s3cr3t").expect("seal");
        assert!(sealed.starts_with(FORMAT) && !sealed.contains("s3cr3t"));
        assert_ne!(sealed, key.seal("jetto-token", "s3cr3t").expect("again"));
        assert_eq!(key.open("jetto-token", &sealed).as_deref(), Ok("s3cr3t"));
        assert!(key.open("acme-token", &sealed).is_err(), "another name");
        let other = SealingKey::derive(&JwtKey::generate().expect("key"));
        let refused = other.open("jetto-token", &sealed).expect_err("another key");
        assert!(refused.contains("JWT key"), "{refused}");
        for broken in ["", "v1:", "v1:!!!", "v0:AAAA", &sealed[..sealed.len() - 4]] {
            assert!(key.open("jetto-token", broken).is_err(), "{broken}");
        }
    }
}
