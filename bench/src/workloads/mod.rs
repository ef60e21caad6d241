//! One module per subcommand: its options (`clap::Args`) and its `run`, which measures Strand
//! (and each installed peer with `--peers`) and adds [`crate::report::Measurement`]s.

pub mod cluster;
pub mod consume;
pub mod e2e;
pub mod fanout;
pub mod goals;
pub mod live_sql;
pub mod produce;
pub mod restart;
pub mod resume;
pub mod snapshot;
pub mod sql_insert;
pub mod subscribe;
pub mod under_attack;
