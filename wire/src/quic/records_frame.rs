//! [`RecordsFrameWriter`]: a `fetch_response` or `tail_push` frame written record by record,
//! straight from wherever the records are stored, into one buffer that goes to the stream as
//! it is. The bytes are exactly those of [`Frame::encode`] for the same [`Records`]; the
//! writer only skips building a [`Records`] (a `Vec` and two copies per record) on the hot
//! read path of the server.
//!
//! [`Frame::encode`]: super::Frame::encode
//! [`Records`]: super::Records

use super::buf::{put_blob, put_u32, put_u64};
use super::data::{RECORDS_HEAD_BYTES, RECORD_FIXED_BYTES};
use super::message::frame_types;
use super::types::{PartitionIndex, RequestId, Seq};
use super::{FLAGS_DEFINED, HEADER_BYTES, PROTOCOL_VERSION};
use crate::limits::FRAME_BYTES_MAX;

/// Which frame the records go in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordsFrameKind {
    /// The answer to a `fetch`.
    FetchResponse,
    /// A push on a `tail`.
    TailPush,
}

impl RecordsFrameKind {
    fn frame_type(self) -> u16 {
        match self {
            RecordsFrameKind::FetchResponse => frame_types::FETCH_RESPONSE,
            RecordsFrameKind::TailPush => frame_types::TAIL_PUSH,
        }
    }
}

/// Builds one frame of records of a partition; [`RecordsFrameWriter::finish`] gives its bytes.
#[derive(Debug)]
pub struct RecordsFrameWriter {
    out: Vec<u8>,
    count: u32,
}

impl RecordsFrameWriter {
    /// A frame for `request_id`'s records of `partition`, with room for about
    /// `capacity_bytes` of keys and values before it grows.
    pub fn new(
        kind: RecordsFrameKind,
        request_id: RequestId,
        partition: PartitionIndex,
        capacity_bytes: usize,
    ) -> RecordsFrameWriter {
        let capacity = HEADER_BYTES + RECORDS_HEAD_BYTES + capacity_bytes.min(FRAME_BYTES_MAX);
        let mut out = Vec::with_capacity(capacity);
        out.push(PROTOCOL_VERSION);
        out.push(FLAGS_DEFINED);
        out.extend_from_slice(&kind.frame_type().to_le_bytes());
        out.extend_from_slice(&request_id.0.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]); // length, set by finish
        put_u32(&mut out, partition.0);
        put_u64(&mut out, 0); // high_seq, set by finish
        put_u32(&mut out, 0); // count, set by finish
        RecordsFrameWriter { out, count: 0 }
    }

    /// Appends a record, unless it would take the frame past [`FRAME_BYTES_MAX`] (or past
    /// u32::MAX records): then nothing is written and the answer is false.
    pub fn push(&mut self, seq: Seq, timestamp_ms: u64, key: &[u8], value: &[u8]) -> bool {
        let payload_after = self.payload_bytes() + Self::record_bytes(key.len(), value.len());
        if payload_after > FRAME_BYTES_MAX || self.count == u32::MAX {
            return false;
        }
        put_u64(&mut self.out, seq.0);
        put_u64(&mut self.out, timestamp_ms);
        put_blob(&mut self.out, key);
        put_blob(&mut self.out, value);
        self.count += 1;
        true
    }

    /// Bytes a record with a key and a value of these lengths takes in the frame.
    pub fn record_bytes(key_bytes: usize, value_bytes: usize) -> usize {
        RECORD_FIXED_BYTES + key_bytes + value_bytes
    }

    /// Records pushed so far.
    pub fn records(&self) -> usize {
        self.count as usize
    }

    /// Payload bytes so far (what the frame limit applies to).
    pub fn payload_bytes(&self) -> usize {
        self.out.len() - HEADER_BYTES
    }

    /// The frame's bytes, with `high_seq` (the partition's last `_seq`, for lag).
    pub fn finish(mut self, high_seq: Seq) -> Vec<u8> {
        // push keeps the payload within FRAME_BYTES_MAX < u32::MAX: the cast is exact.
        let length = (self.payload_bytes() as u32).to_le_bytes();
        self.out[12..HEADER_BYTES].copy_from_slice(&length);
        let high = HEADER_BYTES + 4;
        self.out[high..high + 8].copy_from_slice(&high_seq.0.to_le_bytes());
        let count = high + 8;
        self.out[count..count + 4].copy_from_slice(&self.count.to_le_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::quic::strategies::records;
    use crate::quic::{Frame, Message};

    proptest! {
        /// The writer's bytes are the codec's bytes for the same records, in both frames.
        #[test]
        fn writer_matches_the_codec(records in records(), id in any::<u64>(), push in any::<bool>()) {
            let kind = if push { RecordsFrameKind::TailPush } else { RecordsFrameKind::FetchResponse };
            let mut writer = RecordsFrameWriter::new(kind, RequestId(id), records.partition, 0);
            for record in &records.records {
                prop_assert!(writer.push(record.seq, record.timestamp_ms, &record.key, &record.value));
            }
            prop_assert_eq!(writer.records(), records.records.len());
            let written = writer.finish(records.high_seq);
            let message = match kind {
                RecordsFrameKind::TailPush => Message::TailPush(records),
                RecordsFrameKind::FetchResponse => Message::FetchResponse(records),
            };
            let expected = Frame { request_id: RequestId(id), message }.to_bytes();
            prop_assert_eq!(Ok(written), expected);
        }
    }

    #[test]
    fn one_record_of_the_largest_key_and_value_fits_a_frame_and_one_byte_more_does_not() {
        let new = || {
            RecordsFrameWriter::new(
                RecordsFrameKind::TailPush,
                RequestId(1),
                PartitionIndex(0),
                0,
            )
        };
        let key = vec![1u8; 100];
        let value = vec![2u8; crate::limits::RECORD_KEY_VALUE_BYTES_MAX - key.len()];
        let mut writer = new();
        assert!(writer.push(Seq(1), 0, &key, &value));
        assert_eq!(writer.payload_bytes(), FRAME_BYTES_MAX);
        let bytes = writer.finish(Seq(1));
        assert!(matches!(
            crate::quic::decode_frame(&bytes),
            Ok(crate::quic::DecodeStep::Frame { consumed, .. }) if consumed == bytes.len()
        ));
        let mut writer = new();
        assert!(!writer.push(Seq(1), 0, &key, &[value.as_slice(), &[0]].concat()));
        assert_eq!(writer.records(), 0);
    }

    #[test]
    fn a_record_past_the_frame_limit_is_refused_and_not_written() {
        let mut writer = RecordsFrameWriter::new(
            RecordsFrameKind::FetchResponse,
            RequestId(7),
            PartitionIndex(0),
            0,
        );
        let big = vec![0u8; FRAME_BYTES_MAX / 2];
        assert!(writer.push(Seq(1), 0, b"", &big));
        let before = writer.payload_bytes();
        assert!(!writer.push(Seq(2), 0, b"", &big));
        assert_eq!(writer.payload_bytes(), before);
        assert_eq!(writer.records(), 1);
        let bytes = writer.finish(Seq(2));
        match crate::quic::decode_frame(&bytes) {
            Ok(crate::quic::DecodeStep::Frame { frame, consumed }) => {
                assert_eq!(consumed, bytes.len());
                match frame.message {
                    Message::FetchResponse(records) => {
                        assert_eq!(records.records.len(), 1);
                        assert_eq!(records.high_seq, Seq(2));
                    }
                    other => panic!("decoded {}", other.name()),
                }
            }
            other => panic!("not one frame: {other:?}"),
        }
    }
}
