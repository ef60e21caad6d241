//! Property tests of the codec: every message round-trips, any split of a byte stream yields
//! the same frames, and hostile bytes end in typed errors, never panics or huge allocations.

use proptest::collection::vec;
use proptest::prelude::*;

use super::strategies::frame;
use super::*;

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        assert_eq!(frame.encode(&mut out), Ok(()));
    }
    out
}

/// Feeds `bytes` in pieces cut at `cuts` and collects frames until an error or the end.
fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> (Vec<Frame>, Option<FrameError>) {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    for pair in points.windows(2) {
        decoder.handle_bytes(&bytes[pair[0]..pair[1]]);
        loop {
            match decoder.poll_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

proptest! {
    #[test]
    fn every_message_round_trips(frame in frame()) {
        let bytes = frame.to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = DecodeStep::Frame { frame: frame.clone(), consumed: bytes.len() };
        prop_assert_eq!(decode_frame(&bytes), Ok(expected));
        prop_assert_eq!(bytes[0], PROTOCOL_VERSION);
        prop_assert_eq!(u16::from_le_bytes([bytes[2], bytes[3]]), frame.message.frame_type());
    }

    #[test]
    fn any_split_yields_the_same_frames(
        frames in vec(frame(), 0..6),
        cuts in vec(any::<usize>(), 0..12),
    ) {
        let bytes = encode_all(&frames);
        let (decoded, error) = decode_in_pieces(&bytes, &cuts);
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn every_proper_prefix_needs_more_bytes(frame in frame()) {
        let bytes = frame.to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        for end in 0..bytes.len() {
            let step = decode_frame(&bytes[..end]);
            prop_assert!(matches!(step, Ok(DecodeStep::NeedBytes(n)) if n > 0), "{step:?}");
        }
    }

    #[test]
    fn random_bytes_end_in_frames_or_a_typed_error(
        bytes in vec(any::<u8>(), 0..512),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let (frames, _error) = decode_in_pieces(&bytes, &cuts);
        for frame in frames {
            let again = frame.to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let step = decode_frame(&again);
            prop_assert!(matches!(step, Ok(DecodeStep::Frame { .. })), "{:?}", step);
        }
    }

    #[test]
    fn random_payloads_of_known_types_are_canonical_frames_or_malformed(
        which in any::<prop::sample::Index>(),
        payload in vec(any::<u8>(), 0..96),
    ) {
        let frame_type = KNOWN_TYPES[which.index(KNOWN_TYPES.len())];
        let mut bytes = header(PROTOCOL_VERSION, 0, frame_type, payload.len() as u32);
        bytes.extend_from_slice(&payload);
        match decode_frame(&bytes) {
            Ok(DecodeStep::Frame { frame, consumed }) => {
                prop_assert_eq!(consumed, bytes.len());
                prop_assert_eq!(frame.to_bytes().ok(), Some(bytes), "one encoding per frame");
            }
            Ok(DecodeStep::NeedBytes(n)) => prop_assert!(false, "complete frame needs {n}"),
            Err(error) => {
                prop_assert!(matches!(error, FrameError::Malformed { .. }), "{:?}", error)
            }
        }
    }

    #[test]
    fn corrupt_payload_bytes_never_panic(frame in frame(), at in any::<usize>(), to in any::<u8>()) {
        let mut bytes = frame.to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let at = HEADER_BYTES + at % (bytes.len() - HEADER_BYTES).max(1);
        if let Some(byte) = bytes.get_mut(at) {
            *byte = to;
        }
        let step = decode_frame(&bytes);
        let typed = match &step {
            Ok(_) => true,
            Err(e) => matches!(e, FrameError::Malformed { .. }),
        };
        prop_assert!(typed, "{step:?}");
    }

    #[test]
    fn a_longer_declared_length_is_malformed_not_a_frame(frame in frame(), extra in 1u32..64) {
        let mut bytes = frame.to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let length = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) + extra;
        bytes[12..16].copy_from_slice(&length.to_le_bytes());
        bytes.extend(std::iter::repeat_n(0u8, extra as usize));
        let step = decode_frame(&bytes);
        prop_assert!(matches!(step, Err(FrameError::Malformed { .. })), "{step:?}");
    }
}

const KNOWN_TYPES: [u16; 22] = [
    0x0001, 0x0002, 0x0003, 0x0101, 0x0102, 0x0103, 0x0201, 0x0202, 0x0203, 0x0204, 0x0301, 0x0302,
    0x0303, 0x0304, 0x0305, 0x0306, 0x0307, 0x0308, 0x0309, 0x030A, 0x0401, 0x0402,
];

#[test]
fn the_known_types_are_exactly_the_table() {
    let known: Vec<u16> = (0..=u16::MAX)
        .filter(|t| Message::is_known_type(*t))
        .collect();
    assert_eq!(known, KNOWN_TYPES.to_vec());
}

fn header(version: u8, flags: u8, frame_type: u16, length: u32) -> Vec<u8> {
    let mut out = vec![version, flags];
    out.extend_from_slice(&frame_type.to_le_bytes());
    out.extend_from_slice(&7u64.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out
}

#[test]
fn bad_version_fails_at_the_first_byte() {
    assert_eq!(decode_frame(&[2]), Err(FrameError::BadVersion(2)));
    let error = FrameError::BadVersion(0);
    assert_eq!(decode_frame(&header(0, 0, 1, 0)), Err(error.clone()));
    assert_eq!(error.code(), codes::UNSUPPORTED_VERSION);
}

#[test]
fn reserved_flags_are_rejected() {
    let step = decode_frame(&header(PROTOCOL_VERSION, 0x80, 1, 0));
    assert_eq!(step, Err(FrameError::ReservedFlags(0x80)));
}

#[test]
fn unknown_type_fails_before_the_payload_arrives() {
    let bytes = header(PROTOCOL_VERSION, 0, 0x7777, 100);
    assert_eq!(
        decode_frame(&bytes[..4]),
        Err(FrameError::UnknownType(0x7777))
    );
    assert_eq!(FrameError::UnknownType(0x7777).code(), codes::UNKNOWN_TYPE);
}

#[test]
fn oversize_length_fails_from_the_header_alone() {
    let over = FRAME_BYTES_MAX as u32 + 1;
    let bytes = header(PROTOCOL_VERSION, 0, frame_types::PRODUCE_TOPIC, over);
    let error = FrameError::Oversize {
        length: u64::from(over),
        max: FRAME_BYTES_MAX,
    };
    assert_eq!(decode_frame(&bytes), Err(error.clone()));
    let mut decoder = FrameDecoder::new();
    decoder.handle_bytes(&bytes);
    assert_eq!(decoder.poll_frame(), Err(error.clone()));
    decoder.handle_bytes(&header(PROTOCOL_VERSION, 0, 1, 0));
    assert_eq!(
        decoder.poll_frame(),
        Err(error),
        "a failed decoder stays failed"
    );
    assert_eq!(decoder.buffered_bytes(), 0);
}

#[test]
fn a_huge_count_in_a_small_payload_is_malformed() {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0u32.to_le_bytes()); // partition
    payload.extend_from_slice(&0u64.to_le_bytes()); // high_seq
    payload.extend_from_slice(&u32::MAX.to_le_bytes()); // record count
    let mut bytes = header(PROTOCOL_VERSION, 0, frame_types::FETCH_RESPONSE, 16);
    bytes.extend_from_slice(&payload);
    let step = decode_frame(&bytes);
    assert!(
        matches!(
            step,
            Err(FrameError::Malformed {
                frame: "fetch_response",
                reason: PayloadError::TooLong { .. }
            })
        ),
        "{step:?}"
    );
}

#[test]
fn a_message_over_the_frame_limit_does_not_encode() {
    let frame = Frame {
        request_id: RequestId(1),
        message: Message::SqlResult(SqlResult {
            body_json: "x".repeat(FRAME_BYTES_MAX),
        }),
    };
    let mut out = vec![9];
    let error = frame.encode(&mut out);
    assert_eq!(
        error,
        Err(EncodeError {
            length: FRAME_BYTES_MAX + 4,
            max: FRAME_BYTES_MAX
        })
    );
    assert_eq!(out, vec![9], "a failed encode leaves the buffer as it was");
}

#[test]
fn directions_match_the_table() {
    let push = Message::TailPush(Records {
        partition: PartitionIndex(0),
        high_seq: Seq(0),
        records: Vec::new(),
    });
    assert_eq!(push.direction(), Direction::Push);
    assert_eq!(push.name(), "tail_push");
    assert_eq!(push.frame_type(), frame_types::TAIL_PUSH);
}

#[test]
fn a_declared_length_alone_does_not_allocate_the_frame() {
    let mut decoder = FrameDecoder::new();
    let declared = FRAME_BYTES_MAX as u32;
    decoder.handle_bytes(&header(PROTOCOL_VERSION, 0, frame_types::SQL, declared));
    assert_eq!(decoder.poll_frame(), Ok(None));
    assert!(
        decoder.buffer_capacity() <= 128 * 1024,
        "{} bytes reserved for a 16-byte header",
        decoder.buffer_capacity()
    );
    // As bytes arrive the reservation grows with them, never far past what was sent.
    let mut sent = HEADER_BYTES;
    for _ in 0..40 {
        let chunk = vec![0u8; 100 * 1024];
        decoder.handle_bytes(&chunk);
        sent += chunk.len();
        assert_eq!(decoder.poll_frame(), Ok(None));
        // The step above, then the buffer's own doubling: a small multiple of what was sent.
        assert!(decoder.buffer_capacity() <= 8 * sent + 128 * 1024);
    }
}
