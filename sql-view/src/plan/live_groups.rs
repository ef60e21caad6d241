//! [`LiveGroups`]: a grouping query's groups kept up to date one written row at a time, for
//! live aggregate subscriptions. A write removes the old version's contribution from its group
//! and adds the new version's to its own; only the groups it touched are evaluated again
//! (HAVING, then the SELECT list), and [`GroupChange`]s say how their output rows changed.
//!
//! COUNT, SUM and AVG are O(1) per change; MIN and MAX keep each group's values in an ordered
//! multiset, so a delete of the current minimum finds the next one (O(log n)). A DISTINCT
//! aggregate keeps its values the same way and is computed from them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use super::accumulate::{decimal_average, GroupKey};
use super::aggregate::{AggregateSpec, AggregateStage};
use super::select::SelectPlan;
use super::{RowFields, SystemColumns};
use crate::ast::AggregateFunction;
use crate::decimal::Decimal;
use crate::error::{code, Result, SqlError};
use crate::value::{sort_order, DataType, Value};

/// A value ordered as ORDER BY orders it.
#[derive(Debug, Clone)]
struct Ordered(Value);

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> Ordering {
        sort_order(self.0.as_ref(), other.0.as_ref())
    }
}

/// One aggregate's state in one group, able to take values out again.
#[derive(Debug, Default)]
struct LiveSlot {
    /// Non-NULL values (rows, for `COUNT(*)`).
    count: i64,
    int_sum: i128,
    double_sum: f64,
    /// DECIMAL values' mantissas at the output's scale; `None` once a change overflowed
    /// (then SUM and AVG are `numeric_overflow`).
    decimal_sum: Option<i128>,
    /// For MIN, MAX and DISTINCT aggregates: the values and how many times each occurs.
    values: Option<BTreeMap<Ordered, i64>>,
}

impl LiveSlot {
    fn new(spec: &AggregateSpec) -> LiveSlot {
        let keeps_values = spec.distinct
            || matches!(
                spec.function,
                AggregateFunction::Min | AggregateFunction::Max
            );
        LiveSlot {
            values: keeps_values.then(BTreeMap::new),
            decimal_sum: Some(0),
            ..LiveSlot::default()
        }
    }

    /// Add (`sign` 1) or take out (`sign` -1) one row's argument (`None` for `COUNT(*)`).
    fn change(&mut self, spec: &AggregateSpec, value: Option<Value>, sign: i64) {
        let value = match value {
            None => {
                self.count += sign;
                return;
            }
            Some(Value::Null) => return,
            Some(value) => value,
        };
        self.count += sign;
        match &value {
            Value::Int(v) => self.int_sum += i128::from(*v) * i128::from(sign),
            Value::BigInt(v) => self.int_sum += i128::from(*v) * i128::from(sign),
            Value::Double(v) => self.double_sum += v * sign as f64,
            _ => {}
        }
        if let DataType::Decimal { scale, .. } = spec.output {
            let mantissa = decimal_at(&value, scale);
            self.decimal_sum = self
                .decimal_sum
                .zip(mantissa)
                .and_then(|(sum, m)| sum.checked_add(m.checked_mul(i128::from(sign))?));
        }
        if let Some(values) = &mut self.values {
            let key = Ordered(value);
            let occurrences = values.entry(key.clone()).or_insert(0);
            *occurrences += sign;
            if *occurrences <= 0 {
                values.remove(&key);
            }
        }
    }

    /// The aggregate's value; a DOUBLE past f64's range is `numeric_overflow`.
    fn value(&self, spec: &AggregateSpec) -> Result<Value> {
        match self.value_unchecked(spec)? {
            Value::Double(v) if !v.is_finite() => Err(SqlError::new(
                code::NUMERIC_OVERFLOW,
                "SUM or AVG is out of DOUBLE range",
                None,
            )),
            value => Ok(value),
        }
    }

    fn value_unchecked(&self, spec: &AggregateSpec) -> Result<Value> {
        if spec.distinct {
            return self.distinct_value(spec);
        }
        Ok(match spec.function {
            AggregateFunction::Count => Value::BigInt(self.count),
            _ if self.count == 0 => Value::Null,
            AggregateFunction::Sum if spec.output == DataType::BigInt => {
                Value::BigInt(i64::try_from(self.int_sum).map_err(|_| overflow())?)
            }
            AggregateFunction::Sum | AggregateFunction::Avg if spec.output.is_decimal() => {
                let sum = self.decimal_total(spec)?;
                match spec.function {
                    AggregateFunction::Sum => Value::Decimal(sum),
                    _ => decimal_average(sum, self.count)?,
                }
            }
            AggregateFunction::Sum => Value::Double(self.double_sum + self.int_sum as f64),
            AggregateFunction::Avg => {
                Value::Double((self.double_sum + self.int_sum as f64) / self.count as f64)
            }
            AggregateFunction::Min => self.extreme(true),
            AggregateFunction::Max => self.extreme(false),
        })
    }

    /// The DECIMAL sum at the input's scale (the output's, for SUM; AVG's input scale is
    /// not kept, so AVG sums at its own output scale, which only adds zeros).
    fn decimal_total(&self, spec: &AggregateSpec) -> Result<Decimal> {
        let DataType::Decimal { scale, .. } = spec.output else {
            return Err(decimal_overflow());
        };
        self.decimal_sum
            .and_then(|sum| Decimal::new(sum, scale))
            .ok_or_else(decimal_overflow)
    }

    fn extreme(&self, first: bool) -> Value {
        let values = self.values.as_ref();
        let found = if first {
            values.and_then(|v| v.keys().next())
        } else {
            values.and_then(|v| v.keys().next_back())
        };
        found.map_or(Value::Null, |v| v.0.clone())
    }

    /// A DISTINCT aggregate, computed from the distinct values.
    fn distinct_value(&self, spec: &AggregateSpec) -> Result<Value> {
        let values: Vec<&Value> = self
            .values
            .as_ref()
            .map(|v| v.keys().map(|k| &k.0).collect())
            .unwrap_or_default();
        if spec.function == AggregateFunction::Count {
            return Ok(Value::BigInt(values.len() as i64));
        }
        if values.is_empty() {
            return Ok(Value::Null);
        }
        if let DataType::Decimal { scale, .. } = spec.output {
            let mut sum = Some(0i128);
            for value in &values {
                sum = sum
                    .zip(decimal_at(value, scale))
                    .and_then(|(s, m)| s.checked_add(m));
            }
            let sum = sum
                .and_then(|s| Decimal::new(s, scale))
                .ok_or_else(decimal_overflow)?;
            return match spec.function {
                AggregateFunction::Sum => Ok(Value::Decimal(sum)),
                AggregateFunction::Avg => decimal_average(sum, values.len() as i64),
                AggregateFunction::Min => Ok(values[0].clone()),
                _ => Ok(values[values.len() - 1].clone()),
            };
        }
        let (mut ints, mut doubles) = (0i128, 0f64);
        for value in &values {
            match value {
                Value::Int(v) => ints += i128::from(*v),
                Value::BigInt(v) => ints += i128::from(*v),
                Value::Double(v) => doubles += v,
                _ => {}
            }
        }
        Ok(match spec.function {
            AggregateFunction::Sum if spec.output == DataType::BigInt => {
                Value::BigInt(i64::try_from(ints).map_err(|_| overflow())?)
            }
            AggregateFunction::Sum => Value::Double(doubles + ints as f64),
            AggregateFunction::Avg => Value::Double((doubles + ints as f64) / values.len() as f64),
            AggregateFunction::Min => values[0].clone(),
            _ => values[values.len() - 1].clone(),
        })
    }
}

fn overflow() -> SqlError {
    SqlError::new(code::NUMERIC_OVERFLOW, "SUM is out of BIGINT range", None)
}

fn decimal_overflow() -> SqlError {
    SqlError::new(
        code::NUMERIC_OVERFLOW,
        "SUM or AVG is out of DECIMAL range",
        None,
    )
}

/// A number's mantissa at `scale` (rounded, for a computed value with more decimals);
/// `None` when it does not fit, which the caller turns into an overflow.
fn decimal_at(value: &Value, scale: u8) -> Option<i128> {
    let decimal = match value {
        Value::Decimal(v) => *v,
        Value::Int(v) => Decimal::from_i64(i64::from(*v)),
        Value::BigInt(v) => Decimal::from_i64(*v),
        _ => return Some(0),
    };
    decimal.rescale(scale).ok().map(Decimal::mantissa)
}

#[derive(Debug)]
struct LiveGroup {
    /// Rows in the group: at 0 it is gone (unless the query has no GROUP BY).
    rows: i64,
    slots: Vec<LiveSlot>,
}

/// How one group's output row changed: as it was shown before (if it was) and after.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupChange {
    /// The group's key values.
    pub key: Vec<Value>,
    /// The output row the client held (`None`: the group did not show).
    pub before: Option<Vec<Value>>,
    /// The output row now (`None`: the group is gone, or HAVING drops it).
    pub after: Option<Vec<Value>>,
}

/// The live groups of a grouping query (see the module documentation).
#[derive(Debug)]
pub struct LiveGroups {
    groups: HashMap<GroupKey, LiveGroup>,
}

impl SelectPlan {
    /// Empty live groups for this query, if it groups.
    pub fn live_groups(&self) -> Option<LiveGroups> {
        self.aggregate.as_ref()?;
        Some(LiveGroups {
            groups: HashMap::new(),
        })
    }
}

impl LiveGroups {
    /// Apply one write: `old` is the replaced version and `new` the written one, each given
    /// only if it matches WHERE. Returns the groups whose output row changed.
    pub fn apply<R: RowFields + ?Sized>(
        &mut self,
        plan: &SelectPlan,
        old: Option<(&R, SystemColumns)>,
        new: Option<(&R, SystemColumns)>,
    ) -> Result<Vec<GroupChange>> {
        let Some(stage) = plan.aggregate.as_deref() else {
            return Ok(Vec::new());
        };
        let mut touched: Vec<(GroupKey, Option<Vec<Value>>)> = Vec::with_capacity(2);
        for (version, sign) in [(old, -1i64), (new, 1i64)] {
            let Some((row, system)) = version else {
                continue;
            };
            let key = GroupKey(stage.key_of(row, system)?);
            if !touched.iter().any(|(k, _)| *k == key) {
                let before = self.output(stage, &key)?;
                touched.push((key.clone(), before));
            }
            let group = self.groups.entry(key).or_insert_with(|| LiveGroup {
                rows: 0,
                slots: stage.aggregates.iter().map(LiveSlot::new).collect(),
            });
            group.rows += sign;
            for (slot, spec) in group.slots.iter_mut().zip(&stage.aggregates) {
                let value = match &spec.arg {
                    Some(node) => Some(node.eval(row, system)?.into_value()),
                    None => None,
                };
                slot.change(spec, value, sign);
            }
        }
        let mut changes = Vec::with_capacity(touched.len());
        for (key, before) in touched {
            if self.groups.get(&key).is_some_and(|g| g.rows <= 0) {
                self.groups.remove(&key);
            }
            let after = self.output(stage, &key)?;
            if before != after {
                changes.push(GroupChange {
                    key: key.0,
                    before,
                    after,
                });
            }
        }
        Ok(changes)
    }

    /// Every group's output row (those HAVING keeps), in key order.
    pub fn rows(&self, plan: &SelectPlan) -> Result<Vec<(Vec<Value>, Vec<Value>)>> {
        let Some(stage) = plan.aggregate.as_deref() else {
            return Ok(Vec::new());
        };
        let mut keys: Vec<&GroupKey> = self.groups.keys().collect();
        if stage.single_group && keys.is_empty() {
            let empty = GroupKey(Vec::new());
            return Ok(self
                .output(stage, &empty)?
                .map(|row| (Vec::new(), row))
                .into_iter()
                .collect());
        }
        keys.sort_by(|a, b| a.order(b));
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(row) = self.output(stage, key)? {
                rows.push((key.0.clone(), row));
            }
        }
        Ok(rows)
    }

    /// The group's output row, if it exists and passes HAVING.
    fn output(&self, stage: &AggregateStage, key: &GroupKey) -> Result<Option<Vec<Value>>> {
        let mut group_row = key.0.clone();
        match self.groups.get(key) {
            Some(group) => {
                for (slot, spec) in group.slots.iter().zip(&stage.aggregates) {
                    group_row.push(slot.value(spec)?);
                }
            }
            // Without GROUP BY the one group always exists, empty or not.
            None if stage.single_group => {
                for spec in &stage.aggregates {
                    group_row.push(LiveSlot::new(spec).value(spec)?);
                }
            }
            None => return Ok(None),
        }
        let system = SystemColumns::default();
        if !stage.output.matches(&group_row, system)? {
            return Ok(None);
        }
        Ok(Some(stage.output.project(&group_row, system)?))
    }
}

#[cfg(test)]
mod tests;
