//! `SegmentIndex`: the sparse map from `_seq` to byte position inside one segment, plus the
//! segment summary (last `_seq`, newest timestamp, data length) that retention needs without
//! scanning. Written once when a segment is sealed; rebuilt from the segment whenever the file is
//! missing, garbled or disagrees with the segment. Layout: `docs/log-format.md`.

use crate::limits::INDEX_INTERVAL_BYTES;
use crate::record::read_u64;
use crate::seq::Seq;

const MAGIC: &[u8; 8] = b"STRNDIDX";
const VERSION: u16 = 1;
const HEADER_BYTES: usize = 48;
const ENTRY_BYTES: usize = 16;

/// One sparse entry: the record with this `_seq` starts at this byte of the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// `_seq` of the record.
    pub seq: Seq,
    /// Byte of the segment where its frame starts.
    pub position: u32,
}

/// Facts about a segment's records, kept with its index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The segment's name: no record of it lies below.
    pub first_seq: Seq,
    /// `_seq` of its newest record (`Seq::ZERO` when it holds none).
    pub last_seq: Seq,
    /// Newest record timestamp, Unix milliseconds (what retention by age compares).
    pub max_timestamp_unix_ms: u64,
    /// End of the last record (file bytes past it are zero or absent).
    pub data_bytes: u32,
    /// Records in the segment.
    pub records: u32,
}

/// One segment's sparse index (an entry every `INDEX_INTERVAL_BYTES`) and summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    entries: Vec<IndexEntry>,
    next_entry_position: u32,
    /// What the index knows about the segment's records as a whole.
    pub summary: SegmentSummary,
}

impl SegmentIndex {
    /// An empty index of the segment named `first_seq` whose records start at `data_start`.
    pub fn new(first_seq: Seq, data_start: u32) -> SegmentIndex {
        SegmentIndex {
            entries: Vec::new(),
            next_entry_position: data_start,
            summary: SegmentSummary {
                first_seq,
                data_bytes: data_start,
                ..SegmentSummary::default()
            },
        }
    }

    /// Note a record that starts at `position` and ends at `end`; records arrive in order.
    pub fn add(&mut self, seq: Seq, timestamp_unix_ms: u64, position: u32, end: u32) {
        assert!(
            seq > self.summary.last_seq,
            "records are indexed in _seq order"
        );
        assert!(position >= self.summary.data_bytes && end > position);
        if position >= self.next_entry_position {
            self.entries.push(IndexEntry { seq, position });
            self.next_entry_position = position.saturating_add(INDEX_INTERVAL_BYTES);
        }
        let summary = &mut self.summary;
        summary.last_seq = seq;
        summary.max_timestamp_unix_ms = summary.max_timestamp_unix_ms.max(timestamp_unix_ms);
        summary.data_bytes = end;
        summary.records += 1;
    }

    /// Make the next record added (at `position`) start an index entry: the first record after
    /// damaged bytes, so a read that starts after the damage never has to cross it.
    pub(crate) fn force_entry_at(&mut self, position: u32) {
        self.next_entry_position = self.next_entry_position.min(position);
    }

    /// Position to start scanning for the first record with `_seq >= seq`.
    pub fn scan_start(&self, seq: Seq, data_start: u32) -> u32 {
        let after = self.entries.partition_point(|e| e.seq <= seq);
        match after {
            0 => data_start,
            n => self.entries[n - 1].position,
        }
    }

    /// The sparse entries, in `_seq` order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The index file's bytes (`docs/log-format.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.entries.len() * ENTRY_BYTES);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 2]);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        let s = &self.summary;
        for word in [s.first_seq.0, s.last_seq.0, s.max_timestamp_unix_ms] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&s.data_bytes.to_le_bytes());
        out.extend_from_slice(&s.records.to_le_bytes());
        for entry in &self.entries {
            out.extend_from_slice(&entry.seq.0.to_le_bytes());
            out.extend_from_slice(&entry.position.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decode an index file; `None` when it is not a consistent index of a segment starting at
    /// `first_seq` whose data ends at or before `file_bytes` (the caller then rebuilds it).
    pub fn decode(bytes: &[u8], first_seq: Seq, file_bytes: u64) -> Option<SegmentIndex> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body).to_le_bytes() != crc || body.len() < HEADER_BYTES {
            return None;
        }
        if &body[..8] != MAGIC || body[8..10] != VERSION.to_le_bytes() {
            return None;
        }
        let count = u32::from_le_bytes(body[12..16].try_into().ok()?) as usize;
        if body.len() != HEADER_BYTES + count.checked_mul(ENTRY_BYTES)? {
            return None;
        }
        let summary = SegmentSummary {
            first_seq: Seq(read_u64(body, 16)),
            last_seq: Seq(read_u64(body, 24)),
            max_timestamp_unix_ms: read_u64(body, 32),
            data_bytes: u32::from_le_bytes(body[40..44].try_into().ok()?),
            records: u32::from_le_bytes(body[44..48].try_into().ok()?),
        };
        if summary.first_seq != first_seq || u64::from(summary.data_bytes) > file_bytes {
            return None;
        }
        let entries = decode_entries(&body[HEADER_BYTES..], &summary)?;
        Some(SegmentIndex {
            entries,
            next_entry_position: summary.data_bytes,
            summary,
        })
    }
}

fn decode_entries(bytes: &[u8], summary: &SegmentSummary) -> Option<Vec<IndexEntry>> {
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    for chunk in bytes.chunks_exact(ENTRY_BYTES) {
        let entry = IndexEntry {
            seq: Seq(read_u64(chunk, 0)),
            position: u32::from_le_bytes(chunk[8..12].try_into().ok()?),
        };
        let ordered = entries
            .last()
            .is_none_or(|prev| prev.seq < entry.seq && prev.position < entry.position);
        if !ordered || entry.position >= summary.data_bytes || entry.seq > summary.last_seq {
            return None;
        }
        entries.push(entry);
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentIndex {
        let mut index = SegmentIndex::new(Seq(100), 64);
        let mut position = 64;
        for i in 0..2000u64 {
            index.add(Seq(100 + i), i, position, position + 48);
            position += 48;
        }
        index
    }

    #[test]
    fn encode_decode_round_trip() {
        let index = sample();
        let bytes = index.encode();
        let back = SegmentIndex::decode(&bytes, Seq(100), 1 << 20);
        assert_eq!(back.as_ref().map(|i| &i.entries), Some(&index.entries));
        assert_eq!(back.map(|i| i.summary), Some(index.summary));
    }

    #[test]
    fn any_flipped_byte_is_rejected() {
        let bytes = sample().encode();
        for at in (0..bytes.len()).step_by(7) {
            let mut garbled = bytes.clone();
            garbled[at] ^= 1;
            assert!(
                SegmentIndex::decode(&garbled, Seq(100), 1 << 20).is_none(),
                "byte {at}"
            );
        }
    }

    #[test]
    fn index_of_another_segment_or_longer_data_is_rejected() {
        let bytes = sample().encode();
        assert!(SegmentIndex::decode(&bytes, Seq(101), 1 << 20).is_none());
        assert!(SegmentIndex::decode(&bytes, Seq(100), 1000).is_none());
    }

    #[test]
    fn scan_start_never_skips_the_target() {
        let index = sample();
        for seq in [0u64, 100, 101, 500, 2099, 5000] {
            let start = index.scan_start(Seq(seq), 64);
            let entry_seq = index
                .entries
                .iter()
                .find(|e| e.position == start)
                .map(|e| e.seq);
            assert!(start == 64 || entry_seq.is_some_and(|s| s <= Seq(seq)));
        }
    }
}
