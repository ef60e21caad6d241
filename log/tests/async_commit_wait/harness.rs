//! The harness of `async_commit_wait.rs`: a `block_on` that parks until woken (under a
//! deadline), a storage whose fdatasyncs can be held and whose syncing threads are recorded,
//! and the partition fixture with its checks.

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
    AppendTicket, FsyncPolicy, LogError, MappedBytes, NewRecord, Partition, PartitionConfig,
    ReadFrom, Seq, SeqRange,
};

/// How long any wait of this file may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// The name the log gives its commit thread.
pub const COMMIT_THREAD: &str = "strand-log-commit";

// ---------------------------------------------------------------------------------------------
// block_on

/// Unparks the polling thread; counts wakes and records which thread woke it.
pub struct Unparker {
    pub thread: Thread,
    pub wakes: AtomicUsize,
    pub woken_by: Mutex<Vec<Option<String>>>,
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
    pub fn new() -> Arc<Unparker> {
        Arc::new(Unparker {
            thread: std::thread::current(),
            wakes: AtomicUsize::new(0),
            woken_by: Mutex::new(Vec::new()),
        })
    }

    pub fn woken_by(&self) -> Vec<Option<String>> {
        self.woken_by.lock().unwrap().clone()
    }
}

/// What polling futures together gave.
pub struct Awaited<T> {
    pub outputs: Vec<T>,
    /// Whether each future's first poll here was `Pending` (empty if the test polled them
    /// before handing them over).
    pub first_poll_pending: Vec<bool>,
    pub waker: Arc<Unparker>,
}

/// Poll every future in one loop with one waker until all resolved. Like a real executor, a
/// pending future is polled again only after a wake: a waiter nobody wakes is not rescued by
/// being polled anyway. Panics if they have not all resolved within [`DEADLINE`].
pub fn await_all<F: Future + Unpin>(futures: Vec<F>) -> Awaited<F::Output> {
    let waker = Unparker::new();
    await_all_with(futures, &waker, false)
}

/// [`await_all`] with the test's own waker; `polled_already`: the test polled each future
/// once with `unparker`'s waker, so the first thing is to wait for a wake.
pub fn await_all_with<F: Future + Unpin>(
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
pub fn block_on<F: Future + Unpin>(future: F) -> F::Output {
    await_all(vec![future]).outputs.pop().unwrap()
}

/// Poll `future` once with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

// ---------------------------------------------------------------------------------------------
// Storage that records who synced and can hold a sync

/// Holds every fdatasync of the data files, once armed, until released; records the thread
/// of each.
#[derive(Default)]
pub struct Gate {
    pub state: Mutex<GateState>,
    pub changed: Condvar,
}

#[derive(Default)]
pub struct GateState {
    pub armed: bool,
    /// Syncs that reached the gate while it was armed.
    pub entered: usize,
    /// Names of the threads that called fdatasync, in order.
    pub syncers: Vec<Option<String>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Gate {
    pub fn arm(&self) {
        let mut state = self.state.lock().unwrap();
        state.armed = true;
        state.entered = 0;
    }

    pub fn release(&self) {
        self.state.lock().unwrap().armed = false;
        self.changed.notify_all();
    }

    /// Wait until `count` syncs are held at the armed gate; the name of the thread of the
    /// last one.
    pub fn wait_entered(&self, count: usize) -> Option<String> {
        let deadline = Instant::now() + DEADLINE;
        let mut state = self.state.lock().unwrap();
        while state.entered < count {
            let now = Instant::now();
            assert!(now < deadline, "no sync reached the gate in {DEADLINE:?}");
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
        state.syncers.last().cloned().flatten()
    }

    pub fn syncers(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().syncers.clone()
    }

    pub fn clear_syncers(&self) {
        self.state.lock().unwrap().syncers.clear();
    }

    pub fn pass(&self) {
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
pub struct GatedStorage {
    pub inner: FaultyStorage,
    pub gate: Arc<Gate>,
}

#[derive(Debug)]
pub struct GatedFile {
    pub inner: Box<dyn StorageFile>,
    pub gate: Arc<Gate>,
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
    pub fn wrap(&self, inner: Box<dyn StorageFile>) -> Box<dyn StorageFile> {
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

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub partition: Arc<Partition>,
    pub faults: Arc<Faults>,
    pub gate: Arc<Gate>,
    /// Every record committed so far (warm-up included), in `_seq` order.
    pub expected: Vec<Record>,
}

pub type Record = (Seq, Vec<u8>, Vec<u8>);

impl Fixture {
    /// A partition under `fsync=always` with one record appended (its segment exists), the
    /// sync counters and the gate's record of syncers cleared.
    pub fn open() -> Fixture {
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
    pub fn submit(&mut self, name: &str, count: usize) -> (AppendTicket, Vec<Record>) {
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

    pub fn forget(&mut self, batch: &[Record]) {
        self.expected.retain(|r| !batch.contains(r));
    }

    pub fn read_all(&self) -> Vec<Record> {
        read_all(&self.partition)
    }

    /// What is readable is exactly what was committed, in `_seq` order.
    pub fn assert_readable(&self) {
        let mut expected = self.expected.clone();
        expected.sort();
        assert_eq!(self.read_all(), expected, "readable records, in _seq order");
        assert_eq!(self.partition.verify().unwrap(), expected.len() as u64);
    }

    /// A blocking append after whatever the test did still works, after everything before it.
    pub fn assert_still_writable(&mut self) {
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

pub fn read_all(partition: &Partition) -> Vec<Record> {
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
pub fn wait_until_visible(partition: &Partition, seq: Seq) {
    let deadline = Instant::now() + DEADLINE;
    while partition.last_seq() < seq {
        assert!(
            Instant::now() < deadline,
            "_seq {seq} not visible after {DEADLINE:?}: the dropped future's batch never committed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn names(threads: &[Option<String>]) -> Vec<&str> {
    threads
        .iter()
        .map(|n| n.as_deref().unwrap_or("<unnamed>"))
        .collect()
}

pub fn assert_all_on_commit_thread(what: &str, threads: &[Option<String>]) {
    assert!(!threads.is_empty(), "no {what} at all");
    assert!(
        threads.iter().all(|n| n.as_deref() == Some(COMMIT_THREAD)),
        "{what} not all on {COMMIT_THREAD}: {:?}",
        names(threads)
    );
}

pub fn is_storage_full_error(result: &Result<SeqRange, LogError>) -> bool {
    matches!(result, Err(error @ LogError::StorageFull { .. }) if error.is_storage_full())
}
