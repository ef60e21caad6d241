//! `strand-bench produce` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `produce`.
#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {}

pub fn run(bench: &mut Bench, args: &ProduceArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("produce: not ported yet")
}
