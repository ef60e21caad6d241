//! The reference interpreter: a WHERE tree over `Vec<Value>`, written plainly and apart from
//! the crate's evaluator: three-valued logic, exact numeric comparison through i128 and
//! floors, arithmetic in i128 with range checks, LIKE by recursion.

use std::cmp::Ordering;

use strand_sql_view::{DataType, SystemColumns, Value};

use super::{Operand, Pred};

type Eval<T> = Result<T, &'static str>;

/// A literal as SQL types it: integers that fit INT are INT.
fn literal_type(value: &Value) -> Value {
    match value {
        Value::BigInt(v) => i32::try_from(*v).map_or(Value::BigInt(*v), Value::Int),
        other => other.clone(),
    }
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn cmp_int_f64(i: i64, d: f64) -> Ordering {
    if d.is_nan() || d > 1e19 {
        return Ordering::Less;
    }
    if d < -1e19 {
        return Ordering::Greater;
    }
    let floor = d.floor();
    match i128::from(i).cmp(&(floor as i128)) {
        Ordering::Equal if d > floor => Ordering::Less,
        order => order,
    }
}

fn reference_compare(a: &Value, b: &Value) -> Option<Ordering> {
    let int = |v: &Value| match v {
        Value::Int(x) => Some(i64::from(*x)),
        Value::BigInt(x) => Some(*x),
        _ => None,
    };
    Some(match (a, b) {
        (Value::Double(x), Value::Double(y)) => cmp_f64(*x, *y),
        (Value::Double(x), other) => cmp_int_f64(int(other)?, *x).reverse(),
        (other, Value::Double(y)) => cmp_int_f64(int(other)?, *y),
        (Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        (x, y) => int(x)?.cmp(&int(y)?),
    })
}

fn reference_arith(op: char, left: &Value, right: &Value, result: &Value) -> Eval<Value> {
    let as_f64 = |v: &Value| match v {
        Value::Int(x) => Some(f64::from(*x)),
        Value::BigInt(x) => Some(*x as f64),
        Value::Double(x) => Some(*x),
        _ => None,
    };
    let (Some(a), Some(b)) = (as_f64(left), as_f64(right)) else {
        return Ok(Value::Null);
    };
    if matches!(result, Value::Double(_)) {
        if matches!(op, '/' | '%') && b == 0.0 {
            return Err("division_by_zero");
        }
        let value = match op {
            '+' => a + b,
            '-' => a - b,
            '*' => a * b,
            '/' => a / b,
            _ => a % b,
        };
        // docs/sql.md, "Arithmetic": overflow is numeric_overflow, for DOUBLE too.
        if !value.is_finite() {
            return Err("numeric_overflow");
        }
        return Ok(Value::Double(value));
    }
    let int = |v: &Value| match v {
        Value::Int(x) => i128::from(*x),
        Value::BigInt(x) => i128::from(*x),
        _ => 0,
    };
    let (a, b) = (int(left), int(right));
    if matches!(op, '/' | '%') && b == 0 {
        return Err("division_by_zero");
    }
    let value = match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        '/' => a / b,
        _ => a % b,
    };
    match result {
        Value::Int(_) => i32::try_from(value)
            .map(Value::Int)
            .map_err(|_| "numeric_overflow"),
        _ => i64::try_from(value)
            .map(Value::BigInt)
            .map_err(|_| "numeric_overflow"),
    }
}

/// The type an arithmetic result has: the wider operand type (a sample value of it).
fn result_type(column: DataType, constant: &Value) -> Value {
    match (column, literal_type(constant)) {
        (DataType::Double, _) | (_, Value::Double(_)) => Value::Double(0.0),
        (DataType::BigInt, _) | (_, Value::BigInt(_)) => Value::BigInt(0),
        _ => Value::Int(0),
    }
}

fn like(text: &[char], pattern: &[char]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('%') => (0..=text.len()).any(|k| like(&text[k..], &pattern[1..])),
        Some('_') => !text.is_empty() && like(&text[1..], &pattern[1..]),
        Some(c) => text.first() == Some(c) && like(&text[1..], &pattern[1..]),
    }
}

pub struct Reference<'a> {
    pub types: &'a [DataType],
    pub row: &'a [Value],
    pub system: SystemColumns,
}

impl Reference<'_> {
    fn operand(&self, operand: &Operand) -> Eval<Value> {
        Ok(match operand {
            Operand::Column(i) => self.row.get(*i).cloned().unwrap_or(Value::Null),
            Operand::Seq => Value::BigInt(self.system.seq),
            Operand::Constant {
                value,
                parameter: true,
            } => value.clone(),
            Operand::Constant {
                value,
                parameter: false,
            } => literal_type(value),
            Operand::Arith { op, column, value } => {
                let left = self.row.get(*column).cloned().unwrap_or(Value::Null);
                let result = result_type(self.types[*column], value);
                reference_arith(*op, &left, &literal_type(value), &result)?
            }
        })
    }

    pub fn pred(&self, pred: &Pred) -> Eval<Option<bool>> {
        let flip = |v: Option<bool>, negated: bool| v.map(|b| b != negated);
        Ok(match pred {
            Pred::Compare(op, a, b) => {
                let (a, b) = (self.operand(a)?, self.operand(b)?);
                reference_compare(&a, &b).map(|o| match *op {
                    "=" => o.is_eq(),
                    "<>" => o.is_ne(),
                    "<" => o.is_lt(),
                    "<=" => o.is_le(),
                    ">" => o.is_gt(),
                    _ => o.is_ge(),
                })
            }
            Pred::InList(a, list, negated) => {
                let a = self.operand(a)?;
                let results: Vec<Option<Ordering>> =
                    list.iter().map(|v| reference_compare(&a, v)).collect();
                let found = if a == Value::Null {
                    None
                } else if results.contains(&Some(Ordering::Equal)) {
                    Some(true)
                } else if results.contains(&None) {
                    None
                } else {
                    Some(false)
                };
                flip(found, *negated)
            }
            Pred::Between(a, low, high, negated) => {
                let a = self.operand(a)?;
                let ge = reference_compare(&a, low).map(Ordering::is_ge);
                let le = reference_compare(&a, high).map(Ordering::is_le);
                let both = match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                flip(both, *negated)
            }
            Pred::Like(i, pattern, negated) => match self.row.get(*i) {
                Some(Value::Text(text)) => {
                    let (t, p): (Vec<char>, Vec<char>) =
                        (text.chars().collect(), pattern.chars().collect());
                    Some(like(&t, &p) != *negated)
                }
                _ => None,
            },
            Pred::IsNull(a, negated) => Some((self.operand(a)? == Value::Null) != *negated),
            Pred::BoolColumn(i) => match self.row.get(*i) {
                Some(Value::Boolean(v)) => Some(*v),
                _ => None,
            },
            Pred::Deleted => Some(self.system.deleted),
            Pred::Const(v) => *v,
            Pred::Not(p) => self.pred(p)?.map(|v| !v),
            Pred::And(items) => self.all(items, false)?,
            Pred::Or(items) => self.all(items, true)?,
        })
    }

    /// AND (decisive = false) or OR (decisive = true), left to right, stopping at the value
    /// that decides (as the plan does, so a later error is not reached).
    fn all(&self, items: &[Pred], decisive: bool) -> Eval<Option<bool>> {
        let mut unknown = false;
        for item in items {
            match self.pred(item)? {
                Some(v) if v == decisive => return Ok(Some(decisive)),
                None => unknown = true,
                Some(_) => {}
            }
        }
        Ok(if unknown { None } else { Some(!decisive) })
    }
}
