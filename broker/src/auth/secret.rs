//! The JWT signing secret: `JWT_SECRET_BYTES` random bytes in `<data-dir>/jwt.secret`, mode
//! 0600, created once and atomically by the log's storage (written to a temporary file,
//! synced, then hard-linked into place, which fails rather than overwrite a secret another
//! process just created).
//!
//! It owns the file; what is signed with it is `token.rs`'s business.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use strand_log::storage::{AtomicWrite, FileStorage, Storage};

use crate::limits::JWT_SECRET_BYTES;
use crate::users::random_bytes;

/// File name of the secret inside the data directory.
pub const SECRET_FILE: &str = "jwt.secret";

/// Why the secret could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read, or created and put in place.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The secret's file.
        path: PathBuf,
        /// What the operating system answered.
        #[source]
        source: io::Error,
    },
    /// The file exists with the wrong length: damaged or not ours. It is never replaced
    /// silently, since a new secret signs every issued token out.
    #[error(
        "{path} holds {found} bytes, expected {JWT_SECRET_BYTES}; restore it or remove it \
             (removing it signs every issued token out)"
    )]
    WrongLength {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        found: usize,
    },
}

/// The signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(..)")
    }
}

impl JwtSecret {
    /// A secret of these bytes, with no file behind it (tests).
    pub fn from_bytes(bytes: Vec<u8>) -> JwtSecret {
        JwtSecret(bytes)
    }

    /// The key material, for signing and checking tokens.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A cluster member's signing key, derived from the cluster secret, so that every member
    /// derives the same one: a token issued by any member is accepted by all, and a client
    /// that resumes on another member keeps its session. Anyone who holds the cluster secret
    /// can sign tokens then, as they can already run SQL as any user (docs/cluster.md).
    pub fn of_cluster(cluster_secret: &[u8]) -> JwtSecret {
        use sha2::{Digest, Sha256};
        // A fixed label first, so this key is of no other use of the secret (the peer proofs
        // MAC with the secret itself).
        let key = Sha256::new()
            .chain_update(b"strand jwt signing key v1\0")
            .chain_update(cluster_secret)
            .finalize();
        JwtSecret(key[..JWT_SECRET_BYTES.min(key.len())].to_vec())
    }

    /// Load `<data_dir>/jwt.secret`, creating it on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<JwtSecret, SecretError> {
        let path = data_dir.join(SECRET_FILE);
        let io_error = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        match fs::read(&path) {
            Ok(bytes) => check(&path, bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create(&path).map_err(io_error)?;
                let bytes = fs::read(&path).map_err(io_error)?;
                check(&path, bytes)
            }
            Err(e) => Err(io_error(e)),
        }
    }
}

fn check(path: &Path, bytes: Vec<u8>) -> Result<JwtSecret, SecretError> {
    if bytes.len() != JWT_SECRET_BYTES {
        return Err(SecretError::WrongLength {
            path: path.to_path_buf(),
            found: bytes.len(),
        });
    }
    if let Ok(metadata) = fs::metadata(path) {
        if metadata.permissions().mode() & 0o077 != 0 {
            let path = path.display();
            tracing::warn!(%path, "JWT secret is readable by other users; chmod 600 it");
        }
    }
    Ok(JwtSecret(bytes))
}

/// Write a fresh secret to a temporary file, sync it, and link it into place. If another
/// process linked one first, keep theirs.
fn create(path: &Path) -> io::Result<()> {
    let secret = random_bytes(JWT_SECRET_BYTES).map_err(io::Error::other)?;
    let how = AtomicWrite::durable().with_mode(0o600).keeping_existing();
    match FileStorage.write_atomically(path, &secret, how) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    tracing::info!(path = %path.display(), "created JWT signing secret");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_one_cluster_derive_one_signing_key() {
        let secret = b"the cluster's shared secret".as_slice();
        let key = JwtSecret::of_cluster(secret);
        assert_eq!(key.bytes(), JwtSecret::of_cluster(secret).bytes());
        assert_eq!(key.bytes().len(), JWT_SECRET_BYTES);
        assert_ne!(key.bytes(), &secret[..JWT_SECRET_BYTES.min(secret.len())]);
        let other = JwtSecret::of_cluster(b"another cluster's shared secret");
        assert_ne!(key.bytes(), other.bytes());
    }

    #[test]
    fn created_once_private_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = JwtSecret::load_or_create(dir.path()).expect("create");
        assert_eq!(first.bytes().len(), JWT_SECRET_BYTES);
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = JwtSecret::load_or_create(dir.path()).expect("load");
        assert_eq!(first.bytes(), again.bytes());
        let leftovers = fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        assert_eq!(format!("{first:?}"), "JwtSecret(..)");
    }

    #[test]
    fn a_damaged_secret_is_an_error_not_a_silent_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(SECRET_FILE), b"short").expect("write");
        let error = JwtSecret::load_or_create(dir.path()).expect_err("wrong length");
        assert!(
            matches!(error, SecretError::WrongLength { found: 5, .. }),
            "{error}"
        );
    }
}
