//! Every bound of the wire protocols and their client, one named constant each, unit last,
//! with compile-time checks of how they relate. The decoders check them before they allocate;
//! the server adds its own, lower, policy limits on top (`strand-broker`'s `limits.rs`).
//!
//! Format constants (header size, protocol version, ALPN, frame type numbers) are not bounds
//! and live with the layout they describe (`quic/frame.rs`, `quic/message.rs`).

use std::time::Duration;

// QUIC frames (wire/PROTOCOL.md, "Limits").

/// Largest payload a frame may declare (16 MiB): room for a fetch of several MiB of records,
/// small enough that a receiver can afford a few such frames per connection. Checked from
/// the header, before any byte of the payload is buffered, so a hostile length costs the
/// receiver nothing.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Most key plus value bytes of one topic record that a `fetch_response` or `tail_push` can
/// carry (a frame of that record alone). A record beyond it can be stored but never read back
/// over QUIC; a server may refuse to store one.
pub const RECORD_KEY_VALUE_BYTES_MAX: usize =
    FRAME_BYTES_MAX - super::quic::RECORDS_HEAD_BYTES - super::quic::RECORD_FIXED_BYTES;

/// Largest name (topic, table, group, member id, user, role, error code) in bytes: far above
/// any name the server accepts (SQL names are at most 63 bytes, user names 128), so the codec
/// never refuses a valid name, while a hostile one cannot make the decoder build a large string.
pub const NAME_BYTES_MAX: usize = 1024;

/// Most partitions in one assignment or commit: far above a topic's partition count (the
/// server's maximum is 1,024), and small enough that the largest list fits a frame.
pub const PARTITIONS_PER_MESSAGE_MAX: usize = 65_536;

/// While a frame arrives, its decoder reserves room for at most this many times the bytes
/// received so far: a header declaring 16 MiB followed by silence costs a few times what was
/// sent, not 16 MiB, while a frame that does arrive is gathered in few reallocations.
pub const DECODER_RESERVE_AHEAD_FACTOR: usize = 3;

/// ... but at least this much when the frame needs it, so a small frame takes one allocation.
pub const DECODER_RESERVE_AHEAD_BYTES_MIN: usize = 64 * 1024;

// The WebSocket gateway (docs/websocket.md).

/// Longest subscription id a client may choose (docs/websocket.md: "1 to 256 bytes"). The
/// gateway's error about a malformed message echoes the id only up to this length, so the
/// echo of any valid id works and a hostile one costs nothing.
pub const SUBSCRIPTION_ID_BYTES_MAX: usize = 256;

/// Longest part of an unknown message `"type"` echoed in the error about it, in characters:
/// enough to recognise a misspelt type, while a megabyte-long one is not sent back.
pub const UNKNOWN_TYPE_ECHO_CHARS_MAX: usize = 64;

// The QUIC client (feature `client`).

/// Most bytes taken from a stream's receive buffer at a time: quinn hands over what it holds up
/// to this, so a large frame arrives in few calls without one read holding more than 1 MiB.
pub const CLIENT_READ_CHUNK_BYTES: usize = 1 << 20;

/// Heartbeats a group consumer sends per session timeout: with three, a member misses two in a
/// row (a slow round trip, a pause) before the server expires it.
pub const CONSUMER_HEARTBEATS_PER_SESSION: u32 = 3;

/// Rebalances a group consumer follows within one call before giving up: a group that churns
/// without end gets an error instead of an endless loop.
pub const CONSUMER_REBALANCE_ATTEMPTS_MAX: u32 = 16;

/// A group consumer's session timeout unless configured: the server's default, long enough for
/// a pause of a few seconds, short enough that a dead member's partitions move soon.
pub const CONSUMER_SESSION_TIMEOUT_MS_DEFAULT: u32 = 10_000;

/// Records per partition per fetch of a consumer unless configured: enough to amortise the
/// round trip, few enough that a batch is quick to process before the next heartbeat.
pub const CONSUMER_FETCH_RECORDS_DEFAULT: u32 = 1_000;

/// Key and value bytes per partition per fetch of a consumer unless configured (about): 1 MiB,
/// so a response stays well within one frame.
pub const CONSUMER_FETCH_BYTES_DEFAULT: u32 = 1 << 20;

// UDP under QUIC (`quic/socket.rs` says why these values).

/// The largest UDP payload (IPv6's limit, and quinn's highest `max_udp_payload_size`).
pub const UDP_PAYLOAD_BYTES_MAX: u16 = 65_527;

/// The largest datagram MTU discovery looks for: about four times fewer packets per byte than
/// quinn's 1452 on a loopback or jumbo-frame path; larger was measured worse (BENCHMARKS.md).
pub const MTU_DISCOVERY_UPPER_BOUND: u16 = 5120;

/// How long after a suspected black hole (large datagrams lost) MTU discovery waits before it
/// probes again. quinn's default is a minute; on a loopback or LAN path the "black hole" is
/// almost always a burst that overflowed a receive buffer, and a minute of 1200-byte datagrams
/// costs several times the CPU per byte. Probes that get lost cost nothing else.
pub const MTU_BLACK_HOLE_COOLDOWN: Duration = Duration::from_secs(1);

/// The receive and send buffer asked of the kernel for a QUIC endpoint's UDP socket: with the
/// default (about 208 KiB) a burst of a few large requests overflows it and each drop stalls a
/// stream for a round trip. The kernel grants at most `net.core.rmem_max` / `wmem_max`.
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// The smallest datagram every QUIC path must carry (RFC 9000, section 14).
const QUIC_DATAGRAM_BYTES_MIN: u16 = 1200;

// A frame's length is a u32 in its header: every frame, header included, must fit one.
const _: () = assert!(super::quic::HEADER_BYTES + FRAME_BYTES_MAX <= u32::MAX as usize);
// The decoder's first reservation never exceeds the largest frame.
const _: () = assert!(DECODER_RESERVE_AHEAD_BYTES_MIN <= FRAME_BYTES_MAX);
const _: () = assert!(DECODER_RESERVE_AHEAD_FACTOR >= 1);
// One read of the client takes at most one largest frame.
const _: () = assert!(CLIENT_READ_CHUNK_BYTES <= FRAME_BYTES_MAX);
// A member must be able to miss a heartbeat and still live.
const _: () = assert!(CONSUMER_HEARTBEATS_PER_SESSION >= 2);
const _: () = assert!(CONSUMER_SESSION_TIMEOUT_MS_DEFAULT / CONSUMER_HEARTBEATS_PER_SESSION >= 1);
// A consumer's default fetch (its records' fixed fields, keys and values) fits one frame.
const _: () = assert!(
    super::quic::RECORDS_HEAD_BYTES
        + CONSUMER_FETCH_RECORDS_DEFAULT as usize * super::quic::RECORD_FIXED_BYTES
        + CONSUMER_FETCH_BYTES_DEFAULT as usize
        <= FRAME_BYTES_MAX
);
// Discovery looks for datagrams a QUIC path may carry and UDP can.
const _: () = assert!(QUIC_DATAGRAM_BYTES_MIN <= MTU_DISCOVERY_UPPER_BOUND);
const _: () = assert!(MTU_DISCOVERY_UPPER_BOUND <= UDP_PAYLOAD_BYTES_MAX);
// The socket buffers hold many of the largest datagrams.
const _: () = assert!(UDP_BUFFER_BYTES >= 16 * UDP_PAYLOAD_BYTES_MAX as usize);
