//! The parts of a column definition that carry more than a name: `DECIMAL(p,s)`'s precision
//! and scale, and `DEFAULT` (`now()`, `SNOWFLAKE_ID()` or a constant typed here, so that a bad
//! default is an error at CREATE TABLE with its position, not at the first INSERT).

use sqlparser::ast::{ExactNumberInfo, Expr as SqlExpr, FunctionArguments};

use super::expr::leftmost_position;
use crate::ast::{ExprKind, ScalarFunction};
use crate::catalog::ColumnDefault;
use crate::decimal::PRECISION_MAX;
use crate::error::{code, Position, Result, SqlError};
use crate::value::DataType;

/// `DECIMAL(p,s)`, `DECIMAL(p)` (scale 0); precision 1 to 38, scale 0 to p. A bare `DECIMAL`
/// (PostgreSQL's unconstrained NUMERIC) is refused: every value here has a fixed scale.
pub(super) fn decimal_type(info: &ExactNumberInfo, position: Option<Position>) -> Result<DataType> {
    let (precision, scale) = match *info {
        ExactNumberInfo::None => {
            let what = "DECIMAL without a precision and scale (write DECIMAL(p,s), e.g. \
                        DECIMAL(10,2))";
            return Err(SqlError::unsupported(what, position));
        }
        ExactNumberInfo::Precision(p) => (p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (p, s),
    };
    let max = u64::from(PRECISION_MAX);
    let scale = u64::try_from(scale).ok().filter(|s| *s <= precision);
    match (u8::try_from(precision), scale.and_then(|s| u8::try_from(s).ok())) {
        (Ok(precision), Some(scale)) if (1..=max).contains(&u64::from(precision)) => {
            Ok(DataType::Decimal { precision, scale })
        }
        _ => Err(SqlError::new(
            code::INVALID_VALUE,
            format!("DECIMAL({precision},{}): the precision must be 1 to {max} and the scale 0 to the precision", info_scale(info)),
            position,
        )),
    }
}

fn info_scale(info: &ExactNumberInfo) -> i64 {
    match *info {
        ExactNumberInfo::PrecisionAndScale(_, s) => s,
        _ => 0,
    }
}

/// `DEFAULT expr` of a column: `now()` / `CURRENT_TIMESTAMP`, `SNOWFLAKE_ID()`, or a constant
/// coerced to the column's type here (a bad one is an error now, not at the first INSERT).
pub(super) fn column_default(
    sql: &SqlExpr,
    column: &str,
    data_type: DataType,
) -> Result<Option<ColumnDefault>> {
    let position = leftmost_position(sql);
    if let SqlExpr::Function(function) = sql {
        if function
            .name
            .to_string()
            .eq_ignore_ascii_case("snowflake_id")
        {
            let no_arguments = match &function.args {
                FunctionArguments::List(list) => list.args.is_empty(),
                FunctionArguments::None => true,
                _ => false,
            };
            if !no_arguments {
                let message = "SNOWFLAKE_ID takes no arguments";
                return Err(SqlError::new(code::INVALID_VALUE, message, position));
            }
            let default = ColumnDefault::SnowflakeId.for_column(column, data_type);
            return default.map(Some).map_err(|e| e.or_at(position));
        }
    }
    let expr = super::expr::expr(sql)?;
    if let ExprKind::Function {
        function: ScalarFunction::Now,
        ..
    } = expr.kind
    {
        let default = ColumnDefault::Now.for_column(column, data_type);
        return default.map(Some).map_err(|e| e.or_at(position));
    }
    let value = crate::plan::constant_default(&expr, data_type)?;
    Ok(value.map(ColumnDefault::Value))
}
