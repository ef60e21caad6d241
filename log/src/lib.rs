//! `strand-log`: Strand's storage. It owns segmented append-only logs on disk, the Snowflake
//! `_seq` generator, sparse indexes, group commit, crash recovery, retention and keyed
//! compaction, and a [`Store`] of many lazily opened partitions.
//!
//! It does not own what records mean: it knows nothing about SQL, rows, tables, users, topics
//! or the network. A record is a key, a payload, flags and an optional pointer to the previous
//! version of its key; callers decide what those bytes are.
//!
//! Entry points: [`Store::open`] then [`Store::partition`]; [`Partition::append`] (returns once
//! durable under the [`FsyncPolicy`]; [`Partition::append_replicated`] stores records with the
//! `_seq`s and times another node issued, for a cluster replica); [`Partition::snapshot`] then [`ReadSnapshot::records`]
//! for zero-copy reads; [`Partition::resume_floors`] says how far back a reader can resume
//! after retention or compaction, and [`Partition::compaction_backlog`] whether compaction is
//! due. A reader that follows a partition across snapshots takes a [`ReadHold`]
//! ([`Partition::hold_reads_from_now`]) so compaction keeps what it has not read yet. On-disk formats: `docs/log-format.md`.
//!
//! Locks do not poison (`parking_lot`). A panic in the commit round poisons the partitions it
//! was writing (they refuse appends until reopened), completes the round and wakes its
//! waiters, so other partitions keep committing (`commit/round.rs`).

mod commit;
mod compaction;
mod config;
mod error;
mod holds;
mod index;
pub mod limits;
mod meta;
mod partition;
mod reader;
pub mod record;
pub mod recovery;
mod retention;
pub mod segment;
pub mod seq;
pub mod storage;
mod store;
mod sys;
mod writeback;

pub use commit::Committed;
pub use compaction::{CompactionBacklog, CompactionOutcome, CompactionPolicy};
pub use config::{FsyncPolicy, PartitionConfig, StoreConfig};
pub use error::{is_storage_full, LogError, Result};
pub use holds::ReadHold;
pub use index::{SegmentIndex, SegmentSummary};
pub use meta::ResumeFloors;
pub use partition::{AppendTicket, Partition, Tick};
pub use reader::{Damage, ReadFrom, ReadSnapshot, Records};
pub use record::{NewRecord, RecordFlags, RecordView, ReplicatedRecord};
pub use retention::{RetentionOutcome, RetentionPolicy};
pub use seq::{Clock, NodeId, Seq, SeqGenerator, SeqRange, SystemClock};
pub use store::{PartitionId, Store};
pub use sys::MappedBytes;
