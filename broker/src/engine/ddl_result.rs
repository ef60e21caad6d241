//! What DDL statements answer, shared by tables' and namespaces' DDL (`ddl.rs`) and topics'
//! (`topic_ddl.rs`): the refusals `already_exists` and `not_found`, a planned catalog change
//! with its message, and result rows for SHOW and DESCRIBE.

use serde_json::{Map, Value as Json};

use crate::catalog::CatalogChange;
use crate::error::{ApiError, ErrorCode};
use crate::sql::{Column, StatementResult};

/// `already_exists` for `what`.
pub(super) fn exists(what: String) -> ApiError {
    ApiError::new(ErrorCode::AlreadyExists, format!("{what} already exists"))
}

/// `not_found` for `what`.
pub(super) fn missing(what: String) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("{what} does not exist"))
}

/// A planned catalog change (`None`: nothing to do) and the message that reports it.
pub(super) type Planned = (Option<CatalogChange>, String);

/// Nothing to do when `no_op` (IF [NOT] EXISTS held), else the refusal `error` makes.
pub(super) fn no_op_or(no_op: bool, error: impl FnOnce() -> ApiError) -> Result<Planned, ApiError> {
    match no_op {
        true => Ok((None, "nothing to do".to_string())),
        false => Err(error()),
    }
}

/// A result column of a SHOW or DESCRIBE.
pub(super) fn column(name: &str, data_type: &str) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
    }
}

/// A SHOW or DESCRIBE result: its columns and rows.
pub(super) fn rows_result(columns: Vec<Column>, rows: Vec<Map<String, Json>>) -> StatementResult {
    StatementResult {
        columns,
        row_count: rows.len() as u64,
        rows,
        message: None,
    }
}
