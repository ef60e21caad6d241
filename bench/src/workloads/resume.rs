//! `strand-bench resume`: resume of missed changes as the table grows.
//!
//! Two tables on one server per fsync policy, `--small-rows` and `--large-rows` rows. Each
//! repetition, per table: a fresh connection subscribes and notes the last `_seq` (the ack's
//! `snapshot_end_seq`, the partition's last committed `_seq`; the snapshot is not paged,
//! batch_size 1) and disconnects; `--changes` single-row UPDATEs go out over HTTP; then, on a
//! connection opened and authenticated beforehand, `subscribe` with `from_seq_id` = that
//! `_seq` is timed until the last missed change arrived (each checked: a change, `_seq` above
//! the resume point and increasing). The tables alternate within each repetition so both see
//! the same machine. Case `rows<N>`: a latency histogram of time-to-caught-up over the
//! repetitions; `p50_vs_smallest` on the larger table says how flat resume is (goal: at most
//! 2x).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Args;

use crate::cli::Fsync;
use crate::latency::LatencyHistogram;
use crate::realtime::setup::Server;
use crate::realtime::ws::{clip, subscribe, unsubscribe, Lite, Ws};
use crate::report::{Figure, Measurement};
use crate::run::Bench;

/// Options of `resume`.
#[derive(Args, Debug, Clone)]
pub struct ResumeArgs {
    /// Rows of the small table (quick: 1,000).
    #[arg(long, default_value_t = 10_000)]
    pub small_rows: usize,
    /// Rows of the large table (quick: 10,000).
    #[arg(long, default_value_t = 1_000_000)]
    pub large_rows: usize,
    /// Changes missed and resumed per repetition.
    #[arg(long, default_value_t = 100)]
    pub changes: usize,
    /// Timed repetitions per table, after 2 untimed ones (quick: 4).
    #[arg(long, default_value_t = 15)]
    pub reps: usize,
}

/// Repetitions before measuring.
const WARM_UP: usize = 2;

/// A table and its row count.
struct Sized {
    table: String,
    rows: usize,
}

pub fn run(bench: &mut Bench, args: &ResumeArgs) -> anyhow::Result<()> {
    let mut args = args.clone();
    if bench.quick {
        args.small_rows = args.small_rows.min(1_000);
        args.large_rows = args.large_rows.min(10_000);
        args.reps = args.reps.min(4);
    }
    for fsync in bench.targets.fsync_policies(&[Fsync::Interval]) {
        let server = Server::open(bench, fsync)?;
        measure(bench, &server, &args).map_err(|e| server.explain(e))?;
    }
    Ok(())
}

fn measure(bench: &mut Bench, server: &Server, args: &ResumeArgs) -> anyhow::Result<()> {
    let mut tables = Vec::new();
    for rows in [args.small_rows, args.large_rows] {
        let table = server.table(&format!("resume_{rows}"));
        let loading = bench.progress.counted("load", rows as u64);
        server.create_and_load(&table, rows, 1000, &loading)?;
        loading.finish_and_clear();
        tables.push(Sized { table, rows });
    }
    let mut caught_up = vec![LatencyHistogram::new(); tables.len()];
    let mut acked = vec![LatencyHistogram::new(); tables.len()];
    let bar = bench
        .progress
        .counted("resume", ((WARM_UP + args.reps) * tables.len()) as u64);
    bench.runtime.block_on(async {
        let mut resumer = Ws::connect(server.target.http, &server.token).await?;
        for rep in 0..WARM_UP + args.reps {
            let mut order: Vec<usize> = (0..tables.len()).collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            for t in order {
                let (total, ack) =
                    resume_once(server, &mut resumer, &tables[t], rep, args.changes).await?;
                if rep >= WARM_UP {
                    caught_up[t].record(total);
                    acked[t].record(ack);
                }
                bar.inc(1);
            }
        }
        resumer.close().await;
        anyhow::Ok(())
    })?;
    bar.finish_and_clear();
    let p50 = |h: &LatencyHistogram| h.summary().map_or(f64::NAN, |s| s.p50_ms);
    let smallest = p50(&caught_up[0]);
    for (i, sized) in tables.iter().enumerate() {
        let mut m = Measurement::new(
            "resume",
            "strand",
            &format!("rows{}", sized.rows),
            &format!(
                "resume {} changes, {} rows in the table",
                args.changes, sized.rows
            ),
        )
        .durability(server.target.durability())
        .param("rows", sized.rows)
        .param("changes", args.changes)
        .param("resumes", args.reps);
        m.latency = caught_up[i].summary();
        m.figures.push(Figure::new("ack_p50", p50(&acked[i]), "ms"));
        if i > 0 {
            m.figures.push(Figure::new(
                "p50_vs_smallest",
                p50(&caught_up[i]) / smallest,
                "x",
            ));
        }
        bench.push(m);
    }
    Ok(())
}

/// One repetition on one table: (until the last change, until the ack).
async fn resume_once(
    server: &Server,
    resumer: &mut Ws,
    sized: &Sized,
    rep: usize,
    changes: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let sql = format!("SELECT id, room, v FROM {}", sized.table);
    let mut probe = Ws::connect(server.target.http, &server.token).await?;
    probe.send(&subscribe("probe", &sql, Some(1), None)).await?;
    let text = probe.recv_text().await?;
    let lite = Lite::parse(&text)?;
    ensure!(
        lite.kind == "subscription_ack",
        "expected an ack: {}",
        clip(&text)
    );
    let ack: serde_json::Value = serde_json::from_str(&text)?;
    let from: u64 = ack["snapshot_end_seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no snapshot_end_seq in {}", clip(&text)))?;
    probe.close().await;

    // The missed changes: one UPDATE each, rows spread over the table.
    let mut session = server.session()?;
    for c in 0..changes {
        let id = 1 + (c * sized.rows / changes.max(1) + rep % 7) % sized.rows.max(1);
        let sql = format!("UPDATE {} SET v = {} WHERE id = {id}", sized.table, rep + 1);
        let rows = session.execute(&sql)?;
        ensure!(rows == 1, "UPDATE of id {id} changed {rows} rows");
    }

    let id = format!("resume{rep}_{}", sized.rows);
    let started = Instant::now();
    resumer
        .send(&subscribe(&id, &sql, None, Some(from)))
        .await?;
    let text = resumer.recv_text().await?;
    let ack = started.elapsed();
    let lite = Lite::parse(&text)?;
    ensure!(
        lite.kind == "subscription_ack",
        "expected an ack: {}",
        clip(&text)
    );
    ensure!(
        lite.subscription_id.as_deref() == Some(id.as_str()),
        "ack of another id"
    );
    let mut last_seq = from;
    let mut received = 0;
    while received < changes {
        let text = resumer.recv_text().await?;
        let lite = Lite::parse(&text)?;
        if lite.subscription_id.as_deref() != Some(id.as_str()) {
            // A late message of the subscription unsubscribed in the previous repetition.
            continue;
        }
        ensure!(lite.kind == "change", "expected a change: {}", clip(&text));
        received += 1;
        let seq = match lite.rows.as_slice() {
            [row] => row.seq.context("a row without _seq")?.0,
            _ => anyhow::bail!("a change without exactly one row: {}", clip(&text)),
        };
        ensure!(
            seq > last_seq,
            "_seq {seq} not above {last_seq} after resume from {from}"
        );
        last_seq = seq;
    }
    let total = started.elapsed();
    resumer.send(&unsubscribe(&id)).await?;
    Ok((total, ack))
}
