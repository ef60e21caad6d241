//! Authentication: turning what a client presents (a login, an `Authorization` header) into a
//! [`Session`], and issuing tokens. Owns the credential parsing, the JWT format and the signing
//! secret's file; users and passwords belong to [`UserDirectory`].
//!
//! Basic credentials and logins cost one argon2 verification: call [`Authenticator::login`]
//! and [`Authenticator::authenticate`] from a blocking thread. Basic credentials verified
//! recently are remembered ([`BasicCache`]): [`Authenticator::authenticate_cached`] answers
//! them in microseconds, on any thread.

mod attempts;
mod basic_cache;
mod credentials;
mod secret;
mod token;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use attempts::Source;
use attempts::{retry_after_s, FailedAttempts};
use basic_cache::BasicCache;
pub use credentials::{parse_authorization, Credentials};
pub use secret::{JwtSecret, SecretError, SECRET_FILE};
pub use token::{rfc3339_utc, Claims, IssuedToken, TokenKeys};

use crate::api::LoginResponse;
use crate::config::AttemptLimits;
use crate::error::{ApiError, ErrorCode};
use crate::session::{AuthMethod, Session};
use crate::users::UserDirectory;

/// Why a client is not let in. `Signing` is the server's fault (500), `TooManyAttempts` a
/// 429; every other variant is the client's problem (401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error(
        "missing Authorization header: send `Bearer <token>` or `Basic <base64 user:password>`"
    )]
    Missing,
    /// The header is not `Bearer <token>` or `Basic <base64 user:password>`; the text says how.
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// No such user, or a wrong password: the two are not told apart, so names cannot be probed.
    #[error("invalid user name or password")]
    BadCredentials,
    /// The token does not decode, is not signed with this server's secret, or has impossible
    /// times; the text says which.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The token's `exp` has passed.
    #[error("token expired; log in again")]
    ExpiredToken,
    /// The token's user was dropped, perhaps created again since (another incarnation).
    #[error("the token's user no longer exists")]
    UnknownUser,
    /// The brute-force limit on password checks refuses this name or address for now.
    #[error(
        "too many failed authentications for this user name or from this address; retry in \
        {retry_after_s} s"
    )]
    TooManyAttempts {
        /// Seconds until the window of the failures ends (sent as `Retry-After`).
        retry_after_s: u64,
    },
    /// The token could not be signed.
    #[error("token signing failed: {0}")]
    Signing(String),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::Signing(_) => ApiError::internal(&error),
            AuthError::TooManyAttempts { retry_after_s } => {
                ApiError::new(ErrorCode::TooManyAttempts, error.to_string())
                    .with_retry_after(retry_after_s)
            }
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
    /// The brute-force limit on password checks (`attempts.rs`).
    attempts: FailedAttempts,
}

impl Authenticator {
    /// Checks against `users`, issues tokens signed with `secret` that live `token_ttl`, with
    /// the default brute-force limits.
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
            attempts: FailedAttempts::new(AttemptLimits::default()),
        }
    }

    /// The same authenticator with these brute-force limits (the config's).
    pub fn with_attempt_limits(mut self, limits: AttemptLimits) -> Self {
        self.attempts = FailedAttempts::new(limits);
        self
    }

    /// The user directory, for streams that re-check their user's standing.
    pub fn directory(&self) -> &UserDirectory {
        &self.users
    }

    /// `POST /v1/api/auth/login`: a token for a correct user name and password.
    pub fn login(&self, username: &str, password: &str) -> Result<LoginResponse, AuthError> {
        self.login_from(username, password, None)
    }

    /// [`Authenticator::login`] of a client at `source` (for the brute-force limit).
    pub fn login_from(
        &self,
        username: &str,
        password: &str,
        source: Source,
    ) -> Result<LoginResponse, AuthError> {
        let user = self.verify_password(username, password, source)?;
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
        self.authenticate_at(credentials, None, now_unix_s())
    }

    /// [`Authenticator::authenticate`] of a client at `source` (for the brute-force limit).
    pub fn authenticate_from(
        &self,
        credentials: &Credentials,
        source: Source,
    ) -> Result<Session, AuthError> {
        self.authenticate_at(credentials, source, now_unix_s())
    }

    /// [`Authenticator::authenticate`] with tokens checked against the clock reading `now`.
    fn authenticate_at(
        &self,
        credentials: &Credentials,
        source: Source,
        now_unix_s: u64,
    ) -> Result<Session, AuthError> {
        match credentials {
            Credentials::Bearer(token) => {
                let claims = self.keys.verify(token, now_unix_s)?;
                let user = self.users.user(&claims.sub).ok_or(AuthError::UnknownUser)?;
                // A token of another incarnation belongs to a dropped namesake (compared by
                // `_seq`, not by time: the wall clock may have jumped since either).
                if claims.inc != Some(user.incarnation.0) {
                    return Err(AuthError::UnknownUser);
                }
                let method = AuthMethod::Token;
                Ok(Session::new(user.name, user.role, user.incarnation, method))
            }
            Credentials::Basic { username, password } => {
                let generation = self.users.credentials_generation();
                let user = self.verify_password(username, password, source)?;
                if let Some(cache) = &self.basic_cache {
                    let verified = (user.name.clone(), user.role, user.incarnation);
                    cache.insert(username, password, verified, generation);
                }
                let method = AuthMethod::Basic;
                Ok(Session::new(user.name, user.role, user.incarnation, method))
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
        let method = AuthMethod::Basic;
        Some(Session::new(user.name, user.role, user.incarnation, method))
    }
}

impl Authenticator {
    /// One password check under the brute-force limit: refused without argon2 when the name
    /// or the address used up its failures. The attempt is counted before the check (so
    /// attempts in flight count too) and refunded when the password is right.
    fn verify_password(
        &self,
        username: &str,
        password: &str,
        source: Source,
    ) -> Result<crate::users::User, AuthError> {
        self.attempts
            .admit(username, source, Instant::now())
            .map_err(|wait| AuthError::TooManyAttempts {
                retry_after_s: retry_after_s(wait),
            })?;
        match self.users.verify_password(username, password) {
            Some(user) => {
                self.attempts.succeeded(username, source);
                Ok(user)
            }
            None => {
                tracing::debug!(user = username, ?source, "failed password check");
                Err(AuthError::BadCredentials)
            }
        }
    }
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests;
