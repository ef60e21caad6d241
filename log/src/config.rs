//! Configuration of partitions and stores, with the defaults from `limits.rs`.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{LogError, Result};
use crate::limits::{
    OPEN_PARTITIONS_DEFAULT, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN,
    SHARED_SYNC_PARTITIONS_DEFAULT,
};
use crate::seq::{Clock, NodeId, SystemClock};
use crate::storage::{FileStorage, Storage};

/// When an append counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After fdatasync. Concurrent appends share one write and one fdatasync per partition.
    Always,
    /// After the write reaches the page cache; a background thread fdatasyncs every interval.
    Interval(Duration),
    /// After the write reaches the page cache; synced only when a segment is sealed or the
    /// partition is closed.
    Never,
}

/// Settings of one partition (and of every partition of a store).
#[derive(Clone, Debug)]
pub struct PartitionConfig {
    /// Size at which the active segment is sealed and a new one started
    /// (`SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX`).
    pub segment_bytes_max: u64,
    /// When an append counts as done.
    pub fsync: FsyncPolicy,
    /// This node's id, part of every `_seq` it issues.
    pub node: NodeId,
    /// Where files are written; tests swap in faults (`storage::FaultyStorage`).
    pub storage: Arc<dyn Storage>,
    /// The wall clock `_seq`s and record timestamps come from.
    pub clock: Arc<dyn Clock>,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            segment_bytes_max: SEGMENT_BYTES_DEFAULT,
            fsync: FsyncPolicy::Always,
            node: NodeId::default(),
            storage: Arc::new(FileStorage),
            clock: Arc::new(SystemClock),
        }
    }
}

impl PartitionConfig {
    /// `InvalidConfig` for a segment size out of range or a zero fsync interval.
    pub fn validate(&self) -> Result<()> {
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes_max) {
            return Err(LogError::InvalidConfig("segment_bytes_max out of range"));
        }
        if self.fsync == FsyncPolicy::Interval(Duration::ZERO) {
            return Err(LogError::InvalidConfig("fsync interval must be above zero"));
        }
        Ok(())
    }
}

/// Settings of a store: the partition settings plus the bound on open partitions.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Settings of every partition of the store.
    pub partition: PartitionConfig,
    /// Partitions kept open (one descriptor and a few maps each) before idle ones are closed;
    /// also the bound on partitions holding their segment file open, however many partitions
    /// callers hold: the least recently written close theirs (`commit/files.rs`).
    pub open_partitions_max: usize,
    /// Under `fsync=always`, a commit round that touched at least this many partitions makes
    /// them durable with one `syncfs` of the data file system instead of one fdatasync each.
    /// `syncfs` also flushes other programs' dirty data on that file system: raise this on a
    /// shared disk.
    pub shared_sync_partitions_min: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            partition: PartitionConfig::default(),
            open_partitions_max: OPEN_PARTITIONS_DEFAULT,
            shared_sync_partitions_min: SHARED_SYNC_PARTITIONS_DEFAULT,
        }
    }
}
