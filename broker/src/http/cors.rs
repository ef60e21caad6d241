//! Cross-origin requests from browsers (docs/http.md, "Browsers and CORS").
//!
//! A page may call the HTTP API and open the WebSocket gateway from another origin only if
//! that origin is named by `--cors-origins` (none by default), or is the server's own (its
//! console at `/`). For those the preflight (`OPTIONS` with `Access-Control-Request-Method`)
//! is answered here, before any route, and answers carry `Access-Control-Allow-Origin`. A
//! preflight from any other origin is refused (403 `forbidden`), and so is a WebSocket
//! upgrade: browsers send `Origin` on every upgrade but apply no CORS check to WebSockets, so
//! without this check any page a signed-in user visits could open a subscription with
//! credentials the browser holds. Requests without `Origin` (curl, the CLI, SDKs outside a
//! browser) are not affected. Other requests from an unnamed origin are served without the
//! header, so the browser keeps the answer from the page; they cannot be JSON requests
//! (those need a preflight) nor carry a token (a header the page cannot set cross-origin
//! without one).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HOST,
    ORIGIN, UPGRADE, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{canonical_origin, AllowedOrigins};
use crate::error::{ApiError, ErrorCode};
use crate::limits::{CORS_PREFLIGHT_MAX_AGE_SECONDS, ECHOED_ORIGIN_CHARS_MAX};

/// The methods the API answers, for preflights.
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
/// The request headers a page may send when the preflight names none.
const ALLOWED_HEADERS: &str = "authorization, content-type";

/// Answer preflights, check WebSocket upgrades' origins, and mark answers to allowed origins.
pub(super) async fn apply_cors(
    State(origins): State<Arc<AllowedOrigins>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(origin) = request.headers().get(ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let allowed = origin_allowed(&origins, &origin, request.headers().get(HOST));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if !allowed {
            return refused(&origin, "a cross-origin request");
        }
        let headers = request
            .headers()
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static(ALLOWED_HEADERS));
        let mut response = StatusCode::NO_CONTENT.into_response();
        let answer = response.headers_mut();
        answer.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        answer.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        answer.insert(ACCESS_CONTROL_ALLOW_HEADERS, headers);
        answer.insert(
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(CORS_PREFLIGHT_MAX_AGE_SECONDS),
        );
        answer.insert(VARY, HeaderValue::from_static("origin"));
        return response;
    }
    if request.headers().contains_key(UPGRADE) && !allowed {
        return refused(&origin, "a WebSocket");
    }
    let mut response = next.run(request).await;
    if allowed {
        let answer = response.headers_mut();
        answer.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        answer.append(VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// Named by `--cors-origins`, or the server's own origin (its host and port are the request's
/// `Host`: a page the server served, such as the console).
fn origin_allowed(
    origins: &AllowedOrigins,
    origin: &HeaderValue,
    host: Option<&HeaderValue>,
) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origins.allows(origin) {
        return true;
    }
    let (Some(canonical), Some(Ok(host))) = (canonical_origin(origin), host.map(|h| h.to_str()))
    else {
        return false;
    };
    let authority = canonical.split_once("://").map_or("", |(_, rest)| rest);
    authority.eq_ignore_ascii_case(host)
}

fn refused(origin: &HeaderValue, what: &str) -> Response {
    let shown = String::from_utf8_lossy(origin.as_bytes());
    let shown: String = shown.chars().take(ECHOED_ORIGIN_CHARS_MAX).collect();
    tracing::debug!(origin = %shown, "cross-origin request refused");
    let message = format!(
        "{what} from origin {shown} is not allowed: the server's --cors-origins does not name it"
    );
    ApiError::new(ErrorCode::Forbidden, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &'static str) -> HeaderValue {
        HeaderValue::from_static(text)
    }

    #[test]
    fn the_servers_own_origin_is_allowed_without_a_flag() {
        let none = AllowedOrigins::default();
        let host = value("127.0.0.1:8080");
        assert!(origin_allowed(
            &none,
            &value("http://127.0.0.1:8080"),
            Some(&host)
        ));
        assert!(origin_allowed(
            &none,
            &value("https://127.0.0.1:8080"),
            Some(&host)
        ));
        assert!(!origin_allowed(
            &none,
            &value("http://127.0.0.1:8081"),
            Some(&host)
        ));
        assert!(!origin_allowed(
            &none,
            &value("http://evil.example"),
            Some(&host)
        ));
        assert!(!origin_allowed(
            &none,
            &value("http://127.0.0.1:8080"),
            None
        ));
        assert!(!origin_allowed(&none, &value("null"), Some(&host)));
    }

    #[test]
    fn named_origins_are_allowed_from_any_host() {
        let named = AllowedOrigins::parse("https://app.example").unwrap_or_default();
        let host = value("api.example:443");
        assert!(origin_allowed(
            &named,
            &value("https://app.example"),
            Some(&host)
        ));
        assert!(!origin_allowed(
            &named,
            &value("https://other.example"),
            Some(&host)
        ));
    }
}
