//! `strand-bench subscribe` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `subscribe`.
#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {}

pub fn run(bench: &mut Bench, args: &SubscribeArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("subscribe: not ported yet")
}
