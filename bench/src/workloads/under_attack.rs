//! `strand-bench under_attack` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `under_attack`.
#[derive(Args, Debug, Clone)]
pub struct UnderAttackArgs {}

pub fn run(bench: &mut Bench, args: &UnderAttackArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("under_attack: not ported yet")
}
