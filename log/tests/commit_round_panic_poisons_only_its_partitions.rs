//! Regression (issue 16, defect 1). Bug: `CommitQueue::lead` set `leader_active`, then ran the
//! commit round unguarded; a panic inside it (an assert, or a panic from the storage layer)
//! unwound out of the leader and left `leader_active` set with the round never completed.
//! Impact: every appender of the data directory waited forever on the commit condvar, the
//! server hung on its next write, and nothing was logged after the panic. Fix: a drop guard
//! (the round's "poison dart") completes the round, poisons the partitions whose writes it
//! cannot vouch for and wakes the waiters; a panic while writing one partition poisons only
//! that partition, the rest of the round commits, and the panic then continues in the leader's
//! thread. Waiters of a poisoned partition get `LogError::Poisoned`; other partitions keep
//! committing; a restart (reopening the store) recovers every acknowledged record and the
//! poisoned partition accepts appends again.
//!
//! Faults are injected through the storage layer (`FaultyStorage`), limited to one
//! partition's directory. Every wait runs with a deadline, so the old code fails the test
//! ("hung") instead of hanging it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use strand_log::storage::{Faults, FaultyStorage};
use strand_log::{
    FsyncPolicy, LogError, NewRecord, PartitionConfig, PartitionId, ReadFrom, Seq, SeqRange, Store,
    StoreConfig,
};

/// How long any wait may take before the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(20);
const APPENDERS_PER_PARTITION: usize = 4;

/// Injected panics are expected here: keep their messages out of the test output.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panic_message(info.payload()).contains("injected panic") {
                default(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => String::new(),
    }
}

fn store_config(storage: &FaultyStorage, shared_sync_partitions_min: usize) -> StoreConfig {
    StoreConfig {
        partition: PartitionConfig {
            fsync: FsyncPolicy::Always,
            storage: Arc::new(storage.clone()),
            ..PartitionConfig::default()
        },
        shared_sync_partitions_min,
        ..StoreConfig::default()
    }
}

fn id(name: &str) -> PartitionId {
    PartitionId::new(name).unwrap()
}

/// Run `work` on its own thread; its result, or a test failure if it takes past the deadline.
fn within_deadline<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(work());
    });
    match result.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(_) => panic!("hung: {what} did not return within {DEADLINE:?}"),
    }
}

/// `Poisoned` naming the partition's directory.
fn assert_poisoned(result: &Result<SeqRange, LogError>, dir: &Path) {
    match result {
        Err(LogError::Poisoned { path, .. }) => assert_eq!(path, dir),
        other => panic!("expected Poisoned for {}, got {other:?}", dir.display()),
    }
}

/// The payloads of every record of partition `name`, by `_seq`.
fn read_partition(store: &Store, name: &str) -> BTreeMap<Seq, Vec<u8>> {
    let snapshot = store.partition(&id(name)).unwrap().snapshot();
    let records = snapshot.records(ReadFrom::Earliest);
    records
        .map(|r| r.unwrap())
        .map(|r| (r.seq, r.payload.to_vec()))
        .collect()
}

/// The leader panics while writing the first partition of its round: that partition is
/// poisoned and its waiter gets `Poisoned`; the second partition of the same round commits;
/// the panic reaches the leader's caller.
#[test]
fn panic_while_writing_one_partition_spares_the_rest_of_its_round() {
    quiet_injected_panics();
    let root = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let store = Arc::new(Store::open(root.path(), store_config(&storage, usize::MAX)).unwrap());
    let faulted = store.partition(&id("faulted")).unwrap();
    let healthy = store.partition(&id("healthy")).unwrap();
    faulted.append(&[NewRecord::new(b"k", b"before")]).unwrap();
    healthy.append(&[NewRecord::new(b"k", b"before")]).unwrap();

    // Both batches join the same open round, the faulted partition's first.
    let faulted_ticket = faulted.submit(&[NewRecord::new(b"k", b"lost")]).unwrap();
    let healthy_ticket = healthy.submit(&[NewRecord::new(b"k", b"kept")]).unwrap();
    storage.faults.only_under(Some(faulted.dir()));
    storage.faults.panic_on_write.store(true, Ordering::SeqCst);

    // The only waiter leads the round, so this thread is the one that meets the panic.
    let led = within_deadline("the leader", move || {
        catch_unwind(AssertUnwindSafe(|| healthy_ticket.wait())).map_err(|p| panic_message(&*p))
    });
    match led {
        Err(message) => assert!(message.contains("injected panic"), "{message}"),
        Ok(result) => panic!("the leader's caller must see the panic, got {result:?}"),
    }
    let waited = within_deadline("the faulted partition's waiter", move || {
        faulted_ticket.wait()
    });
    assert_poisoned(&waited, faulted.dir());
    assert!(faulted.is_poisoned());
    assert_poisoned(
        &faulted.append(&[NewRecord::new(b"k", b"refused")]),
        faulted.dir(),
    );

    // The healthy partition's batch of the same round committed, and it keeps committing.
    assert!(!healthy.is_poisoned());
    let payloads: Vec<Vec<u8>> = read_partition(&store, "healthy").into_values().collect();
    assert_eq!(payloads, [b"before".to_vec(), b"kept".to_vec()]);
    let store_for_append = store.clone();
    let later = within_deadline("a later append", move || {
        store_for_append.append(&id("healthy"), &[NewRecord::new(b"k", b"later")])
    });
    assert!(later.is_ok(), "{later:?}");
    let payloads: Vec<Vec<u8>> = read_partition(&store, "faulted").into_values().collect();
    assert_eq!(
        payloads,
        [b"before".to_vec()],
        "nothing of the failed round is served"
    );
}

/// The leader panics outside any one partition's write (in the shared `syncfs` of a round
/// over many partitions): the drop guard poisons every partition of that round, completes it
/// and wakes its waiters; a partition outside the round keeps committing.
#[test]
fn panic_in_the_rounds_shared_sync_poisons_that_round_only() {
    quiet_injected_panics();
    let root = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let store = Arc::new(Store::open(root.path(), store_config(&storage, 2)).unwrap());
    let names = ["a", "b", "outside"];
    for name in names {
        store
            .append(&id(name), &[NewRecord::new(b"k", b"before")])
            .unwrap();
    }
    let a = store.partition(&id("a")).unwrap();
    let b = store.partition(&id("b")).unwrap();
    let a_ticket = a.submit(&[NewRecord::new(b"k", b"unacked")]).unwrap();
    let b_ticket = b.submit(&[NewRecord::new(b"k", b"unacked")]).unwrap();
    // The round's syncfs is issued for its first partition's directory.
    storage.faults.only_under(Some(a.dir()));
    storage.faults.panic_on_sync.store(true, Ordering::SeqCst);

    let led = within_deadline("the leader", move || {
        catch_unwind(AssertUnwindSafe(|| a_ticket.wait())).map_err(|p| panic_message(&*p))
    });
    match led {
        Err(message) => assert!(message.contains("injected panic in syncfs"), "{message}"),
        Ok(result) => panic!("the leader's caller must see the panic, got {result:?}"),
    }
    let waited = within_deadline("the other waiter of the round", move || b_ticket.wait());
    assert_poisoned(&waited, b.dir());
    for partition in [&a, &b] {
        assert!(partition.is_poisoned());
        let refused = partition.append(&[NewRecord::new(b"k", b"refused")]);
        assert_poisoned(&refused, partition.dir());
    }
    storage.faults.panic_on_sync.store(false, Ordering::SeqCst);
    let store_for_append = store.clone();
    let outside = within_deadline("an append outside the round", move || {
        store_for_append.append(&id("outside"), &[NewRecord::new(b"k", b"after")])
    });
    assert!(outside.is_ok(), "{outside:?}");
    for name in ["a", "b"] {
        let payloads: Vec<Vec<u8>> = read_partition(&store, name).into_values().collect();
        assert_eq!(
            payloads,
            [b"before".to_vec()],
            "{name}: the failed round is not served"
        );
    }
    drop((a, b));
    drop(Arc::try_unwrap(store).unwrap());

    // A restart recovers the poisoned partitions: their acknowledged record, then appends.
    let store = Store::open(root.path(), store_config(&FaultyStorage::default(), 2)).unwrap();
    for name in names {
        let payloads = read_partition(&store, name);
        assert_eq!(payloads.values().next().unwrap(), b"before", "{name}");
        store
            .append(&id(name), &[NewRecord::new(b"k", b"reopened")])
            .unwrap();
    }
}

/// What one appender thread saw.
#[derive(Debug, Default)]
struct AppenderLog {
    /// `(_seq, payload)` of every acknowledged append.
    acked: Vec<(Seq, Vec<u8>)>,
    /// Payloads of every attempted append, acknowledged or not.
    attempted: Vec<Vec<u8>>,
    errors: Vec<String>,
    /// Panics that reached this thread (it led a round that panicked).
    panics: usize,
    /// Acknowledged appends made after the faulted partition was known to be poisoned.
    acked_after_poison: usize,
}

struct Run {
    store: Arc<Store>,
    /// Set once the faulted partition is poisoned; appenders of the healthy one then append
    /// a bounded number more and stop.
    poisoned: Arc<AtomicBool>,
}

/// One appender of partition `name`: appends until its partition fails it (the faulted one),
/// or until it has appended `after_poison` times after the poisoning (the healthy one).
fn appender(run: &Run, name: &'static str, thread: usize, after_poison: usize) -> AppenderLog {
    let (store, poisoned) = (run.store.clone(), run.poisoned.clone());
    let mut log = AppenderLog::default();
    for i in 0.. {
        let payload = format!("{name}-{thread}-{i}").into_bytes();
        let was_poisoned = poisoned.load(Ordering::SeqCst);
        log.attempted.push(payload.clone());
        let append = || store.append(&id(name), &[NewRecord::new(b"k", &payload)]);
        match catch_unwind(AssertUnwindSafe(append)) {
            Ok(Ok(range)) => {
                log.acked.push((range.first, payload));
                log.acked_after_poison += usize::from(was_poisoned);
            }
            Ok(Err(error)) => log.errors.push(error.to_string()),
            Err(_) => log.panics += 1,
        }
        let failed = !log.errors.is_empty();
        if failed || log.acked_after_poison >= after_poison {
            break;
        }
    }
    log
}

fn spawn_appenders(
    run: &Run,
    name: &'static str,
    after_poison: usize,
) -> Vec<JoinHandle<AppenderLog>> {
    (0..APPENDERS_PER_PARTITION)
        .map(|thread| {
            let run = Run {
                store: run.store.clone(),
                poisoned: run.poisoned.clone(),
            };
            std::thread::spawn(move || appender(&run, name, thread, after_poison))
        })
        .collect()
}

/// Join every appender, failing the test if any is still waiting at the deadline.
fn join_within_deadline(
    handles: Vec<JoinHandle<AppenderLog>>,
    started: Instant,
) -> Vec<AppenderLog> {
    let mut logs = Vec::new();
    for handle in handles {
        while !handle.is_finished() {
            assert!(
                started.elapsed() < DEADLINE,
                "hung: an appender did not return within {DEADLINE:?} of the fault"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        logs.push(handle.join().unwrap());
    }
    logs
}

/// Several appenders on two partitions of one store; a fault injected into the commit round
/// for one partition. Its appenders all return an error in bounded time, the other partition
/// keeps committing, and a restart recovers every acknowledged record.
fn concurrent_appenders_survive(fault: fn(&Faults) -> &AtomicBool, panics_expected: usize) {
    quiet_injected_panics();
    let root = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let store = Arc::new(Store::open(root.path(), store_config(&storage, usize::MAX)).unwrap());
    let faulted = store.partition(&id("faulted")).unwrap();
    let run = Run {
        store: store.clone(),
        poisoned: Arc::new(AtomicBool::new(false)),
    };
    let faulted_threads = spawn_appenders(&run, "faulted", usize::MAX);
    let healthy_threads = spawn_appenders(&run, "healthy", 25);
    // Let both partitions commit for a while before the fault.
    while faulted.last_seq() == Seq::ZERO || read_partition(&store, "healthy").len() < 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    storage.faults.only_under(Some(faulted.dir()));
    fault(&storage.faults).store(true, Ordering::SeqCst);
    let started = Instant::now();
    while !faulted.is_poisoned() {
        assert!(
            started.elapsed() < DEADLINE,
            "hung: the faulted partition was not poisoned within {DEADLINE:?} of the fault"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    run.poisoned.store(true, Ordering::SeqCst);

    let faulted_logs = join_within_deadline(faulted_threads, started);
    let healthy_logs = join_within_deadline(healthy_threads, started);
    for log in &faulted_logs {
        assert_eq!(
            log.errors.len(),
            1,
            "each faulted appender stops at its first error"
        );
        assert!(log.errors[0].contains("poisoned") || log.errors[0].contains("injected"));
    }
    for log in &healthy_logs {
        assert!(
            log.errors.is_empty(),
            "healthy partition failed: {:?}",
            log.errors
        );
        assert!(
            log.acked_after_poison >= 25,
            "healthy partition stopped committing"
        );
    }
    // The leader of the round that met the fault, and only it, sees a panic: later rounds
    // leave the poisoned partition alone.
    let panics: usize = faulted_logs
        .iter()
        .chain(&healthy_logs)
        .map(|l| l.panics)
        .sum();
    assert_eq!(panics, panics_expected);
    drop(faulted);
    drop(run);
    drop(Arc::try_unwrap(store).unwrap());

    // Restart with healthy storage.
    let store = Store::open(
        root.path(),
        store_config(&FaultyStorage::default(), usize::MAX),
    )
    .unwrap();
    for (name, logs) in [("faulted", &faulted_logs), ("healthy", &healthy_logs)] {
        let stored = read_partition(&store, name);
        let attempted: BTreeSet<&Vec<u8>> = logs.iter().flat_map(|l| &l.attempted).collect();
        for (seq, payload) in logs.iter().flat_map(|l| &l.acked) {
            assert_eq!(
                stored.get(seq),
                Some(payload),
                "{name}: acknowledged {seq} lost"
            );
        }
        for payload in stored.values() {
            assert!(attempted.contains(payload), "{name}: a record nobody wrote");
        }
        let range = store
            .append(&id(name), &[NewRecord::new(b"k", b"after restart")])
            .unwrap();
        assert!(range.first > *stored.keys().last().unwrap());
    }
}

#[test]
fn concurrent_appenders_get_errors_not_a_hang_when_the_round_panics() {
    concurrent_appenders_survive(|faults| &faults.panic_on_write, 1);
}

#[test]
fn concurrent_appenders_get_errors_not_a_hang_when_the_round_fails_a_write() {
    concurrent_appenders_survive(|faults| &faults.fail_write, 0);
}
