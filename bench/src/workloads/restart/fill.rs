//! Filling the server `restart` restarts: the table over HTTP (multi-row INSERTs from a few
//! client threads) and the topic over QUIC (one producer per partition, one produce request
//! in flight each), and the fetch that reads a partition back after the restart.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    Fetch, Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic, ReadFrom, Seq,
};

use crate::run::Bench;
use crate::sql::strand::StrandSystem;
use crate::sql::workload::{Statements, System};
use crate::target::Target;

/// HTTP clients filling the table (each its own connection and thread).
const TABLE_FILL_CLIENTS: usize = 4;
/// How long one produce request of the fill may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Records one fetch after the restart asks for.
const FETCH_RECORDS: u32 = 100;

/// Inserts `rows` rows with ids from 1 (rounded up to whole statements) from
/// [`TABLE_FILL_CLIENTS`] clients; the rows inserted.
pub fn fill_table(
    bench: &Bench,
    strand: &StrandSystem,
    statements: &Statements,
    rows: u64,
    batch_rows: usize,
) -> anyhow::Result<u64> {
    let batch = batch_rows as u64;
    let per_client = rows.div_ceil(batch).div_ceil(TABLE_FILL_CLIENTS as u64);
    let total = per_client * TABLE_FILL_CLIENTS as u64 * batch;
    let bar = bench.progress.counted("table fill", total);
    let inserted = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..TABLE_FILL_CLIENTS as u64)
            .map(|client| {
                let bar = bar.clone();
                scope.spawn(move || -> anyhow::Result<u64> {
                    let mut connection = strand.connect()?;
                    let mut inserted = 0;
                    for n in 0..per_client {
                        let first = 1 + ((client * per_client + n) * batch) as i64;
                        let statement = statements.insert_batch(first..first + batch as i64);
                        let reply = connection.insert_rows(&statement).context("table fill")?;
                        ensure!(
                            reply.rows == batch,
                            "{} of {batch} rows inserted",
                            reply.rows
                        );
                        inserted += reply.rows;
                        bar.inc(reply.rows);
                    }
                    Ok(inserted)
                })
            })
            .collect();
        let mut inserted = 0;
        for thread in threads {
            inserted += thread.join().expect("fill thread panicked")?;
        }
        anyhow::Ok(inserted)
    })?;
    bar.finish_and_clear();
    ensure!(inserted == total, "{inserted} of {total} rows inserted");
    Ok(inserted)
}

/// What goes into the topic.
pub struct TopicFill {
    pub topic: String,
    pub partitions: u32,
    pub records_per_partition: u64,
    pub value_bytes: usize,
    pub batch_records: usize,
}

impl TopicFill {
    /// Bytes of values written.
    pub fn bytes(&self) -> u64 {
        self.records_per_partition * u64::from(self.partitions) * self.value_bytes as u64
    }
}

/// Where a partition's middle is, from the acks of its fill (`_seq`s are increasing but not
/// consecutive: they are found, not computed).
#[derive(Clone, Copy, Debug)]
pub struct Middle {
    /// The last `_seq` of the batch before the middle one (`None`: the middle batch is the
    /// first).
    pub after: Option<Seq>,
    /// The first `_seq` of the middle batch: what a fetch after `after` must read first.
    pub first: Seq,
    /// The partition's last `_seq`.
    pub last: Seq,
}

/// Writes the topic: per partition, where its middle is.
pub fn fill_topic(
    bench: &Bench,
    target: &Target,
    token: &str,
    fill: &TopicFill,
) -> anyhow::Result<Vec<Middle>> {
    let bar = bench.progress.counted("topic fill", fill.bytes());
    let result = bench.runtime.block_on(async {
        let mut handles = Vec::new();
        for partition in 0..fill.partitions {
            let client = target.quic_client(token).await?;
            let request = ProduceTopic {
                topic: fill.topic.clone(),
                partitioning: Partitioning::Explicit(PartitionIndex(partition)),
                idempotence: None,
                records: Vec::new(),
            };
            let value = value(fill.value_bytes, partition);
            let (records, batch) = (fill.records_per_partition, fill.batch_records as u64);
            let bar = bar.clone();
            let middle_batch = records.div_ceil(batch) / 2;
            handles.push(tokio::spawn(async move {
                let (mut after, mut middle, mut previous_last) = (None, None, None);
                let mut left = records;
                for index in 0.. {
                    if left == 0 {
                        break;
                    }
                    let n = left.min(batch);
                    let mut request = request.clone();
                    request.records = (0..n)
                        .map(|_| ProduceRecord {
                            key: Bytes::new(),
                            value: value.clone(),
                        })
                        .collect();
                    let sent = client.request(Message::ProduceTopic(request));
                    let frames = tokio::time::timeout(REQUEST_TIMEOUT, sent)
                        .await
                        .context("a produce of the fill took over 60 s")??;
                    let (first, last, count) = acked(frames)?;
                    ensure!(count == n, "produce acked {count} of {n} records");
                    if index == middle_batch {
                        (after, middle) = (previous_last, Some(first));
                    }
                    previous_last = Some(last);
                    left -= n;
                    bar.inc(n * value.len() as u64);
                }
                Ok(Middle {
                    after,
                    first: middle.context("no middle batch produced")?,
                    last: previous_last.context("nothing produced")?,
                })
            }));
        }
        let mut seqs = Vec::new();
        for handle in handles {
            seqs.push(handle.await??);
        }
        anyhow::Ok(seqs)
    });
    bar.finish_and_clear();
    result
}

/// A value of `bytes` pseudo-random bytes (a log that compressed would not be measured).
fn value(bytes: usize, seed: u32) -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(seed + 1);
    let value: Vec<u8> = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    value.into()
}

/// The first and last `_seq` and the count of one produce's acks.
fn acked(frames: Vec<strand_wire::quic::Frame>) -> anyhow::Result<(Seq, Seq, u64)> {
    let mut range: Option<(Seq, Seq)> = None;
    let mut count = 0;
    for frame in frames {
        match frame.message {
            Message::ProduceAck(ack) => {
                count += u64::from(ack.count);
                range = Some(match range {
                    None => (ack.first, ack.last),
                    Some((first, _)) => (first, ack.last),
                });
            }
            Message::Error(error) => bail!("produce: {}: {}", error.code, error.message),
            other => bail!("produce answered with {}", other.name()),
        }
    }
    let (first, last) = range.context("produce answered with no ack")?;
    Ok((first, last, count))
}

/// One fetch of `partition` from its middle: the first record must be the middle batch's
/// first, and the partition's last `_seq` the one acknowledged last (a record acknowledged
/// before the restart and not there after it is LOST).
pub async fn fetch_middle(
    client: &Client,
    topic: &str,
    partition: u32,
    middle: Middle,
) -> anyhow::Result<()> {
    let fetch = Fetch {
        topic: topic.to_string(),
        partition: PartitionIndex(partition),
        from: middle.after.map_or(ReadFrom::Earliest, ReadFrom::After),
        records_max: FETCH_RECORDS,
        bytes_max: 1 << 20,
        wait_ms: 0,
    };
    let frames = client.request(Message::Fetch(fetch)).await?;
    let records = match frames.into_iter().next().map(|frame| frame.message) {
        Some(Message::FetchResponse(records)) => records,
        Some(Message::Error(error)) => bail!("fetch: {}: {}", error.code, error.message),
        Some(other) => bail!("fetch answered with {}", other.name()),
        None => bail!("fetch: no answer"),
    };
    let first = records.records.first().map(|r| r.seq);
    ensure!(
        first == Some(middle.first),
        "partition {partition}: a fetch from the middle read {first:?} after the restart, \
         {:?} before (LOST)",
        middle.first
    );
    ensure!(
        records.high_seq == middle.last,
        "partition {partition}: last _seq {} after the restart, {} acknowledged before (LOST)",
        records.high_seq.0,
        middle.last.0
    );
    Ok(())
}
