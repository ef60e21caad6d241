//! `record::decode` over arbitrary bytes at arbitrary positions: it never panics, and a frame
//! it accepts is exactly what the encoder writes for the decoded record (so nothing outside
//! the CRC can change what a reader sees, except the zero padding after the frame).

#![no_main]

mod common;

use common::{apply, Damage, FrameSpec};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use strand_log::record::{self, check_record, Decoded, NewRecord, FRAME_HEADER_BYTES};
use strand_log::Seq;

#[derive(Arbitrary, Debug)]
struct Input {
    prefix: Vec<u8>,
    frame: Option<(u64, FrameSpec)>,
    suffix: Vec<u8>,
    damage: Vec<Damage>,
    position: u32,
}

fuzz_target!(|input: Input| {
    let mut data = input.prefix.clone();
    if let Some((seq, frame)) = &input.frame {
        data.extend_from_slice(&frame.encode(Seq(*seq)));
    }
    data.extend_from_slice(&input.suffix);
    apply(&mut data, &input.damage);
    let position = input.position as usize % (data.len() + 16);
    let Ok(Decoded::Record(view, next)) = record::decode(&data, position) else {
        return;
    };
    let frame_len = FRAME_HEADER_BYTES + view.key.len() + view.payload.len();
    assert!(
        position + frame_len <= data.len(),
        "a record lies inside the data"
    );
    assert_eq!(
        next,
        position + record::frame_bytes(view.key.len(), view.payload.len())
    );
    let again = NewRecord {
        key: view.key,
        payload: view.payload,
        flags: view.flags,
        previous_version: view.previous_version,
    };
    if check_record(&again).is_err() {
        return; // A payload over payload_bytes_max: decodable, but the encoder refuses it.
    }
    let mut encoded = Vec::new();
    record::encode(&mut encoded, view.seq, view.timestamp_unix_ms, &again);
    assert_eq!(encoded.len(), next - position);
    assert_eq!(&encoded[..frame_len], &data[position..position + frame_len]);
});
