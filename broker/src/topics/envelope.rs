//! The payload of a topic message in the log: a small envelope around the producer's value,
//! so that an idempotent producer's batch can be recognised after a restart.
//!
//! ```text
//! version u8 = 1 | flags u8 | [producer_id u64 LE | batch_seq u64 LE | count u32 LE] | value
//! ```
//!
//! Flag bit 0: the producer fields are present. They are written on the first message of an
//! idempotent batch only (`count` = messages in the batch), which is all that is needed to
//! answer a retried batch with its original `_seq` range.

use thiserror::Error;

const ENVELOPE_VERSION: u8 = 1;
const FLAG_PRODUCER: u8 = 1;
const PRODUCER_FIELDS_BYTES: usize = 8 + 8 + 4;
/// The most bytes an envelope adds to a value.
pub const ENVELOPE_BYTES_MAX: usize = 2 + PRODUCER_FIELDS_BYTES;

/// An idempotent producer's batch marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMarker {
    pub producer_id: u64,
    pub batch_seq: u64,
    pub count: u32,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("topic message envelope is truncated")]
    Truncated,
    #[error("topic message envelope version {0} is not known")]
    UnknownVersion(u8),
}

/// Append the envelope of `value` (with `marker` on a batch's first message) to `out`.
pub fn encode(out: &mut Vec<u8>, marker: Option<BatchMarker>, value: &[u8]) {
    out.push(ENVELOPE_VERSION);
    match marker {
        Some(marker) => {
            out.push(FLAG_PRODUCER);
            out.extend_from_slice(&marker.producer_id.to_le_bytes());
            out.extend_from_slice(&marker.batch_seq.to_le_bytes());
            out.extend_from_slice(&marker.count.to_le_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(value);
}

/// The marker (if any) and the value of a stored message.
pub fn decode(payload: &[u8]) -> Result<(Option<BatchMarker>, &[u8]), EnvelopeError> {
    let [version, flags, rest @ ..] = payload else {
        return Err(EnvelopeError::Truncated);
    };
    if *version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnknownVersion(*version));
    }
    if flags & FLAG_PRODUCER == 0 {
        return Ok((None, rest));
    }
    if rest.len() < PRODUCER_FIELDS_BYTES {
        return Err(EnvelopeError::Truncated);
    }
    let (fields, value) = rest.split_at(PRODUCER_FIELDS_BYTES);
    let u64_at = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&fields[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let mut count = [0u8; 4];
    count.copy_from_slice(&fields[16..20]);
    let marker = BatchMarker {
        producer_id: u64_at(0),
        batch_seq: u64_at(8),
        count: u32::from_le_bytes(count),
    };
    Ok((Some(marker), value))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn round_trips(
            marker in prop::option::of((any::<u64>(), any::<u64>(), any::<u32>())),
            value in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let marker = marker.map(|(producer_id, batch_seq, count)| BatchMarker {
                producer_id, batch_seq, count,
            });
            let mut out = Vec::new();
            encode(&mut out, marker, &value);
            prop_assert_eq!(decode(&out), Ok((marker, value.as_slice())));
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode(&bytes);
        }
    }
}
