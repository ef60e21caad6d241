//! Every decoder of bytes from disk answers `Ok` or `Err`, never a panic: `record::decode`,
//! `segment::check_header` and `segment::scan`, and a `Partition` opened over arbitrary
//! segment and index files. The same properties as the cargo-fuzz targets in `log/fuzz/`,
//! run here by `cargo test` on stable (the fuzz targets need nightly).
//!
//! Random bytes almost never pass a CRC32, so the inputs are real frames (from the crate's
//! encoder) and raw bytes, then damaged: flipped bits, cuts, zeroed runs, a torn tail.
//!
//! Regression (found by these properties and by `fuzz/segment_open`): a segment whose last
//! frame ends exactly at the end of the file, without its zero padding (a torn write), made
//! `scan` report an indexed length past the end of the data. Impact: opening the partition
//! panicked, by an out-of-range slice when the segment was sealed and its index had to be
//! rebuilt, and by an overflowing subtraction in debug builds when it was the active segment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

/// The inputs: frames, segments and index files, built from specs and then damaged.
#[path = "decoders_never_panic/inputs.rs"]
mod inputs;

/// `record::decode`, `segment::scan` and `recovery::scan_all` on damaged bytes.
#[path = "decoders_never_panic/codec.rs"]
mod codec;

/// A `Partition` opened over damaged segment and index files, against an oracle.
#[path = "decoders_never_panic/partition.rs"]
mod partition;

use strand_log::Seq;

/// Where proptest keeps this binary's regressions (`decoders_never_panic.proptest-regressions`),
/// the same for every module.
const SOURCE_FILE: &str = file!();
const FIRST_SEQ: Seq = Seq(1);
/// Highest millisecond a `_seq` can encode (41 bits).
const TIME_MS_MAX: u64 = (1 << 41) - 1;
/// First `_seq` of an empty segment written after the fuzzed one, which makes it sealed.
const LATER_SEQ: Seq = Seq(1 << 40);
