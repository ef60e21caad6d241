//! `strand-bench produce`: produce throughput over QUIC. For each fsync policy, value size and
//! producer count, a fresh server (a case must not inherit the page cache and writeback of the
//! previous ones), a topic of 8 partitions and N producers (tasks, one connection each, one
//! request of 1000 records in flight each, producer `i` writing partition `i % 8`); the
//! records acknowledged in a counted window after a warm-up, records/s per tenth of the
//! window, each request's latency (closed loop: the next batch goes when the last is
//! acknowledged) and the CPU use of server, client and the rest of the machine. The warm-up
//! lasts until every producer had a request acknowledged, and the window spans at least two
//! such first rounds (up to 10 x `--duration`), so slow rounds are not counted as none. Beside
//! `fsync=always`, the disk's own bandwidth is probed (a goal holds the two together). A
//! quick run uses one server per configuration.
//!
//! With `--peers`: NATS JetStream (a stream per partition, windows of 1000 publishes whose
//! acks are awaited) and Redis Streams (a stream per partition, pipelines of 1000 `XADD`s, once
//! with `appendfsync always` and once without persistence), same cases.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::cli::Fsync;
use crate::peers::redis::{self, RedisConfig, RedisServer};
use crate::peers::{jetstream, nats};
use crate::report::{Measurement, Throughput};
use crate::run::Bench;
use crate::server_metrics;
use crate::topics::driver::Run;
use crate::topics::strand::StrandTopics;
use crate::topics::{self, ProduceCase};

const WORKLOAD: &str = "produce";
/// A quick run's warm-up and window.
const QUICK_WARM_UP: Duration = Duration::ZERO;
const QUICK_WINDOW: Duration = Duration::from_millis(150);
/// How far a window may grow so that it spans two rounds of slow requests (see
/// `drive_producers`): a quick run's at most, a full run's at most this many times
/// `--duration`.
const QUICK_WINDOW_MAX: Duration = Duration::from_millis(300);
const WINDOW_GROWTH_MAX: u32 = 10;

/// Options of `produce`.
#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    /// Value sizes in bytes, comma-separated: one case per size and producer count.
    #[arg(long, value_delimiter = ',', default_value = "100,1024")]
    pub value_sizes: Vec<usize>,
    /// Producer counts, comma-separated (each producer its own connection, one request in
    /// flight).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub producers: Vec<usize>,
    /// Records per produce request (JetStream: publishes per window of awaited acks; Redis:
    /// `XADD`s per pipeline).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Partitions of the topic (JetStream and Redis: as many streams).
    #[arg(long, default_value_t = 8)]
    pub partitions: u32,
    /// Seconds producers run before the counted window (connections warm, files created).
    #[arg(long, default_value_t = 0.7)]
    pub warm_up: f64,
    /// Seconds of the counted window.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
}

pub fn run(bench: &mut Bench, args: &ProduceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.partitions > 0 && args.batch > 0,
        "--partitions and --batch must be > 0"
    );
    let (warm_up, measure, window_max) = if bench.quick {
        (QUICK_WARM_UP, QUICK_WINDOW, QUICK_WINDOW_MAX)
    } else {
        let measure = secs(args.duration)?;
        (secs(args.warm_up)?, measure, measure * WINDOW_GROWTH_MAX)
    };
    let mut cases = Vec::new();
    for &value_bytes in &args.value_sizes {
        for &producers in &args.producers {
            cases.push(ProduceCase {
                value_bytes,
                producers,
                batch: args.batch,
                partitions: args.partitions,
                warm_up,
                measure,
                window_max,
            });
        }
    }
    let mut errors = Vec::new();
    for fsync in bench.targets.fsync_policies(&[Fsync::Never, Fsync::Always]) {
        let mut server = None;
        for case in &cases {
            if let Err(error) = strand_case(bench, fsync, &mut server, case) {
                errors.push(format!("strand {}: {error:#}", case_label(case)));
            }
        }
        drop(server);
        if fsync == Some(Fsync::Always) {
            // The goal holds fsync=always 1 KiB x 64 against the disk's O_DSYNC bandwidth.
            bench.disk().context("disk probe")?;
        }
    }
    if bench.targets.peers() {
        peers(bench, &cases, &mut errors);
    }
    anyhow::ensure!(errors.is_empty(), "{}", errors.join("; "));
    Ok(())
}

fn strand_case(
    bench: &mut Bench,
    fsync: Option<Fsync>,
    server: &mut Option<StrandTopics>,
    case: &ProduceCase,
) -> anyhow::Result<()> {
    let strand = topics::server_for_case(server, bench.quick, || {
        StrandTopics::open(bench.targets.open(fsync, &[])?)
    })?;
    let before = strand.scrape();
    let run = {
        let _bar = bench
            .progress
            .timed(&progress_label("strand", case), case.warm_up + case.measure);
        strand
            .produce(&bench.runtime, case)
            .with_context(|| format!("server stderr:\n{}", strand.stderr()))?
    };
    let durability = strand.target.durability();
    let mut m = measurement("strand", &durability, case, &run);
    // The server's own count covers the whole run, warm-up included.
    if let (Some(before), Some(after)) = (before, strand.scrape()) {
        m.figures.extend(server_metrics::figures(&before, &after));
    }
    bench.push(m);
    Ok(())
}

fn peers(bench: &mut Bench, cases: &[ProduceCase], errors: &mut Vec<String>) {
    match nats::installed_version() {
        Some(version) => {
            let mut server = None;
            for case in cases {
                if let Err(error) = jetstream_case(bench, &mut server, case, &version) {
                    errors.push(format!("jetstream {}: {error:#}", case_label(case)));
                }
            }
        }
        None => bench.note("nats-server not installed: JetStream skipped in produce"),
    }
    match redis::installed_version() {
        Some(version) => {
            for config in RedisConfig::DURABLE_AND_NOT {
                let mut server = None;
                for case in cases {
                    if let Err(error) = redis_case(bench, config, &mut server, case, &version) {
                        let durability = config.durability();
                        errors.push(format!(
                            "redis ({durability}) {}: {error:#}",
                            case_label(case)
                        ));
                    }
                }
            }
        }
        None => bench.note("redis-server not installed: Redis Streams skipped in produce"),
    }
}

fn jetstream_case(
    bench: &mut Bench,
    server: &mut Option<nats::NatsServer>,
    case: &ProduceCase,
    version: &str,
) -> anyhow::Result<()> {
    let dir = bench
        .targets
        .scratch()
        .join(format!("jetstream-produce-{}", case_label(case)));
    let server = topics::server_for_case(server, bench.quick, || nats::NatsServer::start(&dir))?;
    let run = {
        let _bar = bench.progress.timed(
            &progress_label("jetstream", case),
            case.warm_up + case.measure,
        );
        jetstream::produce(server, &bench.runtime, case)
            .with_context(|| format!("nats-server stderr:\n{}", server.stderr()))?
    };
    let measurement = measurement("jetstream", jetstream::DURABILITY, case, &run);
    bench.push(measurement.param("server", version));
    Ok(())
}

fn redis_case(
    bench: &mut Bench,
    config: RedisConfig,
    server: &mut Option<RedisServer>,
    case: &ProduceCase,
    version: &str,
) -> anyhow::Result<()> {
    let dir = bench.targets.scratch().join(format!(
        "redis-produce-{}-{}",
        config.name(),
        case_label(case)
    ));
    let server = topics::server_for_case(server, bench.quick, || RedisServer::start(&dir, config))?;
    let run = {
        let _bar = bench
            .progress
            .timed(&progress_label("redis", case), case.warm_up + case.measure);
        topics::redis::produce(server, &bench.runtime, case)
            .with_context(|| format!("redis-server log:\n{}", server.log()))?
    };
    let measurement = measurement("redis", config.durability(), case, &run);
    bench.push(measurement.param("server", version));
    Ok(())
}

fn case_label(case: &ProduceCase) -> String {
    topics::case_id(case.value_bytes, case.producers, 'p')
}

fn progress_label(system: &str, case: &ProduceCase) -> String {
    format!("{system} {}", case_label(case))
}

/// The measurement of one case, the same shape for every system.
fn measurement(system: &str, durability: &str, case: &ProduceCase, run: &Run) -> Measurement {
    let label = format!(
        "{} B values, {} producer(s), batches of {}, {} partitions",
        case.value_bytes, case.producers, case.batch, case.partitions
    );
    let mut m = Measurement::new(WORKLOAD, system, &case_label(case), &label)
        .durability(durability)
        .param("value_bytes", case.value_bytes)
        .param("producers", case.producers)
        .param("batch", case.batch)
        .param("partitions", case.partitions)
        .param("warm_up_s", case.warm_up.as_secs_f64())
        .param("window_s", case.measure.as_secs_f64());
    m.throughput = Some(Throughput::of(run.records, run.bytes, run.elapsed));
    m.latency = run.latency.summary();
    m.series = run.series.clone();
    m.figures = run.cpu.figures();
    m
}

/// A duration option in seconds.
pub(crate) fn secs(seconds: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .with_context(|| format!("{seconds} is not a duration in seconds"))
}
