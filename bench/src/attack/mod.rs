//! The attackers of `under-attack` (idle sockets, oversized SQL, unfinished QUIC frames, junk
//! group joins), all at once against one server, and the probe that measures what an honest
//! client sees meanwhile (INSERT latency, the server's memory).

pub mod attackers;
pub mod probe;
pub mod quic;
pub mod sys;
