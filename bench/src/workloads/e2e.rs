//! `strand-bench e2e` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `e2e`.
#[derive(Args, Debug, Clone)]
pub struct E2eArgs {}

pub fn run(bench: &mut Bench, args: &E2eArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("e2e: not ported yet")
}
