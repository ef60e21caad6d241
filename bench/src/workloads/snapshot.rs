//! `strand-bench snapshot` (being ported from broker/benches).

use clap::Args;

use crate::run::Bench;

/// Options of `snapshot`.
#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {}

pub fn run(bench: &mut Bench, args: &SnapshotArgs) -> anyhow::Result<()> {
    let _ = (bench, args);
    anyhow::bail!("snapshot: not ported yet")
}
