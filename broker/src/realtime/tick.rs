//! Ticks as realtime uses them: a `_seq` given to no record, below which every record of
//! the store is published. Time-relative subscriptions stamp time passing with one;
//! snapshots of them and of joins are taken as of one; a join reads all its partitions up to
//! one (live, and one-shot in `engine/join.rs`).
//!
//! On one node a tick is the log's (`strand_log::Partition::tick`), once its commit round
//! is done. On a cluster member it is the member's settled tick (`cluster/ticks.rs`), since
//! the log's own cannot vouch for records other groups have yet to apply here.

use std::time::{Duration, Instant};

use strand_log::{LogError, Seq};

use crate::tables::versions::KeyedPartition;

/// A tick above every record `partition`'s store had published when called, waiting at
/// most `wait` for it (a commit round under way takes milliseconds; a cluster's next tick,
/// `CLUSTER_TICK_INTERVAL_MS`). For snapshots and one-shot reads, which must hold what was
/// written before them. `None` if there was none in time; on a cluster member the latest
/// settled tick is taken then (consistent, only older).
pub(crate) fn fresh_tick(
    partition: &KeyedPartition,
    wait: Duration,
) -> Result<Option<Seq>, LogError> {
    let log = partition.partition();
    let tick = log.tick()?;
    let give_up = Instant::now() + wait;
    match partition.replicated_tick() {
        None => {
            while !log.tick_settled(&tick) {
                if Instant::now() > give_up {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(Some(tick.seq))
        }
        Some(mut settled) => {
            // `tick` is above every record applied here so far: a settled tick past it
            // covers all of them.
            while settled.is_none_or(|seq| seq < tick.seq) && Instant::now() <= give_up {
                std::thread::sleep(Duration::from_millis(1));
                settled = partition.replicated_tick().flatten();
            }
            Ok(settled)
        }
    }
}

/// Whether this member holds every record of every table up to `seq` (waiting at most
/// `wait`): on a cluster member, once its settled tick reached `seq`; always on one node. A
/// view that reads several partitions as of `seq` (a join resumed from a client's `_seq`,
/// which another member may have sent) needs them all.
pub(crate) fn applied_through(partition: &KeyedPartition, seq: Seq, wait: Duration) -> bool {
    let give_up = Instant::now() + wait;
    loop {
        match partition.replicated_tick() {
            None => return true,
            Some(Some(settled)) if settled >= seq => return true,
            Some(_) if Instant::now() > give_up => return false,
            Some(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// A tick for moving live views on: on one node the log's, as [`fresh_tick`]; on a cluster
/// member its settled tick now, without waiting (its move wakes the joins again).
pub(crate) fn settled_tick(
    partition: &KeyedPartition,
    wait: Duration,
) -> Result<Option<Seq>, LogError> {
    match partition.replicated_tick() {
        None => fresh_tick(partition, wait),
        Some(settled) => Ok(settled),
    }
}
