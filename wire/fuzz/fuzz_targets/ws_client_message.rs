//! `ClientMessage::decode` over arbitrary text (what a WebSocket client can send): it ends in
//! `Ok` or a typed `DecodeError`, never a panic; a decoded message re-encodes to text that
//! decodes to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strand_wire::ClientMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = ClientMessage::decode(text) {
        let again = ClientMessage::decode(&message.encode());
        assert_eq!(again.as_ref().ok(), Some(&message), "{text}");
    }
});
