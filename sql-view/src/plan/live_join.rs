//! [`LiveJoin`]: a join subscription's result kept up to date one written row at a time, on
//! either side, without IO. The shape it keeps live is a row of the first table (a USER or
//! STREAM table: messages) looking up its partner in each joined table (SHARED lookup tables:
//! channels) by that table's primary key, from the first table's own columns
//! (`JOIN app.channels c ON c.id = m.channel_id`). So each first-table row gives at most one
//! joined row, named by the first table's row key, and a write on either side re-evaluates
//! only the rows it can touch: its own, or the first-table rows that point at the partner
//! (an index from each partner key to the rows that look it up).
//!
//! The broker feeds every table's writes in `_seq` order and renders what changed.

use std::collections::{HashMap, HashSet};

use super::join::JoinPlan;
use super::join_exec::{JoinedRow, RowFieldsDyn};
use super::node::Node;
use super::select::SelectPlan;
use super::{RowFields, SystemColumns};
use crate::ast::JoinKind;
use crate::coerce::coerce_value;
use crate::error::{Result, SqlError};
use crate::limits;
use crate::row::encode_key;
use crate::value::{DataType, Value};

/// How a first-table row finds its partner in one joined table.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    /// Over the first table's own row: the partner's primary key.
    pub(crate) probe: Node,
    pub(crate) key_type: DataType,
}

impl JoinPlan {
    /// The lookups of a join a subscription can keep live, or `unsupported` naming why not.
    pub(crate) fn live_lookups(&self) -> Result<Vec<Lookup>> {
        let first_width = self.sources[0].table().columns().len();
        let refuse = |label: &str| {
            SqlError::unsupported(
                format!(
                    "this join in a subscription: a live join looks up each joined table by its \
                     primary key from columns of the first table (JOIN {label} ON \
                     {label}.<primary key> = <first table column>)"
                ),
                None,
            )
        };
        self.steps
            .iter()
            .map(|step| {
                let source = &self.sources[step.source];
                let pk = source
                    .table()
                    .primary_key()
                    .ok_or_else(|| refuse(source.label()))?;
                let reads_first = |node: &Node| {
                    let mut only_first = true;
                    node.visit_fields(&mut |f| only_first &= f < first_width);
                    only_first
                };
                step.build_keys
                    .iter()
                    .zip(&step.probe_keys)
                    .find(|(build, probe)| **build == Node::Column(pk) && reads_first(probe))
                    .map(|(_, probe)| Lookup {
                        probe: probe.clone(),
                        key_type: source.table().columns()[pk].data_type,
                    })
                    .ok_or_else(|| refuse(source.label()))
            })
            .collect()
    }
}

/// A joined table's row: its values and `_seq`.
type Partner = (Vec<Value>, i64);

/// One row of the first table, as the view holds it.
#[derive(Debug)]
struct FirstRow {
    values: Vec<Value>,
    seq: i64,
    /// Its partner key in each joined table (`None`: NULL, or no such key can exist).
    partners: Vec<Option<Vec<u8>>>,
    /// Its joined row's output values and `_seq`, if it is in the result.
    output: Option<(Vec<Value>, i64)>,
}

/// What a write changed: output rows that left (as the client held them) and that entered,
/// each with the key of the first-table row it comes from. A row in both changed.
#[derive(Debug, Default, PartialEq)]
pub struct JoinChange {
    /// (row key, output values as held, their `_seq`) of rows the client removes.
    pub left: Vec<(Vec<u8>, Vec<Value>, i64)>,
    /// (row key, output values, their `_seq`) of rows the client sets.
    pub entered: Vec<(Vec<u8>, Vec<Value>, i64)>,
}

impl JoinChange {
    /// Whether the write changed nothing the client holds.
    pub fn is_empty(&self) -> bool {
        self.left.is_empty() && self.entered.is_empty()
    }
}

/// A live join's state (see the module documentation).
#[derive(Debug)]
pub struct LiveJoin {
    lookups: Vec<Lookup>,
    /// Per joined table: its rows by primary key (encoded), with their `_seq`.
    partners: Vec<HashMap<Vec<u8>, Partner>>,
    /// Per joined table: which first-table rows look up each key.
    referrers: Vec<HashMap<Vec<u8>, HashSet<Vec<u8>>>>,
    rows: HashMap<Vec<u8>, FirstRow>,
}

impl SelectPlan {
    /// An empty live join for this plan, if it is a join a subscription can keep live
    /// (checked when compiled: [`SelectPlan::compile_live`]).
    pub fn live_join(&self) -> Option<LiveJoin> {
        let lookups = self.join()?.live_lookups().ok()?;
        Some(LiveJoin {
            partners: lookups.iter().map(|_| HashMap::new()).collect(),
            referrers: lookups.iter().map(|_| HashMap::new()).collect(),
            lookups,
            rows: HashMap::new(),
        })
    }
}

impl LiveJoin {
    /// Rows held (both sides), for the memory bound.
    fn held(&self) -> usize {
        self.rows.len() + self.partners.iter().map(HashMap::len).sum::<usize>()
    }

    fn check_bound(&self) -> Result<()> {
        if self.held() > limits::LIVE_JOIN_ROWS_MAX {
            return Err(SqlError::limit(
                "rows of a live join's tables",
                limits::LIVE_JOIN_ROWS_MAX,
                None,
            ));
        }
        Ok(())
    }

    /// The output rows in the result, with the key of the first-table row of each.
    pub fn outputs(&self) -> impl Iterator<Item = (&[u8], &[Value], i64)> {
        self.rows.iter().filter_map(|(key, row)| {
            row.output
                .as_ref()
                .map(|(values, seq)| (key.as_slice(), values.as_slice(), *seq))
        })
    }

    /// A write of joined table `source` (1-based, as in FROM): its row with primary key `key`
    /// is now `new` (`None`: deleted). Re-evaluates the first-table rows that look it up.
    pub fn apply_partner<R: RowFields + ?Sized>(
        &mut self,
        plan: &SelectPlan,
        source: usize,
        key: &[u8],
        new: Option<(&R, i64)>,
        change: &mut JoinChange,
    ) -> Result<()> {
        let Some(step) = source.checked_sub(1).filter(|s| *s < self.lookups.len()) else {
            return Ok(());
        };
        let width = plan
            .join()
            .map_or(0, |join| join.sources[source].table().columns().len());
        match new {
            Some((row, seq)) => {
                let values = (0..width).map(|i| row.field(i).to_value()).collect();
                self.partners[step].insert(key.to_vec(), (values, seq));
            }
            None => {
                self.partners[step].remove(key);
            }
        }
        self.check_bound()?;
        let referrers: Vec<Vec<u8>> = self.referrers[step]
            .get(key)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default();
        for row_key in referrers {
            self.reevaluate(plan, &row_key, change)?;
        }
        Ok(())
    }

    /// A write of the first table: its row named `key` (primary key, or `_seq` for keyless
    /// rows) is now `new` (`None`: deleted).
    pub fn apply_first<R: RowFields + ?Sized>(
        &mut self,
        plan: &SelectPlan,
        key: &[u8],
        new: Option<(&R, i64)>,
        change: &mut JoinChange,
    ) -> Result<()> {
        if let Some(old) = self.rows.remove(key) {
            self.unrefer(key, &old);
            if let Some((values, seq)) = old.output {
                change.leave(key, values, seq);
            }
        }
        let Some((row, seq)) = new else {
            return Ok(());
        };
        let Some(join) = plan.join() else {
            return Ok(());
        };
        let system = SystemColumns {
            seq,
            deleted: false,
            now: 0,
        };
        // A row the WHERE's conditions on the first table alone refuse can never show.
        if let Some(filter) = &join.first_filter {
            if filter.truth(row, system)? != Some(true) {
                return Ok(());
            }
        }
        let width = join.sources[0].table().columns().len();
        let values: Vec<Value> = (0..width).map(|i| row.field(i).to_value()).collect();
        let mut partners = Vec::with_capacity(self.lookups.len());
        for lookup in &self.lookups {
            let probe = lookup.probe.eval(&values, system)?.into_value();
            let key = match probe {
                Value::Null => None,
                value => coerce_value(value, lookup.key_type)
                    .ok()
                    .and_then(|v| encode_key(v.as_ref())),
            };
            partners.push(key);
        }
        for (step, partner) in partners.iter().enumerate() {
            if let Some(partner) = partner {
                self.referrers[step]
                    .entry(partner.clone())
                    .or_default()
                    .insert(key.to_vec());
            }
        }
        self.rows.insert(
            key.to_vec(),
            FirstRow {
                values,
                seq,
                partners,
                output: None,
            },
        );
        self.check_bound()?;
        self.reevaluate(plan, key, change)
    }

    fn unrefer(&mut self, key: &[u8], row: &FirstRow) {
        for (step, partner) in row.partners.iter().enumerate() {
            let Some(partner) = partner else {
                continue;
            };
            if let Some(keys) = self.referrers[step].get_mut(partner) {
                keys.remove(key);
                if keys.is_empty() {
                    self.referrers[step].remove(partner);
                }
            }
        }
    }

    /// The output of the first-table row `key` again, recording how it changed.
    fn reevaluate(&mut self, plan: &SelectPlan, key: &[u8], change: &mut JoinChange) -> Result<()> {
        let Some(row) = self.rows.get(key) else {
            return Ok(());
        };
        let Some(join) = plan.join() else {
            return Ok(());
        };
        let mut joined = JoinedRow::new(join);
        joined.set(0, &row.values as &dyn RowFieldsDyn, row.seq);
        let mut dropped = false;
        for (step, partner) in row.partners.iter().enumerate() {
            let source = step + 1;
            let found = partner
                .as_ref()
                .and_then(|partner| self.partners[step].get(partner));
            if let Some((values, seq)) = found {
                joined.set(source, values as &dyn RowFieldsDyn, *seq);
                if join.steps[step].on.truth(&joined, joined.system())? != Some(true) {
                    joined.clear(source);
                }
            }
            if !joined.has(source) && join.steps[step].kind == JoinKind::Inner {
                dropped = true;
                break;
            }
        }
        let system = joined.system();
        let output = if !dropped && plan.matches(&joined, system).unwrap_or(false) {
            Some((plan.project(&joined, system)?, system.seq))
        } else {
            None
        };
        let before = row.output.clone();
        if before == output {
            return Ok(());
        }
        if let Some(row) = self.rows.get_mut(key) {
            row.output = output.clone();
        }
        if let Some((values, seq)) = before {
            change.leave(key, values, seq);
        }
        if let Some((values, seq)) = output {
            change.entered.push((key.to_vec(), values, seq));
        }
        Ok(())
    }
}

impl JoinChange {
    /// A row leaves: if it entered within this same change the client never saw it.
    fn leave(&mut self, key: &[u8], values: Vec<Value>, seq: i64) {
        match self.entered.iter().position(|(k, _, _)| k == key) {
            Some(index) => {
                self.entered.swap_remove(index);
            }
            None => self.left.push((key.to_vec(), values, seq)),
        }
    }
}

/// A first-table or partner row's name in the view: its encoded primary key (`_seq` bytes for
/// keyless rows), as the log keys it.
pub fn row_key(key: &[u8], seq: i64) -> Vec<u8> {
    if key.is_empty() {
        seq.to_be_bytes().to_vec()
    } else {
        key.to_vec()
    }
}
