//! The command line: the options every workload shares (where the server is, how to report)
//! and one subcommand per workload, whose own options live beside the workload.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::workloads;

/// Load tool for Strand: throughput and latency of topics, subscriptions and SQL.
///
/// By default it starts its own `strand serve` on 127.0.0.1 in a temporary directory
/// (`--spawn`); `--url` (HTTP and WebSocket) and `--server` (QUIC) point it at a running
/// server instead. Latency runs are open-loop: requests are sent on a fixed schedule and each
/// latency is measured from the moment its request was due, so a stalled server is not hidden
/// by a client that waited for it (coordinated omission).
#[derive(Parser, Debug)]
#[command(name = "strand-bench", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Produce throughput over QUIC: records/s and MB/s, per-request latency.
    Produce(workloads::produce::ProduceArgs),
    /// Consume throughput over QUIC from a pre-filled topic.
    Consume(workloads::consume::ConsumeArgs),
    /// Produce-to-consume latency at a target rate (open loop).
    E2e(workloads::e2e::E2eArgs),
    /// N WebSocket subscribers with filters, writers at a target rate: write-to-receipt latency.
    Subscribe(workloads::subscribe::SubscribeArgs),
    /// Time for one write to reach every one of N subscribers.
    Fanout(workloads::fanout::FanoutArgs),
    /// Snapshot rows/s of a large table and subscribe-to-ready of a small one.
    Snapshot(workloads::snapshot::SnapshotArgs),
    /// Resume after missed changes: time to catch up from the last `_seq`.
    Resume(workloads::resume::ResumeArgs),
    /// HTTP SQL INSERT (single-row and batched) and point SELECT, latency and throughput.
    SqlInsert(workloads::sql_insert::SqlInsertArgs),
    /// Restart a filled server: time to ready, first query, first topic read.
    Restart(workloads::restart::RestartArgs),
    /// HTTP INSERT latency and server memory, quiet and while attackers hammer the server.
    UnderAttack(workloads::under_attack::UnderAttackArgs),
    /// Live SQL: change-to-client latency of a top-K window and a live GROUP BY beside a plain
    /// filter, over one pre-filled table; then of a live join (USER table to a SHARED lookup
    /// table, writes to either side) and a time-relative filter beside a plain filter.
    LiveSql(workloads::live_sql::LiveSqlArgs),
    /// A three-node cluster against one node: produce throughput on the leader, write latency
    /// to a reader on a follower, and the time from a leader's SIGKILL to the next
    /// acknowledged produce, over many kills.
    Cluster(workloads::cluster::ClusterArgs),
    /// Every workload above with its defaults, in one report.
    All,
    /// Write the text, HTML and Markdown of a saved JSON report again (runs nothing).
    Render(RenderArgs),
}

impl Command {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Produce(_) => "produce",
            Command::Consume(_) => "consume",
            Command::E2e(_) => "e2e",
            Command::Subscribe(_) => "subscribe",
            Command::Fanout(_) => "fanout",
            Command::Snapshot(_) => "snapshot",
            Command::Resume(_) => "resume",
            Command::SqlInsert(_) => "sql-insert",
            Command::Restart(_) => "restart",
            Command::UnderAttack(_) => "under-attack",
            Command::LiveSql(_) => "live-sql",
            Command::Cluster(_) => "cluster",
            Command::All => "all",
            Command::Render(_) => "render",
        }
    }
}

/// Where the server is, and which one.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Server (every subcommand)")]
pub struct TargetArgs {
    /// Start a local `strand serve` per configuration, on 127.0.0.1 in a temporary directory
    /// (the default unless --url or --server is given).
    #[arg(long, global = true, conflicts_with_all = ["url", "server"])]
    pub spawn: bool,
    /// The `strand` binary --spawn starts [default: $STRAND_BENCH_BINARY, else `strand` next
    /// to this executable, else on PATH].
    #[arg(long, global = true, value_name = "PATH")]
    pub strand_bin: Option<PathBuf>,
    /// HTTP and WebSocket address of a running server, e.g. http://127.0.0.1:8080.
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// QUIC address of a running server, e.g. 127.0.0.1:5433 (topics workloads).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// The CA certificate (PEM) the running server's QUIC certificate is checked against
    /// (a spawned server's own is used with --spawn).
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// User the tool logs in as; it creates namespaces, tables, topics and groups named
    /// `bench*`, so it needs an admin (or the matching grants).
    #[arg(long, global = true, default_value = "admin")]
    pub user: String,
    /// That user's password.
    #[arg(
        long,
        global = true,
        env = "STRAND_BENCH_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// fsync policies to run (spawned servers only; a running server keeps its own):
    /// `never`, `interval`, `always`, comma-separated.
    #[arg(long, global = true, value_delimiter = ',', value_name = "POLICY")]
    pub fsync: Vec<Fsync>,
    /// Also run the workloads against NATS JetStream, Redis Streams and PostgreSQL, each
    /// started on 127.0.0.1 in a temporary directory when installed.
    #[arg(long, global = true)]
    pub peers: bool,
    /// Scratch directory for spawned servers and peers [default: the system's temporary
    /// directory].
    #[arg(long, global = true, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// A server's fsync policy.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    Never,
    Interval,
    Always,
}

impl Fsync {
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Never => "never",
            Fsync::Interval => "interval",
            Fsync::Always => "always",
        }
    }
}

/// How much to run and how to report it.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Report (every subcommand)")]
pub struct OutputArgs {
    /// A smoke run: every case of the workload, short windows, little data.
    #[arg(long, global = true)]
    pub quick: bool,
    /// Write the report as JSON to this file (`-` for stdout, then the text table goes to
    /// stderr).
    #[arg(long, global = true, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as an HTML page with SVG charts to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Regenerate this Markdown file (BENCHMARKS.md) from the run's report.
    #[arg(long, global = true, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// A subcommand's options as clap would default them, for `all`.
pub fn defaults<A: Args>() -> A {
    #[derive(Parser)]
    struct Only<A: Args> {
        #[command(flatten)]
        args: A,
    }
    Only::<A>::parse_from(["strand-bench"]).args
}

/// Options of `render`.
#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    /// A report written by `--json`.
    #[arg(value_name = "REPORT_JSON")]
    pub report: PathBuf,
}
