//! Password hashing with argon2id (PHC strings, so each hash carries its own parameters and a
//! hash made with other parameters still verifies), and generation of random passwords.
//!
//! It owns no users: the directory decides which hash belongs to whom.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::model::UserError;
use crate::limits::{PASSWORD_BYTES_MIN, PASSWORD_SALT_BYTES};
use strand_sql_view::limits::PASSWORD_BYTES_MAX;

/// How new passwords are hashed. The default is argon2's recommended cost (19 MiB, 2 passes);
/// unit tests use a tiny cost so that hundreds of hashes stay fast.
#[derive(Clone, Debug, Default)]
pub struct PasswordHashing {
    params: Params,
}

impl PasswordHashing {
    /// The cheapest parameters argon2 allows: for tests only, never for stored users.
    #[cfg(test)]
    pub fn cheapest() -> PasswordHashing {
        let params = Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None);
        PasswordHashing {
            params: params.unwrap_or_default(),
        }
    }

    /// The PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, UserError> {
        check_password(password)?;
        let salt = SaltString::encode_b64(&random_bytes(PASSWORD_SALT_BYTES)?)
            .map_err(|e| UserError::Hashing(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| UserError::Hashing(e.to_string()))
    }

    /// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        if password.len() > PASSWORD_BYTES_MAX {
            return false;
        }
        match PasswordHash::new(hash) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }
}

/// Refuse passwords outside the length bounds before spending a hash on them.
pub fn check_password(password: &str) -> Result<(), UserError> {
    if password.len() < PASSWORD_BYTES_MIN {
        return Err(UserError::InvalidPassword("it is empty"));
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(UserError::InvalidPassword("it is longer than 1024 bytes"));
    }
    Ok(())
}

/// A random password of `chars` ASCII letters and digits, from the OS's random source.
pub fn generate_password(chars: usize) -> Result<String, UserError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Bytes at or above the largest multiple of 62 are redrawn, so every character is equally
    // likely.
    let unbiased_below = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut password = String::with_capacity(chars);
    while password.len() < chars {
        for byte in random_bytes(64)? {
            if password.len() < chars && byte < unbiased_below {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(password)
}

/// `bytes` random bytes from the OS's random source.
pub fn random_bytes(bytes: usize) -> Result<Vec<u8>, UserError> {
    let mut out = vec![0u8; bytes];
    getrandom::getrandom(&mut out).map_err(|e| UserError::Random(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let hashing = PasswordHashing::cheapest();
        let hash = hashing.hash("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(hashing.verify("correct horse", &hash));
        assert!(!hashing.verify("correct horsE", &hash));
        assert!(!hashing.verify("correct horse", "not a phc string"));
        assert_ne!(hash, hashing.hash("correct horse").expect("hash"), "salted");
    }

    #[test]
    fn password_bounds_are_enforced() {
        let hashing = PasswordHashing::cheapest();
        assert!(hashing.hash("").is_err());
        assert!(hashing.hash(&"x".repeat(PASSWORD_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn generated_passwords_have_the_asked_length_and_alphabet() {
        let a = generate_password(24).expect("random");
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, generate_password(24).expect("random"));
        assert_eq!(random_bytes(32).expect("random").len(), 32);
    }
}
