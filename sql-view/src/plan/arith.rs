//! Arithmetic of compiled expressions: `+ - * / %` and unary minus in the static result type
//! (INT, BIGINT or DOUBLE), checked: overflow is `numeric_overflow`, a zero divisor is
//! `division_by_zero`, and NULL in gives NULL out.

use crate::error::{code, Result, SqlError};
use crate::value::{DataType, ValueRef};

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

fn overflow() -> SqlError {
    SqlError::new(
        code::NUMERIC_OVERFLOW,
        "arithmetic result out of range",
        None,
    )
}

pub(crate) fn negate(value: ValueRef<'_>) -> Result<ValueRef<'static>> {
    Ok(match value {
        ValueRef::Int(v) => ValueRef::Int(v.checked_neg().ok_or_else(overflow)?),
        ValueRef::BigInt(v) => ValueRef::BigInt(v.checked_neg().ok_or_else(overflow)?),
        ValueRef::Double(v) => ValueRef::Double(-v),
        _ => ValueRef::Null,
    })
}

fn as_i64(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Int(v) => Some(i64::from(v)),
        ValueRef::BigInt(v) => Some(v),
        _ => None,
    }
}

fn as_f64(value: ValueRef<'_>) -> Option<f64> {
    match value {
        ValueRef::Double(v) => Some(v),
        other => as_i64(other).map(|v| v as f64),
    }
}

/// Arithmetic in the static result type; NULL (or a stored value of a surprising type) in
/// gives NULL out; overflow and division by zero are errors.
pub(crate) fn arith(
    op: ArithOp,
    result: DataType,
    left: ValueRef<'_>,
    right: ValueRef<'_>,
) -> Result<ValueRef<'static>> {
    if result == DataType::Double {
        let (Some(a), Some(b)) = (as_f64(left), as_f64(right)) else {
            return Ok(ValueRef::Null);
        };
        if matches!(op, ArithOp::Divide | ArithOp::Remainder) && b == 0.0 {
            return Err(SqlError::new(
                code::DIVISION_BY_ZERO,
                "division by zero",
                None,
            ));
        }
        let value = match op {
            ArithOp::Add => a + b,
            ArithOp::Subtract => a - b,
            ArithOp::Multiply => a * b,
            ArithOp::Divide => a / b,
            ArithOp::Remainder => a % b,
        };
        // Past f64's range is an overflow, as for integers (never Infinity).
        if !value.is_finite() {
            return Err(overflow());
        }
        return Ok(ValueRef::Double(value));
    }
    let (Some(a), Some(b)) = (as_i64(left), as_i64(right)) else {
        return Ok(ValueRef::Null);
    };
    if matches!(op, ArithOp::Divide | ArithOp::Remainder) && b == 0 {
        return Err(SqlError::new(
            code::DIVISION_BY_ZERO,
            "division by zero",
            None,
        ));
    }
    let value = match op {
        ArithOp::Add => a.checked_add(b),
        ArithOp::Subtract => a.checked_sub(b),
        ArithOp::Multiply => a.checked_mul(b),
        ArithOp::Divide => a.checked_div(b),
        // `i64::MIN % -1` is 0 (as in PostgreSQL), not an overflow; b is not 0 here.
        ArithOp::Remainder => Some(a.wrapping_rem(b)),
    }
    .ok_or_else(overflow)?;
    if result == DataType::Int {
        return i32::try_from(value)
            .map(ValueRef::Int)
            .map_err(|_| overflow());
    }
    Ok(ValueRef::BigInt(value))
}

#[cfg(test)]
mod tests {
    use super::super::node::Node;
    use super::super::SystemColumns;
    use super::*;
    use crate::value::Value;

    const SYSTEM: SystemColumns = SystemColumns {
        seq: 7,
        deleted: false,
        now: 0,
    };

    fn constant(value: Value) -> Box<Node> {
        Box::new(Node::Const(value))
    }

    #[test]
    fn arithmetic_checks_overflow_and_zero() {
        let add = |a: Value, b: Value, result| Node::Arith {
            op: ArithOp::Add,
            left: constant(a),
            right: constant(b),
            result,
        };
        let node = add(Value::Int(i32::MAX), Value::Int(1), DataType::Int);
        assert_eq!(
            node.eval(&[][..], SYSTEM).unwrap_err().code,
            code::NUMERIC_OVERFLOW
        );
        let node = add(Value::Int(i32::MAX), Value::BigInt(1), DataType::BigInt);
        assert_eq!(
            node.eval(&[][..], SYSTEM).unwrap().as_ref(),
            ValueRef::BigInt(1 << 31)
        );
        let divide = Node::Arith {
            op: ArithOp::Divide,
            left: constant(Value::Int(1)),
            right: constant(Value::Int(0)),
            result: DataType::Int,
        };
        assert_eq!(
            divide.eval(&[][..], SYSTEM).unwrap_err().code,
            code::DIVISION_BY_ZERO
        );
        let negate = Node::Negate(constant(Value::BigInt(i64::MIN)));
        assert_eq!(
            negate.eval(&[][..], SYSTEM).unwrap_err().code,
            code::NUMERIC_OVERFLOW
        );
    }
}
