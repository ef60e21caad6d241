//! Redis Streams' side of the topics workloads, on a [`RedisServer`] through the RESP client
//! of `peers/redis.rs`. Strand's partitions are streams here (`<prefix>:<i>`), each record an
//! entry with one field `v` holding the value:
//! - produce: each producer its own connection, one pipeline of `batch` `XADD`s per request
//!   (written at once, then its `batch` replies read), to stream `i % partitions`;
//! - consume: `XRANGE <stream> (<last id> + COUNT 10000` until the stream is read (Redis has no
//!   byte limit per read: the count alone bounds it);
//! - e2e: `XADD` due at the rate (open loop) on one connection, a reader on another doing
//!   `XREAD BLOCK 1000` after the last id it read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use indicatif::ProgressBar;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

use crate::latency::LatencyHistogram;
use crate::peers::redis::{encode, RedisServer, Reply, Resp};
use crate::topics::cpu::CpuMark;
use crate::topics::driver::{self, E2eRun, Gauge, Receipts, Run, Task};
use crate::topics::{
    self, ConsumeCase, E2eCase, ProduceCase, E2E_VALUE_BYTES, FETCH_RECORDS_MAX, FILL_BATCH,
};

/// The field of every entry.
const FIELD: &[u8] = b"v";
/// How long the e2e reader's `XREAD` blocks when nothing is there.
const BLOCK_MS: &str = "1000";

/// One pipeline of `XADD`s to `stream`, one per value, encoded once and sent per request.
fn xadd_pipeline(stream: &str, values: &[bytes::Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode(&mut out, &[b"XADD", stream.as_bytes(), b"*", FIELD, value]);
    }
    out
}

/// Reads the `count` replies of a pipeline of `XADD`s (each an entry id).
async fn read_xadd_replies(connection: &mut Resp, count: usize) -> anyhow::Result<()> {
    for _ in 0..count {
        connection.read().await?.into_bulk().context("XADD")?;
    }
    Ok(())
}

/// Produce throughput of `case`.
pub fn produce(server: &RedisServer, runtime: &Runtime, case: &ProduceCase) -> anyhow::Result<Run> {
    runtime.block_on(async {
        let gauge = Arc::new(Gauge::default());
        let mut tasks: Vec<Task<LatencyHistogram>> = Vec::new();
        for i in 0..case.producers {
            let mut connection = server.connect().await?;
            let stream = format!(
                "P{}_{}:{}",
                case.value_bytes,
                case.producers,
                i as u32 % case.partitions
            );
            let values = topics::values(case.value_bytes, i, case.batch);
            let pipeline = xadd_pipeline(&stream, &values);
            let (gauge, batch) = (gauge.clone(), case.batch);
            let bytes = (case.batch * case.value_bytes) as u64;
            tasks.push(Box::pin(async move {
                let mut latency = LatencyHistogram::new();
                let mut first = true;
                while !gauge.stopped() {
                    let started = Instant::now();
                    let sent = async {
                        connection.write_raw(&pipeline).await?;
                        read_xadd_replies(&mut connection, batch).await
                    };
                    // The connection is not used again after a dropped pipeline.
                    let Some(acked) = gauge.unless_stopped(sent).await else {
                        break;
                    };
                    acked?;
                    gauge.acked(batch as u64, bytes, &mut first);
                    if gauge.measuring() {
                        latency.record(started.elapsed());
                    }
                }
                Ok(latency)
            }));
        }
        let pid = Some(server.pid());
        driver::drive_producers(tasks, gauge, case.warm_up, case.window(), pid).await
    })
}

/// Adds the records of `case` to new streams (one connection per stream, pipelines of
/// [`FILL_BATCH`]); returns the stream prefix and how long it took.
pub fn fill(
    server: &RedisServer,
    runtime: &Runtime,
    case: &ConsumeCase,
    bar: &ProgressBar,
) -> anyhow::Result<(String, Duration)> {
    let prefix = format!("C{}", case.value_bytes);
    let started = Instant::now();
    runtime.block_on(async {
        let mut handles = Vec::new();
        for i in 0..case.partitions {
            let mut connection = server.connect().await?;
            let stream = format!("{prefix}:{i}");
            let (mut left, bar, size) = (case.records_per_partition, bar.clone(), case.value_bytes);
            handles.push(tokio::spawn(async move {
                let values = topics::values(size, i as usize, FILL_BATCH);
                let full = xadd_pipeline(&stream, &values);
                while left > 0 {
                    let n = left.min(FILL_BATCH as u64) as usize;
                    if n == FILL_BATCH {
                        connection.write_raw(&full).await?;
                    } else {
                        let pipeline = xadd_pipeline(&stream, &values[..n]);
                        connection.write_raw(&pipeline).await?;
                    }
                    read_xadd_replies(&mut connection, n).await?;
                    left -= n as u64;
                    bar.inc(n as u64);
                }
                anyhow::Ok(())
            }));
        }
        for handle in handles {
            handle.await.context("a fill task panicked")??;
        }
        anyhow::Ok(())
    })?;
    Ok((prefix, started.elapsed()))
}

/// One entry of an `XRANGE`/`XREAD` reply: its id and its value.
fn entry(reply: Reply) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut parts = reply.into_array()?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        bail!("an entry without id and fields");
    };
    let mut fields = fields.into_array()?.into_iter();
    let (Some(_field), Some(value)) = (fields.next(), fields.next()) else {
        bail!("an entry without its field");
    };
    Ok((id.into_bulk()?, value.into_bulk()?))
}

async fn read_stream(
    connection: &mut Resp,
    stream: &str,
    expected: u64,
    gauge: &Gauge,
) -> anyhow::Result<u64> {
    let count = FETCH_RECORDS_MAX.to_string();
    let mut start = b"-".to_vec();
    let mut read = 0u64;
    while read < expected {
        let command: [&[u8]; 6] = [
            b"XRANGE",
            stream.as_bytes(),
            &start,
            b"+",
            b"COUNT",
            count.as_bytes(),
        ];
        let entries = connection.command(&command).await?.into_array()?;
        ensure!(
            !entries.is_empty(),
            "{stream}: no entries after {read} of {expected}"
        );
        let mut bytes = 0;
        let n = entries.len() as u64;
        for reply in entries {
            let (id, value) = entry(reply)?;
            bytes += value.len() as u64;
            start = [b"(".as_slice(), &id].concat();
        }
        read += n;
        gauge.add(n, bytes);
    }
    ensure!(read == expected, "{stream}: read {read} of {expected}");
    Ok(read)
}

/// Consume throughput of `case` over streams [`fill`]ed under `prefix`.
pub fn consume(
    server: &RedisServer,
    runtime: &Runtime,
    prefix: &str,
    case: &ConsumeCase,
) -> anyhow::Result<Run> {
    runtime.block_on(async {
        let gauge = Arc::new(Gauge::default());
        let mut tasks: Vec<Task<u64>> = Vec::new();
        for k in 0..case.consumers {
            let mut connection = server.connect().await?;
            let streams: Vec<String> = case
                .partitions_of(k)
                .map(|i| format!("{prefix}:{i}"))
                .collect();
            let (gauge, expected) = (gauge.clone(), case.records_per_partition);
            tasks.push(Box::pin(async move {
                let mut read = 0;
                for stream in streams {
                    read += read_stream(&mut connection, &stream, expected, &gauge).await?;
                }
                Ok(read)
            }));
        }
        driver::drive_consumers(tasks, gauge, case.records(), Some(server.pid())).await
    })
}

/// Produce-to-consume latency of `case`: `XADD`s due at the rate, written by a task as the
/// pacing thread hands them over while another task reads their replies; a reader on its own
/// connection blocks in `XREAD` after the last id it read.
pub fn e2e(server: &RedisServer, runtime: &Runtime, case: &E2eCase) -> anyhow::Result<E2eRun> {
    let total = case.total();
    runtime.block_on(async {
        let (mut writer, mut replies) = server.connect().await?.split();
        let mut reader_connection = server.connect().await?;
        let mark = CpuMark::now(Some(server.pid()));
        let base = Instant::now();
        let deadline = case.receive_deadline(base);
        let mut receipts = Receipts::new(base, case.warm_up, total);
        let reader = tokio::spawn(async move {
            let mut last = b"0-0".to_vec();
            while !receipts.complete() && Instant::now() < deadline {
                let command: [&[u8]; 8] = [
                    b"XREAD",
                    b"COUNT",
                    b"1000",
                    b"BLOCK",
                    BLOCK_MS.as_bytes(),
                    b"STREAMS",
                    b"L",
                    &last,
                ];
                // A timed-out block answers the null array: no streams.
                let streams = reader_connection.command(&command).await?.into_array()?;
                let now = Instant::now();
                for stream in streams {
                    let mut parts = stream.into_array()?.into_iter().skip(1);
                    let entries = parts.next().context("XREAD: a stream without entries")?;
                    for reply in entries.into_array()? {
                        let (id, value) = entry(reply)?;
                        receipts.receive(&value, now)?;
                        last = id;
                    }
                }
            }
            anyhow::Ok(receipts)
        });
        let acks = tokio::spawn(async move {
            for _ in 0..total {
                replies.read().await?.into_bulk().context("XADD")?;
            }
            anyhow::Ok(())
        });
        let (commands, mut queue) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let writes = tokio::spawn(async move {
            while let Some(command) = queue.recv().await {
                writer.write_all(&command).await.context("write XADD")?;
            }
            anyhow::Ok(())
        });
        let rate = case.rate;
        let pacer = tokio::task::spawn_blocking(move || {
            driver::pace_blocking(base, rate, total, |index, due_ns| {
                let value = topics::stamped_value(E2E_VALUE_BYTES, index, due_ns);
                let mut command = Vec::with_capacity(value.len() + 32);
                encode(&mut command, &[b"XADD", b"L", b"*", FIELD, &value]);
                // The writer task only ends when this sender is dropped.
                let _ = commands.send(command);
            })
        });
        let max_send_lag = pacer.await.context("the pacing thread panicked")?;
        writes.await.context("the writer task panicked")??;
        acks.await.context("the ack reader panicked")??;
        let receipts = reader.await.context("the consumer task panicked")??;
        Ok(E2eRun {
            receipts,
            sent: total,
            max_send_lag,
            cpu: mark.use_since(),
        })
    })
}
