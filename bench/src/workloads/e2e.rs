//! `strand-bench e2e`: produce-to-consume latency. One producer sends one 100 B record per
//! produce at a fixed rate (default 1,000/s for 10 s after a 0.5 s warm-up), open loop: each
//! record is due at `start + i / rate` and sent then from a plain thread whatever happened to
//! the earlier ones, each produce on its own stream; one consumer on another connection,
//! twice per fsync policy: a `tail` (the server pushes each record as it commits; this case is
//! paired with the peers) and `fetch` long polls after the last `_seq` read (case
//! `..._fetch`). Latency is the consumer's receipt minus the record's due time (same clock),
//! so a stalled server shows for every record due meanwhile.
//! Every record sent must arrive once: `missing` and `duplicates` must be 0 or the case fails.
//! The `fsync=always` case also measures the disk (append + fdatasync at the same rate),
//! the floor its latency is held against.
//!
//! With `--peers`: NATS JetStream (publish, a pull consumer) and Redis Streams (`XADD`, a
//! reader in `XREAD BLOCK`; with `appendfsync always` and without persistence).

use std::time::Duration;

use anyhow::{ensure, Context};
use clap::Args;

use crate::cli::Fsync;
use crate::peers::redis::{RedisConfig, RedisServer};
use crate::peers::{jetstream, nats};
use crate::report::{Figure, Measurement};
use crate::run::Bench;
use crate::topics::driver::E2eRun;
use crate::topics::strand::StrandTopics;
use crate::topics::{self, E2eCase, E2eConsumer, E2E_VALUE_BYTES};
use crate::workloads::produce::secs;

const WORKLOAD: &str = "e2e";
/// A quick run's warm-up and window.
const QUICK_WARM_UP: Duration = Duration::from_millis(200);
const QUICK_WINDOW: Duration = Duration::from_secs(1);

/// Options of `e2e`.
#[derive(Args, Debug, Clone)]
pub struct E2eArgs {
    /// Records per second, one record per produce request.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of the counted window (records due in it are in the latencies).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of records sent before the counted window (not in the latencies, but checked
    /// for arrival).
    #[arg(long, default_value_t = 0.5)]
    pub warm_up: f64,
}

pub fn run(bench: &mut Bench, args: &E2eArgs) -> anyhow::Result<()> {
    ensure!(args.rate > 0.0, "--rate must be > 0");
    let (warm_up, measure) = if bench.quick {
        (QUICK_WARM_UP, QUICK_WINDOW)
    } else {
        (secs(args.warm_up)?, secs(args.duration)?)
    };
    let case = E2eCase {
        rate: args.rate,
        warm_up,
        measure,
    };
    let mut errors = Vec::new();
    for fsync in bench.targets.fsync_policies(&[Fsync::Never, Fsync::Always]) {
        for consumer in [E2eConsumer::Tail, E2eConsumer::Fetch] {
            if let Err(error) = strand(bench, fsync, &case, consumer) {
                errors.push(format!("strand ({}): {error:#}", consumer.name()));
            }
        }
        if fsync == Some(Fsync::Always) {
            // The goal holds this case's p99 against the disk's own fdatasync latency.
            bench.disk().context("disk probe")?;
        }
    }
    if bench.targets.peers() {
        peers(bench, &case, &mut errors);
    }
    ensure!(errors.is_empty(), "{}", errors.join("; "));
    Ok(())
}

fn strand(
    bench: &mut Bench,
    fsync: Option<Fsync>,
    case: &E2eCase,
    consumer: E2eConsumer,
) -> anyhow::Result<()> {
    let strand = StrandTopics::open(bench.targets.open(fsync, &[])?)?;
    let before = strand.scrape();
    let run = {
        let title = format!("strand e2e ({})", consumer.name());
        let _bar = bench.progress.timed(&title, case.warm_up + case.measure);
        strand
            .e2e(&bench.runtime, case, consumer)
            .with_context(|| format!("server stderr:\n{}", strand.stderr()))?
    };
    let mut m = measurement("strand", &strand.target.durability(), case, &run);
    // The tail is the streaming consumer, paired with the peers' (JetStream's pull stream,
    // Redis's blocking read); the fetch case has its own key and no peer.
    m.label = format!(
        "{E2E_VALUE_BYTES} B records to a {} consumer, one per produce at {}/s (open loop), \
         receipt minus due time",
        consumer.name(),
        case.rate
    );
    m = m.param("consumer", consumer.name());
    if consumer == E2eConsumer::Fetch {
        let case = format!("{}_fetch", m.case);
        m = m.case(&case);
    }
    // The server's own count covers the whole run, warm-up included.
    if let (Some(before), Some(after)) = (before, strand.scrape()) {
        m.figures
            .extend(crate::server_metrics::figures(&before, &after));
    }
    push(bench, m, &run)
}

fn peers(bench: &mut Bench, case: &E2eCase, errors: &mut Vec<String>) {
    match nats::installed_version() {
        Some(version) => {
            let run = (|| {
                let dir = bench.targets.scratch().join("jetstream-e2e");
                let server = nats::NatsServer::start(&dir)?;
                let _bar = bench
                    .progress
                    .timed("jetstream e2e", case.warm_up + case.measure);
                jetstream::e2e(&server, &bench.runtime, case)
                    .with_context(|| format!("nats-server stderr:\n{}", server.stderr()))
            })();
            let pushed = run.and_then(|run| {
                let m = measurement("jetstream", jetstream::DURABILITY, case, &run);
                push(bench, m.param("server", version), &run)
            });
            if let Err(error) = pushed {
                errors.push(format!("jetstream: {error:#}"));
            }
        }
        None => bench.note("nats-server not installed: JetStream skipped in e2e"),
    }
    match crate::peers::redis::installed_version() {
        Some(version) => {
            for config in RedisConfig::DURABLE_AND_NOT {
                let run = (|| {
                    let dir = bench
                        .targets
                        .scratch()
                        .join(format!("redis-e2e-{}", config.name()));
                    let server = RedisServer::start(&dir, config)?;
                    let _bar = bench
                        .progress
                        .timed("redis e2e", case.warm_up + case.measure);
                    topics::redis::e2e(&server, &bench.runtime, case)
                        .with_context(|| format!("redis-server log:\n{}", server.log()))
                })();
                let pushed = run.and_then(|run| {
                    let m = measurement("redis", config.durability(), case, &run);
                    push(bench, m.param("server", version.as_str()), &run)
                });
                if let Err(error) = pushed {
                    errors.push(format!("redis ({}): {error:#}", config.durability()));
                }
            }
        }
        None => bench.note("redis-server not installed: Redis Streams skipped in e2e"),
    }
}

/// Adds the measurement, then fails the case when a record was lost or came twice.
fn push(bench: &mut Bench, measurement: Measurement, run: &E2eRun) -> anyhow::Result<()> {
    let system = format!("{} ({})", measurement.system, measurement.durability);
    bench.push(measurement);
    ensure!(
        run.missing() == 0 && run.receipts.duplicates == 0,
        "{system}: {} of {} records missing, {} duplicates",
        run.missing(),
        run.sent,
        run.receipts.duplicates
    );
    Ok(())
}

/// The measurement of one case, the same shape for every system.
fn measurement(system: &str, durability: &str, case: &E2eCase, run: &E2eRun) -> Measurement {
    let label = format!(
        "{E2E_VALUE_BYTES} B records, one per produce at {}/s (open loop), receipt minus due time",
        case.rate
    );
    let case_id = format!("{E2E_VALUE_BYTES}B_r{}", case.rate);
    let mut m = Measurement::new(WORKLOAD, system, &case_id, &label)
        .durability(durability)
        .param("value_bytes", E2E_VALUE_BYTES)
        .param("rate", case.rate)
        .param("warm_up_s", case.warm_up.as_secs_f64())
        .param("window_s", case.measure.as_secs_f64());
    m.latency = run.receipts.latency.summary();
    m.figures = vec![
        Figure::new("sent", run.sent as f64, ""),
        Figure::new("received", run.receipts.received as f64, ""),
        Figure::new("missing", run.missing() as f64, ""),
        Figure::new("duplicates", run.receipts.duplicates as f64, ""),
        Figure::new("max send lag", run.max_send_lag.as_secs_f64() * 1e3, "ms"),
    ];
    m.figures.extend(run.cpu.figures());
    m
}
