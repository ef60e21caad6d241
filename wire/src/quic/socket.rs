//! The UDP side of a QUIC endpoint, server or client: datagram size and socket buffers.
//!
//! Datagrams: both sides accept datagrams up to the UDP maximum, and MTU discovery probes up
//! to [`MTU_DISCOVERY_UPPER_BOUND`] (5120 bytes) instead of quinn's 1452, so a loopback or
//! jumbo-frame path carries about four times fewer packets per byte (fewer syscalls, packet
//! headers, ACKs and crypto calls); on an Ethernet or internet path discovery stops at the
//! path's MTU as before. Larger bounds were measured worse, not better (BENCHMARKS.md, topics):
//! from about 7 KB up, a burst of losses of large datagrams (a receive buffer overflowing while
//! both ends share the CPU) makes quinn declare a black hole and fall back to 1200-byte
//! datagrams, and with 64 KB datagrams throughput fell to a fraction.
//!
//! Buffers: receive and send buffers sized for bursts: with the kernel's default (about 208
//! KiB) a burst of a few large requests overflows the receive buffer, the kernel drops
//! datagrams, and QUIC's loss recovery turns each drop into a stall of a round trip or more
//! (measured: thousands of drops per second and request p99s of hundreds of milliseconds under
//! load; see BENCHMARKS.md).

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::limits::{
    MTU_BLACK_HOLE_COOLDOWN, MTU_DISCOVERY_UPPER_BOUND, UDP_BUFFER_BYTES, UDP_PAYLOAD_BYTES_MAX,
};

/// Endpoint settings for both sides: accept datagrams up to [`UDP_PAYLOAD_BYTES_MAX`].
pub fn endpoint_config() -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    // In range by construction (quinn accepts 1200..=65527).
    let _ = config.max_udp_payload_size(UDP_PAYLOAD_BYTES_MAX);
    config
}

/// Transport settings both sides add to their own: MTU discovery up to
/// [`MTU_DISCOVERY_UPPER_BOUND`], re-probing [`MTU_BLACK_HOLE_COOLDOWN`] after a black hole.
pub fn tune_transport(transport: &mut quinn::TransportConfig) {
    let mut discovery = quinn::MtuDiscoveryConfig::default();
    discovery
        .upper_bound(MTU_DISCOVERY_UPPER_BOUND)
        .black_hole_cooldown(MTU_BLACK_HOLE_COOLDOWN);
    transport.mtu_discovery_config(Some(discovery));
}

/// A UDP socket bound to `addr` with [`UDP_BUFFER_BYTES`] buffers (as far as the kernel
/// allows), ready for `quinn::Endpoint::new`.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Like std's bind: an IPv6 address serves IPv6 only unless asked otherwise.
        socket.set_only_v6(true)?;
    }
    // Best effort: a kernel that grants less still runs the endpoint.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_port_zero_with_larger_buffers_than_the_default() {
        let socket = bind_udp("127.0.0.1:0".parse().expect("addr")).expect("bind");
        assert_ne!(socket.local_addr().expect("addr").port(), 0);
        let granted = Socket::from(socket).recv_buffer_size().expect("size");
        // Linux reports twice the granted size; at least the usual default is there.
        assert!(granted >= 200 * 1024, "receive buffer {granted}");
    }
}
