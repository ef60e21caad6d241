//! QUIC application error codes: the numbers a server or client puts in a stream's
//! `STOP_SENDING`/`RESET_STREAM` or in a connection's `CONNECTION_CLOSE`. They say why a stream
//! or connection ended; the `error` frame sent before (when it could be) says it in words.
//!
//! Owns the numbers only; which end sends which, and when, is `PROTOCOL.md`'s and the server's.

/// Stream codes (`STOP_SENDING` / `RESET_STREAM`).
pub mod stream {
    /// The request was answered; the rest of the stream is not read.
    pub const DONE: u32 = 0;
    /// The stream's bytes are not a frame (garbage, oversize, unknown type or version, a
    /// malformed payload, a response sent by a client).
    pub const BAD_FRAME: u32 = 1;
    /// The request frame did not arrive within the server's read timeout.
    pub const TIMEOUT: u32 = 2;
    /// The client cancels the request (e.g. ends a `tail`).
    pub const CANCELLED: u32 = 3;
}

/// Connection codes (`CONNECTION_CLOSE` with an application code).
pub mod connection {
    /// Closed normally by the client or server.
    pub const NO_ERROR: u32 = 0;
    /// The `auth` request failed: bad user name, password or token.
    pub const AUTH_FAILED: u32 = 1;
    /// Too many bad frames on one connection: the peer is not speaking the protocol.
    pub const PROTOCOL_VIOLATION: u32 = 2;
    /// The server is shutting down.
    pub const SHUTDOWN: u32 = 3;
    /// No `auth` request arrived within the server's authentication timeout.
    pub const AUTH_TIMEOUT: u32 = 4;
    /// The handshake did not negotiate ALPN `strand/1`.
    pub const WRONG_ALPN: u32 = 5;
    /// A server limit on connections (connections per user) was reached; the `error` frame
    /// before it says which.
    pub const LIMIT_EXCEEDED: u32 = 6;
}
