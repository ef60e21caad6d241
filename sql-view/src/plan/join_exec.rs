//! Running a join as a hash join, without IO: the broker offers the rows of every table after
//! the first to a [`JoinBuild`] (each kept once, in a hash table keyed by its ON equalities),
//! then streams the first table's rows through [`JoinBuild::probe`], which hands each joined
//! row to the caller (usually a [`super::ResultCollector`]).
//!
//! Hash tables are keyed by a hash of the key values only (equal numbers of any type hash
//! alike); a collision costs a wasted candidate, never a wrong row, because every candidate is
//! checked against the whole ON.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::accumulate::hash_value;
use super::join::JoinPlan;
use super::node::Node;
use super::{RowFields, SystemColumns};
use crate::ast::JoinKind;
use crate::error::{code, Result, SqlError};
use crate::limits;
use crate::value::{Value, ValueRef};

/// No further row in a hash chain.
const CHAIN_END: u32 = u32::MAX;

/// The rows of one joined table, by key.
#[derive(Debug, Default)]
struct HashedTable {
    rows: Vec<(Vec<Value>, i64)>,
    /// Key hash to the newest row with it; `next` chains the older ones.
    heads: HashMap<u64, u32>,
    next: Vec<u32>,
}

/// The hash tables of a join's tables after the first, filled by the broker.
#[derive(Debug)]
pub struct JoinBuild<'p> {
    plan: &'p JoinPlan,
    tables: Vec<HashedTable>,
    hasher: RandomState,
    rows: usize,
}

impl JoinPlan {
    /// Empty hash tables for this join.
    pub fn start(&self) -> JoinBuild<'_> {
        JoinBuild {
            plan: self,
            tables: self.steps.iter().map(|_| HashedTable::default()).collect(),
            hasher: RandomState::new(),
            rows: 0,
        }
    }
}

impl JoinBuild<'_> {
    /// Offers a live row of `sources()[source]` (`source` >= 1). A row whose key has a NULL
    /// joins nothing (NULL equals nothing) and is not kept.
    pub fn add<R: RowFields + ?Sized>(&mut self, source: usize, row: &R, seq: i64) -> Result<()> {
        let Some(step) = source
            .checked_sub(1)
            .and_then(|index| self.plan.steps.get(index))
        else {
            return Ok(());
        };
        let system = SystemColumns {
            seq,
            deleted: false,
            now: 0,
        };
        if let Some(filter) = &step.build_filter {
            if filter.truth(row, system)? != Some(true) {
                return Ok(());
            }
        }
        let Some(hash) = key_hash(&self.hasher, &step.build_keys, row, system)? else {
            return Ok(());
        };
        self.rows += 1;
        if self.rows > limits::JOIN_BUILD_ROWS_MAX {
            return Err(SqlError::new(
                code::LIMIT_EXCEEDED,
                format!(
                    "the tables after the first in a join hold more than {} rows; put the \
                     largest table first in FROM",
                    limits::JOIN_BUILD_ROWS_MAX
                ),
                None,
            ));
        }
        let table = &mut self.tables[source - 1];
        let width = self.plan.sources[source].table().columns().len();
        let values = (0..width).map(|i| row.field(i).to_value()).collect();
        let id = u32::try_from(table.rows.len()).unwrap_or(CHAIN_END);
        table.rows.push((values, seq));
        let older = table.heads.insert(hash, id).unwrap_or(CHAIN_END);
        table.next.push(older);
        Ok(())
    }

    /// Joins one row of the first table: calls `emit` with each joined row (with every LEFT
    /// JOIN's missing side NULL) until it returns `Ok(false)`; returns whether to go on.
    pub fn probe<R: RowFields>(
        &self,
        row: &R,
        seq: i64,
        emit: &mut dyn FnMut(&JoinedRow<'_>, SystemColumns) -> Result<bool>,
    ) -> Result<bool> {
        if let Some(filter) = &self.plan.first_filter {
            let system = SystemColumns {
                seq,
                deleted: false,
                now: 0,
            };
            if filter.truth(row, system)? != Some(true) {
                return Ok(true);
            }
        }
        let mut joined = JoinedRow {
            plan: self.plan,
            parts: [None; limits::JOIN_TABLES_MAX],
        };
        joined.parts[0] = Some((row as &dyn RowFieldsDyn, seq));
        self.extend(0, &mut joined, emit)
    }

    fn extend<'r>(
        &'r self,
        step_index: usize,
        joined: &mut JoinedRow<'r>,
        emit: &mut dyn FnMut(&JoinedRow<'_>, SystemColumns) -> Result<bool>,
    ) -> Result<bool> {
        let Some(step) = self.plan.steps.get(step_index) else {
            return emit(joined, joined.system());
        };
        let system = joined.system();
        let table = &self.tables[step_index];
        let mut matched = false;
        if let Some(hash) = key_hash(&self.hasher, &step.probe_keys, joined, system)? {
            let mut id = table.heads.get(&hash).copied().unwrap_or(CHAIN_END);
            while let Some((values, seq)) = table.rows.get(id as usize) {
                joined.parts[step.source] = Some((values as &dyn RowFieldsDyn, *seq));
                if step.on.truth(joined, joined.system())? == Some(true) {
                    matched = true;
                    if !self.extend(step_index + 1, joined, emit)? {
                        return Ok(false);
                    }
                }
                id = table.next[id as usize];
            }
        }
        joined.parts[step.source] = None;
        if !matched && step.kind == JoinKind::Left && !self.extend(step_index + 1, joined, emit)? {
            return Ok(false);
        }
        Ok(true)
    }
}

/// The hash of a row's key values; `None` when one is NULL.
fn key_hash<R: RowFields + ?Sized>(
    hasher: &RandomState,
    keys: &[Node],
    row: &R,
    system: SystemColumns,
) -> Result<Option<u64>> {
    let mut state = hasher.build_hasher();
    for key in keys {
        let value = key.eval(row, system)?;
        let value = value.as_ref();
        if value == ValueRef::Null {
            return Ok(None);
        }
        hash_value(value, &mut state);
    }
    Ok(Some(state.finish()))
}

/// [`RowFields`] as a trait object: a joined row holds a stored row of the first table and
/// decoded rows of the others.
pub(crate) trait RowFieldsDyn {
    fn field_dyn(&self, index: usize) -> ValueRef<'_>;
}

impl<R: RowFields + ?Sized> RowFieldsDyn for R {
    fn field_dyn(&self, index: usize) -> ValueRef<'_> {
        self.field(index)
    }
}

/// One row of a join: each table's row (or none, for a LEFT JOIN's missing side) and `_seq`.
pub struct JoinedRow<'r> {
    plan: &'r JoinPlan,
    /// One entry per table of the join (the rest unused): no allocation per joined row.
    parts: [Option<(&'r dyn RowFieldsDyn, i64)>; limits::JOIN_TABLES_MAX],
}

impl<'r> JoinedRow<'r> {
    /// A joined row of `plan` with no table's row yet.
    pub(crate) fn new(plan: &'r JoinPlan) -> JoinedRow<'r> {
        JoinedRow {
            plan,
            parts: [None; limits::JOIN_TABLES_MAX],
        }
    }

    /// Table `source`'s row in it, with its `_seq`.
    pub(crate) fn set(&mut self, source: usize, row: &'r dyn RowFieldsDyn, seq: i64) {
        if let Some(part) = self.parts.get_mut(source) {
            *part = Some((row, seq));
        }
    }

    /// Table `source` missing (a LEFT JOIN's NULL side).
    pub(crate) fn clear(&mut self, source: usize) {
        if let Some(part) = self.parts.get_mut(source) {
            *part = None;
        }
    }

    pub(crate) fn has(&self, source: usize) -> bool {
        self.parts.get(source).is_some_and(Option::is_some)
    }

    /// The joined row's own system columns: the newest `_seq` of its parts, never deleted.
    pub(crate) fn system(&self) -> SystemColumns {
        let seq = self.parts.iter().flatten().map(|(_, seq)| *seq).max();
        SystemColumns {
            seq: seq.unwrap_or(0),
            deleted: false,
            now: 0,
        }
    }
}

impl RowFields for JoinedRow<'_> {
    fn field(&self, index: usize) -> ValueRef<'_> {
        let Some((part, source)) = self
            .parts
            .iter()
            .zip(&self.plan.sources)
            .rfind(|(_, source)| source.offset() <= index)
        else {
            return ValueRef::Null;
        };
        match part {
            None => ValueRef::Null,
            Some((_, seq)) if index == source.seq_field() => ValueRef::BigInt(*seq),
            Some((row, _)) if index < source.seq_field() => row.field_dyn(index - source.offset()),
            Some(_) => ValueRef::Null,
        }
    }
}
