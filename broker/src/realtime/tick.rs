//! Ticks as realtime uses them: a `_seq` of the log's order given to no record
//! (`strand_log::Partition::tick`), once every record below it is published. Time-relative
//! subscriptions stamp time passing with one; snapshots of them and of joins are taken as of
//! one; a join reads all its partitions up to one (live, and one-shot in `engine/join.rs`).

use std::time::{Duration, Instant};

use strand_log::{LogError, Tick};

use crate::tables::versions::KeyedPartition;

/// A tick of `partition`'s log once every record below it is published, waiting at most
/// `wait` for that (a commit round under way takes milliseconds); `None` if it took longer.
pub(crate) fn settled_tick(
    partition: &KeyedPartition,
    wait: Duration,
) -> Result<Option<Tick>, LogError> {
    let log = partition.partition();
    let tick = log.tick()?;
    let give_up = Instant::now() + wait;
    while !log.tick_settled(&tick) {
        if Instant::now() > give_up {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(Some(tick))
}
