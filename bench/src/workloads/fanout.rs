//! `strand-bench fanout` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `fanout`.
#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {}

pub fn run(bench: &mut Bench, args: &FanoutArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("fanout: not ported yet")
}
