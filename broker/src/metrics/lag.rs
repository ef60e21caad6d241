//! A consumer group's lag in one partition: how many messages follow its committed `_seq`,
//! and how much time lies between that message and the newest one.
//!
//! The log keeps no count of records between two `_seq`s, so the messages are counted by
//! reading them (from the memory maps, each frame's checksum checked), at most `read_max` per
//! partition. Past that the rest is extrapolated from the rate of the messages read: a
//! `_seq` carries its millisecond, so `read` messages over their span of milliseconds, times
//! the milliseconds from the last one read to the newest. The time lag needs no reading.

use strand_log::{ReadFrom, ReadSnapshot, Seq};

/// Lag of one partition, or of several added up (records summed, seconds the largest).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct PartitionLag {
    pub records: u64,
    pub seconds: f64,
}

/// The lag of a consumer that has processed `log` up to `committed`, reading at most
/// `read_max` messages to count it.
pub(super) fn partition_lag(log: &ReadSnapshot, committed: Seq, read_max: usize) -> PartitionLag {
    let end = log.last_seq();
    if end <= committed {
        return PartitionLag::default();
    }
    let mut read = 0u64;
    let (mut first, mut last) = (None, committed);
    let mut records = log.records(ReadFrom::After(committed));
    let complete = loop {
        if read >= read_max as u64 {
            break last >= end;
        }
        match records.next() {
            None => break true,
            Some(Ok(record)) => {
                first.get_or_insert(record.seq);
                last = record.seq;
                read += 1;
            }
            // Damage (refused to readers too): what follows is estimated, not skipped over.
            Some(Err(_)) => break false,
        }
    };
    let records = if complete {
        read
    } else {
        read + rest_estimate(read, first.unwrap_or(last), last, end)
    };
    // A commit of `_seq` 0 ("before everything") has no time: count from the first message.
    let from = if committed == Seq::ZERO {
        first.unwrap_or(end)
    } else {
        committed
    };
    let milliseconds = end.unix_ms().saturating_sub(from.unix_ms());
    PartitionLag {
        records,
        seconds: milliseconds as f64 / 1000.0,
    }
}

/// Messages after `last` up to `end`, at the rate of the `read` messages from `first` to
/// `last` (at least one: `end` itself is after `last`).
fn rest_estimate(read: u64, first: Seq, last: Seq, end: Seq) -> u64 {
    let span_ms = last.unix_ms().saturating_sub(first.unix_ms()).max(1);
    let rest_ms = end.unix_ms().saturating_sub(last.unix_ms());
    let rest = (u128::from(read) * u128::from(rest_ms)).div_ceil(u128::from(span_ms));
    u64::try_from(rest).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strand_log::{FsyncPolicy, NewRecord, Partition, PartitionId, Store, StoreConfig};

    use super::*;

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        let mut config = StoreConfig::default();
        config.partition.fsync = FsyncPolicy::Never;
        let store = Store::open(dir, config).expect("store");
        store
            .partition(&PartitionId::new("tp/a.b.1/0").expect("id"))
            .expect("partition")
    }

    #[test]
    fn within_the_budget_the_count_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = partition(dir.path());
        let range = log
            .append(&[NewRecord::new(b"", b"v"); 10])
            .expect("append");
        let seqs: Vec<Seq> = log
            .snapshot()
            .records(ReadFrom::Earliest)
            .map(|r| r.expect("record").seq)
            .collect();
        assert_eq!(seqs.len(), 10);
        let lag = partition_lag(&log.snapshot(), seqs[3], 100);
        assert_eq!(lag.records, 6);
        let ms = range.last.unix_ms() - seqs[3].unix_ms();
        assert_eq!(lag.seconds, ms as f64 / 1000.0);
        // Exactly the budget, ending at the newest message: still exact.
        assert_eq!(partition_lag(&log.snapshot(), seqs[3], 6).records, 6);
        let caught_up = partition_lag(&log.snapshot(), range.last, 100);
        assert_eq!(caught_up, PartitionLag::default());
        let ahead = partition_lag(&log.snapshot(), Seq(range.last.0 + 1), 100);
        assert_eq!(ahead, PartitionLag::default());
        assert_eq!(partition_lag(&log.snapshot(), Seq::ZERO, 100).records, 10);
    }

    #[test]
    fn past_the_budget_the_rest_is_extrapolated_and_at_least_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = partition(dir.path());
        log.append(&[NewRecord::new(b"", b"v"); 10])
            .expect("append");
        // Counted 3, at least one more: never less than the truth's lower bound.
        let lag = partition_lag(&log.snapshot(), Seq::ZERO, 3);
        assert!(lag.records >= 4, "{lag:?}");
    }

    #[test]
    fn extrapolation_follows_the_rate_of_what_was_read() {
        let at = |ms: u64| Seq((ms - strand_log::seq::EPOCH_UNIX_MS) << 22);
        let now = 1_800_000_000_000;
        // 100 read over 10 ms, 90 ms more to the end: about 900 more.
        let rest = rest_estimate(100, at(now), at(now + 10), at(now + 100));
        assert_eq!(rest, 900);
        // All read within one millisecond: taken as one millisecond.
        assert_eq!(rest_estimate(5, at(now), at(now), at(now + 2)), 10);
        assert_eq!(rest_estimate(5, at(now), at(now + 10), at(now + 10)), 1);
    }
}
