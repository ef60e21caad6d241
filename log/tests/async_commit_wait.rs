//! Waiting for a commit without a thread: [`strand_log::AppendTicket::committed`] is a future
//! that resolves once the batch's commit round completed. The log has no async runtime, so the
//! futures here are polled by a small `block_on` of this file: the polling thread parks until a
//! waker unparks it, under an overall deadline, so a waiter nobody wakes fails the test instead
//! of hanging it.
//!
//! What it shows, and why it matters (an HTTP shard awaits its INSERTs' commits this way):
//! - rounds wanted only by futures are led by the queue's `strand-log-commit` thread, never by
//!   the polling thread, and batches awaited together share one fdatasync;
//! - a future dropped before it resolved leaves its batch queued: it still commits, without
//!   anyone polling, and the partition goes on working;
//! - futures and blocking waiters (`AppendTicket::wait`) mix: whichever leads a round, the
//!   others of it are woken, and a future that starts waiting while a blocking appender leads
//!   is woken when that round completes and its own round is led;
//! - a round that hits a full disk tells each future of it `StorageFull` (also with a blocking
//!   waiter in the same round), and the partition stays writable.
//!
//! The fdatasyncs go through a wrapper of `FaultyStorage` that records which thread synced and
//! can hold a sync until the test releases it, so "while a round is under way" is a fact here,
//! not a sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use strand_log::storage::{AtomicWrite, Faults, FaultyStorage, Storage, StorageFile};
use strand_log::{
    AppendTicket, Committed, FsyncPolicy, LogError, MappedBytes, NewRecord, Partition,
    PartitionConfig, ReadFrom, Seq, SeqRange,
};

/// How long any wait of this file may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);
/// The name the log gives its commit thread.
const COMMIT_THREAD: &str = "strand-log-commit";

// ---------------------------------------------------------------------------------------------
// block_on

/// Unparks the polling thread; counts wakes and records which thread woke it.
struct Unparker {
    thread: Thread,
    wakes: AtomicUsize,
    woken_by: Mutex<Vec<Option<String>>>,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let name = std::thread::current().name().map(str::to_string);
        self.woken_by.lock().unwrap().push(name);
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

impl Unparker {
    fn new() -> Arc<Unparker> {
        Arc::new(Unparker {
            thread: std::thread::current(),
            wakes: AtomicUsize::new(0),
            woken_by: Mutex::new(Vec::new()),
        })
    }

    fn woken_by(&self) -> Vec<Option<String>> {
        self.woken_by.lock().unwrap().clone()
    }
}

/// What polling futures together gave.
struct Awaited<T> {
    outputs: Vec<T>,
    /// Whether each future's first poll here was `Pending` (empty if the test polled them
    /// before handing them over).
    first_poll_pending: Vec<bool>,
    waker: Arc<Unparker>,
}

/// Poll every future in one loop with one waker until all resolved. Like a real executor, a
/// pending future is polled again only after a wake: a waiter nobody wakes is not rescued by
/// being polled anyway. Panics if they have not all resolved within [`DEADLINE`].
fn await_all<F: Future + Unpin>(futures: Vec<F>) -> Awaited<F::Output> {
    let waker = Unparker::new();
    await_all_with(futures, &waker, false)
}

/// [`await_all`] with the test's own waker; `polled_already`: the test polled each future
/// once with `unparker`'s waker, so the first thing is to wait for a wake.
fn await_all_with<F: Future + Unpin>(
    mut futures: Vec<F>,
    unparker: &Arc<Unparker>,
    polled_already: bool,
) -> Awaited<F::Output> {
    let waker = Waker::from(unparker.clone());
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + DEADLINE;
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut first_poll_pending = Vec::with_capacity(futures.len());
    // Wakes seen so far: a pass of polls happens only once the count passed it.
    let mut seen = if polled_already {
        0
    } else {
        unparker.wakes.load(Ordering::SeqCst)
    };
    let mut pass = 0;
    loop {
        if pass > 0 || !polled_already {
            for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
                if output.is_some() {
                    continue;
                }
                let polled = Pin::new(future).poll(&mut cx);
                if pass == 0 {
                    first_poll_pending.push(polled.is_pending());
                }
                if let Poll::Ready(value) = polled {
                    *output = Some(value);
                }
            }
        }
        pass += 1;
        let left = outputs.iter().filter(|o| o.is_none()).count();
        if left == 0 {
            break;
        }
        loop {
            let wakes = unparker.wakes.load(Ordering::SeqCst);
            if wakes > seen {
                seen = wakes;
                break;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "{left} of {} futures pending and not woken after {DEADLINE:?} (wakes: {wakes})",
                outputs.len(),
            );
            std::thread::park_timeout(deadline - now);
        }
    }
    Awaited {
        outputs: outputs.into_iter().map(Option::unwrap).collect(),
        first_poll_pending,
        waker: unparker.clone(),
    }
}

/// One future, to completion.
fn block_on<F: Future + Unpin>(future: F) -> F::Output {
    await_all(vec![future]).outputs.pop().unwrap()
}

/// Poll `future` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

// ---------------------------------------------------------------------------------------------
// Storage that records who synced and can hold a sync

/// Holds every fdatasync of the data files, once armed, until released; records the thread
/// of each.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    armed: bool,
    /// Syncs that reached the gate while it was armed.
    entered: usize,
    /// Names of the threads that called fdatasync, in order.
    syncers: Vec<Option<String>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Gate {
    fn arm(&self) {
        let mut state = self.state.lock().unwrap();
        state.armed = true;
        state.entered = 0;
    }

    fn release(&self) {
        self.state.lock().unwrap().armed = false;
        self.changed.notify_all();
    }

    /// Wait until `count` syncs are held at the armed gate; the name of the thread of the
    /// last one.
    fn wait_entered(&self, count: usize) -> Option<String> {
        let deadline = Instant::now() + DEADLINE;
        let mut state = self.state.lock().unwrap();
        while state.entered < count {
            let now = Instant::now();
            assert!(now < deadline, "no sync reached the gate in {DEADLINE:?}");
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
        state.syncers.last().cloned().flatten()
    }

    fn syncers(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().syncers.clone()
    }

    fn clear_syncers(&self) {
        self.state.lock().unwrap().syncers.clear();
    }

    fn pass(&self) {
        let name = std::thread::current().name().map(str::to_string);
        let mut state = self.state.lock().unwrap();
        state.syncers.push(name);
        if !state.armed {
            return;
        }
        state.entered += 1;
        self.changed.notify_all();
        let deadline = Instant::now() + DEADLINE;
        while state.armed && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

#[derive(Debug, Clone)]
struct GatedStorage {
    inner: FaultyStorage,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Box<dyn StorageFile>,
    gate: Arc<Gate>,
}

impl StorageFile for GatedFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(bytes, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.inner.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn map(&self, len: u64) -> io::Result<MappedBytes> {
        self.inner.map(len)
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.start_writeback(offset, len)
    }
}

impl GatedStorage {
    fn wrap(&self, inner: Box<dyn StorageFile>) -> Box<dyn StorageFile> {
        Box::new(GatedFile {
            inner,
            gate: self.gate.clone(),
        })
    }
}

impl Storage for GatedStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(self.wrap(self.inner.create_new(path)?))
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(self.wrap(self.inner.open_existing(path)?))
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_file_system(dir)
    }
    fn sync_directory(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_directory(dir)
    }
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        self.inner.write_atomically(path, bytes, how)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture

struct Fixture {
    _dir: tempfile::TempDir,
    partition: Arc<Partition>,
    faults: Arc<Faults>,
    gate: Arc<Gate>,
    /// Every record committed so far (warm-up included), in `_seq` order.
    expected: Vec<Record>,
}

type Record = (Seq, Vec<u8>, Vec<u8>);

impl Fixture {
    /// A partition under `fsync=always` with one record appended (its segment exists), the
    /// sync counters and the gate's record of syncers cleared.
    fn open() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let faulty = FaultyStorage::default();
        let faults = faulty.faults.clone();
        let gate = Arc::new(Gate::default());
        let storage = GatedStorage {
            inner: faulty,
            gate: gate.clone(),
        };
        let config = PartitionConfig {
            fsync: FsyncPolicy::Always,
            storage: Arc::new(storage),
            ..PartitionConfig::default()
        };
        let partition = Partition::open(dir.path(), config).unwrap();
        let warm = partition.append(&[NewRecord::new(b"warm", b"up")]).unwrap();
        faults.file_syncs.store(0, Ordering::SeqCst);
        gate.clear_syncers();
        Fixture {
            _dir: dir,
            partition,
            faults,
            gate,
            expected: vec![(warm.first, b"warm".to_vec(), b"up".to_vec())],
        }
    }

    /// Submit one batch of `count` records keyed `{name}-{i}`; remembers its records as
    /// expected (call [`Fixture::forget`] for a batch that must fail).
    fn submit(&mut self, name: &str, count: usize) -> (AppendTicket, Vec<Record>) {
        let keys: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("{name}-{i}").into_bytes())
            .collect();
        let payloads: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("payload of {name}-{i}").into_bytes())
            .collect();
        let records: Vec<NewRecord<'_>> = keys
            .iter()
            .zip(&payloads)
            .map(|(k, p)| NewRecord::new(k, p))
            .collect();
        let mut seqs = Vec::new();
        let ticket = self
            .partition
            .submit_with_seqs(&records, &mut seqs)
            .unwrap();
        assert_eq!(seqs.len(), count);
        let range = ticket.range();
        assert_eq!(
            (range.first, range.last, range.count as usize),
            (seqs[0], seqs[count - 1], count),
            "the ticket's range is the batch's _seqs"
        );
        let batch: Vec<Record> = seqs
            .into_iter()
            .zip(keys)
            .zip(payloads)
            .map(|((s, k), p)| (s, k, p))
            .collect();
        self.expected.extend(batch.iter().cloned());
        (ticket, batch)
    }

    fn forget(&mut self, batch: &[Record]) {
        self.expected.retain(|r| !batch.contains(r));
    }

    fn read_all(&self) -> Vec<Record> {
        read_all(&self.partition)
    }

    /// What is readable is exactly what was committed, in `_seq` order.
    fn assert_readable(&self) {
        let mut expected = self.expected.clone();
        expected.sort();
        assert_eq!(self.read_all(), expected, "readable records, in _seq order");
        assert_eq!(self.partition.verify().unwrap(), expected.len() as u64);
    }

    /// A blocking append after whatever the test did still works, after everything before it.
    fn assert_still_writable(&mut self) {
        let before = self.partition.last_seq();
        let (ticket, batch) = self.submit("later-blocking", 1);
        assert_eq!(ticket.wait().unwrap().first, batch[0].0);
        assert!(batch[0].0 > before);
        let (ticket, batch) = self.submit("later-async", 2);
        let range = block_on(ticket.committed()).unwrap();
        assert_eq!(range.first, batch[0].0);
        assert!(!self.partition.is_poisoned());
        self.assert_readable();
    }
}

fn read_all(partition: &Partition) -> Vec<Record> {
    let snapshot = partition.snapshot();
    snapshot
        .records(ReadFrom::Earliest)
        .map(|r| {
            let r = r.unwrap();
            (r.seq, r.key.to_vec(), r.payload.to_vec())
        })
        .collect()
}

/// Wait (polling snapshots) until `seq` is readable in `partition`.
fn wait_until_visible(partition: &Partition, seq: Seq) {
    let deadline = Instant::now() + DEADLINE;
    while partition.last_seq() < seq {
        assert!(
            Instant::now() < deadline,
            "_seq {seq} not visible after {DEADLINE:?}: the dropped future's batch never committed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn names(threads: &[Option<String>]) -> Vec<&str> {
    threads
        .iter()
        .map(|n| n.as_deref().unwrap_or("<unnamed>"))
        .collect()
}

fn assert_all_on_commit_thread(what: &str, threads: &[Option<String>]) {
    assert!(!threads.is_empty(), "no {what} at all");
    assert!(
        threads.iter().all(|n| n.as_deref() == Some(COMMIT_THREAD)),
        "{what} not all on {COMMIT_THREAD}: {:?}",
        names(threads)
    );
}

fn is_storage_full_error(result: &Result<SeqRange, LogError>) -> bool {
    matches!(result, Err(error @ LogError::StorageFull { .. }) if error.is_storage_full())
}

// ---------------------------------------------------------------------------------------------
// 1. Many futures from one thread

/// 64 batches submitted from this thread, awaited together: each future resolves with its
/// batch's range, everything is readable in `_seq` order, the round was led (and its
/// fdatasync done) by the commit thread while this thread only polled, and the 64 batches
/// shared one fdatasync.
#[test]
fn batches_awaited_together_share_a_sync_led_by_the_commit_thread() {
    const BATCHES: usize = 64;
    let mut fixture = Fixture::open();
    fixture.faults.sync_delay_ms.store(50, Ordering::SeqCst);
    let mut ranges = Vec::new();
    let mut futures: Vec<Committed> = Vec::new();
    for b in 0..BATCHES {
        let (ticket, _) = fixture.submit(&format!("b{b}"), 1 + b % 3);
        ranges.push(ticket.range());
        futures.push(ticket.committed());
    }
    assert!(
        ranges.windows(2).all(|w| w[0].last < w[1].first),
        "batches submitted in order get increasing, disjoint ranges"
    );
    // Nothing is visible before its round: only the warm-up record.
    assert_eq!(fixture.read_all().len(), 1);

    let awaited = await_all(futures);
    let results: Vec<SeqRange> = awaited.outputs.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        results, ranges,
        "each future resolves with its batch's range"
    );
    assert!(
        awaited.first_poll_pending[0],
        "the first poll led the round on the polling thread instead of leaving it pending"
    );
    fixture.assert_readable();

    let syncs = fixture.faults.file_syncs.load(Ordering::SeqCst);
    assert!(
        syncs >= 1,
        "{BATCHES} batches under fsync=always were committed without an fdatasync"
    );
    assert!(
        syncs <= 3,
        "{BATCHES} batches awaited together took {syncs} fdatasyncs; expected them shared"
    );
    assert_all_on_commit_thread("fdatasyncs", &fixture.gate.syncers());
    assert_all_on_commit_thread("wakes", &awaited.waker.woken_by());
    fixture.assert_still_writable();
}

/// Batches submitted while the commit thread is in a round's fdatasync go to the next
/// round, which the commit thread leads too (its own round's completion does not end its
/// work while futures wait); waves polled only after the thread went idle start it again.
#[test]
fn the_commit_thread_leads_round_after_round_while_futures_wait() {
    let mut fixture = Fixture::open();
    let unparker = Unparker::new();
    let waker = Waker::from(unparker.clone());
    let mut cx = Context::from_waker(&waker);

    // Wave 1 starts a round and is held in its fdatasync.
    fixture.gate.arm();
    let (ticket, _) = fixture.submit("wave1", 2);
    let mut wave1 = vec![ticket.committed()];
    assert!(Pin::new(&mut wave1[0]).poll(&mut cx).is_pending());
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));

    // Wave 2 is submitted and polled while that round syncs: it cannot be in it.
    let mut wave2 = Vec::new();
    for b in 0..8 {
        let (ticket, _) = fixture.submit(&format!("wave2-{b}"), 1);
        let mut future = ticket.committed();
        assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
        wave2.push(future);
    }
    assert_eq!(
        fixture.read_all().len(),
        1,
        "nothing published before the sync"
    );
    fixture.gate.release();
    let mut all = wave1;
    all.extend(wave2);
    let first = await_all_with(all, &unparker, true);
    for result in &first.outputs {
        result.as_ref().unwrap();
    }
    fixture.assert_readable();
    let syncers = fixture.gate.syncers();
    assert_eq!(
        syncers.len(),
        2,
        "wave 1's round, then one round for all of wave 2: {:?}",
        names(&syncers)
    );
    assert_all_on_commit_thread("fdatasyncs", &syncers);

    // Later waves, each after the thread went idle, each awaited on its own.
    for wave in 3..6 {
        let futures: Vec<Committed> = (0..4)
            .map(|b| fixture.submit(&format!("wave{wave}-{b}"), 1).0.committed())
            .collect();
        let awaited = await_all(futures);
        assert!(awaited.outputs.iter().all(Result::is_ok));
        assert!(awaited.first_poll_pending[0]);
    }
    assert_all_on_commit_thread("fdatasyncs", &fixture.gate.syncers());
    fixture.assert_still_writable();
}

// ---------------------------------------------------------------------------------------------
// 2. Dropped futures

/// A future dropped before it resolved, never polled: the drop does not lead the round on
/// the dropping thread (the commit thread does), and the batch becomes visible.
#[test]
fn a_future_dropped_unpolled_still_commits_its_batch() {
    let mut fixture = Fixture::open();
    fixture.gate.arm();
    let (ticket, batch) = fixture.submit("dropped", 3);
    drop(ticket.committed());
    // Had the drop led the round here, this thread would be held in the gate, not here.
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));
    assert_eq!(fixture.read_all().len(), 1, "not published before its sync");
    fixture.gate.release();
    wait_until_visible(&fixture.partition, batch[2].0);
    fixture.assert_readable();
    fixture.assert_still_writable();
}

/// A future polled once (so its waker is queued), then dropped before its round completed;
/// and one whose round completed before it was dropped without being polled again.
#[test]
fn a_future_dropped_after_a_poll_still_commits_its_batch() {
    let mut fixture = Fixture::open();
    fixture.gate.arm();
    let (ticket, first) = fixture.submit("polled-then-dropped", 2);
    let mut future = ticket.committed();
    assert!(poll_once(&mut future).is_pending());
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));
    drop(future);
    fixture.gate.release();
    wait_until_visible(&fixture.partition, first[1].0);

    let (ticket, second) = fixture.submit("completed-then-dropped", 1);
    let mut future = ticket.committed();
    assert!(poll_once(&mut future).is_pending());
    wait_until_visible(&fixture.partition, second[0].0);
    drop(future);

    // Several dropped in one round beside one that is awaited: the awaited one is told Ok.
    let mut dropped = Vec::new();
    for b in 0..5 {
        dropped.push(fixture.submit(&format!("dropped-{b}"), 1).0.committed());
    }
    let (ticket, kept) = fixture.submit("kept", 1);
    drop(dropped);
    assert_eq!(block_on(ticket.committed()).unwrap().first, kept[0].0);
    fixture.assert_readable();
    fixture.assert_still_writable();
}

// ---------------------------------------------------------------------------------------------
// 3. Futures and blocking waiters together

/// Spawn a thread named `name` that waits for `ticket` with the blocking `wait`.
fn wait_blocking(
    name: &str,
    ticket: AppendTicket,
) -> std::thread::JoinHandle<Result<SeqRange, LogError>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || ticket.wait())
        .unwrap()
}

/// What a future that starts waiting while a blocking waiter leads is checked against.
#[derive(Clone, Copy, PartialEq)]
enum Late {
    /// It is awaited: it must be woken with `Ok`.
    Awaited,
    /// It is dropped: its batch must still commit.
    Dropped,
}

/// A blocking waiter leads a round (held in its fdatasync); futures submitted and polled (or
/// dropped) meanwhile are in the next round. Once the blocking round completes, the
/// futures' round must still be led: the blocking waiter returns without leading it, and no
/// other appender comes. `commit_thread_started`: a future was awaited on the partition
/// before (its commit thread runs); else the queue has never had an async waiter.
fn late_futures_of_a_blocking_round(commit_thread_started: bool, late: Late) {
    let mut fixture = Fixture::open();
    if commit_thread_started {
        let (ticket, _) = fixture.submit("start-the-commit-thread", 1);
        block_on(ticket.committed()).unwrap();
        fixture.gate.clear_syncers();
    }
    fixture.gate.arm();
    let (ticket, blocking_batch) = fixture.submit("blocking", 1);
    let blocking = wait_blocking("blocking-waiter", ticket);
    assert_eq!(
        fixture.gate.wait_entered(1).as_deref(),
        Some("blocking-waiter"),
        "the blocking waiter leads its round"
    );
    let unparker = Unparker::new();
    let waker = Waker::from(unparker.clone());
    let mut futures = Vec::new();
    let mut last = Seq::ZERO;
    for b in 0..4 {
        let (ticket, batch) = fixture.submit(&format!("async-{b}"), 1);
        last = batch[0].0;
        let mut future = ticket.committed();
        match late {
            Late::Awaited => {
                let polled = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
                assert!(polled.is_pending());
                futures.push(future);
            }
            Late::Dropped => drop(future),
        }
    }
    fixture.gate.release();
    assert_eq!(blocking.join().unwrap().unwrap().first, blocking_batch[0].0);
    match late {
        Late::Awaited => {
            let awaited = await_all_with(futures, &unparker, true);
            for result in &awaited.outputs {
                result.as_ref().unwrap();
            }
        }
        Late::Dropped => wait_until_visible(&fixture.partition, last),
    }
    fixture.assert_readable();
    // Two rounds: the blocking waiter's, then the futures', not led by the polling thread.
    let syncers = fixture.gate.syncers();
    let this_thread = std::thread::current().name().map(str::to_string);
    assert_eq!(syncers.len(), 2, "{:?}", names(&syncers));
    assert_eq!(syncers[0].as_deref(), Some("blocking-waiter"));
    assert_ne!(
        syncers[1], this_thread,
        "the polling thread led the futures' round"
    );
    fixture.assert_still_writable();
}

#[test]
fn futures_that_start_waiting_while_a_blocking_waiter_leads_are_woken() {
    late_futures_of_a_blocking_round(true, Late::Awaited);
}

#[test]
fn futures_dropped_while_a_blocking_waiter_leads_still_commit() {
    late_futures_of_a_blocking_round(true, Late::Dropped);
}

/// As above, on a queue that never had an async waiter, so no commit thread runs yet when the
/// futures are first polled: the thread is started on first use, and a first use while a
/// blocking appender leads must still end with the futures' round led (by a thread started
/// then or later), not left until some other appender comes.
#[test]
fn the_first_futures_of_a_queue_are_woken_when_they_start_waiting_during_a_blocking_round() {
    late_futures_of_a_blocking_round(false, Late::Awaited);
}

#[test]
fn the_first_futures_of_a_queue_dropped_during_a_blocking_round_still_commit() {
    late_futures_of_a_blocking_round(false, Late::Dropped);
}

/// The commit thread leads a round for futures (held in its fdatasync); blocking waiters
/// submit meanwhile and wait; batches of both kinds in one round, and a blocking waiter in
/// a round with futures, all resolve with their ranges.
#[test]
fn blocking_waiters_and_futures_in_the_same_rounds_all_resolve() {
    let mut fixture = Fixture::open();
    let unparker = Unparker::new();
    let waker = Waker::from(unparker.clone());
    let mut cx = Context::from_waker(&waker);

    fixture.gate.arm();
    let (ticket, _) = fixture.submit("first-async", 1);
    let mut expected_ranges = vec![ticket.range()];
    let mut futures = vec![ticket.committed()];
    assert!(Pin::new(&mut futures[0]).poll(&mut cx).is_pending());
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));

    // The next round: blocking waiters and futures mixed, submitted while the first syncs.
    let mut blocking = Vec::new();
    for b in 0..6 {
        let (ticket, batch) = fixture.submit(&format!("mixed-{b}"), 1 + b % 2);
        if b % 2 == 0 {
            let waiter = wait_blocking(&format!("blocking-{b}"), ticket);
            blocking.push((waiter, batch[0].0));
        } else {
            expected_ranges.push(ticket.range());
            let mut future = ticket.committed();
            assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
            futures.push(future);
        }
    }
    fixture.gate.release();
    let awaited = await_all_with(futures, &unparker, true);
    let ranges: Vec<SeqRange> = awaited.outputs.into_iter().map(Result::unwrap).collect();
    assert_eq!(ranges, expected_ranges);
    for (waiter, first) in blocking {
        assert_eq!(waiter.join().unwrap().unwrap().first, first);
    }
    fixture.assert_readable();

    // Many threads of each kind at once, no gate: everything resolves, everything is there.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let partition = fixture.partition.clone();
            std::thread::spawn(move || {
                let mut committed = Vec::new();
                for i in 0..25 {
                    let key = format!("thread{t}-{i}");
                    let ticket = partition
                        .submit(&[NewRecord::new(key.as_bytes(), b"v")])
                        .unwrap();
                    let range = if t % 2 == 0 {
                        ticket.wait().unwrap()
                    } else {
                        block_on(ticket.committed()).unwrap()
                    };
                    committed.push((range.first, key.into_bytes(), b"v".to_vec()));
                }
                committed
            })
        })
        .collect();
    for thread in threads {
        fixture.expected.extend(thread.join().unwrap());
    }
    fixture.assert_readable();
    fixture.assert_still_writable();
}

// ---------------------------------------------------------------------------------------------
// 4. A full disk

/// A round whose fdatasync reports ENOSPC: every future of it gets `StorageFull`, and so
/// does a blocking waiter in the same round (each batch takes the round's failure once);
/// nothing of it is visible; the partition is not poisoned and takes appends again.
#[test]
fn futures_of_a_round_that_hit_a_full_disk_get_storage_full() {
    let mut fixture = Fixture::open();
    fixture.faults.full_sync.store(true, Ordering::SeqCst);
    let mut futures = Vec::new();
    let mut failed = Vec::new();
    for b in 0..3 {
        let (ticket, batch) = fixture.submit(&format!("full-{b}"), 2);
        futures.push(ticket.committed());
        failed.extend(batch);
    }
    let (ticket, batch) = fixture.submit("full-blocking", 1);
    failed.extend(batch);
    // A dropped one in the same round: its share of the failure is taken on its behalf.
    let (dropped, batch) = fixture.submit("full-dropped", 1);
    failed.extend(batch);
    fixture.forget(&failed);
    drop(dropped.committed());
    let blocking = wait_blocking("blocking-waiter", ticket);
    let awaited = await_all(futures);
    for result in &awaited.outputs {
        assert!(
            is_storage_full_error(result),
            "expected StorageFull, got {result:?}"
        );
    }
    let blocking = blocking.join().unwrap();
    assert!(
        is_storage_full_error(&blocking),
        "expected StorageFull for the blocking waiter, got {blocking:?}"
    );
    assert!(
        !fixture.partition.is_poisoned(),
        "a full disk must not poison"
    );
    fixture.assert_readable();

    // Room again: futures of the next rounds are told Ok.
    fixture.faults.full_sync.store(false, Ordering::SeqCst);
    let futures: Vec<Committed> = (0..3)
        .map(|b| fixture.submit(&format!("after-{b}"), 1).0.committed())
        .collect();
    assert!(await_all(futures).outputs.iter().all(Result::is_ok));
    fixture.assert_readable();
    fixture.assert_still_writable();
}
