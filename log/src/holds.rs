//! [`ReadHold`]: a reader's claim on the history after its position. A reader that follows a
//! partition across many snapshots (a live feed, a catch-up, a view over several partitions)
//! reads each record after its position *and* the previous version that record names. Keyed
//! compaction removes superseded versions and old tombstones; without a hold it could remove
//! them between two of the reader's snapshots, and the reader would read an update as an
//! insert, or never learn of a delete, without any sign of it.
//!
//! The rule compaction keeps (`compaction.rs`): with holds at positions `p1..pn`, let
//! `H = min(p)`. Nothing above `H` is removed, and a version at or below `H` is removed only
//! when a newer version of its key is also at or below `H`. So every record a holder has not
//! read is there, and so is its previous version (it is the newest as of `H`, or above `H`).
//!
//! A hold registered at a position below a compaction that is already running would not be
//! seen by that compaction's plan: the compaction checks the holds again, under the same lock
//! that registration takes, before it raises the floors and swaps its segments in, and gives
//! up its swap if a hold now lies below its plan. Removals finished before a hold was
//! registered raised the lowest resumable `_seq` above every record they touched, so a holder
//! registered at `p` checks `lowest_resumable_seq() <= p` once, after registering.
//!
//! A hold whose position is older than [`READ_HOLD_AGE_MAX_MS`] is not honoured: a reader
//! that far behind must not stop compaction for good. It may then find history removed, and
//! learns it from the floors (which is why holders keep checking them).

use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::limits::READ_HOLD_AGE_MAX_MS;
use crate::partition::Partition;
use crate::seq::Seq;

/// Below this many entries, registration does not prune released holds.
const PRUNE_AT_LEAST: usize = 16;

/// A reader's claim that every record after [`ReadHold::position`] stays readable together
/// with its previous version. Released when dropped.
#[derive(Debug)]
pub struct ReadHold {
    position: Arc<AtomicU64>,
}

impl ReadHold {
    /// The reader has read everything up to `seq`: compaction may now treat it as history.
    /// A hold never moves back.
    pub fn advance(&self, seq: Seq) {
        self.position.fetch_max(seq.0, Ordering::AcqRel);
    }

    /// Every record after this `_seq` is kept for the holder.
    pub fn position(&self) -> Seq {
        Seq(self.position.load(Ordering::Acquire))
    }
}

/// The holds of one partition.
#[derive(Debug, Default)]
pub(crate) struct ReadHolds {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    /// Released holds stay until the next prune: registration prunes when the list has
    /// doubled since the last one, so a partition that is never compacted (many subscribes,
    /// no compaction) keeps at most twice its live holds.
    held: Vec<Weak<AtomicU64>>,
    prune_at: usize,
}

/// The holds, locked: registration waits while a compaction decides and swaps under it.
pub(crate) struct LockedHolds<'a> {
    slots: MutexGuard<'a, Slots>,
}

impl ReadHolds {
    pub(crate) fn lock(&self) -> LockedHolds<'_> {
        LockedHolds {
            slots: self.slots.lock(),
        }
    }
}

impl LockedHolds<'_> {
    fn register(&mut self, seq: Seq) -> ReadHold {
        let slots = &mut *self.slots;
        if slots.held.len() >= slots.prune_at {
            slots.held.retain(|slot| slot.strong_count() > 0);
            slots.prune_at = (slots.held.len() * 2).max(PRUNE_AT_LEAST);
        }
        let position = Arc::new(AtomicU64::new(seq.0));
        slots.held.push(Arc::downgrade(&position));
        ReadHold { position }
    }

    /// The lowest position of a live hold whose `_seq` is not older than `now_unix_ms` minus
    /// [`READ_HOLD_AGE_MAX_MS`], forgetting released holds.
    pub(crate) fn lowest(&mut self, now_unix_ms: u64) -> Option<Seq> {
        let oldest_ms = now_unix_ms.saturating_sub(READ_HOLD_AGE_MAX_MS);
        let mut lowest: Option<Seq> = None;
        self.slots.held.retain(|slot| match slot.upgrade() {
            Some(position) => {
                let at = Seq(position.load(Ordering::Acquire));
                if at == Seq::ZERO || at.unix_ms() >= oldest_ms {
                    lowest = Some(lowest.map_or(at, |l| l.min(at)));
                }
                true
            }
            None => false,
        });
        lowest
    }
}

impl Partition {
    /// Hold the history after `seq` for a reader that has read everything up to it (see the
    /// module comment). A reader resuming from an old `seq` must check
    /// [`Partition::lowest_resumable_seq`] after this: history removed before the hold was
    /// registered is not brought back.
    pub fn hold_reads_after(&self, seq: Seq) -> ReadHold {
        self.holds.lock().register(seq)
    }

    /// [`Partition::hold_reads_after`] the newest committed record, and that record's `_seq`:
    /// for a reader that starts from now.
    pub fn hold_reads_from_now(&self) -> (ReadHold, Seq) {
        let mut holds = self.holds.lock();
        let last = self.last_seq();
        (holds.register(last), last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition that is never compacted does not collect released holds: a million
    /// subscribe-and-leave cycles leave at most a few entries behind.
    #[test]
    fn released_holds_are_pruned_by_registration() {
        let holds = ReadHolds::default();
        let kept = holds.lock().register(Seq(5));
        for i in 0..1_000_000u64 {
            drop(holds.lock().register(Seq(i)));
        }
        let mut locked = holds.lock();
        assert!(
            locked.slots.held.len() <= PRUNE_AT_LEAST,
            "{}",
            locked.slots.held.len()
        );
        assert_eq!(locked.lowest(0), Some(Seq(5)));
        drop(kept);
        assert_eq!(locked.lowest(0), None);
    }
}
