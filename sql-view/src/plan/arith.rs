//! Arithmetic of compiled expressions: `+ - * / %` and unary minus in the static result type
//! (INT, BIGINT, DOUBLE or DECIMAL), checked: overflow is `numeric_overflow`, a zero divisor
//! is `division_by_zero`, and NULL in gives NULL out. DECIMAL with integers or DECIMALs is
//! exact (`decimal.rs` has the result scales); DECIMAL with DOUBLE is DOUBLE.

use crate::decimal::{Decimal, DecimalError, DIVISION_SCALE_MIN, PRECISION_MAX};
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

/// The static type of `a op b` for two numeric types: DOUBLE if either is; else DECIMAL if
/// either is, with the scale of its values (sum: the larger scale; product: the sum of the
/// scales; quotient: at least [`DIVISION_SCALE_MIN`]); else the wider integer type.
pub(crate) fn result_type(op: ArithOp, a: DataType, b: DataType) -> DataType {
    let scale = |t: DataType| match t {
        DataType::Decimal { scale, .. } => scale,
        _ => 0,
    };
    let decimal =
        (a.is_decimal() || b.is_decimal()) && a != DataType::Double && b != DataType::Double;
    if !decimal {
        return a.wider_numeric(b);
    }
    let (sa, sb) = (scale(a), scale(b));
    DataType::decimal_with_scale(match op {
        ArithOp::Multiply => sa.saturating_add(sb).min(PRECISION_MAX),
        ArithOp::Divide => DIVISION_SCALE_MIN.max(sa).max(sb),
        ArithOp::Add | ArithOp::Subtract | ArithOp::Remainder => sa.max(sb),
    })
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
        ValueRef::Decimal(v) => ValueRef::Decimal(v.negate()),
        _ => ValueRef::Null,
    })
}

fn as_decimal(value: ValueRef<'_>) -> Option<Decimal> {
    match value {
        ValueRef::Decimal(v) => Some(v),
        other => as_i64(other).map(Decimal::from_i64),
    }
}

fn division_by_zero() -> SqlError {
    SqlError::new(code::DIVISION_BY_ZERO, "division by zero", None)
}

/// Exact decimal arithmetic; integers take part as DECIMALs of scale 0.
fn decimal_arith(op: ArithOp, a: Decimal, b: Decimal) -> Result<ValueRef<'static>> {
    let result = match op {
        ArithOp::Add => a.plus(b),
        ArithOp::Subtract => a.minus(b),
        ArithOp::Multiply => a.multiply(b),
        ArithOp::Divide => a.divide(b).ok_or_else(division_by_zero)?,
        ArithOp::Remainder => a.remainder(b).ok_or_else(division_by_zero)?,
    };
    match result {
        Ok(value) => Ok(ValueRef::Decimal(value)),
        Err(DecimalError::Overflow | DecimalError::Invalid) => Err(overflow()),
    }
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
        ValueRef::Decimal(v) => Some(v.to_f64()),
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
    if result.is_decimal() {
        let (Some(a), Some(b)) = (as_decimal(left), as_decimal(right)) else {
            return Ok(ValueRef::Null);
        };
        return decimal_arith(op, a, b);
    }
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
        let decimal = |text: &str| Value::Decimal(crate::Decimal::parse(text, None).unwrap());
        let times = Node::Arith {
            op: ArithOp::Multiply,
            left: constant(decimal("1.5")),
            right: constant(Value::Int(3)),
            result: result_type(
                ArithOp::Multiply,
                DataType::decimal_with_scale(1),
                DataType::Int,
            ),
        };
        assert_eq!(
            times.eval(&[][..], SYSTEM).unwrap().into_value(),
            decimal("4.5")
        );
        let by_zero = Node::Arith {
            op: ArithOp::Divide,
            left: constant(decimal("1.5")),
            right: constant(decimal("0.00")),
            result: DataType::decimal_with_scale(6),
        };
        assert_eq!(
            by_zero.eval(&[][..], SYSTEM).unwrap_err().code,
            code::DIVISION_BY_ZERO
        );
        let with_double = result_type(
            ArithOp::Add,
            DataType::decimal_with_scale(2),
            DataType::Double,
        );
        assert_eq!(with_double, DataType::Double);
        let quotient = result_type(
            ArithOp::Divide,
            DataType::decimal_with_scale(2),
            DataType::Int,
        );
        assert_eq!(quotient, DataType::decimal_with_scale(6));
        let negate = Node::Negate(constant(Value::BigInt(i64::MIN)));
        assert_eq!(
            negate.eval(&[][..], SYSTEM).unwrap_err().code,
            code::NUMERIC_OVERFLOW
        );
    }
}
