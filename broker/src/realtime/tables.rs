//! [`TableSubscriptions`]: every subscription by its table, so that DDL can end the
//! subscriptions it breaks instead of leaving them quiet forever.
//!
//! - `DROP TABLE`: every subscription of the table ends with `table_dropped`.
//! - `ALTER TABLE ... ADD COLUMN`: every `SELECT *` subscription ends with `schema_changed`
//!   (its plan was compiled for the old columns; the client subscribes again to get the new
//!   one). Subscriptions that name their columns go on unaffected: stored rows only grow at
//!   the end, so their plans read the same fields as before.
//!
//! A subscription compiled just before the DDL may register just after it; the registry
//! remembers dropped tables and the newest column count, so such a subscription ends at
//! registration. Tables are named by their partition prefix, which includes the table's
//! incarnation: a table created again under the same name is another table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use strand_wire::{codes, ServerMessage};

use super::plan::SubscriptionPlan;
use super::subscription::LiveSubscription;
use crate::tables::table_name_of_prefix;

/// What DDL did to a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableEvent {
    Dropped,
    /// Columns were appended; the table now has this many.
    ColumnsAdded {
        columns: usize,
    },
}

#[derive(Default)]
pub struct TableSubscriptions {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_table: HashMap<String, Vec<Weak<LiveSubscription>>>,
    dropped: HashSet<String>,
    /// The column count after the latest `ADD COLUMN`, per table.
    columns: HashMap<String, usize>,
}

impl TableSubscriptions {
    pub fn register(&self, table_prefix: &str, subscription: &Arc<LiveSubscription>) {
        let mut state = self.state.lock();
        let event = if state.dropped.contains(table_prefix) {
            Some(TableEvent::Dropped)
        } else {
            state
                .columns
                .get(table_prefix)
                .map(|&columns| TableEvent::ColumnsAdded { columns })
        };
        if let Some(event) = event {
            if end_if_broken(subscription, table_prefix, event) {
                return;
            }
        }
        let list = state.by_table.entry(table_prefix.to_owned()).or_default();
        if list.len() == list.capacity() {
            // Amortised: dead entries go before the list would grow.
            list.retain(|weak| weak.strong_count() > 0);
        }
        list.push(Arc::downgrade(subscription));
    }

    pub fn changed(&self, table_prefix: &str, event: TableEvent) {
        let mut state = self.state.lock();
        match event {
            TableEvent::Dropped => {
                state.dropped.insert(table_prefix.to_owned());
                state.columns.remove(table_prefix);
            }
            TableEvent::ColumnsAdded { columns } => {
                state.columns.insert(table_prefix.to_owned(), columns);
            }
        }
        let Some(list) = state.by_table.get_mut(table_prefix) else {
            return;
        };
        list.retain(|weak| match weak.upgrade() {
            Some(subscription) => !end_if_broken(&subscription, table_prefix, event),
            None => false,
        });
        if event == TableEvent::Dropped || list.is_empty() {
            state.by_table.remove(table_prefix);
        }
    }
}

/// The error ending a `SELECT *` subscription whose (first) table gained columns.
pub fn schema_changed(id: &str, plan: &SubscriptionPlan) -> ServerMessage {
    columns_added(id, &plan.select().table().name().to_string())
}

/// The error ending a `SELECT *` subscription whose table `table` gained columns.
fn columns_added(id: &str, table: &str) -> ServerMessage {
    ServerMessage::error(
        Some(id),
        codes::SCHEMA_CHANGED,
        format!(
            "table {table} has new columns; this SELECT * subscription has ended, subscribe \
             again to receive them"
        ),
    )
}

/// End `subscription` if `event` (to the table of partitions `table_prefix`, the first or a
/// joined one) breaks it; true if it ended (or had ended before).
fn end_if_broken(subscription: &LiveSubscription, table_prefix: &str, event: TableEvent) -> bool {
    let plan = &subscription.plan;
    let table = table_name_of_prefix(table_prefix);
    let message = match event {
        TableEvent::Dropped => ServerMessage::error(
            Some(&subscription.id),
            codes::TABLE_DROPPED,
            format!("table {table} was dropped; the subscription has ended"),
        ),
        TableEvent::ColumnsAdded { columns }
            if plan.expands_wildcard() && columns > columns_read(plan, table) =>
        {
            columns_added(&subscription.id, table)
        }
        TableEvent::ColumnsAdded { .. } => return !subscription.is_active(),
    };
    subscription.end_with(&message);
    true
}

/// How many columns of `table` (`<ns>.<table>`) the plan was compiled with: its first
/// table's, or a joined table's.
fn columns_read(plan: &SubscriptionPlan, table: &str) -> usize {
    let select = plan.select();
    let joined = select.join().map_or(&[][..], |join| join.sources());
    std::iter::once(select.table())
        .chain(joined.iter().map(|source| source.table()))
        .find(|def| def.name().to_string() == table)
        .map_or(usize::MAX, |def| def.columns().len())
}
