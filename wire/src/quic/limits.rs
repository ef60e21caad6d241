//! Every bound of the QUIC binary protocol, one named constant each, unit last. The decoder
//! checks them before it allocates; the server adds its own, lower, policy limits on top.

/// The protocol version this crate speaks; the first byte of every frame header.
pub const PROTOCOL_VERSION: u8 = 1;

/// The ALPN id a client offers and the server requires during the TLS handshake.
pub const ALPN: &[u8] = b"strand/1";

/// Bytes of the fixed frame header: version u8, flags u8, type u16, request id u64, length u32.
pub const HEADER_BYTES: usize = 16;

/// Largest payload a frame may declare (16 MiB). Checked from the header, before any byte of
/// the payload is buffered, so a hostile length costs the receiver nothing.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest name (topic, table, group, member id, user) in bytes.
pub const NAME_BYTES_MAX: usize = 1024;

/// Largest number of partitions in one assignment or commit.
pub const PARTITIONS_PER_MESSAGE_MAX: usize = 65_536;
