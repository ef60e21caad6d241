//! Telling a torn tail from damage in the middle of the log.
//!
//! A crash during an append can leave anything after the last fdatasync: part of a frame,
//! zeros, stale bytes. None of it was acknowledged, so it may be cut off. Damage with a whole
//! entry of this log after it is something else (a flipped bit in a length or a body of
//! entries that were acknowledged): cutting there would drop them silently, so the log
//! refuses to open instead. After damage at offset `x`, where entry `next` was due, an entry
//! "follows" when some later offset holds a whole frame (plausible length, within the file,
//! matching checksum, decodable) of an entry numbered after `next` and no further than the
//! bytes in between allow.

use std::io;

use openraft::LogId;

use super::format::{self, FrameHeader, FRAME_HEADER_BYTES};
use crate::cluster::types::NodeId;
use crate::limits::RAFT_LOG_SCAN_BUFFER_BYTES;

/// Bytes that hold an encoded `LogId` (three varints of at most 10 bytes).
const LOG_ID_BYTES_MAX: usize = 32;
/// The fewest bytes a frame takes (its header and a body of at least one byte): bounds how
/// many entries fit between two offsets.
const FRAME_BYTES_MIN: u64 = FRAME_HEADER_BYTES + 1;

/// Whether a whole entry numbered after `next` starts anywhere after the damage at `damage_at`
/// in a file of `file_len` bytes; `read_at` reads bytes at an offset (a positional read).
pub(super) fn entry_follows(
    read_at: impl Fn(&mut [u8], u64) -> io::Result<()>,
    damage_at: u64,
    file_len: u64,
    next: u64,
) -> io::Result<bool> {
    let probe = FRAME_HEADER_BYTES as usize + LOG_ID_BYTES_MAX;
    let mut window = vec![0u8; RAFT_LOG_SCAN_BUFFER_BYTES + probe];
    let mut base = damage_at + 1;
    while base + FRAME_BYTES_MIN <= file_len {
        let len = (window.len() as u64).min(file_len - base) as usize;
        read_at(&mut window[..len], base)?;
        // Offsets past the chunk are looked at again from the next window, whole.
        for start in 0..len.min(RAFT_LOG_SCAN_BUFFER_BYTES) {
            let at = base + start as u64;
            let Some(header) = candidate(&window[start..len], at, file_len, damage_at, next) else {
                continue;
            };
            let mut body = vec![0u8; header.body_len as usize];
            read_at(&mut body, at + FRAME_HEADER_BYTES)?;
            if format::crc32(&body) == header.crc && format::decode_entry(&body).is_ok() {
                return Ok(true);
            }
        }
        base += RAFT_LOG_SCAN_BUFFER_BYTES as u64;
    }
    Ok(false)
}

/// The header of a frame that may start at `at` (`bytes` are the file's from there): cheap
/// checks only, before the body's checksum is computed.
fn candidate(
    bytes: &[u8],
    at: u64,
    file_len: u64,
    damage_at: u64,
    next: u64,
) -> Option<FrameHeader> {
    let header: &[u8; FRAME_HEADER_BYTES as usize] =
        bytes.get(..FRAME_HEADER_BYTES as usize)?.try_into().ok()?;
    let header = FrameHeader::parse(header);
    if !header.length_is_plausible() || at + header.frame_bytes() > file_len {
        return None;
    }
    let body_start = FRAME_HEADER_BYTES as usize;
    let body_probe = bytes.len().min(body_start + header.body_len as usize);
    let (log_id, _) =
        postcard::take_from_bytes::<LogId<NodeId>>(bytes.get(body_start..body_probe)?).ok()?;
    // The damaged frame was entry `next`; at most one entry per `FRAME_BYTES_MIN` after it.
    let furthest = next + 1 + (at - damage_at) / FRAME_BYTES_MIN;
    (next < log_id.index && log_id.index <= furthest).then_some(header)
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::cluster::raft_log::Entry;

    fn frame(index: u64) -> Vec<u8> {
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 0), index),
            payload: EntryPayload::Blank,
        };
        let mut out = Vec::new();
        format::push_frame(&format::encode_entry(&entry).unwrap(), &mut out);
        out
    }

    fn follows(bytes: &[u8], damage_at: u64, next: u64) -> bool {
        let read_at = |buf: &mut [u8], at: u64| {
            buf.copy_from_slice(&bytes[at as usize..at as usize + buf.len()]);
            Ok(())
        };
        entry_follows(read_at, damage_at, bytes.len() as u64, next).unwrap()
    }

    #[test]
    fn a_later_entry_after_garbage_is_found() {
        let mut bytes = b"\x03\x00\x00\x00garbage, garbage".to_vec();
        bytes.extend_from_slice(&frame(8));
        assert!(follows(&bytes, 0, 7));
    }

    #[test]
    fn garbage_zeros_and_an_earlier_entry_are_not_an_entry_that_follows() {
        let mut bytes = b"\x03\x00\x00\x00garbage after the frames".to_vec();
        bytes.extend_from_slice(&[0; 300]);
        assert!(!follows(&bytes, 0, 7));
        // A stale copy of an entry at or before the damaged one is no later entry.
        let mut stale = vec![0xAB; 5];
        stale.extend_from_slice(&frame(7));
        assert!(!follows(&stale, 0, 7));
    }

    #[test]
    fn an_entry_numbered_further_than_the_bytes_allow_does_not_count() {
        let mut bytes = vec![0xAB; 5];
        bytes.extend_from_slice(&frame(1_000));
        assert!(!follows(&bytes, 0, 7));
    }

    #[test]
    fn an_entry_beyond_the_first_window_is_found() {
        let mut bytes = vec![0xAB; RAFT_LOG_SCAN_BUFFER_BYTES + 3];
        bytes.extend_from_slice(&frame(9));
        assert!(follows(&bytes, 0, 7));
    }
}
