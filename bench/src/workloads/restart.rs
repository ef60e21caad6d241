//! `strand-bench restart` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `restart`.
#[derive(Args, Debug, Clone)]
pub struct RestartArgs {}

pub fn run(bench: &mut Bench, args: &RestartArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("restart: not ported yet")
}
