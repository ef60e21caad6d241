//! What the join phase of `live-sql` (`join.rs`) reads from each subscription: every change
//! message, parsed only as far as naming the write it shows (an item's `v = k`, a lookup row's
//! `name = 'w<k>'`) and when it arrived.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use serde::Deserialize;
use tokio::sync::watch;

use super::join::{JOIN, WINDOW};
use crate::realtime::ws::{clip, Ws};

/// One message a subscription received.
pub(super) struct Receipt {
    /// The write its rows name (`None`: none of the run's).
    pub(super) write: Option<i64>,
    /// Named by a lookup row's `name` (else by an item's `v`).
    pub(super) by_name: bool,
    pub(super) rows: usize,
    pub(super) at: Instant,
}

#[derive(Default)]
pub(super) struct Seen {
    pub(super) receipts: Vec<Receipt>,
    /// Time-driven messages of the time window (rows leaving a minute after their write).
    pub(super) clock_changes: u64,
}

/// The parts of a message this phase reads; unknown fields are skipped.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    change_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    rows: Vec<Row<'a>>,
    #[serde(default, borrow)]
    old_rows: Vec<Row<'a>>,
}

#[derive(Deserialize)]
struct Row<'a> {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    v: Option<i64>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

/// The write a lookup name `w<k>` names.
pub(super) fn write_of_name(name: Option<&Cow<'_, str>>) -> Option<i64> {
    name?.strip_prefix('w')?.parse().ok()
}

/// Reads subscription `i`'s changes until told to stop, noting which write each names and
/// when it arrived.
pub(super) async fn receive(
    mut ws: Ws,
    i: usize,
    counts: Arc<Vec<AtomicU64>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    loop {
        let text = tokio::select! {
            biased;
            _ = stop.changed() => break,
            text = ws.recv_text() => text?,
        };
        let at = Instant::now();
        let message: Message = serde_json::from_str(&text)
            .with_context(|| format!("undecodable message: {}", clip(&text)))?;
        ensure!(
            message.kind == "change",
            "expected a change, got {}",
            clip(&text)
        );
        let change = message.change_type.as_deref().unwrap_or("");
        if i == WINDOW && change == "delete" {
            seen.clock_changes += 1;
            continue;
        }
        let first = message
            .rows
            .first()
            .with_context(|| format!("a change without rows: {}", clip(&text)))?;
        let (write, by_name) = match (i, change) {
            (JOIN, "update") => {
                let old = message
                    .old_rows
                    .iter()
                    .find(|old| old.id == first.id)
                    .with_context(|| format!("an update without its old row: {}", clip(&text)))?;
                if old.v != first.v {
                    (first.v, false)
                } else if old.name != first.name {
                    // Every row of a lookup write carries the new name.
                    let k = write_of_name(first.name.as_ref());
                    let all = message
                        .rows
                        .iter()
                        .all(|r| write_of_name(r.name.as_ref()) == k);
                    (k.filter(|_| all), true)
                } else {
                    (None, false)
                }
            }
            (_, "insert" | "update") if message.rows.len() == 1 => (first.v, false),
            _ => bail!("an unexpected change: {}", clip(&text)),
        };
        seen.receipts.push(Receipt {
            write,
            by_name,
            rows: message.rows.len(),
            at,
        });
        counts[i].fetch_add(1, Ordering::Release);
    }
    ws.close().await;
    Ok(seen)
}
