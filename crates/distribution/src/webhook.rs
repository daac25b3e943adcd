//! The push webhook's shared secret (`stateRepo.webhookSecretFile`): how a Git host shows
//! that a `POST /hooks/git` comes from it without holding a vupdate token.
//!
//! Hosts prove it in one of two ways, and both are accepted: GitHub, Gitea, Forgejo and
//! Bitbucket sign the body with HMAC-SHA256 of the secret (`X-Hub-Signature-256:
//! sha256=<hex>`; Bitbucket `X-Hub-Signature: sha256=<hex>`; Gitea and Forgejo also
//! `X-Gitea-Signature: <hex>`), and GitLab sends the secret itself (`X-Gitlab-Token`). Every comparison is constant-time (ring's HMAC
//! verification; GitLab's token is compared through the HMAC of each, so its length and
//! contents leak nothing either).

use std::path::{Path, PathBuf};

use axum::http::HeaderMap;
use ring::hmac;

use crate::auth::{read_or_create_private, warn_if_readable_by_others};

/// The secret's file name in the data directory, its default place.
pub const FILE_NAME: &str = "webhook.secret";
/// Random bytes of a new secret (written as hex, so it can be pasted into a Git host).
const SECRET_BYTES: usize = 32;
/// Characters a secret must have at least: a short one could be guessed.
const MIN_SECRET_CHARS: usize = 16;

/// The headers a signature or a token is read from.
const HUB_SIGNATURE: &str = "x-hub-signature-256";
/// Bitbucket's name for it (GitHub sends a SHA-1 one under this name too, beside its own).
const BITBUCKET_SIGNATURE: &str = "x-hub-signature";
const GITEA_SIGNATURE: &str = "x-gitea-signature";
const GITLAB_TOKEN: &str = "x-gitlab-token";

/// Why the push webhook's secret cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("push webhook secret {} (stateRepo.webhookSecretFile): {reason}", path.display())]
pub struct WebhookSecretError {
    /// The secret's file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// Why a hook request was not taken as the Git host's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It carries neither a signature nor a token.
    #[error(
        "a push webhook must be signed with the secret in {file} (`X-Hub-Signature-256`, `X-Hub-Signature: sha256=…`, `X-Gitea-Signature` or `X-Gitlab-Token`), or carry `Authorization: Bearer` with an Administrator or Builder token"
    )]
    Unsigned {
        /// The secret's file, for the operator to copy into the Git host.
        file: String,
    },
    /// Its signature or token is not the secret's.
    #[error("the `{header}` header does not match the secret in {file}")]
    Mismatch {
        /// The header that was checked.
        header: &'static str,
        /// The secret's file.
        file: String,
    },
}

/// The secret push webhooks are checked with.
pub struct WebhookSecret {
    key: hmac::Key,
    /// The HMAC of the secret itself, which a GitLab token's HMAC must equal.
    token_tag: hmac::Tag,
    path: PathBuf,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecret({})", self.path.display())
    }
}

impl WebhookSecret {
    /// Reads the secret at `path`, or creates a random one there (mode 0600) when missing.
    /// Surrounding whitespace is not part of it, so a file edited by hand works.
    pub fn load_or_create(path: &Path) -> Result<WebhookSecret, WebhookSecretError> {
        let error = |reason: String| WebhookSecretError {
            path: path.to_owned(),
            reason,
        };
        let mut random = [0u8; SECRET_BYTES];
        getrandom::fill(&mut random).map_err(|e| error(format!("no random bytes: {e}")))?;
        let fresh = format!("{}\n", hex::encode(random));
        let (bytes, created) =
            read_or_create_private(path, fresh.as_bytes()).map_err(|e| error(e.to_string()))?;
        if created {
            tracing::info!(path = %path.display(), "created the push webhook secret: give it to the Git host's webhook");
        } else {
            warn_if_readable_by_others(path, "the push webhook secret");
        }
        let text = String::from_utf8(bytes).map_err(|_| error("it is not UTF-8 text".into()))?;
        WebhookSecret::new(text.trim(), path).map_err(error)
    }

    /// The secret `text`, read from `path` (named in refusals).
    fn new(text: &str, path: &Path) -> Result<WebhookSecret, String> {
        let chars = text.chars().count();
        if chars < MIN_SECRET_CHARS {
            return Err(format!(
                "the secret has {chars} characters, at least {MIN_SECRET_CHARS} are needed (delete the file to have one made)"
            ));
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes());
        let token_tag = hmac::sign(&key, text.as_bytes());
        Ok(WebhookSecret {
            key,
            token_tag,
            path: path.to_owned(),
        })
    }

    /// Whether a request with `headers` and `body` is the Git host's: `Ok` with the header
    /// that proved it.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<&'static str, Refusal> {
        let file = self.path.display().to_string();
        let found = [
            HUB_SIGNATURE,
            BITBUCKET_SIGNATURE,
            GITEA_SIGNATURE,
            GITLAB_TOKEN,
        ]
        .into_iter()
        .find_map(|name| headers.get(name).map(|value| (name, value.as_bytes())));
        let Some((header, value)) = found else {
            return Err(Refusal::Unsigned { file });
        };
        let proven = match header {
            GITLAB_TOKEN => {
                hmac::verify(&self.key, value.trim_ascii(), self.token_tag.as_ref()).is_ok()
            }
            GITEA_SIGNATURE => self.signs(body, value),
            _ => value
                .strip_prefix(b"sha256=")
                .is_some_and(|signature| self.signs(body, signature)),
        };
        if proven {
            Ok(header)
        } else {
            Err(Refusal::Mismatch { header, file })
        }
    }

    /// Whether `hex_signature` (either case) is the HMAC-SHA256 of `body` with the secret.
    fn signs(&self, body: &[u8], hex_signature: &[u8]) -> bool {
        hex::decode(hex_signature.trim_ascii())
            .is_ok_and(|signature| hmac::verify(&self.key, body, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// GitHub's documented example: this secret signs this payload with this signature.
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_PAYLOAD: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secret() -> WebhookSecret {
        WebhookSecret::new(GITHUB_SECRET, Path::new("/data/webhook.secret")).expect("secret")
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn github_s_example_signature_is_accepted_and_a_changed_body_is_not() {
        let secret = secret();
        let signed = headers(HUB_SIGNATURE, &format!("sha256={GITHUB_SIGNATURE}"));
        assert_eq!(secret.verify(&signed, GITHUB_PAYLOAD), Ok(HUB_SIGNATURE));
        let refused = secret
            .verify(&signed, b"Hello, World?")
            .expect_err("another body");
        assert_eq!(
            refused.to_string(),
            "the `x-hub-signature-256` header does not match the secret in /data/webhook.secret"
        );
        let unprefixed = headers(HUB_SIGNATURE, GITHUB_SIGNATURE);
        assert!(secret.verify(&unprefixed, GITHUB_PAYLOAD).is_err());
        let bitbucket = headers(BITBUCKET_SIGNATURE, &format!("sha256={GITHUB_SIGNATURE}"));
        assert_eq!(
            secret.verify(&bitbucket, GITHUB_PAYLOAD),
            Ok(BITBUCKET_SIGNATURE)
        );
        // GitHub's SHA-1 signature under that name is not taken: only SHA-256 is.
        let sha1 = headers(
            BITBUCKET_SIGNATURE,
            "sha1=0123456789abcdef0123456789abcdef01234567",
        );
        assert!(secret.verify(&sha1, GITHUB_PAYLOAD).is_err());
    }

    #[test]
    fn gitea_s_bare_signature_and_gitlab_s_token_are_accepted() {
        let secret = secret();
        let gitea = headers(GITEA_SIGNATURE, &GITHUB_SIGNATURE.to_uppercase());
        assert_eq!(secret.verify(&gitea, GITHUB_PAYLOAD), Ok(GITEA_SIGNATURE));
        let gitlab = headers(GITLAB_TOKEN, GITHUB_SECRET);
        assert_eq!(secret.verify(&gitlab, b"anything"), Ok(GITLAB_TOKEN));
        let wrong = headers(GITLAB_TOKEN, "It's a Secret to Everybody!");
        assert!(matches!(
            secret.verify(&wrong, b""),
            Err(Refusal::Mismatch {
                header: GITLAB_TOKEN,
                ..
            })
        ));
    }

    #[test]
    fn a_request_without_a_signature_is_told_what_to_send() {
        let refused = secret()
            .verify(&HeaderMap::new(), b"")
            .expect_err("unsigned");
        assert!(matches!(refused, Refusal::Unsigned { .. }));
        assert!(
            refused.to_string().contains("/data/webhook.secret"),
            "{refused}"
        );
    }

    #[test]
    fn a_missing_file_gets_a_private_random_secret_and_a_short_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conf").join(FILE_NAME);
        WebhookSecret::load_or_create(&path).expect("created");
        let text = std::fs::read_to_string(&path).expect("written");
        assert_eq!(text.trim().len(), 2 * SECRET_BYTES, "{text}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("metadata").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // Loaded again, it is the same secret: a signature made with it passes.
        let again = WebhookSecret::load_or_create(&path).expect("loaded");
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, text.trim().as_bytes()),
            b"push",
        );
        let signed = headers(GITEA_SIGNATURE, &hex::encode(tag.as_ref()));
        assert_eq!(again.verify(&signed, b"push"), Ok(GITEA_SIGNATURE));

        std::fs::write(&path, "short\n").expect("edit");
        let error = WebhookSecret::load_or_create(&path).expect_err("too short");
        assert!(error.to_string().contains("at least 16"), "{error}");
    }
}
