//! What `subscription_guarantees` prints at the end, and its checks that every kind of event
//! was exercised at least once (a run that exercised nothing proves nothing).

use super::*;

pub(super) fn report(shared: &Shared, histories: u64, cross_checked: (u64, u64), started: Instant) {
    let stats = &shared.stats;
    let count = |counter: &AtomicU64| counter.load(Relaxed);
    let events: u64 = [TableName::Items, TableName::Events]
        .map(|name| {
            let table = lock(shared.table(name));
            table
                .generations
                .iter()
                .map(|g| g.history.events)
                .sum::<u64>()
        })
        .iter()
        .sum();
    let (cross_checked, expired) = cross_checked;
    println!(
        "subscription_guarantees: {} histories, {} subscriber changes checked ({} to filtered \
         subscriptions, {} replayed by resumes), {} result checks, {} liveness waits, \
         {} snapshots ({} batches), {} resumes ({} keyed: {} changes; {} resume_too_old), \
         {} reconnects, {} top-K changes ({} replayed by resumes, {} reshaping updates; \
         {} window checks, {} top-K resumes, {} top-K resume_too_old), {} DDL events \
         ({} table_dropped, {} schema_changed, {} resumes refused across DDL, {} named \
         subscriptions across ADD COLUMN), {} changes to STREAM subscriptions ({} deletes; {} rows expired), \
         {} sessions finished after the writers stopped, {} observed events from \
         {} writes ({} requests cross-checked), seed {}, {:.1?}",
        count(&stats.histories),
        count(&stats.changes) - events,
        count(&stats.filtered_changes),
        count(&stats.replayed_changes),
        count(&stats.checks),
        count(&stats.liveness_waits),
        count(&stats.snapshots),
        count(&stats.batches),
        count(&stats.resumes),
        count(&stats.keyed_resumes),
        count(&stats.keyed_changes),
        count(&stats.resume_too_old),
        count(&stats.reconnects),
        count(&stats.window_changes),
        count(&stats.window_replayed),
        count(&stats.window_reshaped),
        count(&stats.window_checks),
        count(&stats.window_resumes),
        count(&stats.window_too_old),
        count(&stats.ddl),
        count(&stats.table_dropped),
        count(&stats.schema_changed),
        count(&stats.refused_across_ddl),
        count(&stats.named_across_alter),
        count(&stats.stream_changes),
        count(&stats.stream_deletes),
        expired,
        count(&stats.finished),
        events,
        count(&stats.writes),
        cross_checked,
        shared.seed,
        started.elapsed()
    );
    assert_eq!(count(&stats.histories), histories);
    if histories >= 50 {
        // The histories must have exercised what the checks are about.
        let exercised = [
            ("changes to subscribers", count(&stats.changes) - events),
            (
                "changes to filtered subscriptions",
                count(&stats.filtered_changes),
            ),
            (
                "changes replayed by resumes",
                count(&stats.replayed_changes),
            ),
            ("resumes", count(&stats.resumes)),
            ("keyed catch-ups (compaction)", count(&stats.keyed_resumes)),
            ("keyed catch-up changes", count(&stats.keyed_changes)),
            (
                "resume_too_old answers (compaction)",
                count(&stats.resume_too_old),
            ),
            ("table_dropped endings", count(&stats.table_dropped)),
            ("schema_changed endings", count(&stats.schema_changed)),
            (
                "named subscriptions across ADD COLUMN",
                count(&stats.named_across_alter),
            ),
            ("cross-checked requests", cross_checked),
            (
                "changes to STREAM subscriptions",
                count(&stats.stream_changes),
            ),
            (
                "deletes to STREAM subscriptions",
                count(&stats.stream_deletes),
            ),
            ("STREAM rows expired", expired),
            (
                "changes to top-K subscriptions",
                count(&stats.window_changes),
            ),
            (
                "top-K updates moving rows in or out",
                count(&stats.window_reshaped),
            ),
            ("top-K resumes", count(&stats.window_resumes)),
            (
                "top-K changes replayed by resumes",
                count(&stats.window_replayed),
            ),
        ];
        for (what, n) in exercised {
            assert!(n > 0, "seed {}: no {what} were exercised", shared.seed);
        }
    }
}
