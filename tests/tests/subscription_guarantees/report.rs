//! What `subscription_guarantees` prints at the end, and its checks that every kind of event
//! was exercised at least once (a run that exercised nothing proves nothing).

use super::*;

/// What the histories counted (see [`report`]).
#[derive(Default)]
pub struct Stats {
    pub histories: AtomicU64,
    pub changes: AtomicU64,
    pub filtered_changes: AtomicU64,
    pub replayed_changes: AtomicU64,
    pub checks: AtomicU64,
    pub liveness_waits: AtomicU64,
    pub snapshots: AtomicU64,
    pub batches: AtomicU64,
    pub resumes: AtomicU64,
    pub keyed_resumes: AtomicU64,
    pub keyed_changes: AtomicU64,
    pub stream_changes: AtomicU64,
    pub stream_deletes: AtomicU64,
    pub resume_too_old: AtomicU64,
    pub reconnects: AtomicU64,
    /// Sessions kept connected without reading whose connection the server dropped (a slow
    /// consumer whose goodbye could not be sent through the full socket).
    pub unread_drops: AtomicU64,
    pub writes: AtomicU64,
    pub ddl: AtomicU64,
    pub table_dropped: AtomicU64,
    pub schema_changed: AtomicU64,
    pub refused_across_ddl: AtomicU64,
    pub named_across_alter: AtomicU64,
    pub finished: AtomicU64,
    /// Top-K subscriptions: messages applied (and of them replayed by resumes, and updates
    /// whose `old_rows` and `rows` differ), window checks against the model, exact resumes,
    /// `resume_too_old` answers.
    pub window_changes: AtomicU64,
    pub window_replayed: AtomicU64,
    pub window_reshaped: AtomicU64,
    pub window_checks: AtomicU64,
    pub window_resumes: AtomicU64,
    pub window_too_old: AtomicU64,
    /// Grouping subscriptions: messages applied (and of them replayed by resumes, carrying
    /// two or more groups, inserts or deletes of groups), group checks against the model,
    /// exact resumes, `resume_too_old` answers; messages to grouping subscriptions of the
    /// STREAM table.
    pub group_changes: AtomicU64,
    pub group_replayed: AtomicU64,
    pub group_moves: AtomicU64,
    pub group_appeared_vanished: AtomicU64,
    pub group_checks: AtomicU64,
    pub group_resumes: AtomicU64,
    pub group_too_old: AtomicU64,
    pub group_stream: AtomicU64,
    /// Time-relative subscriptions: messages applied (and of them replayed by resumes, to
    /// STREAM subscriptions, carrying several rows), and as the checks found them: at a tick,
    /// at a write carrying time moves too, with rows entering and with rows leaving by time
    /// (at a tick or with a write); checks against the model, exact resumes, `resume_too_old`
    /// answers.
    pub clock_changes: AtomicU64,
    pub clock_replayed: AtomicU64,
    pub clock_stream: AtomicU64,
    pub clock_several: AtomicU64,
    pub clock_ticks: AtomicU64,
    pub clock_entered: AtomicU64,
    pub clock_left: AtomicU64,
    pub clock_folded: AtomicU64,
    pub clock_checks: AtomicU64,
    pub clock_resumes: AtomicU64,
    pub clock_too_old: AtomicU64,
    /// Join subscriptions: messages applied (and of them replayed by resumes, carrying
    /// several rows), and as the checks found them: caused by a write to `app.items` (the
    /// lookup side); checks against the model, exact resumes, `resume_too_old` answers.
    pub join_changes: AtomicU64,
    pub join_replayed: AtomicU64,
    pub join_several: AtomicU64,
    pub join_lookup: AtomicU64,
    pub join_checks: AtomicU64,
    pub join_resumes: AtomicU64,
    pub join_too_old: AtomicU64,
    /// Join subscriptions ended by DROP TABLE app.items (not in `table_dropped`).
    pub join_dropped: AtomicU64,
}

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
         {} window checks, {} top-K resumes, {} top-K resume_too_old), {} grouping changes \
         ({} replayed by resumes, {} with several groups, {} inserts or deletes of groups; {} \
         group checks, {} grouping resumes, {} grouping resume_too_old, {} to STREAM \
         subscriptions), {} time-relative changes ({} replayed by resumes, {} to STREAM \
         subscriptions, {} with several rows; {} at ticks, {} writes' carrying time moves; {} \
         with rows entering, {} with rows leaving by time; {} time checks, {} time resumes, {} \
         time resume_too_old), {} join changes ({} replayed by resumes, {} with several rows, \
         {} caused by writes to app.items; {} join checks, {} join resumes, {} join \
         resume_too_old, {} ended by DROP TABLE app.items), {} DDL events \
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
        count(&stats.group_changes),
        count(&stats.group_replayed),
        count(&stats.group_moves),
        count(&stats.group_appeared_vanished),
        count(&stats.group_checks),
        count(&stats.group_resumes),
        count(&stats.group_too_old),
        count(&stats.group_stream),
        count(&stats.clock_changes),
        count(&stats.clock_replayed),
        count(&stats.clock_stream),
        count(&stats.clock_several),
        count(&stats.clock_ticks),
        count(&stats.clock_folded),
        count(&stats.clock_entered),
        count(&stats.clock_left),
        count(&stats.clock_checks),
        count(&stats.clock_resumes),
        count(&stats.clock_too_old),
        count(&stats.join_changes),
        count(&stats.join_replayed),
        count(&stats.join_several),
        count(&stats.join_lookup),
        count(&stats.join_checks),
        count(&stats.join_resumes),
        count(&stats.join_too_old),
        count(&stats.join_dropped),
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
    println!(
        "subscription_guarantees: {} sessions left unread were dropped as slow consumers",
        count(&stats.unread_drops)
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
            (
                "changes to grouping subscriptions",
                count(&stats.group_changes),
            ),
            (
                "grouping changes replayed by resumes",
                count(&stats.group_replayed),
            ),
            (
                "grouping changes carrying several groups",
                count(&stats.group_moves),
            ),
            (
                "grouping inserts or deletes of groups",
                count(&stats.group_appeared_vanished),
            ),
            ("grouping checks", count(&stats.group_checks)),
            ("grouping resumes", count(&stats.group_resumes)),
            (
                "changes to time-relative subscriptions",
                count(&stats.clock_changes),
            ),
            (
                "time-relative changes replayed by resumes",
                count(&stats.clock_replayed),
            ),
            ("time-relative changes at ticks", count(&stats.clock_ticks)),
            ("rows entering by time", count(&stats.clock_entered)),
            ("rows leaving by time", count(&stats.clock_left)),
            ("time-relative checks", count(&stats.clock_checks)),
            ("time-relative resumes", count(&stats.clock_resumes)),
            ("changes to join subscriptions", count(&stats.join_changes)),
            (
                "join changes caused by writes to app.items",
                count(&stats.join_lookup),
            ),
            (
                "join changes replayed by resumes",
                count(&stats.join_replayed),
            ),
            ("join resumes", count(&stats.join_resumes)),
            ("join checks", count(&stats.join_checks)),
        ];
        for (what, n) in exercised {
            assert!(n > 0, "seed {}: no {what} were exercised", shared.seed);
        }
    }
}
