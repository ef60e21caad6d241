//! `strand-bench cluster`: what replication costs and how long a leader's death interrupts
//! writes. In one run, on servers the tool spawns on 127.0.0.1:
//!
//! 1. Produce throughput: `--producers` tasks (one connection each, one batch of `--batch`
//!    100 B records in flight each, producer `i` writing partition `i % 2` of a 2-partition
//!    topic) for `--seconds` after a 1 s warm-up, on a single node started without
//!    `--cluster`, then on the leader of a fresh three-member cluster (the `produce`
//!    workload's own loop). Records/s and each batch's produce-to-ack latency.
//! 2. Write-to-subscriber latency: one 100 B record per produce to the leader every 10 ms
//!    (open loop) while a `tail` on a follower (on the same node for the single one) receives
//!    them; receipt minus the record's due time, stamped in its value.
//! 3. Failover, `--kills` times: the leader found in `GET /v1/cluster/status` is killed with
//!    SIGKILL, and a one-record produce is sent to each surviving member in turn (connections
//!    made before the kill; a refusal or no answer within 100 ms passes to the next) until
//!    one is acknowledged; the time from the kill to that acknowledgement. The killed member
//!    is then started again on its data directory, and the next kill waits until all three
//!    agree on a leader and have applied its whole log.
//!
//! Every member gets the same `--fsync` policy (default `interval`).

mod load;
mod members;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;

use crate::cli::Fsync;
use crate::latency::LatencyHistogram;
use crate::report::{Figure, Measurement, Throughput};
use crate::run::Bench;
use crate::topics::strand::StrandTopics;
use crate::topics::{E2eCase, ProduceCase, E2E_VALUE_BYTES};
use crate::workloads::produce::secs;

use load::{Endpoint, Survivor};
use members::Cluster;

const WORKLOAD: &str = "cluster";
const MEMBERS: usize = 3;
const PARTITIONS: u32 = 2;
const VALUE_BYTES: usize = 100;
/// Records per second of the write-to-subscriber run: one every 10 ms.
const FOLLOW_RATE: f64 = 100.0;
/// Warm-ups before the counted windows (a quick run has none for the produce).
const PRODUCE_WARM_UP: Duration = Duration::from_secs(1);
const FOLLOW_WARM_UP: Duration = Duration::from_millis(500);
/// A quick run's window and kills at most.
const QUICK_SECONDS: f64 = 1.0;
const QUICK_KILLS: usize = 1;

/// Options of `cluster`.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Seconds of each counted window (produce throughput and write-to-subscriber latency, on
    /// one node and on three).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Concurrent producers of the throughput runs (one connection each).
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Records per produce request of the throughput runs.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Leaders killed (SIGKILL) one after the other, each restarted before the next kill.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
}

pub fn run(bench: &mut Bench, args: &ClusterArgs) -> anyhow::Result<()> {
    if !bench.targets.spawns() {
        bail!("cluster needs servers the tool starts itself (--spawn): it kills them");
    }
    ensure!(
        args.producers > 0 && args.batch > 0,
        "--producers and --batch must be at least 1"
    );
    let (seconds, kills, warm_up) = match bench.quick {
        true => (
            args.seconds.min(QUICK_SECONDS),
            args.kills.min(QUICK_KILLS),
            Duration::ZERO,
        ),
        false => (args.seconds, args.kills, PRODUCE_WARM_UP),
    };
    let measure = secs(seconds)?;
    let produce = ProduceCase {
        value_bytes: VALUE_BYTES,
        producers: args.producers,
        batch: args.batch,
        partitions: PARTITIONS,
        warm_up,
        measure,
        window_max: measure * 2,
    };
    let follow = E2eCase {
        rate: FOLLOW_RATE,
        warm_up: FOLLOW_WARM_UP,
        measure,
    };
    let fsync = bench
        .targets
        .fsync_policies(&[Fsync::Interval])
        .first()
        .copied()
        .flatten()
        .unwrap_or(Fsync::Interval);
    single_node(bench, fsync, &produce, &follow).context("single node")?;
    three_nodes(bench, fsync, &produce, &follow, kills).context("three-node cluster")
}

/// Throughput and write-to-subscriber latency on one node without `--cluster`.
fn single_node(
    bench: &mut Bench,
    fsync: Fsync,
    produce: &ProduceCase,
    follow: &E2eCase,
) -> anyhow::Result<()> {
    let strand = StrandTopics::open(bench.targets.open(Some(fsync), &[])?)?;
    let durability = strand.target.durability();
    let endpoint = Endpoint {
        quic: strand.target.quic.context("spawned servers speak QUIC")?,
        ca_cert: strand
            .target
            .ca_cert
            .clone()
            .context("a spawned server's CA")?,
    };
    let run = {
        let _bar = bench
            .progress
            .timed("1 node produce", produce.warm_up + produce.measure);
        strand
            .produce(&bench.runtime, produce)
            .with_context(|| format!("server stderr:\n{}", strand.stderr()))?
    };
    bench.push(produce_measurement("1node", &durability, produce, &run));
    let topic = strand.create_topic("follow", 1)?;
    let (receipts, sent) = {
        let _bar = bench
            .progress
            .timed("1 node follow", follow.warm_up + follow.measure);
        load::follower_latency(&bench.runtime, &endpoint, &endpoint, &topic, follow)?
    };
    let m = follow_measurement(
        "1node",
        "the same node",
        &durability,
        follow,
        &receipts,
        sent,
    )?;
    bench.push(m);
    Ok(())
}

/// Throughput on the leader, write-to-subscriber latency on a follower, then the kills.
fn three_nodes(
    bench: &mut Bench,
    fsync: Fsync,
    produce: &ProduceCase,
    follow: &E2eCase,
    kills: usize,
) -> anyhow::Result<()> {
    crate::sys::sync_file_systems();
    let binary = bench.targets.strand_binary()?;
    let dir = bench.targets.scratch().join("cluster");
    let mut cluster = Cluster::start(&binary, &dir, fsync, MEMBERS)?;
    let result = measure_cluster(bench, &mut cluster, fsync, produce, follow, kills);
    result.with_context(|| format!("members' stderr:\n{}", cluster.stderr()))
}

fn measure_cluster(
    bench: &mut Bench,
    cluster: &mut Cluster,
    fsync: Fsync,
    produce: &ProduceCase,
    follow: &E2eCase,
    kills: usize,
) -> anyhow::Result<()> {
    let (leader, _) = cluster.agreed_leader()?;
    let strand = StrandTopics::open(cluster.member(leader)?.target(fsync)?)?;
    let durability = format!("{}, majority of {MEMBERS}", strand.target.durability());
    let run = {
        let _bar = bench
            .progress
            .timed("3 nodes produce", produce.warm_up + produce.measure);
        strand.produce(&bench.runtime, produce)?
    };
    bench.push(produce_measurement("3nodes", &durability, produce, &run));

    let follow_topic = strand.create_topic("follow", 1)?;
    let failover_topic = strand.create_topic("failover", 1)?;
    // The follower must know the topic before it tails it.
    cluster.caught_up()?;
    let follower = cluster
        .members
        .iter()
        .map(|m| m.id)
        .find(|id| *id != leader)
        .context("a follower")?;
    let (receipts, sent) = {
        let _bar = bench
            .progress
            .timed("3 nodes follow", follow.warm_up + follow.measure);
        let (writer, reader) = (endpoint(cluster, leader)?, endpoint(cluster, follower)?);
        load::follower_latency(&bench.runtime, &writer, &reader, &follow_topic, follow)?
    };
    let reader = "a follower (writes to the leader)";
    let m = follow_measurement("3nodes", reader, &durability, follow, &receipts, sent)?;
    bench.push(m);

    let mut failovers = LatencyHistogram::new();
    let (mut tries, mut slowest_catch_up) = (0u64, Duration::ZERO);
    let _bar = bench
        .progress
        .timed("leader kills", Duration::from_secs(5 * kills as u64));
    for _ in 0..kills {
        let (leader, term) = cluster.agreed_leader()?;
        let mut survivors: Vec<Survivor> = cluster
            .members
            .iter()
            .filter(|m| m.id != leader)
            .map(|m| endpoint(cluster, m.id))
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .map(|e| Survivor::connect(&bench.runtime, e))
            .collect();
        let killed = Instant::now();
        cluster.kill(leader)?;
        let failover = load::first_ack(&bench.runtime, &mut survivors, &failover_topic, killed)?;
        drop(survivors);
        let (successor, later) = cluster.agreed_leader()?;
        ensure!(
            successor != leader && later > term,
            "after killing leader {leader} of term {term}, {successor} leads in term {later}"
        );
        failovers.record(failover.elapsed);
        tries += failover.tries;
        cluster.restart(leader)?;
        let restarted = Instant::now();
        cluster.caught_up()?;
        slowest_catch_up = slowest_catch_up.max(restarted.elapsed());
    }
    if kills > 0 {
        let label = "3nodes: SIGKILL of the leader to the first acknowledged produce, sent to \
                     each survivor in turn (100 ms per try)";
        let mut m = Measurement::new(WORKLOAD, "strand", "failover_3nodes", label)
            .durability(durability)
            .param("kills", kills as u64)
            .param("members", MEMBERS as u64);
        m.latency = failovers.summary();
        m.figures.push(Figure::new(
            "produces_per_failover",
            tries as f64 / kills as f64,
            "",
        ));
        m.figures.push(Figure::new(
            "restart_to_caught_up_max_ms",
            slowest_catch_up.as_secs_f64() * 1e3,
            "ms",
        ));
        bench.push(m);
    }
    Ok(())
}

fn endpoint(cluster: &Cluster, id: u64) -> anyhow::Result<Endpoint> {
    let member = cluster.member(id)?;
    Ok(Endpoint {
        quic: member.quic,
        ca_cert: member.ca_cert().to_path_buf(),
    })
}

fn produce_measurement(
    nodes: &str,
    durability: &str,
    case: &ProduceCase,
    run: &crate::topics::driver::Run,
) -> Measurement {
    let label = format!(
        "{nodes}: {} producers, batches of {} x {} B, {} partitions, produce-to-ack per batch",
        case.producers, case.batch, case.value_bytes, case.partitions
    );
    let mut m = Measurement::new(WORKLOAD, "strand", &format!("produce_{nodes}"), &label)
        .durability(durability)
        .param("producers", case.producers)
        .param("batch", case.batch)
        .param("value_bytes", case.value_bytes)
        .param("partitions", case.partitions)
        .param("warm_up_s", case.warm_up.as_secs_f64())
        .param("window_s", case.measure.as_secs_f64());
    m.throughput = Some(Throughput::of(run.records, run.bytes, run.elapsed));
    m.latency = run.latency.summary();
    m.series = run.series.clone();
    m
}

/// The write-to-subscriber measurement; every record sent must have arrived once.
fn follow_measurement(
    nodes: &str,
    reader: &str,
    durability: &str,
    case: &E2eCase,
    receipts: &crate::topics::driver::Receipts,
    sent: u64,
) -> anyhow::Result<Measurement> {
    let missing = sent.saturating_sub(receipts.received);
    ensure!(
        missing == 0 && receipts.duplicates == 0,
        "write-to-subscriber ({nodes}): {missing} of {sent} records missing, {} duplicates",
        receipts.duplicates
    );
    let label = format!(
        "{nodes}: {E2E_VALUE_BYTES} B records every {} ms (open loop), tail on {reader}, \
         receipt minus due time",
        1000.0 / case.rate
    );
    let mut m = Measurement::new(WORKLOAD, "strand", &format!("follow_{nodes}"), &label)
        .durability(durability)
        .param("rate", case.rate)
        .param("warm_up_s", case.warm_up.as_secs_f64())
        .param("window_s", case.measure.as_secs_f64());
    m.latency = receipts.latency.summary();
    m.figures.push(Figure::new(
        "records_received",
        receipts.received as f64,
        "",
    ));
    Ok(m)
}
