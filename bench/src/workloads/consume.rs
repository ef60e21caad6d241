//! `strand-bench consume` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `consume`.
#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {}

pub fn run(bench: &mut Bench, args: &ConsumeArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("consume: not ported yet")
}
