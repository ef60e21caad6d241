//! The HTTP SQL workload model shared by `sql-insert` (and the INSERT probe of
//! `under-attack`): the statements and client threads written once against a [`workload::System`]
//! (Strand over HTTP, PostgreSQL, the raw disk's write+fdatasync floor), and the interleaved
//! rounds that keep a slow spell of the machine from landing on one system only.

pub mod cases;
pub mod postgres;
pub mod raw_disk;
pub mod rounds;
pub mod strand;
pub mod workload;
