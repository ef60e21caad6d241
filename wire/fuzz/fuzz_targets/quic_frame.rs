//! The QUIC frame decoder over arbitrary bytes (what a QUIC peer can send on a stream), fed in
//! two pieces split where the input says: it yields frames and then at most one typed
//! `FrameError`, never a panic; every decoded frame re-encodes to exactly the bytes it came
//! from, and the split does not change what is decoded.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strand_wire::quic::{decode_frame, DecodeStep, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let cut = usize::from(split) * bytes.len() / 256;

    let mut whole = Vec::new();
    let mut rest = bytes;
    let whole_error = loop {
        match decode_frame(rest) {
            Ok(DecodeStep::Frame { frame, consumed }) => {
                let again = frame.to_bytes().expect("a decoded frame fits a frame");
                assert_eq!(again, &rest[..consumed], "one encoding per frame");
                whole.push(frame);
                rest = &rest[consumed..];
            }
            Ok(DecodeStep::NeedBytes(n)) => {
                assert!(n > 0);
                break None;
            }
            Err(error) => break Some(error),
        }
    };

    let mut decoder = FrameDecoder::new();
    let mut pieces = Vec::new();
    let mut piece_error = None;
    'outer: for piece in [&bytes[..cut], &bytes[cut..]] {
        decoder.handle_bytes(piece);
        loop {
            match decoder.poll_frame() {
                Ok(Some(frame)) => pieces.push(frame),
                Ok(None) => break,
                Err(error) => {
                    piece_error = Some(error);
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(pieces, whole);
    assert_eq!(piece_error, whole_error);
});
