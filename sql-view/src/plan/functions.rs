//! Scalar functions and CASE: their typing (a [`Scope`] compiling [`ExprKind::Function`] and
//! [`ExprKind::Case`]) and their evaluation per row, with SQL's NULL rules (a NULL argument
//! gives NULL, except where the function is about NULLs: COALESCE, NULLIF, CASE).
//!
//! Semantics follow PostgreSQL: `LENGTH` and `SUBSTRING` count characters, `SUBSTRING`'s
//! start may be before the first character (`SUBSTRING('hello', 0, 3)` is `'he'`) and a
//! negative count is an error; `ROUND` rounds halves away from zero (PostgreSQL's NUMERIC
//! rule) and keeps integers integers.

use super::compile::{Scope, Source, Typed};
use super::constants::{cast_to_text, coerce_constant, type_name, unify};
use super::node::{CompareOp, Datum, Node};
use super::{RowFields, SystemColumns};
use crate::ast::{Expr, ScalarFunction};
use crate::coerce::{coerce, Origin};
use crate::error::{code, Position, Result, SqlError};
use crate::value::{compare, DataType, Value, ValueRef};

impl Scope<'_> {
    /// `function(args)`, typed.
    pub(crate) fn function(
        &self,
        function: ScalarFunction,
        args: &[Expr],
        position: Option<Position>,
    ) -> Result<Typed> {
        let mut typed = args
            .iter()
            .map(|arg| self.compile(arg))
            .collect::<Result<Vec<_>>>()?;
        let data_type = match function {
            ScalarFunction::Now if self.live_clock => {
                // A subscription's time moves: read per evaluation (`SystemColumns::now`).
                self.reads_clock.set(true);
                return Ok(Typed {
                    node: Node::Call {
                        function,
                        args: Vec::new(),
                    },
                    data_type: Some(DataType::Timestamp),
                    source: Source::Row,
                    position,
                });
            }
            ScalarFunction::Now => {
                // The statement's time, read once: a query sees one `now()` throughout.
                self.reads_clock.set(true);
                return Ok(Typed {
                    node: Node::Const(Value::Timestamp(now_micros())),
                    data_type: Some(DataType::Timestamp),
                    source: Source::Literal,
                    position,
                });
            }
            ScalarFunction::Lower | ScalarFunction::Upper => {
                text_argument(function, &mut typed[0])?;
                Some(DataType::Text)
            }
            ScalarFunction::Length => {
                text_argument(function, &mut typed[0])?;
                Some(DataType::Int)
            }
            ScalarFunction::Substring => {
                text_argument(function, &mut typed[0])?;
                for arg in &mut typed[1..] {
                    integer_argument(function, arg)?;
                }
                Some(DataType::Text)
            }
            ScalarFunction::Coalesce => common_type(&mut typed, "COALESCE")?,
            ScalarFunction::NullIf => {
                let (left, right) = unify(typed[0].clone(), typed[1].clone())?;
                typed[0] = left;
                typed[1] = right;
                typed[0].data_type.or(typed[1].data_type)
            }
            ScalarFunction::Abs => {
                numeric_argument(function, &mut typed[0])?;
                typed[0].data_type
            }
            ScalarFunction::Round => {
                numeric_argument(function, &mut typed[0])?;
                if let Some(digits) = typed.get_mut(1) {
                    integer_argument(function, digits)?;
                }
                round_type(&typed)
            }
        };
        let source = source_of(&typed);
        let node = Node::Call {
            function,
            args: typed.into_iter().map(|t| t.node).collect(),
        };
        Ok(Typed {
            node,
            data_type,
            source,
            position,
        })
    }

    /// `time + INTERVAL`, `INTERVAL + time` or `time - INTERVAL` (`sign` -1), typed.
    pub(crate) fn shifted_time(
        &self,
        time: &Expr,
        micros: i64,
        sign: i64,
        position: Option<Position>,
    ) -> Result<Typed> {
        let mut time = self.compile(time)?;
        match time.data_type {
            None | Some(DataType::Timestamp) => {}
            Some(_) if time.constant() => {
                time = coerce_constant(time, DataType::Timestamp)?;
            }
            Some(other) => {
                let message = format!("INTERVAL arithmetic needs a TIMESTAMP, found {other}");
                return Err(SqlError::type_mismatch(message, time.position));
            }
        }
        let micros = micros
            .checked_mul(sign)
            .ok_or_else(|| overflow("INTERVAL"))?;
        let source = time.source;
        let node = Node::ShiftTime {
            expr: Box::new(time.node),
            micros,
        };
        Ok(Typed {
            node,
            data_type: Some(DataType::Timestamp),
            source: if source == Source::Row {
                Source::Row
            } else {
                Source::Literal
            },
            position,
        })
    }

    /// `CASE [operand] WHEN ... THEN ... [ELSE ...] END`, typed.
    pub(crate) fn case(
        &self,
        operand: Option<&Expr>,
        branches: &[(Expr, Expr)],
        otherwise: Option<&Expr>,
        position: Option<Position>,
    ) -> Result<Typed> {
        let operand = operand.map(|o| self.compile(o)).transpose()?;
        let mut conditions = Vec::with_capacity(branches.len());
        let mut results = Vec::with_capacity(branches.len() + 1);
        for (when, then) in branches {
            let condition = match &operand {
                // `CASE x WHEN v` is `CASE WHEN x = v`.
                Some(operand) => {
                    let value = self.compile(when)?;
                    self.comparison(CompareOp::Eq, operand.clone(), value)?
                }
                None => self.condition(when, "CASE WHEN")?,
            };
            conditions.push(condition);
            results.push(self.compile(then)?);
        }
        let otherwise = match otherwise {
            Some(otherwise) => self.compile(otherwise)?,
            None => Typed {
                node: Node::Const(Value::Null),
                data_type: None,
                source: Source::Literal,
                position,
            },
        };
        results.push(otherwise);
        let data_type = common_type(&mut results, "CASE")?;
        let row = operand.as_ref().is_some_and(|o| !o.constant())
            || conditions.iter().any(|c| !c.is_constant());
        let source = if row {
            Source::Row
        } else {
            source_of(&results)
        };
        let otherwise = results
            .pop()
            .map(|t| t.node)
            .unwrap_or(Node::Const(Value::Null));
        let node = Node::Case {
            branches: conditions
                .into_iter()
                .zip(results.into_iter().map(|t| t.node))
                .collect(),
            otherwise: Box::new(otherwise),
        };
        Ok(Typed {
            node,
            data_type,
            source,
            position,
        })
    }
}

/// `ROUND(decimal, digits)` has `digits` decimals (as in PostgreSQL); other types keep theirs.
fn round_type(typed: &[Typed]) -> Option<DataType> {
    let input = typed[0].data_type;
    if !input.is_some_and(DataType::is_decimal) {
        return input;
    }
    let digits = match typed.get(1).map(|t| &t.node) {
        None => Some(0),
        Some(Node::Const(value)) => integer(value.as_ref()),
        Some(_) => None,
    };
    match digits {
        Some(d) => Some(DataType::decimal_with_scale(d.clamp(0, 38) as u8)),
        None => input,
    }
}

fn source_of(args: &[Typed]) -> Source {
    if args.iter().all(Typed::constant) {
        Source::Literal
    } else {
        Source::Row
    }
}

fn mismatch(function: ScalarFunction, wanted: &str, arg: &Typed) -> SqlError {
    let found = type_name(arg.data_type);
    let message = format!("{} needs {wanted}, found {found}", function.name());
    SqlError::type_mismatch(message, arg.position)
}

fn text_argument(function: ScalarFunction, arg: &mut Typed) -> Result<()> {
    match arg.data_type {
        None | Some(DataType::Text) => Ok(()),
        Some(_) if arg.constant() => {
            *arg = coerce_constant(arg.clone(), DataType::Text)?;
            Ok(())
        }
        Some(_) => Err(mismatch(function, "TEXT", arg)),
    }
}

fn integer_argument(function: ScalarFunction, arg: &mut Typed) -> Result<()> {
    match arg.data_type {
        None | Some(DataType::Int | DataType::BigInt) => Ok(()),
        Some(_) if arg.constant() => {
            *arg = coerce_constant(arg.clone(), DataType::BigInt)?;
            Ok(())
        }
        Some(_) => Err(mismatch(function, "an integer", arg)),
    }
}

fn numeric_argument(function: ScalarFunction, arg: &mut Typed) -> Result<()> {
    match arg.data_type {
        None => Ok(()),
        Some(t) if t.is_numeric() => Ok(()),
        Some(_) if arg.constant() => {
            *arg = coerce_constant(arg.clone(), DataType::Double)?;
            Ok(())
        }
        Some(_) => Err(mismatch(function, "a number", arg)),
    }
}

/// The one type all of `values` have (numbers widen to the widest; a constant is coerced to
/// the type of the others), or a `type_mismatch` naming the first that does not fit.
fn common_type(values: &mut [Typed], what: &str) -> Result<Option<DataType>> {
    // A parameter sent as text takes the type of the others ("3" meeting numbers is a number),
    // unless there is nothing else.
    let typed_of = |v: &Typed| {
        let text_parameter =
            matches!(v.source, Source::Parameter(_)) && v.data_type == Some(DataType::Text);
        v.data_type.filter(|_| !text_parameter)
    };
    let mut typed: Vec<DataType> = values.iter().filter_map(typed_of).collect();
    if typed.is_empty() {
        typed = values.iter().filter_map(|v| v.data_type).collect();
    }
    let target = if !typed.is_empty() && typed.iter().all(|t| t.is_numeric()) {
        typed.iter().copied().reduce(DataType::wider_numeric)
    } else {
        // The first non-constant's type, else the first typed constant's.
        values
            .iter()
            .find(|v| !v.constant() && v.data_type.is_some())
            .or_else(|| values.iter().find(|v| v.data_type.is_some()))
            .and_then(|v| v.data_type)
    };
    let Some(target) = target else {
        return Ok(None);
    };
    for value in values.iter_mut() {
        match value.data_type {
            None => {}
            Some(t) if t == target => {}
            Some(_) if value.constant() => *value = coerce_constant(value.clone(), target)?,
            Some(t) if t.is_numeric() && target.is_numeric() => {
                // Widened per row, so the result has the one type its schema says.
                let node = std::mem::replace(&mut value.node, Node::Const(Value::Null));
                value.node = Node::Cast {
                    expr: Box::new(node),
                    target,
                };
                value.data_type = Some(target);
            }
            Some(other) => {
                let message = format!("{what} mixes {target} and {other}");
                return Err(SqlError::type_mismatch(message, value.position));
            }
        }
    }
    Ok(Some(target))
}

/// CAST of a value computed per row, by the rules of a CAST of a constant.
pub(crate) fn cast_value(value: Value, target: DataType) -> Result<Value> {
    match target {
        DataType::Text => cast_to_text(value),
        target => coerce(value, target, Origin::Parameter),
    }
}

/// One call, evaluated for a row.
pub(crate) fn call<'a, R: RowFields + ?Sized>(
    function: ScalarFunction,
    args: &'a [Node],
    row: &'a R,
    system: SystemColumns,
) -> Result<Datum<'a>> {
    let arg = |index: usize| match args.get(index) {
        Some(node) => node.eval(row, system),
        None => Ok(Datum::Ref(ValueRef::Null)),
    };
    let null = Datum::Ref(ValueRef::Null);
    Ok(match function {
        // A constant in a one-shot query (see `Scope::function`); a subscription's clock here.
        ScalarFunction::Now => Datum::Ref(ValueRef::Timestamp(system.now)),
        ScalarFunction::Coalesce => {
            for node in args {
                let value = node.eval(row, system)?;
                if !value.as_ref().is_null() {
                    return Ok(value);
                }
            }
            null
        }
        ScalarFunction::NullIf => {
            let (a, b) = (arg(0)?, arg(1)?);
            if compare(a.as_ref(), b.as_ref()) == Some(std::cmp::Ordering::Equal) {
                null
            } else {
                a
            }
        }
        ScalarFunction::Lower | ScalarFunction::Upper | ScalarFunction::Length => {
            match arg(0)?.as_ref() {
                ValueRef::Text(text) => match function {
                    ScalarFunction::Lower => Datum::Text(text.to_lowercase()),
                    ScalarFunction::Upper => Datum::Text(text.to_uppercase()),
                    _ => {
                        let chars = i32::try_from(text.chars().count()).unwrap_or(i32::MAX);
                        Datum::Ref(ValueRef::Int(chars))
                    }
                },
                _ => null,
            }
        }
        ScalarFunction::Substring => {
            let text = arg(0)?;
            let start = integer(arg(1)?.as_ref());
            let count = match args.len() {
                3 => Some(integer(arg(2)?.as_ref())),
                _ => None,
            };
            match (text.as_ref(), start, count) {
                (ValueRef::Text(text), Some(start), None) => {
                    Datum::Text(substring(text, start, None)?)
                }
                (ValueRef::Text(text), Some(start), Some(Some(count))) => {
                    Datum::Text(substring(text, start, Some(count))?)
                }
                _ => null,
            }
        }
        ScalarFunction::Abs => Datum::Ref(match arg(0)?.as_ref() {
            ValueRef::Int(v) => ValueRef::Int(v.checked_abs().ok_or_else(|| too_large("ABS"))?),
            ValueRef::BigInt(v) => {
                ValueRef::BigInt(v.checked_abs().ok_or_else(|| too_large("ABS"))?)
            }
            ValueRef::Double(v) => ValueRef::Double(v.abs()),
            ValueRef::Decimal(v) => ValueRef::Decimal(v.abs()),
            _ => ValueRef::Null,
        }),
        ScalarFunction::Round => {
            let digits = match args.len() {
                2 => match integer(arg(1)?.as_ref()) {
                    Some(digits) => digits,
                    None => return Ok(null),
                },
                _ => 0,
            };
            Datum::Ref(round(arg(0)?.as_ref(), digits)?)
        }
    })
}

/// The wall clock, in microseconds since the Unix epoch.
fn now_micros() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// `TIMESTAMP ± INTERVAL`: the time shifted by `micros`.
pub(crate) fn shift_time(value: ValueRef<'_>, micros: i64) -> Result<ValueRef<'static>> {
    match value {
        ValueRef::Timestamp(t) => t
            .checked_add(micros)
            .map(ValueRef::Timestamp)
            .ok_or_else(|| overflow("TIMESTAMP + INTERVAL")),
        _ => Ok(ValueRef::Null),
    }
}

fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Int(v) => Some(i64::from(v)),
        ValueRef::BigInt(v) => Some(v),
        _ => None,
    }
}

fn overflow(what: &str) -> SqlError {
    SqlError::new(code::INVALID_VALUE, format!("{what} is out of range"), None)
}

/// A number too large for its type, as arithmetic's (`numeric_overflow`, PostgreSQL's
/// "integer out of range"): `ABS(-2147483648)`, `ROUND(2147483647, -1)` of an INT.
fn too_large(what: &str) -> SqlError {
    let message = format!("{what} is out of range for its type");
    SqlError::new(code::NUMERIC_OVERFLOW, message, None)
}

/// Characters `start ..= start + count - 1` (1-based) that exist in `text`.
fn substring(text: &str, start: i64, count: Option<i64>) -> Result<String> {
    let end = match count {
        Some(count) if count < 0 => {
            let message = "negative substring length not allowed";
            return Err(SqlError::new(code::INVALID_VALUE, message, None));
        }
        Some(count) => start.saturating_add(count),
        None => i64::MAX,
    };
    let first = start.max(1);
    if end <= first {
        return Ok(String::new());
    }
    let skip = usize::try_from(first - 1).unwrap_or(usize::MAX);
    let take = usize::try_from(end - first).unwrap_or(usize::MAX);
    Ok(text.chars().skip(skip).take(take).collect())
}

/// `ROUND(value, digits)`: halves away from zero; integers stay integers (rounded to tens,
/// hundreds, ... for negative `digits`).
fn round(value: ValueRef<'_>, digits: i64) -> Result<ValueRef<'static>> {
    let digits = i32::try_from(digits.clamp(-400, 400)).unwrap_or(0);
    Ok(match value {
        ValueRef::Double(v) => {
            if digits == 0 {
                ValueRef::Double(v.round())
            } else {
                let scale = 10f64.powi(digits);
                let scaled = (v * scale).round() / scale;
                ValueRef::Double(if scaled.is_finite() { scaled } else { v })
            }
        }
        ValueRef::Int(v) => {
            let rounded = round_integer(i64::from(v), digits).ok_or_else(|| too_large("ROUND"))?;
            ValueRef::Int(i32::try_from(rounded).map_err(|_| too_large("ROUND"))?)
        }
        ValueRef::BigInt(v) => {
            ValueRef::BigInt(round_integer(v, digits).ok_or_else(|| too_large("ROUND"))?)
        }
        ValueRef::Decimal(v) => {
            ValueRef::Decimal(v.round(i64::from(digits)).map_err(|_| {
                SqlError::new(code::NUMERIC_OVERFLOW, "ROUND is out of range", None)
            })?)
        }
        _ => ValueRef::Null,
    })
}

fn round_integer(value: i64, digits: i32) -> Option<i64> {
    if digits >= 0 {
        return Some(value);
    }
    let Some(unit) = 10i64.checked_pow(digits.unsigned_abs()) else {
        return Some(0);
    };
    let remainder = value % unit;
    let down = value - remainder;
    if remainder.unsigned_abs() * 2 >= unit.unsigned_abs() {
        down.checked_add(if value < 0 { -unit } else { unit })
    } else {
        Some(down)
    }
}

#[cfg(test)]
mod tests;
