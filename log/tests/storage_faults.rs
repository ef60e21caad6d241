//! Acceptance: every path that persists goes through the `Storage` seam, and a fault injected
//! there is reported, never hidden, and never breaks what readers and a restart see.
//!
//! One module per path (each test asserts that its injected fault fired, so a call site that
//! bypassed the storage fails it):
//! - append (positional write, fdatasync, fsync, syncfs): `failed_fsync_poisons_partition.rs`
//!   (a failed write or sync poisons), `full_disk_is_undone_and_writes_resume.rs` (a full disk
//!   is undone and does not poison), `commit_round_panic_poisons_only_its_partitions.rs` (a
//!   panic poisons only its partitions);
//! - atomic whole-file write (`_seq` lease, `partition.meta`, segment index): `atomic_write`;
//! - rename (compaction swapping a rewritten segment in): `rename`;
//! - remove (retention unlinking segments): `remove`;
//! - directory creation (a new partition): `create_dir`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "model/mod.rs"]
mod model;

#[path = "storage_faults/harness.rs"]
mod harness;

#[path = "storage_faults/atomic_write.rs"]
mod atomic_write;
#[path = "storage_faults/create_dir.rs"]
mod create_dir;
#[path = "storage_faults/remove.rs"]
mod remove;
#[path = "storage_faults/rename.rs"]
mod rename;
