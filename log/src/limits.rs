//! Named bounds of the log. Every queue, buffer and file size the crate keeps is bounded by a
//! constant here (or by a config field whose default is here), unit last.

/// Default size at which the active segment is sealed and a new one started.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest segment size a config may ask for; below this the header dominates.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Largest segment size: positions inside a segment are stored as `u32` in the index.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;
/// One sparse-index entry per this many bytes of records.
pub const INDEX_INTERVAL_BYTES: u32 = 4096;
/// Largest key of one record.
pub const KEY_BYTES_MAX: usize = u16::MAX as usize;
/// Largest payload of one record.
pub const PAYLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest encoded batch of one append call; a batch never spans two segments.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest number of records of one append call.
pub const BATCH_RECORDS_MAX: usize = 1 << 20;
/// Default number of partitions a store keeps open (each holds one descriptor and one map).
pub const OPEN_PARTITIONS_DEFAULT: usize = 256;
/// How far ahead of the issued `_seq` the store's high-water mark is persisted, in milliseconds.
pub const SEQ_LEASE_MS: u64 = 10_000;
/// Default partitions touched by one commit round from which one `syncfs` replaces fdatasyncs.
pub const SHARED_SYNC_PARTITIONS_DEFAULT: usize = 4;
