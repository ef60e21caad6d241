//! The realtime workloads' shared parts (`subscribe`, `fanout`, `snapshot`, `resume`): the
//! WebSocket subscriber client, the server with its namespace, tables and writers, the
//! write-to-receipt schedule and delivery tally (used by the peers too). What `/proc` says
//! about the server's CPU and memory is `crate::proc`.

pub mod latency;
pub mod memory;
pub mod points;
pub mod setup;
pub mod tally;
pub mod ws;
