//! Workload 6, resume of missed changes as the table grows. Each repetition, per table: a
//! fresh connection subscribes and notes the last `_seq` (the ack's `snapshot_end_seq`, the
//! partition's last committed `_seq`; the snapshot is not paged, batch_size 1), disconnects;
//! [`CHANGES`] single-row UPDATEs go out over HTTP; then, on a connection opened and
//! authenticated beforehand, `subscribe` with `from_seq_id` = that `_seq` is timed until the
//! last missed change arrived (each checked: a change, `_seq` above the resume point and
//! increasing). The tables alternate within each repetition so both see the same machine.

use std::time::Instant;

use anyhow::{ensure, Context};
use tokio::runtime::Runtime;

use crate::report::{thousands, Figure, Measurement, Stats};
use crate::setup::Bench;
use crate::ws::{clip, subscribe, unsubscribe, Lite, Ws};

/// Changes missed and resumed per repetition.
pub const CHANGES: usize = 100;
/// Repetitions before measuring.
const WARM_UP: usize = 2;

/// A table and its row count.
pub struct Sized {
    pub table: String,
    pub rows: usize,
}

pub fn run(
    bench: &Bench,
    runtime: &Runtime,
    tables: &[Sized],
    reps: usize,
) -> anyhow::Result<Vec<Measurement>> {
    let mut resume_ns = vec![Vec::new(); tables.len()];
    let mut ack_ns = vec![Vec::new(); tables.len()];
    runtime.block_on(async {
        let mut resumer = Ws::connect(bench.server.http, &bench.token).await?;
        for rep in 0..WARM_UP + reps {
            let mut order: Vec<usize> = (0..tables.len()).collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            for t in order {
                let (total, ack) = resume_once(bench, &mut resumer, &tables[t], rep).await?;
                if rep >= WARM_UP {
                    resume_ns[t].push(total);
                    ack_ns[t].push(ack);
                }
            }
        }
        resumer.close().await;
        anyhow::Ok(())
    })?;
    let mut results = Vec::new();
    for (i, sized) in tables.iter().enumerate() {
        let total = Stats::of(resume_ns[i].clone()).context("no resume")?;
        let ack = Stats::of(ack_ns[i].clone()).context("no resume")?;
        let mut figures = total.figures(false);
        figures.push(Figure::ms("ack p50", ack.p50));
        figures.push(Figure::count("resumes", total.count as u64));
        results.push(Measurement {
            key: format!("resume_{}", sized.rows),
            workload: "resume 100 changes",
            case: format!("{} other rows in the table", thousands(sized.rows as i64)),
            figures,
        });
    }
    Ok(results)
}

/// One repetition on one table: (until the last change, until the ack) in ns.
async fn resume_once(
    bench: &Bench,
    resumer: &mut Ws,
    sized: &Sized,
    rep: usize,
) -> anyhow::Result<(u64, u64)> {
    let sql = format!("SELECT id, room, v FROM {}", sized.table);
    let mut probe = Ws::connect(bench.server.http, &bench.token).await?;
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
    let mut session = bench.session()?;
    for c in 0..CHANGES {
        let id = 1 + (c * sized.rows / CHANGES + rep % 7) % sized.rows;
        let sql = format!("UPDATE {} SET v = {} WHERE id = {id}", sized.table, rep + 1);
        let rows = session.insert_rows(&sql)?.rows;
        ensure!(rows == 1, "UPDATE of id {id} changed {rows} rows");
    }

    let id = format!("resume{rep}_{}", sized.rows);
    let started = Instant::now();
    resumer
        .send(&subscribe(&id, &sql, None, Some(from)))
        .await?;
    let text = resumer.recv_text().await?;
    let ack_ns = started.elapsed().as_nanos() as u64;
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
    while received < CHANGES {
        let text = resumer.recv_text().await?;
        let lite = Lite::parse(&text)?;
        if lite.subscription_id.as_deref() != Some(id.as_str()) {
            eprintln!("resume: a message for an unsubscribed id: {}", clip(&text));
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
    let total_ns = started.elapsed().as_nanos() as u64;
    resumer.send(&unsubscribe(&id)).await?;
    Ok((total_ns, ack_ns))
}
