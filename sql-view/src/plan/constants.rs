//! Constants meeting types while compiling: literal typing (INT, BIGINT or DOUBLE), the
//! coercion of a literal or parameter to the type of what it is compared with or assigned to,
//! numeric operands of arithmetic, and CAST to TEXT.

use super::compile::{Source, Typed};
use super::node::Node;
use crate::ast::Literal;
use crate::coerce::{coerce, exact_decimal, Origin};
use crate::date::render_date;
use crate::error::{code, Position, Result, SqlError};
use crate::timestamp::render_rfc3339;
use crate::uuid::render_uuid;
use crate::value::{DataType, Value};

pub(crate) fn type_name(data_type: Option<DataType>) -> &'static str {
    data_type.map_or("NULL", DataType::name)
}

pub(crate) fn cast_to_text(value: Value) -> Result<Value> {
    Ok(match value {
        Value::Boolean(v) => Value::Text(v.to_string()),
        Value::Int(v) => Value::Text(v.to_string()),
        Value::BigInt(v) => Value::Text(v.to_string()),
        Value::Double(v) => Value::Text(v.to_string()),
        Value::Timestamp(v) => Value::Text(render_rfc3339(v)),
        Value::Json(v) => Value::Text(v),
        Value::Uuid(v) => Value::Text(render_uuid(&v)),
        Value::Decimal(v) => Value::Text(v.to_string()),
        Value::Date(v) => Value::Text(render_date(v)),
        other => coerce(other, DataType::Text, Origin::Literal)?,
    })
}

/// Both operands numeric; a constant of another type (a parameter sent as text) is coerced.
pub(crate) fn numeric_operands(left: Typed, right: Typed) -> Result<(Typed, Typed)> {
    let numeric = |t: &Typed| t.data_type.is_none_or(DataType::is_numeric);
    let (left, right) = match (numeric(&left), numeric(&right)) {
        (true, true) => (left, right),
        (true, false) if right.constant() => {
            let target = left.data_type.unwrap_or(DataType::BigInt);
            let right = coerce_constant_meeting(right, target)?;
            (left, right)
        }
        (false, true) if left.constant() => {
            let target = right.data_type.unwrap_or(DataType::BigInt);
            (coerce_constant_meeting(left, target)?, right)
        }
        _ => {
            let culprit = if numeric(&left) { &right } else { &left };
            let message = format!(
                "arithmetic needs numbers, found {}",
                type_name(culprit.data_type)
            );
            return Err(SqlError::type_mismatch(message, culprit.position));
        }
    };
    Ok((left, right))
}

/// Brings two operands of a comparison to comparable types: numbers compare across types, a
/// constant is coerced to the other side's type, anything else is a `type_mismatch`.
pub(crate) fn unify(left: Typed, right: Typed) -> Result<(Typed, Typed)> {
    let (left, right) = match (left.data_type, right.data_type) {
        (Some(a), Some(b)) if !a.comparable_with(b) && a != b => {
            if right.constant() {
                let right = coerce_constant_meeting(right, a)?;
                (left, right)
            } else if left.constant() {
                (coerce_constant_meeting(left, b)?, right)
            } else {
                return Err(SqlError::type_mismatch(
                    format!("cannot compare {a} with {b}"),
                    right.position,
                ));
            }
        }
        _ => (left, right),
    };
    for side in [&left, &right] {
        if side.data_type == Some(DataType::Json) {
            let message = "JSON values cannot be compared (IS NULL works)";
            return Err(SqlError::type_mismatch(message, side.position));
        }
    }
    Ok((left, right))
}

/// A constant coerced into the type of what it is compared or computed with: as
/// [`coerce_constant`], except that a DECIMAL keeps the constant's own decimals (`price =
/// '12.555'` must not round the text to the column's scale and match 12.56).
pub(crate) fn coerce_constant_meeting(typed: Typed, target: DataType) -> Result<Typed> {
    if !target.is_decimal() {
        return coerce_constant(typed, target);
    }
    let Node::Const(value) = typed.node else {
        return coerce_constant(typed, target);
    };
    let value = exact_decimal(value)
        .map_err(|error| constant_error(error, typed.source, typed.position))?;
    let data_type = match &value {
        Value::Decimal(v) => DataType::decimal_with_scale(v.scale()),
        _ => target,
    };
    coerce_constant(
        Typed {
            node: Node::Const(value),
            ..typed
        },
        data_type,
    )
}

fn constant_error(error: SqlError, source: Source, position: Option<Position>) -> SqlError {
    match source {
        Source::Parameter(n) => SqlError::new(
            code::INVALID_PARAMETER,
            format!("parameter ${n}: {}", error.message),
            position,
        ),
        _ => error.or_at(position),
    }
}

/// A constant coerced into `target` by the rules of its source.
pub(crate) fn coerce_constant(typed: Typed, target: DataType) -> Result<Typed> {
    let Node::Const(value) = typed.node else {
        return Err(SqlError::type_mismatch(
            format!("expected {target}"),
            typed.position,
        ));
    };
    let origin = match typed.source {
        Source::Parameter(_) => Origin::Parameter,
        _ => Origin::Literal,
    };
    let value = coerce(value, target, origin)
        .map_err(|error| constant_error(error, typed.source, typed.position))?;
    Ok(Typed {
        node: Node::Const(value),
        data_type: Some(target),
        ..typed
    })
}

pub(crate) fn literal_value(literal: &Literal, position: Option<Position>) -> Result<Value> {
    Ok(match literal {
        Literal::Null => Value::Null,
        Literal::Boolean(v) => Value::Boolean(*v),
        Literal::Text(text) => Value::Text(text.clone()),
        Literal::Bytes(bytes) => Value::Bytes(bytes.clone()),
        Literal::Number(text) => number(text)
            .ok_or_else(|| SqlError::syntax(format!("invalid number {text}"), position))?,
        Literal::Interval { .. } => {
            let what = "INTERVAL other than TIMESTAMP + INTERVAL or TIMESTAMP - INTERVAL";
            return Err(SqlError::unsupported(what, position));
        }
    })
}

/// A numeric literal: INT if it fits, else BIGINT, else DOUBLE.
fn number(text: &str) -> Option<Value> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(v) = text.parse::<i64>() {
            return Some(i32::try_from(v).map_or(Value::BigInt(v), Value::Int));
        }
    }
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Value::Double)
}
