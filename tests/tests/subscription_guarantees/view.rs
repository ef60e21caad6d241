//! A subscriber's copy of its result in `subscription_guarantees` ([`View`]): a snapshot's
//! rows and the plain changes applied to it, each checked in itself (for top-K, grouping,
//! time-relative and join subscriptions: `window.rs`, `groups.rs`); and [`diff`], how a
//! failure shows two results apart.

use std::collections::BTreeMap;

use serde_json::Value;
use strand_wire::{ChangeType, Row};

use super::window::Received;
use super::{key_of, seq_of};

/// One applied change: its `_seq`, key and the key's new row (`None` after a delete).
pub struct Applied {
    pub seq: u64,
    pub key: i64,
    pub row: Option<Row>,
}

/// A subscriber's copy of its result and the last `_seq` it received.
#[derive(Default)]
pub struct View {
    pub rows: BTreeMap<i64, Row>,
    pub last: u64,
    /// During a keyed catch-up (docs/websocket.md, "Keyed catch-up"): its
    /// `snapshot_end_seq`, and the `from_seq_id` it started from (a resume meanwhile starts
    /// from there again: the keyed changes bring any copy between the two to the result at
    /// the end).
    pub keyed: Option<Keyed>,
    /// The keys of the snapshot's rows in the order they came (a window's are in order).
    pub loaded: Vec<i64>,
    /// A window's copies not yet checked against the model, and the `_seq` of the last one
    /// checked (`session_check.rs`).
    pub received: Vec<Received>,
    pub checked_at: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Keyed {
    pub from: u64,
    pub until: u64,
}

impl View {
    /// A snapshot batch's rows: every `_seq` at or below the boundary, no key twice.
    pub fn load(&mut self, rows: &[Row], boundary: u64) -> Result<(), String> {
        for row in rows {
            let (seq, key) = (seq_of(row)?, key_of(row)?);
            if seq > boundary {
                return Err(format!(
                    "snapshot row after the boundary {boundary}: {row:?}"
                ));
            }
            self.loaded.push(key);
            if let Some(earlier) = self.rows.insert(key, row.clone()) {
                return Err(format!(
                    "snapshot sent key {key} twice: {earlier:?}, {row:?}"
                ));
            }
        }
        Ok(())
    }

    /// A `change`: `_seq` strictly above everything received, an insert of an absent key, an
    /// update whose `old_rows` is exactly the row held, a delete of the row held (with the
    /// deleting `_seq`).
    pub fn apply(
        &mut self,
        kind: ChangeType,
        rows: &[Row],
        old_rows: Option<&[Row]>,
    ) -> Result<Applied, String> {
        let [row] = rows else {
            return Err(format!("a change with {} rows", rows.len()));
        };
        let (seq, key) = (seq_of(row)?, key_of(row)?);
        if seq <= self.last {
            return Err(format!(
                "_seq {seq} does not increase (last received {}): gap/duplicate/reorder",
                self.last
            ));
        }
        if let Some(keyed) = self.keyed {
            return self.apply_keyed(keyed, kind, row, old_rows.is_some());
        }
        let held = self.rows.get(&key);
        let applied = match (kind, held) {
            (ChangeType::Insert, None) => Some(row.clone()),
            (ChangeType::Update, Some(held)) => {
                match old_rows {
                    Some([old]) if old == held => {}
                    _ => return Err(format!("update old_rows {old_rows:?} != held row {held:?}")),
                }
                Some(row.clone())
            }
            (ChangeType::Delete, Some(held)) => {
                let strip = |r: &Row| {
                    let mut r = r.clone();
                    r.remove("_seq");
                    r
                };
                if strip(row) != strip(held) {
                    return Err(format!("delete row {row:?} != held row {held:?}"));
                }
                None
            }
            (kind, held) => {
                return Err(format!("{kind:?} of key {key} while holding {held:?}"));
            }
        };
        match &applied {
            Some(new) => self.rows.insert(key, new.clone()),
            None => self.rows.remove(&key),
        };
        self.last = seq;
        Ok(Applied {
            seq,
            key,
            row: applied,
        })
    }

    /// A change of a keyed catch-up: an `insert` replaces any row with its key, a `delete`
    /// (only the key and `_seq`) drops the row with its key if there is one; no `update`, and
    /// nothing above its `snapshot_end_seq`, which the last keyed change carries (it is the
    /// newest record the catch-up read). The caller checks the copy at that `_seq`.
    fn apply_keyed(
        &mut self,
        keyed: Keyed,
        kind: ChangeType,
        row: &Row,
        has_old_rows: bool,
    ) -> Result<Applied, String> {
        let (seq, key) = (seq_of(row)?, key_of(row)?);
        if seq > keyed.until {
            return Err(format!(
                "a keyed catch-up to {} sent _seq {seq} before reaching it",
                keyed.until
            ));
        }
        let applied = match (kind, has_old_rows) {
            (ChangeType::Insert, false) => {
                self.rows.insert(key, row.clone());
                Some(row.clone())
            }
            (ChangeType::Delete, false) if row.keys().all(|k| k == "id" || k == "_seq") => {
                self.rows.remove(&key);
                None
            }
            _ => return Err(format!("{kind:?} is not a keyed catch-up change: {row:?}")),
        };
        self.last = seq;
        if seq == keyed.until {
            self.keyed = None;
        }
        Ok(Applied {
            seq,
            key,
            row: applied,
        })
    }
}

/// Missing, extra and different rows of `got` against `want`, or `None` when equal.
pub fn diff(got: &BTreeMap<i64, Row>, want: &BTreeMap<i64, Row>) -> Option<String> {
    let mut lines = Vec::new();
    for (key, row) in want {
        match got.get(key) {
            None => lines.push(format!("  missing id {key}: {}", Value::from(row.clone()))),
            Some(other) if other != row => lines.push(format!(
                "  different id {key}: got {}, want {}",
                Value::from(other.clone()),
                Value::from(row.clone())
            )),
            Some(_) => {}
        }
    }
    for (key, row) in got {
        if !want.contains_key(key) {
            lines.push(format!("  extra id {key}: {}", Value::from(row.clone())));
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}
