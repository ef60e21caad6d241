//! Telling a torn tail from damage in the middle of a segment, and finding the intact records
//! after damage.
//!
//! A crash can only tear the end of what was written (a process killed mid-write leaves a
//! prefix; the writer grows files with zeros ahead of its data), so an invalid frame followed
//! by nothing but bytes that never decode is a torn tail. An invalid frame followed by a valid
//! frame whose `_seq` continues the segment's order is damage (a flipped byte, a bad sector):
//! the records after it were acknowledged and must never be cut. [`scan_all`] finds every
//! intact frame of a segment and the damaged ranges between them; [`resync`] finds the next
//! intact frame after a bad one.
//!
//! A false resync needs 8-aligned bytes whose three length fields agree, whose flags are known,
//! whose CRC32 matches and whose `_seq` is above every record before them: random damage does
//! not produce that (payloads that contain whole encoded frames of this partition could).

use crate::index::SegmentIndex;
use crate::limits::{KEY_BYTES_MAX, PAYLOAD_BYTES_MAX};
use crate::record::{self, Decoded, FrameError, FRAME_ALIGN_BYTES, FRAME_HEADER_BYTES};
use crate::segment::SEGMENT_HEADER_BYTES;
use crate::seq::Seq;

/// Bytes of a segment that hold no intact frame, between intact ones (or before the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DamagedRange {
    /// Byte of the first invalid frame.
    pub start: u32,
    /// Byte of the next intact frame, or the end of the scanned data.
    pub end: u32,
    /// Why the frame at `start` is invalid.
    pub error: FrameError,
    /// `_seq` of the last intact record before the damage (`Seq::ZERO` when none).
    pub after_seq: Seq,
    /// `_seq` of the first intact record after it, if any.
    pub before_seq: Option<Seq>,
}

/// Everything a full scan of a segment's frames found.
#[derive(Clone, Debug)]
pub struct SegmentScan {
    /// Every intact frame, the ones after damage included; an index entry starts each run of
    /// frames after damage, so reads that start after it never cross it.
    pub index: SegmentIndex,
    /// Ranges with intact frames after them: corruption, never a torn tail.
    pub damaged: Vec<DamagedRange>,
    /// Where the last run of intact frames stopped without any intact frame after it: a torn
    /// tail in the newest segment, garbage after the data in a sealed one. `None` when the data
    /// ends cleanly (the end, or a zero length word followed only by zeros).
    pub tail: Option<DamagedRange>,
}

impl SegmentScan {
    /// Whether intact records lie after an invalid frame.
    pub fn is_damaged(&self) -> bool {
        !self.damaged.is_empty()
    }
}

/// Scan every frame of `data` (a whole segment file, header included), skipping damaged
/// ranges to the next intact frame.
pub fn scan_all(data: &[u8], first_seq: Seq) -> SegmentScan {
    let mut index = SegmentIndex::new(first_seq, SEGMENT_HEADER_BYTES);
    let mut damaged = Vec::new();
    let mut position = SEGMENT_HEADER_BYTES as usize;
    let mut last_seq = Seq::ZERO;
    loop {
        let error = match record::decode(data, position) {
            Ok(Decoded::Record(view, next)) if view.seq > last_seq && view.seq >= first_seq => {
                index.add(
                    view.seq,
                    view.timestamp_unix_ms,
                    position as u32,
                    next as u32,
                );
                last_seq = view.seq;
                position = next;
                continue;
            }
            Ok(Decoded::Record(..)) => FrameError::SeqNotIncreasing,
            Ok(Decoded::End) => {
                let rest = data.get(position..).unwrap_or_default();
                if rest.iter().all(|&b| b == 0) {
                    return SegmentScan {
                        index,
                        damaged,
                        tail: None,
                    };
                }
                // A zero length word with data after it: written frames never leave one.
                FrameError::BadLength
            }
            Err(error) => error,
        };
        let found = resync(
            data,
            position,
            last_seq.max(Seq(first_seq.0.saturating_sub(1))),
        );
        let range = DamagedRange {
            start: position as u32,
            end: found.map_or(data.len(), |(at, _)| at) as u32,
            error,
            after_seq: last_seq,
            before_seq: found.map(|(_, seq)| seq),
        };
        let Some((next, _)) = found else {
            return SegmentScan {
                index,
                damaged,
                tail: Some(range),
            };
        };
        damaged.push(range);
        index.force_entry_at(next as u32);
        position = next;
    }
}

/// The first intact frame after the invalid one at `from` whose `_seq` is above `after_seq`:
/// its position and `_seq`. Cheap header checks come before the CRC, so scanning damaged
/// bytes costs about one pass over them.
pub fn resync(data: &[u8], from: usize, after_seq: Seq) -> Option<(usize, Seq)> {
    let mut position = from.checked_add(FRAME_ALIGN_BYTES)? & !(FRAME_ALIGN_BYTES - 1);
    while position + FRAME_HEADER_BYTES <= data.len() {
        if plausible_header(&data[position..]) {
            if let Ok(Decoded::Record(view, _)) = record::decode(data, position) {
                if view.seq > after_seq {
                    return Some((position, view.seq));
                }
            }
        }
        position += FRAME_ALIGN_BYTES;
    }
    None
}

/// Whether the frame header at the start of `bytes` (at least a header long) is
/// self-consistent: worth the CRC check.
fn plausible_header(bytes: &[u8]) -> bool {
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let frame_len = word(0) as usize;
    let payload_len = word(32) as usize;
    let key_len = usize::from(u16::from_le_bytes([bytes[36], bytes[37]]));
    let flags = u16::from_le_bytes([bytes[38], bytes[39]]);
    frame_len >= FRAME_HEADER_BYTES
        && payload_len <= PAYLOAD_BYTES_MAX
        && key_len <= KEY_BYTES_MAX
        && FRAME_HEADER_BYTES + payload_len + key_len == frame_len
        && record::RecordFlags::from_bits(flags).is_some()
}

pub mod repair;

#[cfg(test)]
mod tests;
