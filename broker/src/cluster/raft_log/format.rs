//! The Raft log's bytes on disk; pure functions, no I/O.
//!
//! A segment file `<first index, 20 digits>.seg` is a header and then frames, back to back:
//!
//! ```text
//! header (24 bytes): magic "STRNDRFT" | version u32 LE | first index u64 LE | CRC-32 u32 LE
//!                    of the 20 bytes before it
//! frame:             body length u32 LE | CRC-32 u32 LE of the body | body (postcard of an
//!                    openraft Entry)
//! ```
//!
//! The state file `raft.state` holds the vote, the committed and the last purged log ids: magic
//! "STRNDRST" | version u32 LE | one frame whose body is postcard of the state.
//! The checksum is CRC-32 (IEEE, the one `crc32fast` computes).

use super::error::RaftLogError;
use super::Entry;
use crate::limits::RAFT_ENTRY_BYTES_MAX;

/// Bytes of a segment's header, before its first frame.
pub(super) const SEGMENT_HEADER_BYTES: u64 = 24;
/// Bytes of a frame's length and checksum, before its body.
pub(super) const FRAME_HEADER_BYTES: u64 = 8;
/// The format version this build writes and reads, of segments and of the state file.
pub(super) const FORMAT_VERSION: u32 = 1;
const SEGMENT_MAGIC: &[u8; 8] = b"STRNDRFT";
const STATE_MAGIC: &[u8; 8] = b"STRNDRST";
/// Bytes of the state file before its frame.
const STATE_HEADER_BYTES: usize = 12;

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), bit for bit what `crc32fast::hash`
/// returns: the broker does not depend on `crc32fast`, and the log needs only a few bytes per
/// entry checked, so a table-driven loop is fast enough.
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The header of the segment whose first entry is `first_index`.
pub(super) fn segment_header(first_index: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&first_index.to_le_bytes());
    let crc = crc32(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The first index a segment header names, or why it is not a header this build reads.
pub(super) fn parse_segment_header(header: &[u8]) -> Result<u64, String> {
    if header.len() < SEGMENT_HEADER_BYTES as usize {
        return Err(format!("a header of {} bytes", header.len()));
    }
    if &header[..8] != SEGMENT_MAGIC {
        return Err("not a Raft log segment (wrong magic)".to_owned());
    }
    if crc32(&header[..20]) != u32_at(header, 20) {
        return Err("header checksum mismatch".to_owned());
    }
    let version = u32_at(header, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        ));
    }
    Ok(u64_at(header, 12))
}

/// Append the frame of `body` to `out`. The caller checked the body's size.
pub(super) fn push_frame(body: &[u8], out: &mut Vec<u8>) {
    assert!(
        body.len() <= RAFT_ENTRY_BYTES_MAX,
        "frame bodies are checked against the limit before framing"
    );
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// A frame's header: the body length and checksum it announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FrameHeader {
    /// Bytes of the body.
    pub body_len: u32,
    /// CRC-32 of the body.
    pub crc: u32,
}

impl FrameHeader {
    /// Parse the 8 bytes before a body.
    pub fn parse(bytes: &[u8; FRAME_HEADER_BYTES as usize]) -> FrameHeader {
        FrameHeader {
            body_len: u32_at(bytes, 0),
            crc: u32_at(bytes, 4),
        }
    }

    /// Whether the length is one this log writes: an entry is never empty, and never larger
    /// than the limit.
    pub fn length_is_plausible(&self) -> bool {
        self.body_len > 0 && self.body_len as usize <= RAFT_ENTRY_BYTES_MAX
    }

    /// Bytes of the whole frame, header included.
    pub fn frame_bytes(&self) -> u64 {
        FRAME_HEADER_BYTES + u64::from(self.body_len)
    }
}

/// The body of `entry`'s frame, refused when larger than a frame may hold (it could not be
/// read back).
pub(super) fn encode_entry(entry: &Entry) -> Result<Vec<u8>, RaftLogError> {
    let index = entry.log_id.index;
    let body = postcard::to_stdvec(entry).map_err(|source| RaftLogError::Encode {
        what: format!("entry {index}"),
        source,
    })?;
    if body.len() > RAFT_ENTRY_BYTES_MAX {
        return Err(RaftLogError::EntryTooLarge {
            index,
            bytes: body.len(),
            max: RAFT_ENTRY_BYTES_MAX,
        });
    }
    Ok(body)
}

/// The entry a checksummed frame body holds, or why it holds none: every byte must belong to
/// the entry.
pub(super) fn decode_entry(body: &[u8]) -> Result<Entry, String> {
    match postcard::take_from_bytes::<Entry>(body) {
        Ok((entry, [])) => Ok(entry),
        Ok((_, rest)) => Err(format!("{} bytes after the entry", rest.len())),
        Err(e) => Err(format!("a checksummed entry that does not decode: {e}")),
    }
}

/// The state file's bytes for the encoded state `body`.
pub(super) fn state_file(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATE_HEADER_BYTES + FRAME_HEADER_BYTES as usize + body.len());
    out.extend_from_slice(STATE_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    push_frame(body, &mut out);
    out
}

/// The encoded state inside a state file's bytes, or why they are not a whole state file (it
/// is replaced atomically, so any damage is damage, never a torn write).
pub(super) fn parse_state_file(bytes: &[u8]) -> Result<&[u8], String> {
    let frame_at = STATE_HEADER_BYTES + FRAME_HEADER_BYTES as usize;
    if bytes.len() < frame_at {
        return Err(format!("a state file of {} bytes", bytes.len()));
    }
    if &bytes[..8] != STATE_MAGIC {
        return Err("not a Raft state file (wrong magic)".to_owned());
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        ));
    }
    let body = &bytes[frame_at..];
    let body_len = u32_at(bytes, STATE_HEADER_BYTES) as usize;
    if body_len != body.len() {
        return Err(format!(
            "the frame announces {body_len} bytes, {} follow",
            body.len()
        ));
    }
    if crc32(body) != u32_at(bytes, STATE_HEADER_BYTES + 4) {
        return Err("checksum mismatch".to_owned());
    }
    Ok(body)
}

/// The little-endian `u32` at `at`; callers checked the length.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// The little-endian `u64` at `at`; callers checked the length.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    proptest! {
        #[test]
        fn crc32_is_crc32fast(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert_eq!(crc32(&bytes), crc32fast::hash(&bytes));
        }
    }

    #[test]
    fn a_segment_header_round_trips_and_refuses_damage() {
        let header = segment_header(42);
        assert_eq!(parse_segment_header(&header), Ok(42));
        for at in 0..header.len() {
            let mut damaged = header;
            damaged[at] ^= 0x01;
            assert!(parse_segment_header(&damaged).is_err(), "byte {at} flipped");
        }
        assert!(parse_segment_header(&header[..23]).is_err());
    }

    #[test]
    fn a_state_file_round_trips_and_refuses_damage() {
        let file = state_file(b"state");
        assert_eq!(parse_state_file(&file), Ok(&b"state"[..]));
        for at in 0..file.len() {
            let mut damaged = file.clone();
            damaged[at] ^= 0x01;
            assert!(parse_state_file(&damaged).is_err(), "byte {at} flipped");
        }
        assert!(parse_state_file(&file[..file.len() - 1]).is_err());
    }

    #[test]
    fn a_frame_announces_its_body() {
        let mut out = Vec::new();
        push_frame(b"body", &mut out);
        let mut header = [0u8; 8];
        header.copy_from_slice(&out[..8]);
        let header = FrameHeader::parse(&header);
        assert_eq!(header.body_len, 4);
        assert_eq!(header.crc, crc32(b"body"));
        assert!(header.length_is_plausible());
        assert_eq!(header.frame_bytes(), out.len() as u64);
    }
}
