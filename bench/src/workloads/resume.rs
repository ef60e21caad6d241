//! `strand-bench resume` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `resume`.
#[derive(Args, Debug, Clone)]
pub struct ResumeArgs {}

pub fn run(bench: &mut Bench, args: &ResumeArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("resume: not ported yet")
}
