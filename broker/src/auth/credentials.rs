//! Parsing the `Authorization` header into [`Credentials`]: `Bearer <token>` or
//! `Basic <base64(user:password)>`. Pure: bytes in, typed value or [`AuthError`] out; checking
//! the credentials is `mod.rs`'s job.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::AuthError;
use crate::limits::AUTHORIZATION_HEADER_BYTES_MAX;

/// What a client presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A token issued at login, still to be checked.
    Bearer(String),
    /// A user name and password, still to be checked.
    Basic {
        /// The name before the first `:`.
        username: String,
        /// Everything after it (a password may contain `:`).
        password: String,
    },
}

// Hand-written so that a password or token never reaches a log through `{:?}`.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ..)"),
        }
    }
}

/// Parse an `Authorization` header value (`None` when the header is absent).
pub fn parse_authorization(value: Option<&[u8]>) -> Result<Credentials, AuthError> {
    let value = value.ok_or(AuthError::Missing)?;
    if value.len() > AUTHORIZATION_HEADER_BYTES_MAX {
        return Err(AuthError::Malformed("Authorization header is too long"));
    }
    let text = std::str::from_utf8(value)
        .map_err(|_| AuthError::Malformed("Authorization header is not UTF-8"))?
        .trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(AuthError::Malformed("Bearer without a token"));
        }
        return Ok(Credentials::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        return parse_basic(rest);
    }
    Err(AuthError::Malformed("use the Bearer or Basic scheme"))
}

fn parse_basic(encoded: &str) -> Result<Credentials, AuthError> {
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| AuthError::Malformed("Basic credentials are not base64"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| AuthError::Malformed("Basic credentials are not UTF-8"))?;
    let (username, password) = decoded.split_once(':').ok_or(AuthError::Malformed(
        "Basic credentials lack the ':' separator",
    ))?;
    if username.is_empty() {
        return Err(AuthError::Malformed(
            "Basic credentials have an empty user name",
        ));
    }
    Ok(Credentials::Basic {
        username: username.to_string(),
        password: password.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(pair: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(pair)).into_bytes()
    }

    #[test]
    fn bearer_and_basic_parse() {
        let bearer = parse_authorization(Some(b"Bearer abc.def.ghi")).expect("bearer");
        assert_eq!(bearer, Credentials::Bearer("abc.def.ghi".into()));
        let lower = parse_authorization(Some(b"bearer  t ")).expect("scheme is case-insensitive");
        assert_eq!(lower, Credentials::Bearer("t".into()));
        let pair = parse_authorization(Some(&basic("alice:pa:ss"))).expect("basic");
        let expected = Credentials::Basic {
            username: "alice".into(),
            password: "pa:ss".into(),
        };
        assert_eq!(pair, expected, "the password may contain ':'");
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        assert!(matches!(parse_authorization(None), Err(AuthError::Missing)));
        let long = vec![b'a'; AUTHORIZATION_HEADER_BYTES_MAX + 1];
        let not_utf8: &[u8] = &[0xff, 0xfe];
        let cases: [&[u8]; 8] = [
            b"Bearer",
            b"Bearer   ",
            b"Basic !!!",
            b"Basic YWxpY2U=",
            b"Digest abc",
            b"",
            not_utf8,
            &long,
        ];
        for case in cases {
            let parsed = parse_authorization(Some(case));
            assert!(matches!(parsed, Err(AuthError::Malformed(_))), "{parsed:?}");
        }
        let empty_user = parse_authorization(Some(&basic(":pw")));
        assert!(matches!(empty_user, Err(AuthError::Malformed(_))));
    }

    #[test]
    fn debug_hides_secrets() {
        let pair = Credentials::Basic {
            username: "alice".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{pair:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Bearer("tok".into())).contains("tok"));
    }
}
