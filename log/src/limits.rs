//! Named bounds of the log. Every queue, buffer and file size the crate keeps is bounded by a
//! constant here (or by a config field whose default is here), unit last. The relations the
//! code relies on between them are checked at compile time at the bottom of this file.
//! (Format constants, such as header sizes and versions, live with their formats.)

use crate::record::{frame_bytes, FRAME_HEADER_BYTES};
use crate::segment::SEGMENT_HEADER_BYTES;

/// Default size at which the active segment is sealed and a new one started: large enough that
/// sealing (an fsync and an index write) is rare, small enough that retention and compaction
/// work in steps of a few seconds of disk time.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest segment size a config may ask for; below this the header dominates.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Largest segment size: positions inside a segment are stored as `u32` in the index.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;
/// One sparse-index entry per this many bytes of records: a read from a `_seq` scans at most
/// this much before its first record, and the index stays about 1/256 of the data.
pub const INDEX_INTERVAL_BYTES: u32 = 4096;
/// Largest key of one record: its length is stored as `u16` in the frame header.
pub const KEY_BYTES_MAX: usize = u16::MAX as usize;
/// Largest payload of one record: a row or message, not a file; larger payloads would make one
/// append hold the commit round (and its fsync) for everyone.
pub const PAYLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest encoded batch of one append call; a batch never spans two segments, so it must fit
/// one (see the checks below), and the commit leader copies it whole.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest number of records of one append call: bounds the `_seq`s one call takes (4096 a
/// millisecond), so one batch moves the generator at most 256 ms ahead of the clock.
pub const BATCH_RECORDS_MAX: usize = 1 << 20;
/// Default number of partitions a store keeps open (each holds one descriptor and one map).
pub const OPEN_PARTITIONS_DEFAULT: usize = 256;
/// How far ahead of the issued `_seq` the store's high-water mark is persisted, in milliseconds:
/// one durable lease write per this much time, and at most this much `_seq` space skipped
/// after a restart.
pub const SEQ_LEASE_MS: u64 = 10_000;
/// When less than this remains of the lease, a background thread moves it forward while ids
/// are still issued under the old one, so no appender waits for the lease's durable write.
/// Half the lease: the thread has five seconds to finish one small atomic write.
pub const SEQ_LEASE_RENEW_AHEAD_MS: u64 = SEQ_LEASE_MS / 2;
/// Default partitions touched by one commit round from which one `syncfs` replaces fdatasyncs.
pub const SHARED_SYNC_PARTITIONS_DEFAULT: usize = 4;
/// Longest partition name, in bytes: a relative path under the store's root, well below
/// `PATH_MAX` (4096 on Linux) with room for the root and a segment file name.
pub const PARTITION_NAME_BYTES_MAX: usize = 1024;
/// First step by which an active segment file is grown ahead of its data (with written zeros,
/// never holes: an fdatasync over allocated blocks needs no journal commit for allocation).
/// Small, so the many small partitions of a USER table stay small; also a new segment's size.
pub const GROWTH_BYTES_MIN: u64 = 4096;
/// Largest growth step (steps double up to it), so the one round that pays for a step stays
/// short; only O(log n) rounds of a partition pay for allocation at all.
pub const GROWTH_BYTES_MAX: u64 = 1024 * 1024;
/// Growth is rounded up to whole pages of this size.
pub const GROWTH_ALIGN_BYTES: u64 = 4096;
/// Bytes of zeros written (or read back, when checking that a file holds only zeros) per call:
/// a static buffer, so growing a file allocates nothing.
pub const ZEROS_CHUNK_BYTES: usize = 64 * 1024;
/// Appended bytes after which a segment not synced per commit starts their writeback, so the
/// fdatasync that seals it finds at most this much left to write.
pub const WRITEBACK_BYTES: u32 = 2 * 1024 * 1024;
/// Ranges waiting for the writeback thread; more are dropped (writeback is only a hint, and
/// the kernel's own writeback and the sealing fdatasync still write them).
pub const WRITEBACK_QUEUE_MAX: usize = 256;

// The largest record fits the largest batch, and so one append can always write it.
const _: () = assert!(frame_bytes(KEY_BYTES_MAX, PAYLOAD_BYTES_MAX) <= BATCH_BYTES_MAX);
// Frame lengths are `u32` fields.
const _: () = assert!(FRAME_HEADER_BYTES + KEY_BYTES_MAX + PAYLOAD_BYTES_MAX <= u32::MAX as usize);
// The largest batch fits the largest segment after its header (a batch never spans segments).
const _: () = assert!(BATCH_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX - SEGMENT_HEADER_BYTES as u64);
// With the default segment size, a largest record fits one segment.
const _: () = assert!(
    frame_bytes(KEY_BYTES_MAX, PAYLOAD_BYTES_MAX) as u64
        <= SEGMENT_BYTES_DEFAULT - SEGMENT_HEADER_BYTES as u64
);
// The index interval is no larger than the smallest segment: every segment, the smallest
// included, is indexed at least every interval (its first entry is at the header).
const _: () = assert!(INDEX_INTERVAL_BYTES as u64 <= SEGMENT_BYTES_MIN);
const _: () = assert!((SEGMENT_HEADER_BYTES as u64) < SEGMENT_BYTES_MIN);
// The default segment size is one a config may ask for.
const _: () = assert!(SEQ_LEASE_RENEW_AHEAD_MS < SEQ_LEASE_MS);
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_DEFAULT);
const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
// A new segment (header plus first growth step) fits the smallest segment size, and growth
// steps are whole pages.
const _: () = assert!(SEGMENT_HEADER_BYTES as u64 <= GROWTH_BYTES_MIN);
const _: () = assert!(GROWTH_BYTES_MIN <= GROWTH_BYTES_MAX);
const _: () = assert!(GROWTH_BYTES_MIN <= SEGMENT_BYTES_MIN);
const _: () = assert!(GROWTH_BYTES_MIN % GROWTH_ALIGN_BYTES == 0);
const _: () = assert!(GROWTH_BYTES_MAX % GROWTH_ALIGN_BYTES == 0);
// A store keeps at least one partition open; a shared sync pays off from two partitions on.
const _: () = assert!(OPEN_PARTITIONS_DEFAULT >= 1);
const _: () = assert!(SHARED_SYNC_PARTITIONS_DEFAULT >= 2);

/// How far behind the newest records a [`crate::ReadHold`] still holds compaction back: the
/// time of its position's `_seq`, at most this long before the compaction's clock. A reader
/// further behind (a client resuming from days ago, a stalled reader) cannot keep a partition
/// from being compacted; it meets the resume floors, as without a hold.
pub const READ_HOLD_AGE_MAX_MS: u64 = 10 * 60 * 1000;
