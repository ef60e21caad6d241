//! The peers `--peers` runs beside Strand, each started on 127.0.0.1 in a temporary
//! directory when its server is installed, and stopped at the end.
pub mod jetstream;
pub mod nats;
pub mod nats_core;
pub mod pg_notify;
pub mod postgres;
pub mod redis;
