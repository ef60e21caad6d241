//! `_seq`: the Snowflake-style id every record carries, and the generator that issues it.
//!
//! Layout (most significant first): 41 bits of milliseconds since [`EPOCH_UNIX_MS`], 10 bits of
//! node id, 12 bits of sequence within the millisecond; the sign bit stays 0 so a `_seq` fits an
//! SQL BIGINT. The generator never issues a value at or below one it issued before: when the
//! clock goes backwards it keeps counting from the last value, and when a millisecond's 4096 ids
//! are used it borrows the next millisecond. Persisting the high-water mark across restarts is
//! the store's job (see `store.rs`); this module only takes a floor via [`SeqGenerator::observe`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{LogError, Result};

/// 2024-01-01T00:00:00Z in milliseconds since the Unix epoch.
pub const EPOCH_UNIX_MS: u64 = 1_704_067_200_000;
const SEQUENCE_BITS: u32 = 12;
const NODE_BITS: u32 = 10;
const TIME_SHIFT: u32 = SEQUENCE_BITS + NODE_BITS;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;
const TIME_MS_MAX: u64 = (1 << 41) - 1;

/// One `_seq` value. `Seq(0)` is never issued and means "before everything".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl Seq {
    /// Below every issued `_seq`: "none" (no record, no previous version).
    pub const ZERO: Seq = Seq(0);
    /// The largest `_seq` (63 bits, so it fits a signed 64-bit integer everywhere).
    pub const MAX: Seq = Seq(i64::MAX as u64);

    /// Milliseconds since the Strand epoch encoded in this id.
    pub fn epoch_ms(self) -> u64 {
        self.0 >> TIME_SHIFT
    }

    /// Unix milliseconds encoded in this id.
    pub fn unix_ms(self) -> u64 {
        self.epoch_ms() + EPOCH_UNIX_MS
    }

    /// The node that issued it.
    pub fn node(self) -> NodeId {
        NodeId(((self.0 >> SEQUENCE_BITS) & ((1 << NODE_BITS) - 1)) as u16)
    }

    /// The next possible value, for "read everything after this".
    pub fn successor(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Inclusive range of `_seq` values assigned to one batch. Values inside are increasing but not
/// necessarily consecutive integers (a batch may cross a millisecond boundary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    /// `_seq` of the batch's first record.
    pub first: Seq,
    /// `_seq` of its last record.
    pub last: Seq,
    /// Records in the batch (the `_seq`s between first and last are not consecutive).
    pub count: u32,
}

/// Identity of a node in a cluster, 0..=1023.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeId(u16);

impl NodeId {
    /// The largest node id (10 bits).
    pub const MAX: u16 = (1 << NODE_BITS) - 1;

    /// `InvalidConfig` above [`NodeId::MAX`].
    pub fn new(id: u16) -> Result<NodeId> {
        if id > Self::MAX {
            return Err(LogError::InvalidConfig("node id must be in 0..=1023"));
        }
        Ok(NodeId(id))
    }

    /// The id as a number.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// Source of wall-clock time, injectable so tests can make it jump backwards.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> u64;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Issues strictly increasing `_seq` values for one node. Not synchronised: the caller holds
/// it behind the lock that also orders appends, so `_seq` order equals append order.
#[derive(Debug)]
pub struct SeqGenerator {
    node: NodeId,
    last: Seq,
}

impl SeqGenerator {
    /// A generator for `node` that issues only `_seq`s above `floor`.
    pub fn new(node: NodeId, floor: Seq) -> SeqGenerator {
        SeqGenerator { node, last: floor }
    }

    /// The largest value issued or observed so far.
    pub fn last(&self) -> Seq {
        self.last
    }

    /// Raise the floor: nothing at or below `seq` will be issued afterwards.
    pub fn observe(&mut self, seq: Seq) {
        self.last = self.last.max(seq);
    }

    /// Issue one id at `now_unix_ms`.
    pub fn next(&mut self, now_unix_ms: u64) -> Result<Seq> {
        let ms = now_unix_ms.saturating_sub(EPOCH_UNIX_MS).min(TIME_MS_MAX);
        let fresh = (ms << TIME_SHIFT) | (u64::from(self.node.0) << SEQUENCE_BITS);
        let next = if fresh > self.last.0 {
            fresh
        } else if self.last.0 & SEQUENCE_MASK < SEQUENCE_MASK && self.last.node() == self.node {
            self.last.0 + 1
        } else {
            // Borrow the next millisecond: either this one is used up, or the floor came from
            // another node's id and our own sequence space in it is unknown.
            let borrowed_ms = self.last.epoch_ms() + 1;
            if borrowed_ms > TIME_MS_MAX {
                return Err(LogError::SeqExhausted(self.last));
            }
            (borrowed_ms << TIME_SHIFT) | (u64::from(self.node.0) << SEQUENCE_BITS)
        };
        assert!(next > self.last.0, "seq generator went backwards");
        self.last = Seq(next);
        Ok(self.last)
    }

    /// Issue `count` ids at `now_unix_ms`.
    pub fn next_range(&mut self, now_unix_ms: u64, count: u32) -> Result<SeqRange> {
        assert!(
            count > 0,
            "empty ranges are rejected before reaching the generator"
        );
        let first = self.next(now_unix_ms)?;
        let mut last = first;
        for _ in 1..count {
            last = self.next(now_unix_ms)?;
        }
        Ok(SeqRange { first, last, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = EPOCH_UNIX_MS + 1_000_000;

    #[test]
    fn layout_places_time_node_and_sequence() {
        let mut generator = SeqGenerator::new(NodeId::new(5).unwrap(), Seq::ZERO);
        let seq = generator.next(NOW).unwrap();
        assert_eq!(seq.epoch_ms(), 1_000_000);
        assert_eq!(seq.node().get(), 5);
        assert_eq!(seq.0 & SEQUENCE_MASK, 0);
        assert!(seq.0 < (1 << 63));
    }

    #[test]
    fn clock_going_back_keeps_counting() {
        let mut generator = SeqGenerator::new(NodeId::new(1).unwrap(), Seq::ZERO);
        let a = generator.next(NOW).unwrap();
        let b = generator.next(NOW - 5_000).unwrap();
        assert!(b > a);
        assert_eq!(b.epoch_ms(), a.epoch_ms());
    }

    #[test]
    fn exhausted_millisecond_borrows_the_next() {
        let mut generator = SeqGenerator::new(NodeId::new(1).unwrap(), Seq::ZERO);
        let range = generator.next_range(NOW, 4097).unwrap();
        assert_eq!(range.first.epoch_ms() + 1, range.last.epoch_ms());
        assert_eq!(range.last.node().get(), 1);
    }

    #[test]
    fn node_id_out_of_range_is_rejected() {
        assert!(NodeId::new(1024).is_err());
    }
}
