//! The UDP side of a QUIC endpoint, server or client: datagram size and socket buffers.
//!
//! Datagrams: quinn's defaults cap them at Ethernet's 1500-byte MTU. Both sides here accept
//! datagrams up to the UDP maximum and let MTU discovery probe up to it (safe on any path:
//! probes that do not get through are ignored), so links with a larger MTU (loopback, jumbo
//! frames) carry many times fewer packets per byte: fewer syscalls, packet headers and ACKs.
//!
//! Buffers: receive and send buffers sized for bursts: with the kernel's default (about 208 KiB) a burst of a few large requests
//! overflows the receive buffer, the kernel drops datagrams, and QUIC's loss recovery turns
//! each drop into a stall of a round trip or more (measured: thousands of drops per second and
//! request p99s of hundreds of milliseconds under load; see BENCHMARKS.md).

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// The largest UDP payload (IPv6's limit; quinn's bound for both settings below).
pub const UDP_PAYLOAD_BYTES_MAX: u16 = 65_527;

/// Endpoint settings for both sides: accept datagrams up to [`UDP_PAYLOAD_BYTES_MAX`].
pub fn endpoint_config() -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    // In range by construction (quinn accepts 1200..=65527).
    let _ = config.max_udp_payload_size(UDP_PAYLOAD_BYTES_MAX);
    config
}

/// Transport settings both sides add to their own: MTU discovery up to
/// [`UDP_PAYLOAD_BYTES_MAX`].
pub fn tune_transport(transport: &mut quinn::TransportConfig) {
    let mut discovery = quinn::MtuDiscoveryConfig::default();
    discovery.upper_bound(UDP_PAYLOAD_BYTES_MAX);
    transport.mtu_discovery_config(Some(discovery));
}

/// The receive and send buffer asked for. The kernel grants at most `net.core.rmem_max` /
/// `wmem_max`; a smaller grant is not an error (the endpoint works, with more drops).
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

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
