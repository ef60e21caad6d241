//! The UDP socket under a QUIC endpoint, server or client, with receive and send buffers sized
//! for bursts: with the kernel's default (about 208 KiB) a burst of a few large requests
//! overflows the receive buffer, the kernel drops datagrams, and QUIC's loss recovery turns
//! each drop into a stall of a round trip or more (measured: thousands of drops per second and
//! request p99s of hundreds of milliseconds under load; see BENCHMARKS.md).

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

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
