//! [`TopKWindow`]: the rows of a live `ORDER BY ... LIMIT n OFFSET m` result, kept up to date
//! one written row at a time, without I/O. The broker's side (`window_feed.rs`) computes keys
//! from stored rows, reads the table when the window runs dry, and encodes the [`Delta`]s.
//!
//! The window holds a prefix of the query's full ordered result in three ordered maps: the
//! `offset` rows before the visible part (`skipped`), the `limit` visible rows (`visible`,
//! what the client holds), and up to `spare_max` rows after them (`spare`), so that a row
//! leaving the visible part is usually replaced from memory. `complete` says the prefix is
//! the whole result (the table has no further matching row). Every step is a few `BTreeMap`
//! operations: logarithmic in the window, whatever the table's size.
//!
//! Invariant: `skipped ++ visible ++ spare` is, in order, exactly the first rows of the
//! result; `skipped` holds `offset` rows and `visible` `limit` rows unless the result has
//! fewer, or [`TopKWindow::needs_refill`] says the broker must read the table again.

use std::collections::BTreeMap;

/// A window key: the row's position in the result's total order (ORDER BY values, then the
/// primary key), which also names the row.
pub trait WindowKey: Ord + Clone {
    /// Whether both keys are of the same row (the same primary key), whatever their order.
    fn same_row(&self, other: &Self) -> bool;
}

/// A row version held in the window: its `_seq` and what the broker needs to show it.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowRow<P> {
    pub seq: u64,
    pub payload: P,
}

/// The visible rows one write changed: each entry is a row the client held before (`left`,
/// as it held it) and/or holds after (`entered`).
#[derive(Debug)]
pub struct Delta<K, P> {
    pub entries: Vec<DeltaEntry<K, P>>,
}

#[derive(Debug)]
pub struct DeltaEntry<K, P> {
    pub left: Option<(K, WindowRow<P>)>,
    pub entered: Option<(K, WindowRow<P>)>,
}

impl<K: WindowKey, P: Clone> Delta<K, P> {
    pub fn new() -> Self {
        Delta {
            entries: Vec::new(),
        }
    }

    fn entry_of(&mut self, key: &K) -> Option<&mut DeltaEntry<K, P>> {
        self.entries.iter_mut().find(|entry| {
            let named = entry.left.as_ref().or(entry.entered.as_ref());
            named.is_some_and(|(k, _)| k.same_row(key))
        })
    }

    /// The row left the visible part.
    fn left(&mut self, key: &K, row: &WindowRow<P>) {
        match self.entry_of(key) {
            Some(entry) => entry.entered = None,
            None => self.entries.push(DeltaEntry {
                left: Some((key.clone(), row.clone())),
                entered: None,
            }),
        }
        self.entries
            .retain(|entry| entry.left.is_some() || entry.entered.is_some());
    }

    /// The row (a version of it) entered the visible part.
    fn entered(&mut self, key: &K, row: &WindowRow<P>) {
        let entered = Some((key.clone(), row.clone()));
        match self.entry_of(key) {
            Some(entry) => entry.entered = entered,
            None => self.entries.push(DeltaEntry {
                left: None,
                entered,
            }),
        }
    }

    /// Drop entries whose row left and came back as the same version: nothing changed for
    /// the client.
    pub fn settle(&mut self) {
        self.entries
            .retain(|entry| match (&entry.left, &entry.entered) {
                (Some((_, a)), Some((_, b))) => a.seq != b.seq,
                _ => true,
            });
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: WindowKey, P: Clone> Default for Delta<K, P> {
    fn default() -> Self {
        Delta::new()
    }
}

/// A live top-K result (see the module documentation).
#[derive(Debug)]
pub struct TopKWindow<K, P> {
    offset: usize,
    limit: usize,
    spare_max: usize,
    skipped: BTreeMap<K, WindowRow<P>>,
    visible: BTreeMap<K, WindowRow<P>>,
    spare: BTreeMap<K, WindowRow<P>>,
    complete: bool,
}

impl<K: WindowKey, P: Clone> TopKWindow<K, P> {
    /// An empty window that knows nothing yet: fill it with [`TopKWindow::refill`].
    pub fn new(offset: usize, limit: usize, spare_max: usize) -> Self {
        TopKWindow {
            offset,
            limit,
            spare_max,
            skipped: BTreeMap::new(),
            visible: BTreeMap::new(),
            spare: BTreeMap::new(),
            complete: false,
        }
    }

    /// How many of the result's first rows a refill must collect.
    pub fn capacity(&self) -> usize {
        self.offset
            .saturating_add(self.limit)
            .saturating_add(self.spare_max)
    }

    /// The rows the client holds, in result order.
    pub fn visible(&self) -> impl Iterator<Item = (&K, &WindowRow<P>)> {
        self.visible.iter()
    }

    /// Whether the window lacks rows it should show and the table may have them: the broker
    /// must read the result's first [`TopKWindow::capacity`] rows and [`TopKWindow::refill`].
    pub fn needs_refill(&self) -> bool {
        !self.complete && (self.skipped.len() < self.offset || self.visible.len() < self.limit)
    }

    /// The version `key` of a row that matched the query is gone (deleted, changed, or no
    /// longer matching).
    pub fn remove(&mut self, key: &K, delta: &mut Delta<K, P>) {
        match self.visible.remove(key) {
            Some(row) => delta.left(key, &row),
            None if self.skipped.remove(key).is_some() || self.spare.remove(key).is_some() => {}
            None => return,
        }
        self.rebalance(delta);
    }

    /// A row version `key` that matches the query was written.
    pub fn insert(&mut self, key: K, row: WindowRow<P>, delta: &mut Delta<K, P>) {
        let before = |map: &BTreeMap<K, WindowRow<P>>| {
            map.last_key_value().is_some_and(|(last, _)| key < *last)
        };
        if before(&self.skipped) {
            self.skipped.insert(key, row);
        } else if before(&self.visible) {
            delta.entered(&key, &row);
            self.visible.insert(key, row);
        } else if before(&self.spare) {
            self.spare.insert(key, row);
        } else if self.complete {
            // After every known row, and there is no other: it is the result's last row.
            if self.skipped.len() < self.offset {
                self.skipped.insert(key, row);
            } else if self.visible.len() < self.limit {
                delta.entered(&key, &row);
                self.visible.insert(key, row);
            } else {
                self.spare.insert(key, row);
            }
        } else {
            // Somewhere after the known prefix: not in the window.
            return;
        }
        self.rebalance(delta);
    }

    /// Replace the window's rows with `rows`, the result's first rows as of now (at most
    /// [`TopKWindow::capacity`] of them, in any order); `complete` if they are all of it.
    /// `delta` receives the difference in the visible rows.
    pub fn refill(
        &mut self,
        rows: impl IntoIterator<Item = (K, WindowRow<P>)>,
        complete: bool,
        delta: &mut Delta<K, P>,
    ) {
        let mut all: BTreeMap<K, WindowRow<P>> = rows.into_iter().collect();
        let old_visible = std::mem::take(&mut self.visible);
        self.skipped.clear();
        self.spare.clear();
        while self.skipped.len() < self.offset {
            let Some((key, row)) = all.pop_first() else {
                break;
            };
            self.skipped.insert(key, row);
        }
        while self.visible.len() < self.limit {
            let Some((key, row)) = all.pop_first() else {
                break;
            };
            self.visible.insert(key, row);
        }
        self.spare = all;
        self.complete = complete;
        while self.spare.len() > self.spare_max {
            self.spare.pop_last();
            self.complete = false;
        }
        for (key, row) in &old_visible {
            if self.visible.get(key).is_none_or(|now| now.seq != row.seq) {
                delta.left(key, row);
            }
        }
        for (key, row) in &self.visible {
            if old_visible
                .get(key)
                .is_none_or(|before| before.seq != row.seq)
            {
                delta.entered(key, row);
            }
        }
    }

    /// Move rows between the parts until each has its size again.
    fn rebalance(&mut self, delta: &mut Delta<K, P>) {
        while self.skipped.len() > self.offset {
            let Some((key, row)) = self.skipped.pop_last() else {
                break;
            };
            delta.entered(&key, &row);
            self.visible.insert(key, row);
        }
        while self.visible.len() > self.limit {
            let Some((key, row)) = self.visible.pop_last() else {
                break;
            };
            delta.left(&key, &row);
            self.spare.insert(key, row);
        }
        while self.spare.len() > self.spare_max {
            self.spare.pop_last();
            self.complete = false;
        }
        while self.skipped.len() < self.offset {
            if let Some((key, row)) = self.visible.pop_first() {
                delta.left(&key, &row);
                self.skipped.insert(key, row);
            } else if let Some((key, row)) = self.spare.pop_first() {
                self.skipped.insert(key, row);
            } else {
                break;
            }
        }
        while self.visible.len() < self.limit {
            let Some((key, row)) = self.spare.pop_first() else {
                break;
            };
            delta.entered(&key, &row);
            self.visible.insert(key, row);
        }
    }
}

#[cfg(test)]
mod tests;
