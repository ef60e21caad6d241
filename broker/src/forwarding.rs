//! The request layers' side of forwarding SQL to the cluster's leader (`cluster/forward.rs`
//! owns the messages and the link): on a member that does not lead, [`forward_sql`] sends a
//! request that failed with `not_leader` to the leader and turns its answer into results or
//! an [`ApiError`]; on the leader, [`SqlRunnerOnLeader`] runs a forwarded request as its user.
//!
//! Why the whole request may run again on the leader (statements before the failing one
//! were reads) is explained in `cluster/forward.rs`. A request runs on the leader through the
//! engine directly, never through this forwarding again: a leader that no longer leads
//! answers `not_leader`, and the client gets that.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::cluster::forward::{
    ForwardError, ForwardedAnswer, ForwardedError, ForwardedRun, ForwardedSql, ForwardedSqlRunner,
    SqlForwarder,
};
use crate::error::{ApiError, ErrorCode, FailedStatement, Position};
use crate::limits::{BLOCKING_REQUESTS_IN_FLIGHT_MAX, SQL_PARAMS_MAX};
use crate::session::{AuthMethod, Session};
use crate::sql::{SqlEngine, StatementResult};
use crate::users::UserDirectory;

/// The request a member forwards for `session`.
pub(crate) fn forwarded_request(
    session: &Session,
    sql: &str,
    params: &[Value],
    bigint_as_strings: bool,
) -> ForwardedSql {
    ForwardedSql {
        user: session.user().to_string(),
        incarnation: session.incarnation().0,
        sql: sql.to_string(),
        // A Vec of JSON values always encodes.
        params_json: serde_json::to_string(params).unwrap_or_else(|_| "[]".to_string()),
        bigint_as_strings,
    }
}

/// Sends `request`, which failed here with `not_leader` (`here`), to the leader: its results,
/// or its error. With no other leader known the client gets `here`; a leader that does not
/// answer in time gets `unavailable` (the request may or may not have run there).
pub(crate) async fn forward_sql(
    forwarder: &SqlForwarder,
    request: ForwardedSql,
    here: ApiError,
) -> Result<Vec<StatementResult>, ApiError> {
    match forwarder.forward(request).await {
        Ok(ForwardedAnswer::Results { results_json }) => serde_json::from_str(&results_json)
            .map_err(|error| ApiError::internal(&format!("the leader's results: {error}"))),
        Ok(ForwardedAnswer::Failed(error)) => Err(api_error(error)),
        Err(ForwardError::NoLeader) => Err(here),
        Err(error) => {
            tracing::warn!(%error, "a forwarded SQL request got no answer from the leader");
            let message = format!(
                "{error}; the request was sent on to the leader and may or may not have run \
                 there: send it again"
            );
            Err(ApiError::new(ErrorCode::Unavailable, message))
        }
    }
}

/// Runs forwarded requests on the blocking pool, at most [`BLOCKING_REQUESTS_IN_FLIGHT_MAX`]
/// at once (more are answered `overloaded`).
pub(crate) struct SqlRunnerOnLeader {
    engine: Arc<dyn SqlEngine>,
    users: Arc<UserDirectory>,
    slots: Arc<Semaphore>,
}

impl SqlRunnerOnLeader {
    /// Runs with `engine` as the users of `users`.
    pub(crate) fn new(engine: Arc<dyn SqlEngine>, users: Arc<UserDirectory>) -> Self {
        let slots = Arc::new(Semaphore::new(BLOCKING_REQUESTS_IN_FLIGHT_MAX));
        SqlRunnerOnLeader {
            engine,
            users,
            slots,
        }
    }
}

impl ForwardedSqlRunner for SqlRunnerOnLeader {
    fn run(&self, request: ForwardedSql) -> ForwardedRun {
        let (engine, users, slots) = (self.engine.clone(), self.users.clone(), self.slots.clone());
        Box::pin(async move {
            let Ok(slot) = slots.try_acquire_owned() else {
                let message = "too many requests in flight on the leader; retry shortly";
                return ForwardedAnswer::Failed(ForwardedError::new("overloaded", message));
            };
            // Never on a runtime thread: a replicated write blocks until Raft applies it.
            let ran = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                run_as_user(engine.as_ref(), &users, &request)
            })
            .await;
            let outcome = ran.unwrap_or_else(|join_error| Err(ApiError::internal(&join_error)));
            match outcome {
                Ok(results_json) => ForwardedAnswer::Results { results_json },
                Err(error) => ForwardedAnswer::Failed(forwarded_error(&error)),
            }
        })
    }
}

/// Runs `request` as its user, if that user exists here as the same incarnation; answers the
/// results as JSON text.
fn run_as_user(
    engine: &dyn SqlEngine,
    users: &UserDirectory,
    request: &ForwardedSql,
) -> Result<String, ApiError> {
    let session = forwarded_session(users, &request.user, request.incarnation)?;
    let params: Vec<Value> = serde_json::from_str(&request.params_json).map_err(|error| {
        let message = format!("forwarded params are not a JSON array: {error}");
        ApiError::new(ErrorCode::InvalidJson, message)
    })?;
    if params.len() > SQL_PARAMS_MAX {
        let message = format!("more than {SQL_PARAMS_MAX} params");
        return Err(ApiError::new(ErrorCode::LimitExceeded, message));
    }
    let mut results = engine.execute(&session, &request.sql, &params)?;
    if request.bigint_as_strings {
        results
            .iter_mut()
            .for_each(StatementResult::write_bigints_as_strings);
    }
    serde_json::to_string(&results).map_err(|error| ApiError::internal(&error))
}

/// The session a forwarded request runs in: its user, if that user exists here as the same
/// incarnation, with the role this node's directory holds now.
pub(crate) fn forwarded_session(
    users: &UserDirectory,
    name: &str,
    incarnation: u64,
) -> Result<Session, ApiError> {
    let user = users
        .user(name)
        .filter(|user| user.incarnation.0 == incarnation)
        .ok_or_else(|| {
            let message = format!("user {name} does not exist on the cluster's leader");
            ApiError::new(ErrorCode::Unauthorized, message)
        })?;
    Ok(Session::new(
        user.name,
        user.role,
        user.incarnation,
        AuthMethod::Forwarded,
    ))
}

/// `error`, field by field, for the way back to the forwarding member.
fn forwarded_error(error: &ApiError) -> ForwardedError {
    ForwardedError {
        code: error.code.as_str().to_string(),
        message: error.message.clone(),
        position: error.position.map(|at| (at.line, at.column)),
        statement: error.statement.map(|failed| {
            let number = u64::try_from(failed.number).unwrap_or(u64::MAX);
            (number, u64::try_from(failed.of).unwrap_or(u64::MAX))
        }),
        retry_after_s: error.retry_after_s,
    }
}

/// The leader's error as this member answers it: the same code, message and position.
fn api_error(error: ForwardedError) -> ApiError {
    let Some(code) = error_code(&error.code) else {
        // Members of one cluster run builds that know the same codes; a newer leader's code
        // is still shown, under `internal`.
        tracing::warn!(code = %error.code, "the leader answered an unknown error code");
        let message = format!("the leader answered {}: {}", error.code, error.message);
        return ApiError::new(ErrorCode::Internal, message);
    };
    let mut api = ApiError::new(code, error.message);
    api.position = error
        .position
        .map(|(line, column)| Position { line, column });
    api.statement = error.statement.map(|(number, of)| FailedStatement {
        number: usize::try_from(number).unwrap_or(usize::MAX),
        of: usize::try_from(of).unwrap_or(usize::MAX),
    });
    api.retry_after_s = error.retry_after_s;
    api
}

/// Every code an [`ApiError`] can carry, so a code read back from the wire maps to the
/// (static) code it was written from.
const CODES: &[ErrorCode] = &[
    ErrorCode::InvalidJson,
    ErrorCode::InvalidRequest,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::PayloadTooLarge,
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::MethodNotAllowed,
    ErrorCode::AlreadyExists,
    ErrorCode::SyntaxError,
    ErrorCode::InvalidValue,
    ErrorCode::Unsupported,
    ErrorCode::LimitExceeded,
    ErrorCode::Overloaded,
    ErrorCode::TooManyAttempts,
    ErrorCode::RequestTimeout,
    ErrorCode::TooManyConnections,
    ErrorCode::Internal,
    ErrorCode::StorageFull,
    ErrorCode::DataCorrupt,
    ErrorCode::NotLeader,
    ErrorCode::Unavailable,
    ErrorCode::MembershipConflict,
];

/// The engine's own `ErrorCode::Sql` code (`engine/errors.rs`, private to the engine).
const DUPLICATE_KEY: &str = "duplicate_key";

/// The SQL layer's codes and the engine's own (`ErrorCode::Sql`).
const SQL_CODES: &[&str] = {
    use strand_sql_view::code::*;
    &[
        SYNTAX_ERROR,
        UNSUPPORTED,
        UNKNOWN_TABLE,
        UNKNOWN_COLUMN,
        TYPE_MISMATCH,
        NOT_NULL_VIOLATION,
        INVALID_PARAMETER,
        INVALID_DEFINITION,
        INVALID_NAME,
        INVALID_VALUE,
        NUMERIC_OVERFLOW,
        DIVISION_BY_ZERO,
        LIMIT_EXCEEDED,
        GROUPING_ERROR,
        AMBIGUOUS_NAME,
        DUPLICATE_KEY,
    ]
};

/// The code written as `text`. A code both lists hold (`syntax_error`) is the API's, which
/// answers the same text and status.
fn error_code(text: &str) -> Option<ErrorCode> {
    CODES
        .iter()
        .copied()
        .find(|code| code.as_str() == text)
        .or_else(|| {
            let sql = SQL_CODES.iter().find(|code| **code == text)?;
            Some(ErrorCode::Sql(sql))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_comes_back_as_it_left() {
        let error = ApiError::new(ErrorCode::Sql(DUPLICATE_KEY), "id 1 is taken")
            .at(1, 8)
            .in_statement(2, 3);
        let back = api_error(forwarded_error(&error));
        assert_eq!(back, error);
        assert_eq!(back.status(), error.status());
    }

    #[test]
    fn every_code_is_read_back() {
        for code in CODES {
            assert_eq!(error_code(code.as_str()), Some(*code));
        }
        for code in SQL_CODES {
            assert_eq!(error_code(code).map(ErrorCode::as_str), Some(*code));
        }
        assert_eq!(error_code("no_such_code"), None);
    }

    #[test]
    fn an_unknown_code_is_internal_and_keeps_its_words() {
        let back = api_error(ForwardedError::new("brand_new", "from a newer leader"));
        assert_eq!(back.code, ErrorCode::Internal);
        assert!(back.message.contains("brand_new"), "{}", back.message);
    }
}
