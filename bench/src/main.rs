//! `strand-bench`: the bundled load tool. It drives a Strand server (one it spawns with
//! `--spawn`, or the user's own with `--url`/`--server`) with producers and consumers over
//! QUIC, WebSocket subscribers and HTTP SQL clients, and reports throughput and latency
//! percentiles as a text table, JSON (`--json`) and an HTML page with SVG charts (`--html`).
//! With `--peers` it runs the same workloads against NATS JetStream, Redis Streams and
//! PostgreSQL when they are installed, and prints the ratios.
//!
//! It owns no product code: it speaks to the server through `strand-wire` and the public
//! HTTP and WebSocket protocols, as a user's program would.

// A load tool: a failed setup stops the run with its error; nothing here serves clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attack;
mod cli;
mod http;
mod latency;
mod machine;
mod peers;
mod proc;
mod progress;
mod realtime;
mod report;
mod run;
mod server_metrics;
mod spawn;
mod sql;
mod sys;
mod target;
mod topics;
mod workloads;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("strand-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
