//! Naming the expression forms we do not run, for `unsupported` errors: functions
//! (aggregates and window functions called out as such), subqueries, CASE, and the rest.

use sqlparser::ast::Expr as SqlExpr;

use super::expr::leftmost_position;
use crate::error::SqlError;

const AGGREGATES: [&str; 12] = [
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "variance",
];

/// The `unsupported` error for an expression form we do not run, naming it.
pub(crate) fn unsupported_form(sql: &SqlExpr) -> SqlError {
    let position = leftmost_position(sql);
    let name = match sql {
        SqlExpr::Function(function) => {
            let name = function.name.to_string();
            let what = if function.over.is_some() {
                format!("window function {name}")
            } else if AGGREGATES.contains(&name.to_ascii_lowercase().as_str()) {
                format!("aggregate function {name} (aggregates)")
            } else {
                format!("function {name}")
            };
            return SqlError::unsupported(what, position);
        }
        SqlExpr::Subquery(_) | SqlExpr::Exists { .. } => "subqueries",
        SqlExpr::Case { .. } => "CASE",
        SqlExpr::ILike { .. } => "ILIKE",
        SqlExpr::SimilarTo { .. } | SqlExpr::RLike { .. } => "regular expression matching",
        SqlExpr::IsTrue(_) | SqlExpr::IsNotTrue(_) => "IS [NOT] TRUE",
        SqlExpr::IsFalse(_) | SqlExpr::IsNotFalse(_) => "IS [NOT] FALSE",
        SqlExpr::IsUnknown(_) | SqlExpr::IsNotUnknown(_) => "IS [NOT] UNKNOWN",
        SqlExpr::IsDistinctFrom(..) | SqlExpr::IsNotDistinctFrom(..) => "IS [NOT] DISTINCT FROM",
        SqlExpr::AnyOp { .. } | SqlExpr::AllOp { .. } => "ANY / ALL",
        SqlExpr::JsonAccess { .. } | SqlExpr::CompoundFieldAccess { .. } => "field access",
        SqlExpr::AtTimeZone { .. } => "AT TIME ZONE",
        SqlExpr::Extract { .. } => "EXTRACT",
        SqlExpr::Interval(_) => "INTERVAL",
        SqlExpr::Tuple(_) => "row values",
        SqlExpr::Rollup(_) | SqlExpr::Cube(_) | SqlExpr::GroupingSets(_) => {
            "ROLLUP / CUBE / GROUPING SETS"
        }
        SqlExpr::Array(_) => "arrays",
        SqlExpr::Collate { .. } => "COLLATE",
        SqlExpr::Wildcard(_) | SqlExpr::QualifiedWildcard(..) => "* here",
        _ => "this kind of expression",
    };
    SqlError::unsupported(name, position)
}
