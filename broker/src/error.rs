//! [`ApiError`]: the one error type every HTTP answer and every SQL engine failure is
//! expressed in, and its JSON shape (docs/http.md, "Errors"):
//! `{"status":"error","error":{"code","message","position":{"line","column"}}}`.
//!
//! It owns the mapping from error kinds to HTTP statuses and from the directory's and the
//! authenticator's typed errors to API errors; it does not decide when an error happens.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::users::UserError;

/// The machine-readable kind of an error, written as its snake_case `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// The body is not JSON.
    InvalidJson,
    /// JSON of the wrong shape: a missing field, a wrong type, an empty statement.
    InvalidRequest,
    /// The request declared a content type other than JSON.
    UnsupportedMediaType,
    /// The body is larger than `request_body_bytes_max`.
    PayloadTooLarge,
    /// Missing, malformed, wrong or expired credentials.
    Unauthorized,
    /// Authenticated, but not allowed.
    Forbidden,
    /// No such route, user, table or other object.
    NotFound,
    /// The route exists, but not for this method.
    MethodNotAllowed,
    /// The name is taken.
    AlreadyExists,
    /// SQL text that does not parse.
    SyntaxError,
    /// A value of the wrong kind or outside its bounds (a name, a role, a parameter).
    InvalidValue,
    /// A statement or feature the server does not support (yet).
    Unsupported,
    /// A bound (`limits.rs`) was reached.
    LimitExceeded,
    /// Too much work in flight; retry later.
    Overloaded,
    /// Too many failed authentications for a user name or from an address; retry after the
    /// `Retry-After` seconds.
    TooManyAttempts,
    /// The request's body did not arrive within `--http-body-timeout-ms`.
    RequestTimeout,
    /// The server holds as many connections as it may (in all, unauthenticated, or of this
    /// user); retry later.
    TooManyConnections,
    /// A server fault; details are in the server log, not in the answer.
    Internal,
    /// The server's storage is full (no space, a quota, the file-size limit): nothing of the
    /// write was stored, and writes succeed again once space is freed (no restart needed).
    StorageFull,
    /// Stored data the request needs is damaged (a flipped byte on disk): refused, never
    /// served wrong or skipped. The intact rows are still served and writes go on; an operator
    /// repairs the data directory (`strand repair`, docs/operations.md).
    DataCorrupt,
    /// A cluster member that does not lead the write's group: nothing was written; the message
    /// names the leader if it is known.
    NotLeader,
    /// A cluster could not confirm the write with a majority: not acknowledged; it may or may
    /// not have been stored.
    Unavailable,
    /// A cluster membership change that the current members forbid: removing the only voter,
    /// an id or address another member holds, or another change still in progress.
    MembershipConflict,
    /// A statement failure named by the SQL layer with its own code (`strand_sql_view::code`,
    /// e.g. `unknown_table`, `type_mismatch`), written as that code. A fixed set of static
    /// strings, so metric labels stay bounded.
    Sql(&'static str),
}

impl ErrorCode {
    /// Whether this is a `limit_exceeded`, the server's or the SQL layer's.
    pub fn is_limit_exceeded(self) -> bool {
        self.as_str() == ErrorCode::LimitExceeded.as_str()
    }

    /// The code as clients see it in `error.code`, snake case (`limit_exceeded`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::SyntaxError => "syntax_error",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::Internal => "internal",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::DataCorrupt => "data_corrupt",
            ErrorCode::NotLeader => "not_leader",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::MembershipConflict => "membership_conflict",
            ErrorCode::Sql(code) => code,
        }
    }

    /// The HTTP status an error with this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::SyntaxError
            | ErrorCode::InvalidValue
            | ErrorCode::Unsupported
            | ErrorCode::LimitExceeded
            | ErrorCode::Sql(_) => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::AlreadyExists | ErrorCode::MembershipConflict => StatusCode::CONFLICT,
            ErrorCode::Overloaded
            | ErrorCode::TooManyConnections
            | ErrorCode::NotLeader
            | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            // A server-side fault that a retry does not cure: 500, with its own code.
            ErrorCode::DataCorrupt => StatusCode::INTERNAL_SERVER_ERROR,
            // 507: the request was fine and may succeed later, once space is freed.
            ErrorCode::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

/// Where in the SQL text an error is, both 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Line in the SQL text.
    pub line: u32,
    /// Column in that line.
    pub column: u32,
}

/// An error as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    /// What kind of error: clients branch on it.
    pub code: ErrorCode,
    /// What went wrong, for a person: names the value or limit at fault.
    pub message: String,
    /// For SQL errors: where in the request's `sql` text the problem is.
    pub position: Option<Position>,
    /// For a request of several statements: which one failed (docs/http.md, "Several
    /// statements in one request").
    pub statement: Option<FailedStatement>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after_s: Option<u64>,
}

/// Which statement of a request failed, and how many before it were applied (they stay
/// applied: a request is not a transaction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedStatement {
    /// 1-based.
    pub number: usize,
    /// How many statements the request had.
    pub of: usize,
}

impl ApiError {
    /// An error with no position, statement or retry hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            position: None,
            statement: None,
            retry_after_s: None,
        }
    }

    /// Say when a retry may succeed (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_s = Some(seconds);
        self
    }

    /// This error ended the request at statement `number` (1-based) of `of`: say so, and
    /// that the statements before it were applied. A single statement stays as it is.
    pub fn in_statement(mut self, number: usize, of: usize) -> ApiError {
        if of <= 1 {
            return self;
        }
        let applied = match number {
            0 | 1 => "nothing was applied".to_owned(),
            2 => "statement 1 was applied and stays".to_owned(),
            n => format!("statements 1 to {} were applied and stay", n - 1),
        };
        self.message = format!(
            "statement {number} of {of} failed ({applied}): {}",
            self.message
        );
        self.statement = Some(FailedStatement { number, of });
        self
    }

    /// Point at `line` and `column` (both 1-based) of the request's SQL text.
    pub fn at(mut self, line: u32, column: u32) -> ApiError {
        self.position = Some(Position { line, column });
        self
    }

    /// A server fault: `detail` goes to the log, the client gets a generic message.
    pub fn internal(detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// A failure of the log below a request: `storage_full` when the storage ran out of
    /// space (the log undid the write and stays writable), otherwise `internal`.
    pub fn from_log(error: &strand_log::LogError) -> ApiError {
        if let Some(refused) = ApiError::log_limit(error) {
            return refused;
        }
        if error.is_corruption() {
            return ApiError::data_corrupt(error);
        }
        if !error.is_storage_full() {
            return ApiError::internal(error);
        }
        tracing::warn!(%error, "write refused: storage full");
        let cause = match error {
            strand_log::LogError::StorageFull { cause, .. } => cause.clone(),
            strand_log::LogError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        ApiError::storage_full(&cause)
    }

    /// `data_corrupt`: what is damaged (the segment file of the table's partition and the
    /// byte), and that the rest is served.
    pub fn data_corrupt(error: &strand_log::LogError) -> ApiError {
        tracing::error!(%error, "request refused: it needs damaged data");
        let at = match error {
            strand_log::LogError::CorruptSegment { path, position, .. } => {
                format!("{} at byte {position}", inside_data_dir(path))
            }
            strand_log::LogError::BadSegmentHeader { path, .. } => {
                format!("{} (its header)", inside_data_dir(path))
            }
            other => other.to_string(),
        };
        ApiError::new(
            ErrorCode::DataCorrupt,
            format!(
                "stored data this request needs is damaged: partition segment {at}. It is \
                 refused, not served wrong; the intact rows of the table are still served \
                 and writes go on. An operator can run `strand repair` (docs/operations.md)"
            ),
        )
    }

    /// `limit_exceeded` for a write the log's limits refuse (nothing was written).
    fn log_limit(error: &strand_log::LogError) -> Option<ApiError> {
        let message = match error {
            strand_log::LogError::BatchTooLarge { bytes, max_bytes } => format!(
                "the statement writes {bytes} bytes in one batch, more than the {max_bytes} \
                 bytes one batch may hold: a batch never spans log segments (--segment-bytes, \
                 less a 64-byte header). Write fewer or smaller rows per statement, or raise \
                 --segment-bytes"
            ),
            strand_log::LogError::InvalidRecord(reason) => {
                format!("a row or key is too large to store: {reason}")
            }
            _ => return None,
        };
        Some(ApiError::new(ErrorCode::LimitExceeded, message))
    }

    /// `storage_full`, with the operating system's words for it (no paths).
    pub fn storage_full(cause: &str) -> ApiError {
        ApiError::new(
            ErrorCode::StorageFull,
            format!(
                "the server's storage is full ({cause}); nothing of this write was stored. \
                 Writes succeed again once space is freed, without a restart"
            ),
        )
    }

    /// The HTTP status of the answer: its code's.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: "error".to_string(),
            error: ErrorDetail {
                code: self.code.as_str().to_string(),
                message: self.message.clone(),
                position: self.position,
                statement: self.statement.map(|s| s.number),
                committed_statements: self.statement.map(|s| s.number.saturating_sub(1)),
            },
        }
    }
}

/// `{"status":"error","error":{...}}` on the wire; the CLI parses it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Always `"error"`.
    pub status: String,
    /// The code, the message and where the error is.
    pub error: ErrorDetail,
}

/// The `error` object of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The [`ErrorCode`] as text (`ErrorCode::as_str`).
    pub code: String,
    /// The [`ApiError`]'s message.
    pub message: String,
    /// For SQL errors: where in the request's `sql` text the problem is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// In a request of several statements: the 1-based number of the one that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<usize>,
    /// In a request of several statements: how many statements before the failing one were
    /// applied (and stay applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_statements: Option<usize>,
}

/// A path of the log as seen from inside the store's `partitions` directory (e.g.
/// `t/app.items.3/shared/00000000000000000042.log`): names the table's partition without
/// telling clients where the data directory is.
fn inside_data_dir(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    match text.rfind("/partitions/") {
        Some(at) => text[at + "/partitions/".len()..].to_string(),
        None => path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if self.code == ErrorCode::Unauthorized {
            let challenge = HeaderValue::from_static("Bearer realm=\"strand\"");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // The metrics middleware counts errors by code.
        response.extensions_mut().insert(self.code);
        response
    }
}

impl ApiError {
    /// A write a cluster member could not replicate: `not_leader` (send it to the leader it
    /// names) or `unavailable` (not acknowledged; send it again).
    pub fn from_replication(error: &crate::cluster::writer::ReplicationError) -> ApiError {
        use crate::cluster::writer::ReplicationError;
        let code = match error {
            ReplicationError::NotLeader { .. } => ErrorCode::NotLeader,
            _ => ErrorCode::Unavailable,
        };
        ApiError::new(code, error.to_string())
    }
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> ApiError {
        let code = match &error {
            UserError::InvalidName { .. }
            | UserError::InvalidTableName { .. }
            | UserError::InvalidRole(_)
            | UserError::InvalidPrivilege(_)
            | UserError::InvalidPassword(_) => ErrorCode::InvalidValue,
            UserError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            UserError::NotFound(_) => ErrorCode::NotFound,
            UserError::TooMany { .. } | UserError::NameTooLong { .. } => ErrorCode::LimitExceeded,
            UserError::Storage(log) => return ApiError::from_log(log),
            UserError::Replication(replication) => return ApiError::from_replication(replication),
            UserError::Hashing(_) | UserError::Random(_) | UserError::CorruptRecord { .. } => {
                return ApiError::internal(&error);
            }
        };
        ApiError::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_shape() {
        let error = ApiError::new(ErrorCode::Sql("syntax_error"), "expected FROM").at(2, 7);
        let json = serde_json::to_value(error.body()).expect("serializes");
        let expected = serde_json::json!({
            "status": "error",
            "error": {"code": "syntax_error", "message": "expected FROM",
                      "position": {"line": 2, "column": 7}}
        });
        assert_eq!(json, expected);
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn position_is_omitted_when_not_applicable() {
        let error = ApiError::new(ErrorCode::Unauthorized, "no credentials");
        let json = serde_json::to_value(error.body()).expect("serializes");
        assert_eq!(json["error"].get("position"), None);
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn directory_errors_map_to_client_errors() {
        let taken = UserError::AlreadyExists(strand_sql_view::UserName::new("a").expect("name"));
        assert_eq!(ApiError::from(taken).status(), StatusCode::CONFLICT);
        let bad = UserError::InvalidPassword("it is empty");
        assert_eq!(ApiError::from(bad).code, ErrorCode::InvalidValue);
        let broken = UserError::Hashing("out of memory".into());
        let mapped = ApiError::from(broken);
        assert_eq!(mapped.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !mapped.message.contains("out of memory"),
            "details stay in the log"
        );
    }
}
