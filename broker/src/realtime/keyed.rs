//! [`KeyedCatchUp`]: a resume from a `_seq` whose exact history compaction has removed, served
//! without a full re-download.
//!
//! Compaction keeps the newest version of every key (and tombstones for a while), so for a
//! cursor `C` at or above the partition's keyed floor the log still holds, for every key
//! changed after `C`, its newest version. Sending each of those, in `_seq` order, as an
//! `insert` (the newest version matches the filter: it replaces any row with that key the
//! client holds) or a `delete` naming the key (a tombstone, or a version that no longer
//! matches: the client drops the row if it holds one) takes the client from the result as of
//! `C` to the result as of the snapshot's boundary. Keys unchanged since `C` need nothing.
//!
//! It needs the primary key in the SELECT list (a delete names the row by it). The floors are
//! read after the snapshot is taken: compaction raises them before it removes anything, so a
//! snapshot never misses what the floors read after it promise.

use strand_log::{ReadFrom, ReadSnapshot, Seq};
use strand_wire::{encode_change, ChangeType};

use super::history::{decode, HistoryError};
use super::plan::SubscriptionPlan;
use crate::tables::versions::KeyedPartition;

/// A keyed catch-up in progress: the newest version of each key changed after the cursor, as
/// of one snapshot, sent in chunks.
pub struct KeyedCatchUp {
    snapshot: ReadSnapshot,
    /// `_seq`s of the newest versions to send, ascending; `next` is the first not yet sent.
    newest: Vec<Seq>,
    next: usize,
}

/// Whether a resume from a cursor can be served by a keyed catch-up.
pub enum KeyedOpen {
    Ready(KeyedCatchUp),
    /// Not even the newest state of every changed key is left (or the SELECT list lacks the
    /// primary key): only a fresh snapshot helps. `lowest` is the lowest resumable `_seq`.
    TooOld {
        lowest: Seq,
    },
}

impl KeyedCatchUp {
    pub fn open(
        partition: &KeyedPartition,
        plan: &SubscriptionPlan,
        after: Seq,
    ) -> Result<KeyedOpen, HistoryError> {
        let snapshot = partition.snapshot();
        let floors = partition.partition().resume_floors();
        let too_old = KeyedOpen::TooOld {
            lowest: floors.lowest_resumable_seq,
        };
        if after < floors.lowest_keyed_catch_up_seq || plan.key_output().is_none() {
            return Ok(too_old);
        }
        let mut slot_of: std::collections::HashMap<&[u8], usize> = Default::default();
        let mut newest: Vec<Seq> = Vec::new();
        for record in snapshot.records(ReadFrom::After(after)) {
            let record = record?;
            if record.key.is_empty() {
                // Rows without a key cannot be named: no keyed catch-up for them.
                return Ok(too_old);
            }
            match slot_of.get(record.key) {
                Some(&slot) => newest[slot] = record.seq,
                None => {
                    slot_of.insert(record.key, newest.len());
                    newest.push(record.seq);
                }
            }
        }
        drop(slot_of);
        newest.sort_unstable();
        Ok(KeyedOpen::Ready(KeyedCatchUp {
            snapshot,
            newest,
            next: 0,
        }))
    }

    /// The `_seq` the client's result is at once everything is sent.
    pub fn boundary(&self) -> Seq {
        self.snapshot.last_seq()
    }

    /// The next changes for subscription `id`, about `budget_bytes` of them; empty once done.
    pub fn next_chunk(
        &mut self,
        plan: &SubscriptionPlan,
        id: &str,
        budget_bytes: usize,
    ) -> Result<Vec<String>, HistoryError> {
        let mut messages = Vec::new();
        let Some(&first) = self.newest.get(self.next) else {
            return Ok(messages);
        };
        let mut bytes = 0usize;
        for record in self.snapshot.records(ReadFrom::Seq(first)) {
            let record = record?;
            let Some(&wanted) = self.newest.get(self.next) else {
                break;
            };
            if record.seq != wanted {
                continue;
            }
            self.next += 1;
            let live = match record.flags.is_tombstone() {
                true => None,
                false => Some(decode(record.payload)?),
            };
            let columns = plan.select().table().columns().len();
            if plan.expands_wildcard() && live.as_ref().is_some_and(|row| row.len() > columns) {
                return Err(HistoryError::SchemaChanged);
            }
            let text = match live {
                Some(row) if plan.matches(&row, record.seq) => {
                    let rows = json_array(plan.row_json(&row, record.seq));
                    encode_change(id, ChangeType::Insert, &rows, None)
                }
                _ => {
                    let Some(key_row) = plan.key_row_json(record.key, record.seq) else {
                        let reason = "a primary key that does not decode".to_owned();
                        return Err(HistoryError::Row(reason));
                    };
                    encode_change(id, ChangeType::Delete, &json_array(key_row), None)
                }
            };
            bytes += text.len();
            messages.push(text);
            if bytes >= budget_bytes {
                break;
            }
        }
        Ok(messages)
    }

    pub fn is_done(&self) -> bool {
        self.next >= self.newest.len()
    }
}

fn json_array(row: serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Array(vec![serde_json::Value::Object(row)]).to_string()
}
