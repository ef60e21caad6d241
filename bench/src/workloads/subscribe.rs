//! `strand-bench subscribe`: write-to-receipt latency of WebSocket subscribers with filters.
//!
//! Per subscriber count N (case `subs<N>`): N subscriptions `WHERE room = j % (N / 10)` on
//! connections of 100, writers sending single-row INSERTs over HTTP at `--rate` on an open-loop
//! schedule for `--duration` (after a warm-up that is delivered but not timed), latency from
//! each write's due time to each receipt. Every delivery is counted per subscription and row
//! id: figures `lost` and `duplicate`, and either nonzero fails the case.
//!
//! Also (case `memory<N>`): the server's memory per idle subscription (`--memory`), see
//! `realtime/memory.rs`. With `--peers`, the same latency run against PostgreSQL
//! LISTEN/NOTIFY (at `--pg-subscribers`, which PostgreSQL's 100 connections allow; Strand
//! runs that N too so the ratio pairs) and NATS core pub/sub.

use std::time::Duration;

use clap::Args;

use crate::cli::Fsync;
use crate::realtime::latency::{self, LatencyPlan};
use crate::realtime::setup::Server;
use crate::report::Measurement;
use crate::run::Bench;

/// Options of `subscribe`.
#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {
    /// Subscriber counts, one case each (comma-separated); quick runs use 50.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub subscribers: Vec<usize>,
    /// Writes per second (open loop: each write is due at start + i / rate).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Writer threads sharing that schedule, one connection each (a server that makes each
    /// write wait for its fsync needs more of them to keep up).
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Seconds of timed writes per case (quick: 1).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of writes before the timed ones, delivered and counted but not timed
    /// (quick: 0.3).
    #[arg(long, default_value_t = 1.0)]
    pub warm_up: f64,
    /// Idle subscription counts of the memory cases (comma-separated; 0 for none): the
    /// server's RssAnon per idle subscription. Spawned servers only. Quick: 1000.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub memory: Vec<usize>,
    /// Fresh servers per memory case; the median is reported with the lowest and highest
    /// (quick: 1).
    #[arg(long, default_value_t = 3)]
    pub memory_reps: usize,
    /// Listeners of the PostgreSQL LISTEN/NOTIFY peer (its default max_connections is 100,
    /// writers and the setup included); Strand and NATS also run this count with --peers.
    #[arg(long, default_value_t = 80)]
    pub pg_subscribers: usize,
}

/// Subscribers of a quick run's one latency case.
const QUICK_SUBSCRIBERS: usize = 50;
/// Idle subscriptions of a quick run's memory case.
const QUICK_MEMORY: usize = 1000;

/// The subscriber counts, rate and windows the run uses (quick scaled down).
struct Plan {
    subscribers: Vec<usize>,
    latency: LatencyPlan,
    memory: Vec<usize>,
    memory_reps: usize,
    pg_subscribers: usize,
}

impl Plan {
    fn new(args: &SubscribeArgs, quick: bool, peers: bool) -> Plan {
        let mut plan = Plan {
            subscribers: args.subscribers.clone(),
            latency: LatencyPlan {
                rate_per_s: args.rate,
                writers: args.writers,
                warm_up: Duration::from_secs_f64(args.warm_up),
                measure: Duration::from_secs_f64(args.duration),
            },
            memory: args.memory.iter().copied().filter(|&n| n > 0).collect(),
            memory_reps: args.memory_reps.max(1),
            pg_subscribers: args.pg_subscribers,
        };
        if quick {
            plan.subscribers = vec![QUICK_SUBSCRIBERS];
            plan.latency.warm_up = Duration::from_millis(300);
            plan.latency.measure = Duration::from_secs(1);
            plan.memory = vec![QUICK_MEMORY];
            plan.memory_reps = 1;
            plan.pg_subscribers = plan.pg_subscribers.min(QUICK_SUBSCRIBERS);
        }
        if peers && !plan.subscribers.contains(&plan.pg_subscribers) {
            plan.subscribers.insert(0, plan.pg_subscribers);
        }
        plan
    }
}

pub fn run(bench: &mut Bench, args: &SubscribeArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args, bench.quick, bench.targets.peers());
    let mut failures = Vec::new();
    let policies = bench.targets.fsync_policies(&[Fsync::Interval]);
    // PostgreSQL commits as durably as the most durable Strand run.
    let durable = policies.contains(&Some(Fsync::Always));
    for fsync in policies {
        for &n in &plan.subscribers {
            if let Err(error) = latency_case(bench, fsync, n, &plan.latency) {
                failures.push(format!("subs{n}: {error:#}"));
            }
        }
        for &n in &plan.memory {
            if let Err(error) = crate::realtime::memory::run(bench, fsync, n, plan.memory_reps) {
                failures.push(format!("memory{n}: {error:#}"));
            }
        }
    }
    if bench.targets.peers() {
        if let Err(error) =
            crate::peers::pg_notify::run(bench, plan.pg_subscribers, &plan.latency, durable)
        {
            failures.push(format!("postgres: {error:#}"));
        }
        if let Err(error) = crate::peers::nats_core::run(bench, &plan.subscribers, &plan.latency) {
            failures.push(format!("nats-core: {error:#}"));
        }
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

/// One latency case on a fresh server (or the running one): pushed, then checked.
fn latency_case(
    bench: &mut Bench,
    fsync: Option<Fsync>,
    subscribers: usize,
    plan: &LatencyPlan,
) -> anyhow::Result<()> {
    let server = Server::open(bench, fsync)?;
    let schedule = plan.schedule(subscribers);
    let mut m = Measurement::new(
        "subscribe",
        "strand",
        &format!("subs{subscribers}"),
        &format!(
            "{subscribers} WS subs, {} rooms, {} writes/s",
            schedule.rooms, plan.rate_per_s
        ),
    )
    .durability(server.target.durability());
    m = plan.params(m, &schedule);
    let table = server.table(&format!("ticks_{subscribers}"));
    let window = plan.warm_up + plan.measure;
    let bar = bench.progress.timed(&format!("subs{subscribers}"), window);
    let outcome = latency::measure(&server, &bench.runtime, &table, schedule, &mut m);
    drop(bar);
    let deliveries = outcome.map_err(|e| server.explain(e))?;
    bench.push(m);
    deliveries.check(&format!("subs{subscribers}"))
}
