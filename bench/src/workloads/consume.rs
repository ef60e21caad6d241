//! `strand-bench consume`: consume throughput over QUIC from a pre-filled topic. Per value
//! size, a topic of 8 partitions is filled (4M x 100 B, 1M x 1 KiB by default; one producer
//! per partition) and read back with `fetch` (10,000 records / 4 MiB per fetch, from the
//! earliest record, then after the last `_seq` read) by one consumer going through the
//! partitions in turn, then by 8 consumers (one per partition, own connections); the clock
//! runs from the consumers' start to the last one's end. The data is in the page cache: this
//! measures the server's read path, not the disk.
//!
//! With `--peers`: NATS JetStream (a stream per partition, pull consumers) and Redis Streams
//! (a stream per partition without persistence, `XRANGE ... COUNT 10000`), same cases.

use std::time::Duration;

use anyhow::{ensure, Context};
use clap::Args;
use indicatif::ProgressBar;

use crate::cli::Fsync;
use crate::peers::redis::{RedisConfig, RedisServer};
use crate::peers::{jetstream, nats};
use crate::report::{Figure, Measurement, Throughput};
use crate::run::Bench;
use crate::topics::driver::Run;
use crate::topics::strand::StrandTopics;
use crate::topics::{self, ConsumeCase, FETCH_BYTES_MAX, FETCH_RECORDS_MAX};

const WORKLOAD: &str = "consume";
/// A quick run fills this fraction of the records.
const QUICK_DIVISOR: u64 = 100;

/// Options of `consume`.
#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// Value sizes in bytes, comma-separated: one filled topic per size.
    #[arg(long, value_delimiter = ',', default_value = "100,1024")]
    pub value_sizes: Vec<usize>,
    /// Records filled per value size, comma-separated in the order of --value-sizes (one
    /// number: the same for every size); spread evenly over the partitions.
    #[arg(long, value_delimiter = ',', default_value = "4000000,1000000")]
    pub records: Vec<u64>,
    /// Partitions of each topic (JetStream and Redis: as many streams).
    #[arg(long, default_value_t = 8)]
    pub partitions: u32,
    /// Consumer counts, comma-separated: 1 reads every partition in turn; N share them
    /// (consumer k reads partitions k, k+N, ...), each on its own connection.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub consumers: Vec<usize>,
}

/// The fills of a run: `(value_bytes, records per partition)`.
fn fills(bench: &Bench, args: &ConsumeArgs) -> anyhow::Result<Vec<(usize, u64)>> {
    ensure!(args.partitions > 0, "--partitions must be > 0");
    ensure!(
        args.records.len() == 1 || args.records.len() == args.value_sizes.len(),
        "--records takes one number or one per --value-sizes"
    );
    let divisor = if bench.quick { QUICK_DIVISOR } else { 1 };
    let mut fills = Vec::new();
    for (i, &size) in args.value_sizes.iter().enumerate() {
        let records = args
            .records
            .get(i)
            .or(args.records.first())
            .copied()
            .unwrap_or(0);
        let per_partition = (records / divisor / u64::from(args.partitions)).max(1);
        fills.push((size, per_partition));
    }
    Ok(fills)
}

pub fn run(bench: &mut Bench, args: &ConsumeArgs) -> anyhow::Result<()> {
    let fills = fills(bench, args)?;
    let cases = |size: usize, per_partition: u64| {
        args.consumers.iter().map(move |&consumers| ConsumeCase {
            value_bytes: size,
            partitions: args.partitions,
            records_per_partition: per_partition,
            consumers: consumers.max(1),
        })
    };
    let mut errors = Vec::new();
    for fsync in bench.targets.fsync_policies(&[Fsync::Never]) {
        if let Err(error) = strand(bench, fsync, &fills, &cases) {
            errors.push(format!("strand: {error:#}"));
        }
    }
    if bench.targets.peers() {
        match nats::installed_version() {
            Some(version) => {
                if let Err(error) = jetstream(bench, &fills, &cases, &version) {
                    errors.push(format!("jetstream: {error:#}"));
                }
            }
            None => bench.note("nats-server not installed: JetStream skipped in consume"),
        }
        match crate::peers::redis::installed_version() {
            Some(version) => {
                if let Err(error) = redis(bench, &fills, &cases, &version) {
                    errors.push(format!("redis: {error:#}"));
                }
            }
            None => bench.note("redis-server not installed: Redis Streams skipped in consume"),
        }
    }
    ensure!(errors.is_empty(), "{}", errors.join("; "));
    Ok(())
}

/// Fills a topic with a case's records: its name and how long the fill took.
type FillFn<'a> =
    Box<dyn Fn(&Bench, &ConsumeCase, &ProgressBar) -> anyhow::Result<(String, Duration)> + 'a>;
/// Reads a filled topic back: the run and the figures the system adds of its own.
type ConsumeFn<'a> =
    Box<dyn Fn(&Bench, &str, &ConsumeCase) -> anyhow::Result<(Run, Vec<Figure>)> + 'a>;

/// What `consume` needs of one system: fill a topic with a case's records (the topic's
/// name and how long it took), and read it back with another case (the run and the figures
/// the system adds of its own).
struct ConsumeSystem<'a> {
    name: &'static str,
    durability: String,
    /// The peer's server version, a param of its measurements.
    version: Option<&'a str>,
    fill: FillFn<'a>,
    consume: ConsumeFn<'a>,
}

/// Per value size: one fill, then every consumer count over it.
fn fill_then_consume<I: Iterator<Item = ConsumeCase>>(
    bench: &mut Bench,
    system: &ConsumeSystem<'_>,
    fills: &[(usize, u64)],
    cases: &impl Fn(usize, u64) -> I,
) -> anyhow::Result<()> {
    for &(size, per_partition) in fills {
        let mut all = cases(size, per_partition).peekable();
        let Some(first) = all.peek().copied() else {
            continue;
        };
        let bar = bench
            .progress
            .counted(&format!("{} fill {size}B", system.name), first.records());
        let (topic, took) = (system.fill)(bench, &first, &bar)?;
        bar.finish_and_clear();
        let fill_rate = first.records() as f64 / took.as_secs_f64().max(1e-9);
        for case in all {
            let label = format!("{} consume {}", system.name, case_label(&case));
            let bar = bench.progress.counted(&label, case.records());
            let (run, figures) = (system.consume)(bench, &topic, &case)?;
            bar.finish_and_clear();
            let mut m = measurement(system.name, &system.durability, &case, &run, fill_rate);
            m.figures.extend(figures);
            if let Some(version) = system.version {
                m = m.param("server", version);
            }
            bench.push(m);
        }
    }
    Ok(())
}

fn strand<I: Iterator<Item = ConsumeCase>>(
    bench: &mut Bench,
    fsync: Option<Fsync>,
    fills: &[(usize, u64)],
    cases: &impl Fn(usize, u64) -> I,
) -> anyhow::Result<()> {
    let strand = StrandTopics::open(bench.targets.open(fsync, &[])?)?;
    let system = ConsumeSystem {
        name: "strand",
        durability: strand.target.durability(),
        version: None,
        fill: Box::new(|bench, case, bar| {
            strand
                .fill(&bench.runtime, case, bar)
                .with_context(|| format!("fill; server stderr:\n{}", strand.stderr()))
        }),
        consume: Box::new(|bench, topic, case| {
            let before = strand.scrape();
            let run = strand
                .consume(&bench.runtime, topic, case)
                .with_context(|| format!("server stderr:\n{}", strand.stderr()))?;
            // What the server counted of the same reads.
            let figures = match (before, strand.scrape()) {
                (Some(before), Some(after)) => crate::server_metrics::figures(&before, &after),
                _ => Vec::new(),
            };
            Ok((run, figures))
        }),
    };
    fill_then_consume(bench, &system, fills, cases)
}

fn jetstream<I: Iterator<Item = ConsumeCase>>(
    bench: &mut Bench,
    fills: &[(usize, u64)],
    cases: &impl Fn(usize, u64) -> I,
    version: &str,
) -> anyhow::Result<()> {
    let server = nats::NatsServer::start(&bench.targets.scratch().join("jetstream-consume"))?;
    let system = ConsumeSystem {
        name: "jetstream",
        durability: jetstream::DURABILITY.to_string(),
        version: Some(version),
        fill: Box::new(|bench, case, bar| {
            jetstream::fill(&server, &bench.runtime, case, bar)
                .with_context(|| format!("fill; nats-server stderr:\n{}", server.stderr()))
        }),
        consume: Box::new(|bench, prefix, case| {
            let run = jetstream::consume(&server, &bench.runtime, prefix, case)
                .with_context(|| format!("nats-server stderr:\n{}", server.stderr()))?;
            Ok((run, Vec::new()))
        }),
    };
    fill_then_consume(bench, &system, fills, cases)
}

/// Redis without persistence only: reads do not depend on how writes were made durable.
fn redis<I: Iterator<Item = ConsumeCase>>(
    bench: &mut Bench,
    fills: &[(usize, u64)],
    cases: &impl Fn(usize, u64) -> I,
    version: &str,
) -> anyhow::Result<()> {
    let config = RedisConfig::NoPersistence;
    let server = RedisServer::start(&bench.targets.scratch().join("redis-consume"), config)?;
    let system = ConsumeSystem {
        name: "redis",
        durability: config.durability().to_string(),
        version: Some(version),
        fill: Box::new(|bench, case, bar| {
            topics::redis::fill(&server, &bench.runtime, case, bar)
                .with_context(|| format!("fill; redis-server log:\n{}", server.log()))
        }),
        consume: Box::new(|bench, prefix, case| {
            let run = topics::redis::consume(&server, &bench.runtime, prefix, case)
                .with_context(|| format!("redis-server log:\n{}", server.log()))?;
            Ok((run, Vec::new()))
        }),
    };
    fill_then_consume(bench, &system, fills, cases)
}

fn case_label(case: &ConsumeCase) -> String {
    topics::case_id(case.value_bytes, case.consumers, 'c')
}

/// The measurement of one case, the same shape for every system.
fn measurement(
    system: &str,
    durability: &str,
    case: &ConsumeCase,
    run: &Run,
    fill_rate: f64,
) -> Measurement {
    let label = format!(
        "{} B values, {} consumer(s), {} partitions of {} records, fetches of {} records / {} MiB",
        case.value_bytes,
        case.consumers,
        case.partitions,
        case.records_per_partition,
        FETCH_RECORDS_MAX,
        FETCH_BYTES_MAX >> 20
    );
    let mut m = Measurement::new(WORKLOAD, system, &case_label(case), &label)
        .durability(durability)
        .param("value_bytes", case.value_bytes)
        .param("consumers", case.consumers)
        .param("partitions", case.partitions)
        .param("records", case.records())
        .param("fetch_records_max", FETCH_RECORDS_MAX)
        .param("fetch_bytes_max", FETCH_BYTES_MAX);
    m.throughput = Some(Throughput::of(run.records, run.bytes, run.elapsed));
    m.series = run.series.clone();
    m.figures = run.cpu.figures();
    m.figures.push(Figure::new("fill rate", fill_rate, "rec/s"));
    m
}
