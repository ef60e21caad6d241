//! `strand-wire`: the messages Strand's clients and server exchange, as data types with their
//! encodings, and nothing else: no sockets, no SQL, no storage. The server (`strand-broker`),
//! the load tool and the clients all depend on this crate, so both ends agree by construction.
//!
//! - [`ws`]: the WebSocket JSON gateway (`GET /v1/ws`, docs/websocket.md).
//! - [`quic`]: the QUIC binary protocol of issue 6 (`PROTOCOL.md`), a sans-IO frame codec.
//! - [`limits`]: every bound of both, with compile-time checks of how they relate.

pub mod limits;
pub mod quic;
pub mod ws;

pub use ws::{
    codes, encode_change, encode_change_at, AuthMethod, BatchControl, BatchStatus, BigIntAs,
    ChangeType, ClientMessage, ColumnSchema, DecodeError, ResumeMode, Row, SeqText, ServerMessage,
    SubscribeOptions, Subscription,
};
