//! The `_seq` lease is moved ahead by a background thread: once less than
//! `SEQ_LEASE_RENEW_AHEAD_MS` remains, an append still returns while the lease's durable
//! write is held up (here: blocked on a gate), and the lease on disk then moves a full
//! `SEQ_LEASE_MS` past the issued ids. Only when the lease has run out does an append wait
//! for the write. Before this, every appender of the store waited for the lease's fsyncs each
//! time it ran out (once per `SEQ_LEASE_MS`), a stall that showed as the p99 of durable
//! produce-to-consume latency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use model::{TestClock, START_UNIX_MS};
use strand_log::limits::{SEQ_LEASE_MS, SEQ_LEASE_RENEW_AHEAD_MS};
use strand_log::seq::EPOCH_UNIX_MS;
use strand_log::storage::{AtomicWrite, FileStorage, Storage, StorageFile};
use strand_log::{FsyncPolicy, NewRecord, PartitionConfig, PartitionId, Store, StoreConfig};

/// File storage whose lease writes wait while the gate is closed, and are counted.
#[derive(Debug, Default)]
struct GatedLease {
    closed: AtomicBool,
    lease_writes: AtomicUsize,
}

impl Storage for GatedLease {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        FileStorage.create_new(path)
    }
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        FileStorage.open_existing(path)
    }
    fn sync_file_system(&self, dir: &Path) -> io::Result<()> {
        FileStorage.sync_file_system(dir)
    }
    fn write_atomically(&self, path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
        if path.ends_with("seq.lease") {
            while self.closed.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
            self.lease_writes.fetch_add(1, Ordering::SeqCst);
        }
        FileStorage.write_atomically(path, bytes, how)
    }
}

/// The lease on disk, in `_seq` milliseconds since the Strand epoch.
fn lease_on_disk(root: &Path) -> u64 {
    let bytes = std::fs::read(root.join("seq.lease")).unwrap();
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

/// Appends one record on another thread; `Some(())` when it returned within `wait`.
fn append_within(store: &Arc<Store>, wait: Duration) -> Option<()> {
    let (done, finished) = mpsc::channel();
    let store = store.clone();
    std::thread::spawn(move || {
        let id = PartitionId::new("p").unwrap();
        store.append(&id, &[NewRecord::new(b"k", b"v")]).unwrap();
        let _ = done.send(());
    });
    finished.recv_timeout(wait).ok()
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..5_000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn appends_do_not_wait_for_a_lease_renewed_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(START_UNIX_MS);
    let storage = Arc::new(GatedLease::default());
    let config = StoreConfig {
        partition: PartitionConfig {
            fsync: FsyncPolicy::Always,
            clock: clock.clone(),
            storage: storage.clone(),
            ..PartitionConfig::default()
        },
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path(), config).unwrap());
    let now_ms = || clock.now() - EPOCH_UNIX_MS;

    // The first append finds no lease and writes one: SEQ_LEASE_MS ahead.
    append_within(&store, Duration::from_secs(10)).expect("first append");
    assert_eq!(storage.lease_writes.load(Ordering::SeqCst), 1);
    let first_lease = lease_on_disk(dir.path());
    assert!(
        first_lease > now_ms() + SEQ_LEASE_MS - 10,
        "lease {first_lease}"
    );

    // Well inside the lease: no write at all.
    clock.shift(1_000);
    append_within(&store, Duration::from_secs(10)).expect("append inside the lease");
    assert_eq!(storage.lease_writes.load(Ordering::SeqCst), 1);

    // Less than the renew-ahead margin left: the append returns although the lease write
    // cannot finish (the gate is closed), because the old lease still covers it.
    storage.closed.store(true, Ordering::SeqCst);
    clock.set(START_UNIX_MS + SEQ_LEASE_MS - SEQ_LEASE_RENEW_AHEAD_MS + 500);
    assert!(
        now_ms() + 1 < first_lease,
        "the old lease still covers the clock"
    );
    append_within(&store, Duration::from_secs(5))
        .expect("an append inside the renew-ahead margin waited for the lease write");
    assert_eq!(
        storage.lease_writes.load(Ordering::SeqCst),
        1,
        "the write is held"
    );
    assert_eq!(lease_on_disk(dir.path()), first_lease);

    // Open the gate: the background write lands a full lease past the clock.
    storage.closed.store(false, Ordering::SeqCst);
    wait_for("the renew-ahead write", || {
        storage.lease_writes.load(Ordering::SeqCst) == 2
    });
    wait_for("the renewed lease on disk", || {
        lease_on_disk(dir.path()) >= now_ms() + SEQ_LEASE_MS
    });

    // Past every lease (the clock jumped): the append must wait for the write itself.
    storage.closed.store(true, Ordering::SeqCst);
    clock.shift(3 * SEQ_LEASE_MS as i64);
    let (done, finished) = mpsc::channel();
    let waiting = store.clone();
    std::thread::spawn(move || {
        let id = PartitionId::new("p").unwrap();
        let range = waiting.append(&id, &[NewRecord::new(b"k", b"v")]).unwrap();
        let _ = done.send(range);
    });
    assert!(
        finished.recv_timeout(Duration::from_millis(300)).is_err(),
        "an append past the lease returned before the lease was written"
    );
    storage.closed.store(false, Ordering::SeqCst);
    let range = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the append past the lease returns once the write is done");
    assert!(range.last.epoch_ms() < lease_on_disk(dir.path()));
}
