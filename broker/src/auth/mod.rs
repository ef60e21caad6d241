//! Authentication: turning what a client presents (a login, an `Authorization` header) into a
//! [`Session`], and issuing tokens. Owns the credential parsing, the JWT format and the signing
//! secret's file; users and passwords belong to [`UserDirectory`].
//!
//! Basic credentials and logins cost one argon2 verification: call [`Authenticator::login`]
//! and [`Authenticator::authenticate`] from a blocking thread. Basic credentials verified
//! recently are remembered ([`BasicCache`]): [`Authenticator::authenticate_cached`] answers
//! them in microseconds, on any thread.

mod basic_cache;
mod credentials;
mod secret;
mod token;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use basic_cache::BasicCache;
pub use credentials::{parse_authorization, Credentials};
pub use secret::{JwtSecret, SecretError, SECRET_FILE};
pub use token::{rfc3339_utc, Claims, IssuedToken, TokenKeys};

use crate::api::LoginResponse;
use crate::error::{ApiError, ErrorCode};
use crate::session::{AuthMethod, Session};
use crate::users::UserDirectory;

/// Why a client is not let in. Every variant but `Signing` is the client's problem (401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "missing Authorization header: send `Bearer <token>` or `Basic <base64 user:password>`"
    )]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    #[error("invalid user name or password")]
    BadCredentials,
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("token expired; log in again")]
    ExpiredToken,
    #[error("the token's user no longer exists")]
    UnknownUser,
    #[error("token signing failed: {0}")]
    Signing(String),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::Signing(_) => ApiError::internal(&error),
            _ => ApiError::new(ErrorCode::Unauthorized, error.to_string()),
        }
    }
}

/// Checks credentials against the directory and issues tokens.
#[derive(Debug)]
pub struct Authenticator {
    users: Arc<UserDirectory>,
    keys: TokenKeys,
    /// `None` only if the system had no randomness for its key (then nothing is cached).
    basic_cache: Option<BasicCache>,
}

impl Authenticator {
    pub fn new(users: Arc<UserDirectory>, secret: &JwtSecret, token_ttl: Duration) -> Self {
        let basic_cache = BasicCache::new();
        if basic_cache.is_none() {
            tracing::warn!(
                "no randomness for the Basic-credential cache; every Basic request \
                costs an argon2 verification"
            );
        }
        Authenticator {
            users,
            keys: TokenKeys::new(secret, token_ttl),
            basic_cache,
        }
    }

    /// `POST /v1/api/auth/login`: a token for a correct user name and password.
    pub fn login(&self, username: &str, password: &str) -> Result<LoginResponse, AuthError> {
        let user = self
            .users
            .verify_password(username, password)
            .ok_or(AuthError::BadCredentials)?;
        let issued = self.keys.issue(&user, now_unix_s())?;
        Ok(LoginResponse {
            token: issued.token,
            expires_at: rfc3339_utc(issued.expires_unix_s),
            user: user.name.to_string(),
            role: user.role.to_string(),
        })
    }

    /// The session of a request with these credentials. A token's user must still exist;
    /// its current role (not the one in the token) is the session's.
    pub fn authenticate(&self, credentials: &Credentials) -> Result<Session, AuthError> {
        match credentials {
            Credentials::Bearer(token) => {
                let claims = self.keys.verify(token, now_unix_s())?;
                let user = self.users.user(&claims.sub).ok_or(AuthError::UnknownUser)?;
                // A token from before the user was (re-)created belongs to a dropped namesake.
                let issued_ms = claims.iat.saturating_add(1).saturating_mul(1000);
                if issued_ms <= user.created_unix_ms {
                    return Err(AuthError::UnknownUser);
                }
                Ok(Session::new(user.name, user.role, AuthMethod::Token))
            }
            Credentials::Basic { username, password } => {
                let generation = self.users.credentials_generation();
                let user = self
                    .users
                    .verify_password(username, password)
                    .ok_or(AuthError::BadCredentials)?;
                if let Some(cache) = &self.basic_cache {
                    let verified = (user.name.clone(), user.role);
                    cache.insert(username, password, verified, generation);
                }
                Ok(Session::new(user.name, user.role, AuthMethod::Basic))
            }
        }
    }

    /// The session of Basic credentials verified recently (and of no user changed since),
    /// without argon2; `None` means "call [`Authenticator::authenticate`]". Tokens and
    /// wrong passwords are never answered here.
    pub fn authenticate_cached(&self, credentials: &Credentials) -> Option<Session> {
        let Credentials::Basic { username, password } = credentials else {
            return None;
        };
        let cache = self.basic_cache.as_ref()?;
        let generation = self.users.credentials_generation();
        let user = cache.get(username, password, generation)?;
        Some(Session::new(user.name, user.role, AuthMethod::Basic))
    }
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests;
