//! The JSON bodies of the HTTP API (docs/http.md) other than errors (`error.rs`) and
//! statement results (`sql.rs`). Shared by the server and the `strand` CLI; no behaviour.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strand_wire::BigIntAs;

use crate::sql::StatementResult;

/// `POST /v1/api/auth/login` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The user name, exactly as created (case-sensitive).
    pub username: String,
    /// Checked against the user's stored argon2 hash.
    pub password: String,
}

/// `POST /v1/api/auth/login` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// HS256 JWT for `Authorization: Bearer`.
    pub token: String,
    /// When the token stops working, RFC 3339 UTC.
    pub expires_at: String,
    /// The user the token is for.
    pub user: String,
    /// That user's role: `user`, `service`, `dba` or `system`.
    pub role: String,
}

/// `POST /v1/api/sql` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SqlRequest {
    /// One or more statements separated by `;`.
    pub sql: String,
    /// Values for `$1`, `$2`, ...
    #[serde(default)]
    pub params: Vec<Value>,
    /// How BIGINT values in `rows` are written: numbers when absent (docs/http.md, "Values in
    /// JSON").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bigint: Option<BigIntAs>,
}

/// `POST /v1/api/sql` answer when every statement succeeded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SqlSuccess {
    /// Always `"success"`.
    pub status: String,
    /// One result per statement, in order.
    pub results: Vec<StatementResult>,
    /// Time spent serving the request, in milliseconds.
    pub took_ms: f64,
}
