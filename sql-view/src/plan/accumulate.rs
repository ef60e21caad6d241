//! [`GroupTable`]: the groups of a grouping query and their aggregates' accumulators, fed one
//! row at a time. COUNT counts non-NULL values (`COUNT(*)` rows); SUM of integers is a BIGINT
//! (`numeric_overflow` past it), of DOUBLEs a DOUBLE, of DECIMALs an exact DECIMAL of their
//! scale; AVG is a DOUBLE (of DECIMALs a DECIMAL, divided as `/`); MIN and MAX compare as
//! ORDER BY does. NULLs are skipped; an aggregate over no values is NULL (COUNT: 0). DISTINCT
//! counts each value once. Groups come out in key order.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use super::aggregate::AggregateSpec;
use super::node::Node;
use super::{RowFields, SystemColumns};
use crate::ast::AggregateFunction;
use crate::decimal::Decimal;
use crate::error::{code, Result, SqlError};
use crate::limits;
use crate::value::{sort_order, Value, ValueRef};

/// Values compared as GROUP BY does: NULLs equal each other, numbers by value.
#[derive(Debug, Clone)]
pub(crate) struct GroupKey(pub(crate) Vec<Value>);

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| sort_order(a.as_ref(), b.as_ref()).is_eq())
    }
}

impl Eq for GroupKey {}

impl GroupKey {
    /// Key order, as the groups come out: each value as ORDER BY orders it.
    pub(crate) fn order(&self, other: &GroupKey) -> std::cmp::Ordering {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(x, y)| sort_order(x.as_ref(), y.as_ref()))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in &self.0 {
            hash_value(value.as_ref(), state);
        }
    }
}

/// Whether the group key `key` is the row's (`keys` evaluated over it), as GROUP BY compares.
fn same_key<R: RowFields + ?Sized>(
    key: &GroupKey,
    keys: &[Node],
    row: &R,
    system: SystemColumns,
) -> Result<bool> {
    for (held, node) in key.0.iter().zip(keys) {
        if sort_order(held.as_ref(), node.eval(row, system)?.as_ref()).is_ne() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Consistent with [`sort_order`] equality: equal numbers of any type hash alike.
pub(crate) fn hash_value<H: Hasher>(value: ValueRef<'_>, state: &mut H) {
    // A whole DOUBLE in i64's range equals exactly one integer (`compare` is exact): hash it
    // as that integer. (-2^63 is a DOUBLE; 2^63 is past i64::MAX.)
    const TWO_POW_63: f64 = -(i64::MIN as f64);
    let integral =
        |v: f64| (v.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&v)).then_some(v as i64);
    match value {
        ValueRef::Null => 0u8.hash(state),
        ValueRef::Boolean(v) => (1u8, v).hash(state),
        ValueRef::Int(v) => (2u8, i64::from(v)).hash(state),
        ValueRef::BigInt(v) => (2u8, v).hash(state),
        ValueRef::Double(v) => match integral(v) {
            Some(i) => (2u8, i).hash(state),
            None => (3u8, v.to_bits()).hash(state),
        },
        ValueRef::Text(v) | ValueRef::Json(v) => (4u8, v).hash(state),
        ValueRef::Timestamp(v) => (5u8, v).hash(state),
        ValueRef::Bytes(v) => (6u8, v).hash(state),
        ValueRef::Uuid(v) => (7u8, v).hash(state),
        // Equal to an integer exactly, else to a DOUBLE as its nearest double (`compare`).
        ValueRef::Decimal(v) => match v.as_integer() {
            Some(i) => (2u8, i).hash(state),
            None => (3u8, v.to_f64().to_bits()).hash(state),
        },
        ValueRef::Date(v) => (9u8, v).hash(state),
    }
}

#[derive(Debug)]
enum Accumulator {
    Count(i64),
    SumInt(Option<i64>),
    SumDouble(Option<f64>),
    SumDecimal(Option<Decimal>),
    Avg { sum: f64, count: i64 },
    AvgDecimal { sum: Decimal, count: i64 },
    Extreme(Option<Value>),
}

#[derive(Debug)]
struct Slot {
    accumulator: Accumulator,
    /// For DISTINCT: the values seen.
    seen: Option<HashSet<GroupKey>>,
}

impl Slot {
    fn new(spec: &AggregateSpec) -> Slot {
        let accumulator = match spec.function {
            AggregateFunction::Count => Accumulator::Count(0),
            AggregateFunction::Sum if spec.output == crate::value::DataType::BigInt => {
                Accumulator::SumInt(None)
            }
            AggregateFunction::Sum if spec.output.is_decimal() => Accumulator::SumDecimal(None),
            AggregateFunction::Sum => Accumulator::SumDouble(None),
            AggregateFunction::Avg if spec.output.is_decimal() => Accumulator::AvgDecimal {
                sum: Decimal::from_i64(0),
                count: 0,
            },
            AggregateFunction::Avg => Accumulator::Avg { sum: 0.0, count: 0 },
            AggregateFunction::Min | AggregateFunction::Max => Accumulator::Extreme(None),
        };
        Slot {
            accumulator,
            seen: spec.distinct.then(HashSet::new),
        }
    }

    /// Add one row's argument (`None` for `COUNT(*)`).
    fn add(&mut self, spec: &AggregateSpec, value: Option<Value>) -> Result<()> {
        let value = match value {
            None => {
                if let Accumulator::Count(n) = &mut self.accumulator {
                    *n += 1;
                }
                return Ok(());
            }
            Some(Value::Null) => return Ok(()),
            Some(value) => value,
        };
        if let Some(seen) = &mut self.seen {
            if !seen.insert(GroupKey(vec![value.clone()])) {
                return Ok(());
            }
        }
        let number = |v: &Value| match v {
            Value::Int(i) => Some(f64::from(*i)),
            Value::BigInt(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            Value::Decimal(d) => Some(d.to_f64()),
            _ => None,
        };
        let decimal = |v: &Value| match v {
            Value::Int(i) => Some(Decimal::from_i64(i64::from(*i))),
            Value::BigInt(i) => Some(Decimal::from_i64(*i)),
            Value::Decimal(d) => Some(*d),
            _ => None,
        };
        let decimal_overflow =
            |_| SqlError::new(code::NUMERIC_OVERFLOW, "SUM is out of DECIMAL range", None);
        match &mut self.accumulator {
            Accumulator::Count(n) => *n += 1,
            Accumulator::SumInt(sum) => {
                let v = match value {
                    Value::Int(i) => i64::from(i),
                    Value::BigInt(i) => i,
                    _ => return Ok(()),
                };
                let total = sum.unwrap_or(0).checked_add(v).ok_or_else(|| {
                    SqlError::new(code::NUMERIC_OVERFLOW, "SUM is out of BIGINT range", None)
                })?;
                *sum = Some(total);
            }
            Accumulator::SumDouble(sum) => {
                if let Some(v) = number(&value) {
                    *sum = Some(sum.unwrap_or(0.0) + v);
                }
            }
            Accumulator::SumDecimal(sum) => {
                if let Some(v) = decimal(&value) {
                    let total = sum.unwrap_or(Decimal::from_i64(0)).plus(v);
                    *sum = Some(total.map_err(decimal_overflow)?);
                }
            }
            Accumulator::AvgDecimal { sum, count } => {
                if let Some(v) = decimal(&value) {
                    *sum = sum.plus(v).map_err(decimal_overflow)?;
                    *count += 1;
                }
            }
            Accumulator::Avg { sum, count } => {
                if let Some(v) = number(&value) {
                    *sum += v;
                    *count += 1;
                }
            }
            Accumulator::Extreme(best) => {
                let replace = match best {
                    None => true,
                    Some(current) => {
                        let order = sort_order(value.as_ref(), current.as_ref());
                        match spec.function {
                            AggregateFunction::Min => order.is_lt(),
                            _ => order.is_gt(),
                        }
                    }
                };
                if replace {
                    *best = Some(value);
                }
            }
        }
        Ok(())
    }

    /// The aggregate's value; a DOUBLE sum past f64's range is `numeric_overflow`.
    fn finish(self) -> Result<Value> {
        let value = match self.accumulator {
            Accumulator::Count(n) => Value::BigInt(n),
            Accumulator::SumInt(sum) => sum.map_or(Value::Null, Value::BigInt),
            Accumulator::SumDouble(sum) => sum.map_or(Value::Null, Value::Double),
            Accumulator::SumDecimal(sum) => sum.map_or(Value::Null, Value::Decimal),
            Accumulator::AvgDecimal { count: 0, .. } => Value::Null,
            Accumulator::AvgDecimal { sum, count } => decimal_average(sum, count)?,
            Accumulator::Avg { count: 0, .. } => Value::Null,
            Accumulator::Avg { sum, count } => Value::Double(sum / count as f64),
            Accumulator::Extreme(best) => best.unwrap_or(Value::Null),
        };
        match value {
            Value::Double(v) if !v.is_finite() => Err(SqlError::new(
                code::NUMERIC_OVERFLOW,
                "SUM or AVG is out of DOUBLE range",
                None,
            )),
            value => Ok(value),
        }
    }
}

/// `sum / count` as `/` divides DECIMALs.
pub(crate) fn decimal_average(sum: Decimal, count: i64) -> Result<Value> {
    match sum.divide(Decimal::from_i64(count)) {
        Some(Ok(average)) => Ok(Value::Decimal(average)),
        _ => Err(SqlError::new(
            code::NUMERIC_OVERFLOW,
            "AVG is out of DECIMAL range",
            None,
        )),
    }
}

/// The groups of one query run. Found by a hash of the key values read in place, so a row of
/// an existing group allocates nothing for its key; only a new group copies its key.
#[derive(Debug)]
pub(crate) struct GroupTable {
    groups: Vec<(GroupKey, Vec<Slot>)>,
    /// Key hash to the first group with it; `next` chains the others with the same hash.
    heads: HashMap<u64, u32>,
    next: Vec<u32>,
    hasher: std::collections::hash_map::RandomState,
    single_group: bool,
}

/// No further group in a hash chain.
const CHAIN_END: u32 = u32::MAX;

impl GroupTable {
    pub(crate) fn new(single_group: bool) -> GroupTable {
        GroupTable {
            groups: Vec::new(),
            heads: HashMap::new(),
            next: Vec::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            single_group,
        }
    }

    /// Add a row to the aggregates of its group, whose key is `keys` evaluated over it.
    pub(crate) fn add<R: RowFields + ?Sized>(
        &mut self,
        keys: &[Node],
        specs: &[AggregateSpec],
        row: &R,
        system: SystemColumns,
    ) -> Result<()> {
        let mut state = std::hash::BuildHasher::build_hasher(&self.hasher);
        for node in keys {
            hash_value(node.eval(row, system)?.as_ref(), &mut state);
        }
        let hash = state.finish();
        let mut at = self.heads.get(&hash).copied().unwrap_or(CHAIN_END);
        while let Some((key, _)) = self.groups.get(at as usize) {
            if same_key(key, keys, row, system)? {
                break;
            }
            at = self.next[at as usize];
        }
        if at == CHAIN_END {
            if self.groups.len() >= limits::GROUPS_MAX {
                return Err(SqlError::limit("groups", limits::GROUPS_MAX, None));
            }
            let key = keys
                .iter()
                .map(|node| Ok(node.eval(row, system)?.into_value()))
                .collect::<Result<Vec<_>>>()?;
            at = u32::try_from(self.groups.len()).unwrap_or(CHAIN_END);
            self.groups
                .push((GroupKey(key), specs.iter().map(Slot::new).collect()));
            let older = self.heads.insert(hash, at).unwrap_or(CHAIN_END);
            self.next.push(older);
        }
        let Some((_, slots)) = self.groups.get_mut(at as usize) else {
            return Ok(());
        };
        for (slot, spec) in slots.iter_mut().zip(specs) {
            let value = match &spec.arg {
                Some(node) => Some(node.eval(row, system)?.into_value()),
                None => None,
            };
            slot.add(spec, value)?;
        }
        Ok(())
    }

    /// Every group as `[key values..., aggregate values...]`, in key order.
    pub(crate) fn into_rows(mut self, specs: &[AggregateSpec]) -> Result<Vec<Vec<Value>>> {
        if self.single_group && self.groups.is_empty() {
            let slots = specs.iter().map(Slot::new).collect();
            self.groups.push((GroupKey(Vec::new()), slots));
        }
        let mut groups = self.groups;
        groups.sort_by(|a, b| a.0.order(&b.0));
        groups
            .into_iter()
            .map(|(key, slots)| {
                let mut row = key.0;
                for slot in slots {
                    row.push(slot.finish()?);
                }
                Ok(row)
            })
            .collect()
    }
}
