//! Time-relative filters of subscriptions: a WHERE such as `created_at > now() - INTERVAL '1
//! minute'` whose result changes as time passes, without any write. [`ClockTerms`] are the
//! comparisons of a row expression with `now()` shifted by a constant; for a row, each one
//! flips exactly when `now()` crosses the row's value minus the shift. A row's match can
//! therefore change only at those instants ([`ClockTerms::instants`]): realtime re-evaluates it
//! there, and nowhere else.
//!
//! Any other use of `now()` in a subscription (in the SELECT list, in arithmetic with a
//! column, with grouping) has no such instants and is refused.

use super::node::Node;
use super::{RowFields, SystemColumns};
use crate::ast::ScalarFunction;
use crate::error::{Result, SqlError};
use crate::value::ValueRef;

/// `row_side <op> now() + shift`: flips at `row_side - shift`.
#[derive(Debug, Clone, PartialEq)]
struct ClockTerm {
    row_side: Node,
    shift: i64,
}

/// The clock comparisons of a subscription's WHERE.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockTerms {
    terms: Vec<ClockTerm>,
}

impl ClockTerms {
    /// The terms of `filter`; `others` (the SELECT list, ORDER BY) must not read the clock,
    /// nor may a grouping query.
    pub(crate) fn of<'a>(
        filter: Option<&Node>,
        mut others: impl Iterator<Item = &'a Node>,
        grouped: bool,
    ) -> Result<ClockTerms> {
        if grouped {
            let what = "now() in a grouping subscription";
            return Err(SqlError::unsupported(what, None));
        }
        if others.any(reads_now) {
            let what = "now() in a subscription's SELECT list or ORDER BY (only in WHERE)";
            return Err(SqlError::unsupported(what, None));
        }
        let mut terms = Vec::new();
        if let Some(filter) = filter {
            collect(filter, &mut terms)?;
        }
        Ok(ClockTerms { terms })
    }

    /// Adds to `out` the instants (microseconds since the Unix epoch) at which the row's
    /// comparisons with `now()` flip. Between two of them the row's match does not change.
    pub fn instants<R: RowFields + ?Sized>(
        &self,
        row: &R,
        system: SystemColumns,
        out: &mut Vec<i64>,
    ) {
        for term in &self.terms {
            let Ok(value) = term.row_side.eval(row, system) else {
                continue;
            };
            if let ValueRef::Timestamp(micros) = value.as_ref() {
                out.extend(micros.checked_sub(term.shift));
            }
        }
    }
}

fn collect(node: &Node, terms: &mut Vec<ClockTerm>) -> Result<()> {
    match node {
        Node::Compare { left, right, .. } => match (now_shift(left), now_shift(right)) {
            (None, None) if !reads_now(left) && !reads_now(right) => Ok(()),
            (Some(shift), None) if !reads_now(right) => {
                terms.push(ClockTerm {
                    row_side: (**right).clone(),
                    shift,
                });
                Ok(())
            }
            (None, Some(shift)) if !reads_now(left) => {
                terms.push(ClockTerm {
                    row_side: (**left).clone(),
                    shift,
                });
                Ok(())
            }
            _ => Err(unsupported_use()),
        },
        Node::And(items) | Node::Or(items) => {
            items.iter().try_for_each(|item| collect(item, terms))
        }
        Node::Not(inner) => collect(inner, terms),
        other if reads_now(other) => Err(unsupported_use()),
        _ => Ok(()),
    }
}

fn unsupported_use() -> SqlError {
    SqlError::unsupported(
        "this use of now() in a subscription: compare a column with now() plus or minus an \
         INTERVAL (created_at > now() - INTERVAL '1 hour')",
        None,
    )
}

/// `now()` or `now() ± INTERVAL ...`: the shift in microseconds.
fn now_shift(node: &Node) -> Option<i64> {
    match node {
        Node::Call {
            function: ScalarFunction::Now,
            ..
        } => Some(0),
        Node::ShiftTime { expr, micros } => now_shift(expr)?.checked_add(*micros),
        _ => None,
    }
}

fn reads_now(node: &Node) -> bool {
    match node {
        Node::Call {
            function: ScalarFunction::Now,
            ..
        } => true,
        Node::Column(_) | Node::Seq | Node::Deleted | Node::Const(_) => false,
        Node::Not(e) | Node::Negate(e) => reads_now(e),
        Node::And(items) | Node::Or(items) => items.iter().any(reads_now),
        Node::Compare { left, right, .. }
        | Node::Arith { left, right, .. }
        | Node::Concat(left, right) => reads_now(left) || reads_now(right),
        Node::InList { expr, .. }
        | Node::Like { expr, .. }
        | Node::IsNull { expr, .. }
        | Node::Cast { expr, .. }
        | Node::ShiftTime { expr, .. } => reads_now(expr),
        Node::Call { args, .. } => args.iter().any(reads_now),
        Node::Case {
            branches,
            otherwise,
        } => {
            reads_now(otherwise)
                || branches
                    .iter()
                    .any(|(when, then)| reads_now(when) || reads_now(then))
        }
    }
}
