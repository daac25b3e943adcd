//! Passwords: the length policy, random initial passwords, and argon2id hashing and
//! verification on the [`HashPool`](super::HashPool), each in a place admitted before (a hash takes tens of milliseconds and its memory cost
//! by design).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use super::{AuthError, Ticket};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_LENGTH: usize = 12;
/// The longest password accepted, in characters (bounds the work a login costs).
const MAX_PASSWORD_LENGTH: usize = 1024;
/// The length of generated passwords; 62 symbols, so about 119 bits.
const GENERATED_LENGTH: usize = 20;

/// The argon2id cost of new hashes (verification uses the cost stored in each hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl PasswordCost {
    /// The argon2 crate's recommended defaults (19 MiB, 2 passes, 1 lane).
    pub const DEFAULT: PasswordCost = PasswordCost {
        memory_kib: Params::DEFAULT_M_COST,
        iterations: Params::DEFAULT_T_COST,
        parallelism: Params::DEFAULT_P_COST,
    };

    /// The cheapest valid cost: for tests only, never for real accounts.
    pub const MINIMAL_FOR_TESTS: PasswordCost = PasswordCost {
        memory_kib: Params::MIN_M_COST,
        iterations: 1,
        parallelism: 1,
    };

    fn hasher(self) -> Result<Argon2<'static>, AuthError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| AuthError::Internal(format!("invalid argon2 cost {self:?}: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for PasswordCost {
    fn default() -> Self {
        PasswordCost::DEFAULT
    }
}

/// Checks a new password against the policy.
pub(crate) fn check_policy(account: &str, password: &str) -> Result<(), AuthError> {
    let weak = |reason: String| Err(AuthError::WeakPassword { reason });
    let length = password.chars().count();
    if length < MIN_PASSWORD_LENGTH {
        return weak(format!(
            "it must be at least {MIN_PASSWORD_LENGTH} characters long (it has {length})"
        ));
    }
    if length > MAX_PASSWORD_LENGTH {
        return weak(format!(
            "it must be at most {MAX_PASSWORD_LENGTH} characters long (it has {length})"
        ));
    }
    if password.eq_ignore_ascii_case(account) {
        return weak("it must not be the account name".to_owned());
    }
    Ok(())
}

/// A random password of letters and digits.
pub(crate) fn generate() -> Result<String, AuthError> {
    const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(GENERATED_LENGTH);
    let mut buffer = [0u8; 64];
    while password.len() < GENERATED_LENGTH {
        getrandom::fill(&mut buffer)
            .map_err(|e| AuthError::Internal(format!("no random bytes for a password: {e}")))?;
        // 248 = 4 × 62: rejecting larger bytes keeps every symbol equally likely.
        for byte in buffer.iter().filter(|b| **b < 248) {
            if password.len() == GENERATED_LENGTH {
                break;
            }
            password.push(char::from(SYMBOLS[usize::from(*byte) % SYMBOLS.len()]));
        }
    }
    Ok(password)
}

/// The argon2id PHC string of `password`.
pub(crate) async fn hash(
    place: Ticket,
    cost: PasswordCost,
    password: String,
) -> Result<String, AuthError> {
    place
        .run(move || {
            let hash = cost
                .hasher()?
                .hash_password(password.as_bytes())
                .map_err(|e| AuthError::Internal(format!("argon2 hashing failed: {e}")))?;
            Ok(hash.to_string())
        })
        .await
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub(crate) async fn verify(
    place: Ticket,
    password: String,
    hash: String,
) -> Result<bool, AuthError> {
    place
        .run(move || {
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok())
        })
        .await
}
