//! [`AllowedOrigins`]: the web origins whose pages may call the HTTP API and open the
//! WebSocket gateway (`--cors-origins`). None by default: a page served from elsewhere can
//! neither read an answer nor open a subscription until an operator names its origin. The
//! server's own origin (its console at `/`) needs no entry.

/// Origins as a browser sends them in `Origin`: `scheme://host[:port]`, compared exactly
/// (lower-cased scheme and host, no path, no trailing slash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    origins: Vec<String>,
    /// `*`: every origin (for development; a deployment names its origins).
    any: bool,
}

impl AllowedOrigins {
    /// A comma-separated list of origins, or `*`. Empty entries are ignored.
    pub fn parse(text: &str) -> Result<AllowedOrigins, &'static str> {
        let mut allowed = AllowedOrigins::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                allowed.any = true;
                continue;
            }
            let origin = canonical_origin(entry).ok_or(
                "expected origins like https://app.example.com or http://localhost:5173 \
                 (scheme, host and optional port; no path), comma-separated, or *",
            )?;
            if !allowed.origins.contains(&origin) {
                allowed.origins.push(origin);
            }
        }
        Ok(allowed)
    }

    /// Whether a page of `origin` (an `Origin` header's value) may call the server.
    pub fn allows(&self, origin: &str) -> bool {
        self.any || canonical_origin(origin).is_some_and(|origin| self.origins.contains(&origin))
    }

    /// No origin is named (the default).
    pub fn is_empty(&self) -> bool {
        !self.any && self.origins.is_empty()
    }
}

/// `scheme://host[:port]` lower-cased, if `text` is one (http or https, no path, query,
/// user info or trailing slash).
pub fn canonical_origin(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        // `[::1]:8080`, `localhost:5173`; a bare `[::1]` has its last `:` inside brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !host_ok || !port_ok {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_origins_are_allowed_exactly() {
        let allowed =
            AllowedOrigins::parse("https://App.Example.com, http://localhost:5173,").unwrap();
        assert!(allowed.allows("https://app.example.com"));
        assert!(allowed.allows("HTTPS://APP.EXAMPLE.COM"));
        assert!(allowed.allows("http://localhost:5173"));
        assert!(!allowed.allows("http://app.example.com"), "another scheme");
        assert!(
            !allowed.allows("https://app.example.com:8443"),
            "another port"
        );
        assert!(!allowed.allows("https://evil.example.com"));
        assert!(!allowed.allows("https://app.example.com.evil.net"));
        assert!(!allowed.allows("null"), "sandboxed pages send null");
        assert!(!allowed.is_empty());
    }

    #[test]
    fn none_by_default_and_star_allows_all() {
        let none = AllowedOrigins::parse("").unwrap();
        assert!(none.is_empty());
        assert!(!none.allows("http://localhost:3000"));
        let any = AllowedOrigins::parse("*").unwrap();
        assert!(any.allows("http://localhost:3000"));
        assert!(any.allows("https://anything.example"));
    }

    #[test]
    fn malformed_origins_are_refused() {
        for bad in [
            "app.example.com",
            "ftp://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://user@app.example.com",
            "https://app.example.com:",
            "https://app.example.com:80a",
            "https://",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            canonical_origin("http://[::1]:8080").as_deref(),
            Some("http://[::1]:8080")
        );
    }
}
