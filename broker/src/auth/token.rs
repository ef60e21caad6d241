//! HS256 JSON Web Tokens: issuing one for a user and checking one a client presents. The
//! current time is a parameter, so expiry is tested without waiting or touching the clock.
//!
//! It owns the claims format (`sub`, `role`, `iss`, `iat`, `exp`, `inc`); not the secret's
//! storage (`secret.rs`) nor whether the user still exists (`mod.rs` looks that up).
//!
//! Nothing here compares a token with when its user was created: the wall clock may jump.
//! A token names its user's incarnation (`inc`), which `mod.rs` compares with the user's. The
//! clock bounds only the token's own life: `iat` may be at most `TOKEN_IAT_FUTURE_SKEW_S_MAX`
//! ahead of now and `exp` at most the longest lifetime after `iat`, so a token issued while
//! the clock was far ahead does not outlive the correction.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::secret::JwtSecret;
use super::AuthError;
use crate::limits::{TOKEN_IAT_FUTURE_SKEW_S_MAX, TOKEN_TTL_SECONDS_MAX};
use crate::users::User;

const ISSUER: &str = "strand";

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user name.
    pub sub: String,
    /// The role when the token was issued (informational: requests use the current role).
    pub role: String,
    /// The issuer, always `strand`; a token of another issuer is refused.
    pub iss: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// The user's incarnation (`UserIncarnation`); absent in tokens of older builds, which
    /// are refused (log in again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inc: Option<u64>,
}

/// A token and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The signed JWT, for `Authorization: Bearer`.
    pub token: String,
    /// Its `exp`: when it stops working, Unix seconds.
    pub expires_unix_s: u64,
}

/// Signs and checks tokens with one secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from `secret`; tokens issued with them live `ttl`.
    pub fn new(secret: &JwtSecret, ttl: Duration) -> TokenKeys {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.bytes()),
            decoding: DecodingKey::from_secret(secret.bytes()),
            ttl,
        }
    }

    /// A token for `user`'s current incarnation, issued at `now_unix_s`.
    pub fn issue(&self, user: &User, now_unix_s: u64) -> Result<IssuedToken, AuthError> {
        let exp = now_unix_s.saturating_add(self.ttl.as_secs());
        let claims = Claims {
            sub: user.name.to_string(),
            role: user.role.to_string(),
            iss: ISSUER.to_string(),
            iat: now_unix_s,
            exp,
            inc: Some(user.incarnation.0),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))?;
        Ok(IssuedToken {
            token,
            expires_unix_s: exp,
        })
    }

    /// The claims of `token` if its signature is ours and it has not expired at `now_unix_s`.
    pub fn verify(&self, token: &str, now_unix_s: u64) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the caller's clock, without leeway.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| AuthError::InvalidToken(describe(e.kind())))?;
        let claims = data.claims;
        if now_unix_s >= claims.exp {
            return Err(AuthError::ExpiredToken);
        }
        if claims.iat > now_unix_s.saturating_add(TOKEN_IAT_FUTURE_SKEW_S_MAX) {
            return Err(AuthError::InvalidToken(
                "issued in the future (was the server's clock ahead?); log in again",
            ));
        }
        if claims.exp.saturating_sub(claims.iat) > TOKEN_TTL_SECONDS_MAX {
            return Err(AuthError::InvalidToken("lives longer than any token may"));
        }
        Ok(claims)
    }
}

fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "wrong algorithm",
        ErrorKind::InvalidIssuer => "not issued by this server",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => "not a JWT",
        ErrorKind::Utf8(_) => "not a JWT",
        _ => "rejected",
    }
}

/// `unix_s` as RFC 3339 UTC text, e.g. `2026-11-26T04:22:09Z`: sql-view's rendering of
/// TIMESTAMP values, so the API writes every instant one way (years past 9999, which RFC 3339
/// cannot write, in ISO 8601's signed form). Seconds past `i64::MAX` render as `i64::MAX`.
pub fn rfc3339_utc(unix_s: u64) -> String {
    strand_sql_view::render_rfc3339_seconds(i64::try_from(unix_s).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{RowsLayout, UserIncarnation};
    use strand_sql_view::{Role, UserName};

    fn keys(secret: &[u8], ttl_s: u64) -> TokenKeys {
        TokenKeys::new(
            &JwtSecret::from_bytes(secret.to_vec()),
            Duration::from_secs(ttl_s),
        )
    }

    fn alice() -> User {
        User {
            name: UserName::new("alice").expect("name"),
            role: Role::Dba,
            created_unix_ms: 0,
            incarnation: UserIncarnation(42),
            rows: RowsLayout::ByIncarnation,
        }
    }

    #[test]
    fn tokens_name_the_incarnation_and_cannot_come_from_the_future() {
        let keys = keys(&[7; 32], 60);
        let now = 1_000_000;
        let issued = keys.issue(&alice(), now).expect("issue");
        let claims = keys.verify(&issued.token, now).expect("valid");
        assert_eq!(claims.inc, Some(42));
        // Issued while the clock was a year ahead, checked once it is right again.
        let year = 365 * 86_400;
        let ahead = keys.issue(&alice(), now + year).expect("issue");
        let refused = keys.verify(&ahead.token, now);
        assert!(
            matches!(refused, Err(AuthError::InvalidToken(_))),
            "{refused:?}"
        );
        // A little skew is fine.
        let skewed = keys.issue(&alice(), now + 10).expect("issue");
        assert!(keys.verify(&skewed.token, now).is_ok());
        // A token claiming a lifetime longer than any (a forged exp would need the secret,
        // but a config change must not extend old tokens either).
        let long = TokenKeys::new(
            &JwtSecret::from_bytes(vec![7; 32]),
            Duration::from_secs(TOKEN_TTL_SECONDS_MAX + 10),
        );
        let token = long.issue(&alice(), now).expect("issue").token;
        assert!(matches!(
            keys.verify(&token, now),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[test]
    fn round_trip_until_expiry() {
        let keys = keys(&[7; 32], 60);
        let issued = keys.issue(&alice(), 1_000).expect("issue");
        assert_eq!(issued.expires_unix_s, 1_060);
        let claims = keys
            .verify(&issued.token, 1_059)
            .expect("valid just before expiry");
        assert_eq!(
            (claims.sub.as_str(), claims.role.as_str()),
            ("alice", "dba")
        );
        let expired = keys.verify(&issued.token, 1_060);
        assert!(
            matches!(expired, Err(AuthError::ExpiredToken)),
            "{expired:?}"
        );
    }

    #[test]
    fn foreign_or_garbled_tokens_are_rejected() {
        let ours = keys(&[7; 32], 60);
        let theirs = keys(&[8; 32], 60);
        let token = theirs.issue(&alice(), 1_000).expect("issue").token;
        let foreign = ours.verify(&token, 1_001);
        assert!(
            matches!(foreign, Err(AuthError::InvalidToken("bad signature"))),
            "{foreign:?}"
        );
        for garbled in ["", "abc", "a.b.c", &token[..token.len() - 3]] {
            let result = ours.verify(garbled, 1_001);
            assert!(
                matches!(result, Err(AuthError::InvalidToken(_))),
                "{garbled}: {result:?}"
            );
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_798_259_529), "2026-12-26T04:32:09Z");
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
