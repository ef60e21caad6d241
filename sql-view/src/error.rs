//! Errors of the SQL layer. It owns [`SqlError`] (a stable machine-readable code, a message
//! for people, and the 1-based position in the SQL text when one is known), the list of
//! codes, and [`RowError`] for stored row bytes that cannot be read.
//!
//! It does not own how errors reach a client (the broker turns them into HTTP or WebSocket
//! answers).

use std::fmt;

/// Stable error codes, as sent to clients in `{"error": {"code": ...}}`.
pub mod code {
    /// The text is not valid SQL.
    pub const SYNTAX_ERROR: &str = "syntax_error";
    /// Valid SQL that Strand does not run (joins, aggregates, subqueries, ...).
    pub const UNSUPPORTED: &str = "unsupported";
    /// A statement names a table the catalog does not have.
    pub const UNKNOWN_TABLE: &str = "unknown_table";
    /// A statement names a column the table does not have.
    pub const UNKNOWN_COLUMN: &str = "unknown_column";
    /// A value or expression does not have the type its place needs.
    pub const TYPE_MISMATCH: &str = "type_mismatch";
    /// NULL (or no value) for a NOT NULL column or the primary key.
    pub const NOT_NULL_VIOLATION: &str = "not_null_violation";
    /// A parameter `$n` is missing or its value does not fit its place.
    pub const INVALID_PARAMETER: &str = "invalid_parameter";
    /// A table definition breaks a rule (no primary key, duplicate column, reserved name...).
    pub const INVALID_DEFINITION: &str = "invalid_definition";
    /// A name is not a valid identifier, or a table is not qualified with its namespace.
    pub const INVALID_NAME: &str = "invalid_name";
    /// A value is malformed or out of range for its place (user name, password, TTL...).
    pub const INVALID_VALUE: &str = "invalid_value";
    /// Arithmetic or a conversion left the range of its type.
    pub const NUMERIC_OVERFLOW: &str = "numeric_overflow";
    /// Division or remainder by zero.
    pub const DIVISION_BY_ZERO: &str = "division_by_zero";
    /// A named limit of `limits.rs` was exceeded.
    pub const LIMIT_EXCEEDED: &str = "limit_exceeded";
    /// A column outside GROUP BY and outside any aggregate, or a misplaced aggregate.
    pub const GROUPING_ERROR: &str = "grouping_error";
    /// A name that could mean two things in a join: a column in two of its tables, or two
    /// tables known by one name.
    pub const AMBIGUOUS_NAME: &str = "ambiguous_name";
}

/// A 1-based line and column in the SQL text (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Position {
    /// A position, or `None` for sqlparser's "unknown" location (line or column 0).
    pub fn known(line: u64, column: u64) -> Option<Position> {
        (line > 0 && column > 0).then_some(Position { line, column })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// An error of the SQL layer: bad text, a statement that does not fit the catalog, a value
/// of the wrong type, or an evaluation failure (overflow) while running a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SqlError {
    /// One of the constants of [`code`].
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// Where in the SQL text, when known.
    pub position: Option<Position>,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(f, "{} at {}: {}", self.code, position, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl SqlError {
    /// An error with a code, a message and an optional position.
    pub fn new(
        code: &'static str,
        message: impl Into<String>,
        position: Option<Position>,
    ) -> SqlError {
        SqlError {
            code,
            message: message.into(),
            position,
        }
    }

    /// A `syntax_error`.
    pub fn syntax(message: impl Into<String>, position: Option<Position>) -> SqlError {
        SqlError::new(code::SYNTAX_ERROR, message, position)
    }

    /// An `unsupported` error naming the feature.
    pub fn unsupported(what: impl fmt::Display, position: Option<Position>) -> SqlError {
        SqlError::new(
            code::UNSUPPORTED,
            format!("{what} is not supported"),
            position,
        )
    }

    /// A `type_mismatch`.
    pub fn type_mismatch(message: impl Into<String>, position: Option<Position>) -> SqlError {
        SqlError::new(code::TYPE_MISMATCH, message, position)
    }

    /// A `limit_exceeded` naming the limit and its value.
    pub fn limit(what: &str, max: usize, position: Option<Position>) -> SqlError {
        SqlError::new(
            code::LIMIT_EXCEEDED,
            format!("{what} exceeds the limit of {max}"),
            position,
        )
    }

    /// The same error with `position` filled in when it had none.
    pub fn or_at(mut self, position: Option<Position>) -> SqlError {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }
}

/// Stored row bytes that cannot be read or written. Reading garbage gives this, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// The bytes are not a valid archived row (failed rkyv/bytecheck validation).
    #[error("invalid row bytes: {0}")]
    Invalid(String),
    /// The row was written in a format version this build does not know.
    #[error("unknown row format version {0}")]
    UnknownFormat(u8),
    /// The encoded row would exceed the largest payload the log stores.
    #[error("encoded row of {bytes} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the encoded row.
        bytes: usize,
        /// The limit (`strand_log::limits::PAYLOAD_BYTES_MAX`).
        max: usize,
    },
    /// The row has more columns than `limits::COLUMNS_PER_TABLE_MAX`.
    #[error("row of {0} fields exceeds the column limit")]
    TooManyFields(usize),
}

/// Result of the SQL layer.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_code_position_and_message() {
        let error = SqlError::syntax("expected FROM", Position::known(2, 7));
        assert_eq!(
            error.to_string(),
            "syntax_error at line 2, column 7: expected FROM"
        );
        assert_eq!(Position::known(0, 3), None);
    }

    #[test]
    fn or_at_keeps_an_existing_position() {
        let first = Position::known(1, 1);
        let error = SqlError::syntax("x", first).or_at(Position::known(3, 3));
        assert_eq!(error.position, first);
        let error = SqlError::syntax("x", None).or_at(Position::known(3, 3));
        assert_eq!(error.position, Position::known(3, 3));
    }
}
