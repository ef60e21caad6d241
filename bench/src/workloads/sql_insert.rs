//! `strand-bench sql_insert` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `sql_insert`.
#[derive(Args, Debug, Clone)]
pub struct SqlInsertArgs {}

pub fn run(bench: &mut Bench, args: &SqlInsertArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("sql_insert: not ported yet")
}
