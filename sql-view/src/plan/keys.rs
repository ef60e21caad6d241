//! Primary-key pinning: the set of primary key values outside of which a filter cannot
//! match, found from `pk = c`, `pk IN (...)`, AND (intersection) and OR (union). The broker
//! uses it for point lookups; values are normalized to the key column's type so they give
//! the same log key as stored rows (`id = 2.0` on a BIGINT key looks up 2).

use super::node::{CompareOp, Node};
use crate::row::encode_key;
use std::cmp::Ordering;

use crate::value::{compare, DataType, Value};

/// The pinned key values (deduplicated, in key order), or `None` if the filter does not pin.
pub(crate) fn pinned(node: &Node, key: usize, key_type: DataType) -> Option<Vec<Value>> {
    let mut values = candidates(node, key)?;
    values = values
        .into_iter()
        .filter_map(|v| normalize(v, key_type))
        .collect();
    let mut keyed: Vec<(Vec<u8>, Value)> = values
        .into_iter()
        .filter_map(|v| Some((encode_key(v.as_ref())?, v)))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Some(keyed.into_iter().map(|(_, value)| value).collect())
}

/// Candidate values, unnormalized (may hold NULLs and values of other numeric types).
fn candidates(node: &Node, key: usize) -> Option<Vec<Value>> {
    match node {
        Node::Compare {
            op: CompareOp::Eq,
            left,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (Node::Column(c), Node::Const(v)) | (Node::Const(v), Node::Column(c)) if *c == key => {
                Some(vec![v.clone()])
            }
            _ => None,
        },
        Node::InList {
            expr,
            list,
            negated: false,
        } => match expr.as_ref() {
            Node::Column(c) if *c == key => Some(list.clone()),
            _ => None,
        },
        Node::And(items) => {
            let mut sets = items.iter().filter_map(|item| candidates(item, key));
            let first = sets.next()?;
            // Equal as SQL compares them: INT 5, BIGINT 5 and DOUBLE 5.0 are one key.
            Some(sets.fold(first, |kept, set| {
                kept.into_iter()
                    .filter(|v| {
                        set.iter()
                            .any(|s| compare(v.as_ref(), s.as_ref()) == Some(Ordering::Equal))
                    })
                    .collect()
            }))
        }
        Node::Or(items) => {
            let mut union = Vec::new();
            for item in items {
                union.extend(candidates(item, key)?);
            }
            Some(union)
        }
        // `FALSE` or NULL as the whole condition matches nothing.
        Node::Const(Value::Boolean(false) | Value::Null) => Some(Vec::new()),
        _ => None,
    }
}

/// The value as the key column stores it, or `None` if no key of that type can equal it.
fn normalize(value: Value, key_type: DataType) -> Option<Value> {
    let integer = match value {
        Value::Int(v) => Some(i64::from(v)),
        Value::BigInt(v) => Some(v),
        Value::Double(v) if v.fract() == 0.0 && v.abs() < 9.2e18 => Some(v as i64),
        Value::Double(_) => None,
        Value::Null => return None,
        other => return (other.data_type() == Some(key_type)).then_some(other),
    };
    match key_type {
        DataType::Int => integer.and_then(|v| i32::try_from(v).ok()).map(Value::Int),
        DataType::BigInt => integer.map(Value::BigInt),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(column: usize, value: Value) -> Node {
        Node::Compare {
            op: CompareOp::Eq,
            left: Box::new(Node::Column(column)),
            right: Box::new(Node::Const(value)),
        }
    }

    #[test]
    fn equality_in_and_or() {
        let node = eq(0, Value::Int(5));
        assert_eq!(
            pinned(&node, 0, DataType::BigInt),
            Some(vec![Value::BigInt(5)])
        );
        assert_eq!(pinned(&node, 1, DataType::BigInt), None);
        let list = Node::InList {
            expr: Box::new(Node::Column(0)),
            list: vec![Value::Int(3), Value::Null, Value::Int(1), Value::Int(3)],
            negated: false,
        };
        assert_eq!(
            pinned(&list, 0, DataType::Int),
            Some(vec![Value::Int(1), Value::Int(3)])
        );
        let both = Node::And(vec![
            list.clone(),
            eq(0, Value::Int(3)),
            eq(1, Value::Int(9)),
        ]);
        assert_eq!(pinned(&both, 0, DataType::Int), Some(vec![Value::Int(3)]));
        let either = Node::Or(vec![eq(0, Value::Int(8)), list.clone()]);
        assert_eq!(pinned(&either, 0, DataType::Int).map(|v| v.len()), Some(3));
        let leaky = Node::Or(vec![eq(0, Value::Int(8)), eq(1, Value::Int(8))]);
        assert_eq!(pinned(&leaky, 0, DataType::Int), None);
    }

    #[test]
    fn values_are_normalized_to_the_key_type() {
        assert_eq!(
            pinned(&eq(0, Value::Double(2.0)), 0, DataType::BigInt),
            Some(vec![Value::BigInt(2)])
        );
        assert_eq!(
            pinned(&eq(0, Value::Double(2.5)), 0, DataType::BigInt),
            Some(vec![])
        );
        assert_eq!(
            pinned(&eq(0, Value::BigInt(1 << 40)), 0, DataType::Int),
            Some(vec![])
        );
        let text = Value::Text("a".into());
        assert_eq!(
            pinned(&eq(0, text.clone()), 0, DataType::Text),
            Some(vec![text])
        );
    }
}
