//! The compiled expression program: a tree over column indexes, system columns and
//! constants, evaluated per row with SQL three-valued logic. Fields are read in place
//! ([`RowFields::field`]) and compared as [`ValueRef`]s: a filter allocates nothing per row
//! (only `||` builds a string).
//!
//! It does not own typing (`compile.rs` only builds trees that type-check).

use std::cmp::Ordering;

use super::arith::{arith, negate, ArithOp};
use super::like::LikePattern;
use super::{RowFields, SystemColumns};
use crate::ast::ScalarFunction;
use crate::error::Result;
use crate::value::{compare, DataType, Value, ValueRef};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CompareOp {
    fn holds(self, order: Ordering) -> bool {
        match self {
            CompareOp::Eq => order == Ordering::Equal,
            CompareOp::NotEq => order != Ordering::Equal,
            CompareOp::Lt => order == Ordering::Less,
            CompareOp::LtEq => order != Ordering::Greater,
            CompareOp::Gt => order == Ordering::Greater,
            CompareOp::GtEq => order != Ordering::Less,
        }
    }
}

/// One node of a compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A table column by index (NULL past the stored fields).
    Column(usize),
    /// `_seq`.
    Seq,
    /// `_deleted`.
    Deleted,
    Const(Value),
    Not(Box<Node>),
    Negate(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Compare {
        op: CompareOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `result` is the static type: INT, BIGINT or DOUBLE.
    Arith {
        op: ArithOp,
        left: Box<Node>,
        right: Box<Node>,
        result: DataType,
    },
    Concat(Box<Node>, Box<Node>),
    /// `list` holds constants of the expression's type (NULLs included).
    InList {
        expr: Box<Node>,
        list: Vec<Value>,
        negated: bool,
    },
    Like {
        expr: Box<Node>,
        pattern: LikePattern,
        negated: bool,
    },
    IsNull {
        expr: Box<Node>,
        negated: bool,
    },
    /// A scalar function (`functions.rs`); its arguments type-checked.
    Call {
        function: ScalarFunction,
        args: Vec<Node>,
    },
    /// The first branch whose condition is true gives the value; else `otherwise`.
    Case {
        branches: Vec<(Node, Node)>,
        otherwise: Box<Node>,
    },
    /// `TIMESTAMP ± INTERVAL`, the interval in microseconds (negative for `-`).
    ShiftTime {
        expr: Box<Node>,
        micros: i64,
    },
    /// CAST of a value read from the row (constants are cast when compiled).
    Cast {
        expr: Box<Node>,
        target: DataType,
    },
}

/// The result of evaluating a node: borrowed from the row or the plan, or an owned string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Datum<'a> {
    Ref(ValueRef<'a>),
    Text(String),
    /// A value computed per row (a CAST).
    Owned(Value),
}

impl Datum<'_> {
    pub(crate) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Datum::Ref(value) => *value,
            Datum::Text(text) => ValueRef::Text(text),
            Datum::Owned(value) => value.as_ref(),
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            Datum::Ref(value) => value.to_value(),
            Datum::Text(text) => Value::Text(text),
            Datum::Owned(value) => value,
        }
    }
}

fn truth_datum<'a>(truth: Option<bool>) -> Datum<'a> {
    Datum::Ref(truth.map_or(ValueRef::Null, ValueRef::Boolean))
}

impl Node {
    /// Whether the node reads nothing of the row (so it can be folded into a constant).
    pub(crate) fn is_constant(&self) -> bool {
        match self {
            Node::Column(_) | Node::Seq | Node::Deleted => false,
            Node::Const(_) => true,
            Node::Not(e) | Node::Negate(e) => e.is_constant(),
            Node::And(items) | Node::Or(items) => items.iter().all(Node::is_constant),
            Node::Compare { left, right, .. } | Node::Arith { left, right, .. } => {
                left.is_constant() && right.is_constant()
            }
            Node::Concat(left, right) => left.is_constant() && right.is_constant(),
            Node::InList { expr, .. }
            | Node::Like { expr, .. }
            | Node::IsNull { expr, .. }
            | Node::Cast { expr, .. }
            | Node::ShiftTime { expr, .. } => expr.is_constant(),
            // A subscription's now(): its value moves with time.
            Node::Call {
                function: ScalarFunction::Now,
                ..
            } => false,
            Node::Call { args, .. } => args.iter().all(Node::is_constant),
            Node::Case {
                branches,
                otherwise,
            } => {
                otherwise.is_constant()
                    && branches
                        .iter()
                        .all(|(when, then)| when.is_constant() && then.is_constant())
            }
        }
    }

    /// Calls `visit` with every field the node reads (`Node::Column`), and with `usize::MAX`
    /// for a system column (`_seq`, `_deleted`, the clock), which no single field holds.
    pub(crate) fn visit_fields(&self, visit: &mut impl FnMut(usize)) {
        match self {
            Node::Column(index) => visit(*index),
            Node::Seq | Node::Deleted => visit(usize::MAX),
            Node::Const(_) => {}
            Node::Not(e) | Node::Negate(e) => e.visit_fields(visit),
            Node::And(items) | Node::Or(items) => items.iter().for_each(|i| i.visit_fields(visit)),
            Node::Compare { left, right, .. }
            | Node::Arith { left, right, .. }
            | Node::Concat(left, right) => {
                left.visit_fields(visit);
                right.visit_fields(visit);
            }
            Node::InList { expr, .. }
            | Node::Like { expr, .. }
            | Node::IsNull { expr, .. }
            | Node::Cast { expr, .. }
            | Node::ShiftTime { expr, .. } => expr.visit_fields(visit),
            Node::Call {
                function: ScalarFunction::Now,
                ..
            } => visit(usize::MAX),
            Node::Call { args, .. } => args.iter().for_each(|a| a.visit_fields(visit)),
            Node::Case {
                branches,
                otherwise,
            } => {
                otherwise.visit_fields(visit);
                for (when, then) in branches {
                    when.visit_fields(visit);
                    then.visit_fields(visit);
                }
            }
        }
    }

    /// The node with every field index lowered by `offset` (it reads only fields at or past
    /// `offset`): a joined row's node over one table's own row.
    pub(crate) fn shifted_down(&self, offset: usize) -> Node {
        let mut node = self.clone();
        node.shift_fields(offset);
        node
    }

    fn shift_fields(&mut self, offset: usize) {
        match self {
            Node::Column(index) => *index -= offset,
            Node::Seq | Node::Deleted | Node::Const(_) => {}
            Node::Not(e) | Node::Negate(e) => e.shift_fields(offset),
            Node::And(items) | Node::Or(items) => {
                items.iter_mut().for_each(|i| i.shift_fields(offset))
            }
            Node::Compare { left, right, .. }
            | Node::Arith { left, right, .. }
            | Node::Concat(left, right) => {
                left.shift_fields(offset);
                right.shift_fields(offset);
            }
            Node::InList { expr, .. }
            | Node::Like { expr, .. }
            | Node::IsNull { expr, .. }
            | Node::Cast { expr, .. }
            | Node::ShiftTime { expr, .. } => expr.shift_fields(offset),
            Node::Call { args, .. } => args.iter_mut().for_each(|a| a.shift_fields(offset)),
            Node::Case {
                branches,
                otherwise,
            } => {
                otherwise.shift_fields(offset);
                for (when, then) in branches {
                    when.shift_fields(offset);
                    then.shift_fields(offset);
                }
            }
        }
    }

    /// The value of the node for one row.
    pub(crate) fn eval<'a, R: RowFields + ?Sized>(
        &'a self,
        row: &'a R,
        system: SystemColumns,
    ) -> Result<Datum<'a>> {
        Ok(match self {
            Node::Column(index) => Datum::Ref(row.field(*index)),
            Node::Seq => Datum::Ref(ValueRef::BigInt(system.seq)),
            Node::Deleted => Datum::Ref(ValueRef::Boolean(system.deleted)),
            Node::Const(value) => Datum::Ref(value.as_ref()),
            Node::Negate(operand) => Datum::Ref(negate(operand.eval(row, system)?.as_ref())?),
            Node::Arith {
                op,
                left,
                right,
                result,
            } => {
                let left = left.eval(row, system)?;
                let right = right.eval(row, system)?;
                Datum::Ref(arith(*op, *result, left.as_ref(), right.as_ref())?)
            }
            Node::Concat(left, right) => {
                let left = left.eval(row, system)?;
                let right = right.eval(row, system)?;
                match (left.as_ref(), right.as_ref()) {
                    (ValueRef::Text(a), ValueRef::Text(b)) => Datum::Text(format!("{a}{b}")),
                    _ => Datum::Ref(ValueRef::Null),
                }
            }
            Node::Call { function, args } => super::functions::call(*function, args, row, system)?,
            Node::Case {
                branches,
                otherwise,
            } => {
                for (when, then) in branches {
                    if when.truth(row, system)? == Some(true) {
                        return then.eval(row, system);
                    }
                }
                otherwise.eval(row, system)?
            }
            Node::ShiftTime { expr, micros } => {
                let time = expr.eval(row, system)?;
                Datum::Ref(super::functions::shift_time(time.as_ref(), *micros)?)
            }
            Node::Cast { expr, target } => {
                let value = expr.eval(row, system)?.into_value();
                Datum::Owned(super::functions::cast_value(value, *target)?)
            }
            predicate => truth_datum(predicate.truth(row, system)?),
        })
    }

    /// The node as a condition: `Some(true)`, `Some(false)` or `None` for unknown (NULL).
    pub(crate) fn truth<R: RowFields + ?Sized>(
        &self,
        row: &R,
        system: SystemColumns,
    ) -> Result<Option<bool>> {
        Ok(match self {
            Node::Not(operand) => operand.truth(row, system)?.map(|v| !v),
            Node::And(items) => {
                let mut unknown = false;
                for item in items {
                    match item.truth(row, system)? {
                        Some(false) => return Ok(Some(false)),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                (!unknown).then_some(true)
            }
            Node::Or(items) => {
                let mut unknown = false;
                for item in items {
                    match item.truth(row, system)? {
                        Some(true) => return Ok(Some(true)),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(false)
            }
            Node::Compare { op, left, right } => {
                let left = left.eval(row, system)?;
                let right = right.eval(row, system)?;
                compare(left.as_ref(), right.as_ref()).map(|order| op.holds(order))
            }
            Node::InList {
                expr,
                list,
                negated,
            } => {
                let value = expr.eval(row, system)?;
                in_list(value.as_ref(), list).map(|found| found != *negated)
            }
            Node::Like {
                expr,
                pattern,
                negated,
            } => match expr.eval(row, system)?.as_ref() {
                ValueRef::Text(text) => Some(pattern.matches(text) != *negated),
                _ => None,
            },
            Node::IsNull { expr, negated } => {
                Some(expr.eval(row, system)?.as_ref().is_null() != *negated)
            }
            value => match value.eval(row, system)?.as_ref() {
                ValueRef::Boolean(v) => Some(v),
                _ => None,
            },
        })
    }
}

/// `value IN list`: true on a match; else unknown if either side has a NULL; else false.
fn in_list(value: ValueRef<'_>, list: &[Value]) -> Option<bool> {
    if value.is_null() {
        return None;
    }
    let mut unknown = false;
    for item in list {
        match compare(value, item.as_ref()) {
            Some(Ordering::Equal) => return Some(true),
            Some(_) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: SystemColumns = SystemColumns {
        seq: 7,
        deleted: false,
        now: 0,
    };

    fn constant(value: Value) -> Box<Node> {
        Box::new(Node::Const(value))
    }

    fn truth(node: &Node, row: &[Value]) -> Option<bool> {
        node.truth(row, SYSTEM).unwrap()
    }

    #[test]
    fn three_valued_logic() {
        let unknown = Node::Compare {
            op: CompareOp::Eq,
            left: constant(Value::Null),
            right: constant(Value::Int(1)),
        };
        let yes = Node::Const(Value::Boolean(true));
        let no = Node::Const(Value::Boolean(false));
        assert_eq!(truth(&unknown, &[]), None);
        assert_eq!(truth(&Node::Not(Box::new(unknown.clone())), &[]), None);
        assert_eq!(
            truth(&Node::And(vec![unknown.clone(), no.clone()]), &[]),
            Some(false)
        );
        assert_eq!(
            truth(&Node::And(vec![unknown.clone(), yes.clone()]), &[]),
            None
        );
        assert_eq!(
            truth(&Node::Or(vec![unknown.clone(), yes]), &[]),
            Some(true)
        );
        assert_eq!(truth(&Node::Or(vec![unknown, no]), &[]), None);
    }

    #[test]
    fn in_list_with_nulls() {
        let list = vec![Value::Int(1), Value::Null];
        let node = |value: Value, negated| Node::InList {
            expr: constant(value),
            list: list.clone(),
            negated,
        };
        assert_eq!(truth(&node(Value::Int(1), false), &[]), Some(true));
        assert_eq!(truth(&node(Value::Int(2), false), &[]), None);
        assert_eq!(truth(&node(Value::Int(2), true), &[]), None);
        assert_eq!(truth(&node(Value::Null, false), &[]), None);
    }

    #[test]
    fn columns_and_system_columns_read_the_row() {
        let row = vec![Value::Text("a".into())];
        let node = Node::Concat(Box::new(Node::Column(0)), Box::new(Node::Column(0)));
        assert_eq!(
            node.eval(&row[..], SYSTEM).unwrap(),
            Datum::Text("aa".into())
        );
        assert_eq!(
            Node::Column(5).eval(&row[..], SYSTEM).unwrap().as_ref(),
            ValueRef::Null
        );
        assert_eq!(
            Node::Seq.eval(&row[..], SYSTEM).unwrap().as_ref(),
            ValueRef::BigInt(7)
        );
        assert_eq!(truth(&Node::Deleted, &row), Some(false));
    }
}
