//! [`BasicCache`]: Basic credentials verified recently, so that a client sending
//! `Authorization: Basic ...` on every request pays one argon2 verification (about 15 ms),
//! not one per request.
//!
//! What keeps it safe:
//! - The password is never stored. An entry is keyed by HMAC-SHA256 of (user name, password)
//!   under a random key made at start and kept only in memory; a memory dump of the cache
//!   does not give passwords, and offline guessing needs the key.
//! - Only successful verifications are cached: a wrong password always costs argon2, so
//!   guessing stays as slow as before.
//! - An entry lives at most `BASIC_AUTH_CACHE_TTL_MS` and only while the user directory's
//!   credentials generation is the one it was verified under: any CREATE, ALTER or DROP USER
//!   makes every entry stale (those are rare; correctness beats hit rate there).
//! - The cache is bounded (`BASIC_AUTH_CACHE_ENTRIES_MAX`); when full it starts over.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use strand_sql_view::{Role, UserName};

use hmac::{KeyInit, Mac};
use parking_lot::Mutex;

use crate::limits::{BASIC_AUTH_CACHE_ENTRIES_MAX, BASIC_AUTH_CACHE_TTL_MS};
use crate::users::UserIncarnation;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// HMAC-SHA256 of a user name and password under the cache's key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CredentialDigest([u8; 32]);

/// Who a cached credential authenticated, and under which directory generation.
#[derive(Clone, Debug)]
pub struct CachedUser {
    pub name: UserName,
    pub role: Role,
    pub incarnation: UserIncarnation,
    generation: u64,
    verified_at: Instant,
}

pub struct BasicCache {
    key: [u8; 32],
    entries: Mutex<HashMap<CredentialDigest, CachedUser>>,
}

impl std::fmt::Debug for BasicCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicCache(..)")
    }
}

impl BasicCache {
    /// A cache under a fresh random key; `None` if the system has no randomness to give.
    pub fn new() -> Option<BasicCache> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).ok()?;
        Some(BasicCache {
            key,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The user these credentials were verified for, if that happened under `generation`
    /// and recently enough.
    pub fn get(&self, username: &str, password: &str, generation: u64) -> Option<CachedUser> {
        let digest = self.digest(username, password)?;
        let mut entries = self.entries.lock();
        let entry = entries.get(&digest)?;
        let fresh = entry.generation == generation
            && entry.verified_at.elapsed() < Duration::from_millis(BASIC_AUTH_CACHE_TTL_MS);
        if !fresh {
            entries.remove(&digest);
            return None;
        }
        Some(entry.clone())
    }

    /// Remember a successful argon2 verification, made under `generation`.
    pub fn insert(
        &self,
        username: &str,
        password: &str,
        user: (UserName, Role, UserIncarnation),
        generation: u64,
    ) {
        let Some(digest) = self.digest(username, password) else {
            return;
        };
        let mut entries = self.entries.lock();
        if entries.len() >= BASIC_AUTH_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        let (name, role, incarnation) = user;
        let entry = CachedUser {
            name,
            role,
            incarnation,
            generation,
            verified_at: Instant::now(),
        };
        entries.insert(digest, entry);
    }

    fn digest(&self, username: &str, password: &str) -> Option<CredentialDigest> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key).ok()?;
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        mac.update(&(username.len() as u64).to_le_bytes());
        mac.update(username.as_bytes());
        mac.update(password.as_bytes());
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        Some(CredentialDigest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> (UserName, Role, UserIncarnation) {
        let name = UserName::new("alice").expect("name");
        (name, Role::User, UserIncarnation(1))
    }

    #[test]
    fn hits_only_for_the_same_credentials_and_generation() {
        let cache = BasicCache::new().expect("randomness");
        assert!(cache.get("alice", "pw", 1).is_none());
        cache.insert("alice", "pw", alice(), 1);
        let hit = cache.get("alice", "pw", 1).expect("cached");
        assert_eq!(hit.name.as_str(), "alice");
        assert!(cache.get("alice", "other", 1).is_none(), "another password");
        assert!(
            cache.get("alicep", "w", 1).is_none(),
            "the name/password split counts"
        );
        assert!(
            cache.get("alice", "pw", 2).is_none(),
            "a user change made it stale"
        );
        assert!(cache.get("alice", "pw", 1).is_none(), "and removed it");
    }

    #[test]
    fn stays_bounded() {
        let cache = BasicCache::new().expect("randomness");
        for n in 0..BASIC_AUTH_CACHE_ENTRIES_MAX + 10 {
            cache.insert(&format!("u{n}"), "pw", alice(), 1);
        }
        assert!(cache.entries.lock().len() <= BASIC_AUTH_CACHE_ENTRIES_MAX);
    }
}
