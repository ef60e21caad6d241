//! The performance goals of issue 19, checked against one run's report. Each goal names the
//! figure it reads; a goal whose figures were not measured in this run says `NOT RUN` (a
//! subcommand run alone checks only its own goals).

use crate::report::{Goal, Measurement, Report};

/// Every goal, in the order of the issue.
pub fn evaluate(report: &Report) -> Vec<Goal> {
    let mut goals = Vec::new();
    e2e_goals(report, &mut goals);
    subscribe_goals(report, &mut goals);
    produce_goals(report, &mut goals);
    snapshot_goals(report, &mut goals);
    sql_goals(report, &mut goals);
    restart_goals(report, &mut goals);
    live_sql_goals(report, &mut goals);
    goals
}

/// `measured <= required` (`at_most`) or `measured >= required`.
fn goal(
    label: impl Into<String>,
    measured: Option<f64>,
    required: Option<f64>,
    unit: &str,
    at_most: bool,
) -> Goal {
    let verdict = match (measured, required) {
        (Some(m), Some(r)) if (at_most && m <= r) || (!at_most && m >= r) => "MET",
        (Some(_), Some(_)) => "NOT MET",
        _ => "NOT RUN",
    };
    Goal {
        label: label.into(),
        measured,
        required,
        unit: unit.to_string(),
        verdict: verdict.to_string(),
    }
}

fn strand<'a>(report: &'a Report, workload: &str) -> impl Iterator<Item = &'a Measurement> {
    let workload = workload.to_string();
    report
        .results
        .iter()
        .filter(move |m| m.system == "strand" && m.workload == workload)
}

fn peer<'a>(report: &'a Report, workload: &str, system: &str) -> Option<&'a Measurement> {
    report
        .results
        .iter()
        .find(|m| m.system == system && m.workload == workload)
}

fn param(m: &Measurement, name: &str) -> Option<u64> {
    m.params.get(name).and_then(serde_json::Value::as_u64)
}

fn p50(m: Option<&Measurement>) -> Option<f64> {
    m.and_then(|m| m.latency.as_ref()).map(|l| l.p50_ms)
}

fn p99(m: Option<&Measurement>) -> Option<f64> {
    m.and_then(|m| m.latency.as_ref()).map(|l| l.p99_ms)
}

fn rate(m: Option<&Measurement>) -> Option<f64> {
    m.and_then(|m| m.throughput).map(|t| t.records_per_s)
}

fn e2e_goals(report: &Report, goals: &mut Vec<Goal>) {
    // The cases paired with the peers (Strand's streaming consumer, a tail), not `_fetch`.
    let paired = |m: &&Measurement| !m.case.ends_with("_fetch");
    let never = strand(report, "e2e")
        .filter(paired)
        .find(|m| m.durability == "fsync=never");
    let always = strand(report, "e2e")
        .filter(paired)
        .find(|m| m.durability == "fsync=always");
    let jetstream = peer(report, "e2e", "jetstream");
    goals.push(goal(
        "e2e: produce-to-consume p50, Strand fsync=never below JetStream's",
        p50(never),
        p50(jetstream),
        "ms",
        true,
    ));
    goals.push(goal(
        "e2e: produce-to-consume p99, Strand fsync=never below JetStream's",
        p99(never),
        p99(jetstream),
        "ms",
        true,
    ));
    let disk_p99 = report
        .machine
        .disk
        .as_ref()
        .map(|d| 2.0 * d.fdatasync.p99_ms);
    goals.push(goal(
        "e2e: fsync=always p99 within 2x of the disk's append+fdatasync p99 (same run)",
        p99(always),
        disk_p99,
        "ms",
        true,
    ));
}

fn subscribe_goals(report: &Report, goals: &mut Vec<Goal>) {
    let thousand = strand(report, "subscribe")
        .find(|m| param(m, "subscribers") == Some(1000) && m.latency.is_some());
    goals.push(goal(
        "subscribe: write-to-client p50 with 1k subscribers",
        p50(thousand),
        Some(0.3),
        "ms",
        true,
    ));
    goals.push(goal(
        "subscribe: write-to-client p99 with 1k subscribers",
        p99(thousand),
        Some(1.0),
        "ms",
        true,
    ));
    for (system, name) in [
        ("postgres", "PostgreSQL LISTEN/NOTIFY"),
        ("nats-core", "NATS core pub/sub"),
    ] {
        // The peer's case with 1k subscribers when it ran one (PostgreSQL runs fewer: its
        // connections are limited), else its first.
        let theirs = report
            .results
            .iter()
            .filter(|m| m.system == system && m.workload == "subscribe" && m.latency.is_some())
            .find(|m| param(m, "subscribers") == Some(1000))
            .or_else(|| peer(report, "subscribe", system));
        let Some(theirs) = theirs else {
            goals.push(goal(
                format!("subscribe: p50 and p99 below {name}"),
                None,
                None,
                "ms",
                true,
            ));
            continue;
        };
        let ours = strand(report, "subscribe").find(|m| m.case == theirs.case);
        goals.push(goal(
            format!("subscribe: p50 below {name} ({})", theirs.case),
            p50(ours),
            p50(Some(theirs)),
            "ms",
            true,
        ));
        goals.push(goal(
            format!("subscribe: p99 below {name} ({})", theirs.case),
            p99(ours),
            p99(Some(theirs)),
            "ms",
            true,
        ));
    }
}

fn produce_goals(report: &Report, goals: &mut Vec<Goal>) {
    // fsync=never at least as fast as fsync=always in every case.
    let mut worst_never_over_always: Option<f64> = None;
    for never in strand(report, "produce").filter(|m| m.durability == "fsync=never") {
        let always = strand(report, "produce")
            .find(|m| m.durability == "fsync=always" && m.case == never.case);
        if let (Some(n), Some(a)) = (rate(Some(never)), rate(always)) {
            let ratio = n / a;
            worst_never_over_always =
                Some(worst_never_over_always.map_or(ratio, |w: f64| w.min(ratio)));
        }
    }
    goals.push(goal(
        "produce: fsync=never / fsync=always throughput, worst case",
        worst_never_over_always,
        Some(1.0),
        "x",
        false,
    ));
    let worst_ratio = |peer_prefix: &str, durability: &str, case_prefix: &str| {
        report
            .ratios
            .iter()
            .filter(|r| r.workload == "produce" && r.figure == "records_per_s")
            .filter(|r| {
                r.peer.starts_with(peer_prefix)
                    && r.case.contains(durability)
                    && r.case.starts_with(case_prefix)
            })
            .map(|r| r.advantage)
            .reduce(f64::min)
    };
    goals.push(goal(
        "produce: fsync=never over JetStream, worst case",
        worst_ratio("jetstream", "fsync=never", ""),
        Some(2.0),
        "x",
        false,
    ));
    let durable_64 = strand(report, "produce").find(|m| {
        m.durability == "fsync=always"
            && param(m, "value_bytes") == Some(1024)
            && param(m, "producers") == Some(64)
    });
    let half_disk = report
        .machine
        .disk
        .as_ref()
        .map(|d| d.odsync_mb_per_s / 2.0);
    goals.push(goal(
        "produce: fsync=always 1 KiB x 64 producers, at least half the disk's O_DSYNC bandwidth",
        durable_64.and_then(|m| m.throughput).map(|t| t.mb_per_s),
        half_disk,
        "MB/s",
        false,
    ));
    goals.push(goal(
        "produce: 100 B fsync=always over Redis Streams appendfsync=always, worst case",
        worst_ratio("redis (appendfsync=always", "fsync=always", "100B"),
        Some(2.0),
        "x",
        false,
    ));
}

fn snapshot_goals(report: &Report, goals: &mut Vec<Goal>) {
    let snapshot =
        strand(report, "snapshot").find(|m| param(m, "rows").is_some_and(|r| r >= 1_000_000));
    goals.push(goal(
        "snapshot: rows/s streaming a 1M-row table",
        rate(snapshot),
        Some(1_000_000.0),
        "rows/s",
        false,
    ));
    let ready = strand(report, "snapshot").find(|m| m.case.starts_with("ready"));
    goals.push(goal(
        "snapshot: subscribe-to-ready of a 1k-row table, p50",
        p50(ready),
        Some(2.0),
        "ms",
        true,
    ));
    let fanout =
        strand(report, "fanout").find(|m| param(m, "subscribers").is_some_and(|n| n >= 100_000));
    let reach_all = fanout
        .and_then(|m| m.latency.as_ref())
        .map(|l| l.max_ms / 1e3);
    goals.push(goal(
        "fanout: one write reaches 100k subscribers",
        reach_all,
        Some(0.3),
        "s",
        true,
    ));
}

fn sql_goals(report: &Report, goals: &mut Vec<Goal>) {
    let ratio = report
        .ratios
        .iter()
        .filter(|r| {
            r.workload == "sql-insert"
                && r.figure == "records_per_s"
                && r.peer.starts_with("postgres")
        })
        .find(|r| r.case.starts_with("insert_row_c16_durable"));
    goals.push(goal(
        "sql-insert: durable single-row INSERT, 16 clients, over PostgreSQL (synchronous_commit=on)",
        ratio.map(|r| r.advantage),
        Some(2.0),
        "x",
        false,
    ));
}

fn restart_goals(report: &Report, goals: &mut Vec<Goal>) {
    let restart = strand(report, "restart").next();
    let figure = |name: &str| restart.and_then(|m| m.figure(name));
    let size = restart
        .and_then(|m| m.figure("data_bytes"))
        .map_or(String::new(), |b| format!(" ({:.1} GB of data)", b / 1e9));
    goals.push(goal(
        format!("restart: ready{size}"),
        figure("ready_ms"),
        Some(1000.0),
        "ms",
        true,
    ));
    goals.push(goal(
        format!("restart: first point query served{size}"),
        figure("first_query_ms"),
        Some(2000.0),
        "ms",
        true,
    ));
    goals.push(goal(
        format!("restart: first topic read served{size}"),
        figure("first_topic_read_ms"),
        Some(2000.0),
        "ms",
        true,
    ));
}

/// Issue 21: change-to-client latency of a top-K window and of a live GROUP BY, each within 2x
/// of a plain filter subscription's, p50 and p99, measured in the same `live-sql` run.
fn live_sql_goals(report: &Report, goals: &mut Vec<Goal>) {
    let case = |name: &str| strand(report, "live-sql").find(|m| m.case == name);
    let filter = case("filter");
    for (name, label) in [
        ("top100", "top-K (LIMIT 100)"),
        ("group_by", "live GROUP BY"),
    ] {
        let ours = case(name);
        for (percentile, mine, allowed) in [
            ("p50", p50(ours), p50(filter)),
            ("p99", p99(ours), p99(filter)),
        ] {
            goals.push(goal(
                format!("live-sql: {label} {percentile} within 2x of a plain filter's (issue 21)"),
                mine,
                allowed.map(|ms| 2.0 * ms),
                "ms",
                true,
            ));
        }
    }
}
