//! Reading a JSON request body into a typed value, with every failure mapped to the API's
//! JSON error: a non-JSON content type (415), a body over `request_body_bytes_max` (413),
//! text that is not JSON (400 `invalid_json`) and JSON of the wrong shape (400
//! `invalid_request`). Pure apart from the already-buffered body.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{ApiError, ErrorCode};
use crate::limits::REQUEST_BODY_BYTES_MAX;

/// Parse `body` as JSON of type `T`. A missing `Content-Type` is accepted (curl scripts);
/// a declared non-JSON one is refused.
pub fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    check_content_type(headers)?;
    let bytes = body.map_err(|rejection| body_error(&rejection))?;
    serde_json::from_slice(&bytes).map_err(|e| json_error(&e))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "the body must be JSON: send Content-Type: application/json",
    ))
}

fn body_error(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let message = format!("request body is larger than {REQUEST_BODY_BYTES_MAX} bytes");
        return ApiError::new(ErrorCode::PayloadTooLarge, message);
    }
    ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
}

fn json_error(error: &serde_json::Error) -> ApiError {
    match error.classify() {
        Category::Data => ApiError::new(
            ErrorCode::InvalidRequest,
            format!("invalid request: {error}"),
        ),
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::InvalidJson,
            format!("request body is not valid JSON: {error}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::api::SqlRequest;

    fn headers(content_type: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        }
        headers
    }

    fn parse(
        content_type: Option<&'static str>,
        body: &'static str,
    ) -> Result<SqlRequest, ApiError> {
        parse_json(
            &headers(content_type),
            Ok(Bytes::from_static(body.as_bytes())),
        )
    }

    #[test]
    fn json_bodies_parse_with_or_without_content_type() {
        let request = parse(
            Some("application/json; charset=utf-8"),
            r#"{"sql":"SELECT 1"}"#,
        )
        .expect("valid");
        assert_eq!(
            (request.sql.as_str(), request.params.len()),
            ("SELECT 1", 0)
        );
        assert!(parse(None, r#"{"sql":"x","params":[1,"a"]}"#).is_ok());
        assert!(parse(Some("application/merge-patch+json"), r#"{"sql":"x"}"#).is_ok());
    }

    #[test]
    fn each_bad_body_gets_its_code() {
        let cases = [
            (
                Some("text/plain"),
                r#"{"sql":"x"}"#,
                ErrorCode::UnsupportedMediaType,
            ),
            (
                Some("application/json"),
                "{not json",
                ErrorCode::InvalidJson,
            ),
            (Some("application/json"), "", ErrorCode::InvalidJson),
            (
                Some("application/json"),
                r#"{"params":[]}"#,
                ErrorCode::InvalidRequest,
            ),
            (
                Some("application/json"),
                r#"{"sql":5}"#,
                ErrorCode::InvalidRequest,
            ),
        ];
        for (content_type, body, code) in cases {
            let error = parse(content_type, body).expect_err("bad body");
            assert_eq!(error.code, code, "{body:?}: {error}");
        }
        let missing = parse(None, r#"{"params":[]}"#).expect_err("missing sql");
        assert!(missing.message.contains("missing field `sql`"), "{missing}");
    }
}
