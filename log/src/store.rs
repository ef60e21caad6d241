//! `Store`: many partitions under one root directory, sharing one commit queue and one `_seq`
//! generator. Partitions are opened on first use and closed when idle, so a table with 100,000
//! users needs only `open_partitions_max` open descriptors and maps at a time.
//!
//! The store persists a `_seq` lease (`seq.lease`): before issuing an id past the lease it
//! durably moves the lease forward, and on open it seeds the generator from the lease. A restart
//! therefore never reissues an id without reading every partition.

use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use crate::commit::CommitQueue;
use crate::config::StoreConfig;
use crate::error::{LogError, Result};
use crate::limits::PARTITION_NAME_BYTES_MAX;
use crate::partition::Partition;
use crate::record::read_u64;
use crate::segment;
use crate::seq::Seq;
use crate::storage::{AtomicWrite, Storage};

const LEASE_FILE: &str = "seq.lease";
const PARTITIONS_DIR: &str = "partitions";

/// Name of a partition inside a store: `/`-separated parts of `[A-Za-z0-9_.-]`, e.g.
/// `tables/app.tickets/alice`. Parsed once; every `PartitionId` is a safe relative path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(String);

impl PartitionId {
    /// `InvalidPartitionName` unless `name` is `/`-separated parts of `[A-Za-z0-9_.-]` (not
    /// `.` or `..`), at most `PARTITION_NAME_BYTES_MAX` bytes.
    pub fn new(name: impl Into<String>) -> Result<PartitionId> {
        let name = name.into();
        let part_ok = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        if name.len() > PARTITION_NAME_BYTES_MAX || !name.split('/').all(part_ok) {
            return Err(LogError::InvalidPartitionName(name));
        }
        Ok(PartitionId(name))
    }

    /// The name, a relative path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The durable upper bound of issued `_seq` milliseconds.
#[derive(Debug)]
pub(crate) struct SeqLease {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    /// Held while a write is in progress: the appenders' blocking renewal and the renew-ahead
    /// thread may both write, and the file must never move back.
    written: Mutex<LeaseWritten>,
}

#[derive(Debug, Default)]
struct LeaseWritten {
    /// The highest lease written.
    until_ms: u64,
    /// The store was dropped: the renew-ahead thread (which may outlive it for one write)
    /// writes no more, so it cannot overwrite the lease of a store reopened on the same root.
    ahead_closed: bool,
}

/// Who asks for a lease write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseWriter {
    /// An appender that needs the lease now.
    Appender,
    /// The renew-ahead thread.
    Ahead,
}

impl SeqLease {
    /// Everything issued before the lease ends is at or below this floor.
    fn floor(until_ms: u64) -> Seq {
        Seq((until_ms << 22).saturating_sub(1))
    }

    /// Durably moves the lease to `until_ms` (or keeps it where it is, when a later one was
    /// stored meanwhile, or when `writer` is the renew-ahead thread of a dropped store);
    /// returns the lease now on disk.
    pub fn store(&self, until_ms: u64, writer: LeaseWriter) -> Result<u64> {
        let mut written = self.written.lock();
        if written.until_ms >= until_ms || (writer == LeaseWriter::Ahead && written.ahead_closed) {
            return Ok(written.until_ms);
        }
        let mut bytes = until_ms.to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&until_ms.to_le_bytes()).to_le_bytes());
        self.storage
            .write_atomically(&self.path, &bytes, AtomicWrite::durable())
            .map_err(|e| LogError::io(&self.path, e))?;
        written.until_ms = until_ms;
        Ok(until_ms)
    }

    /// Waits for a renew-ahead write in progress and refuses later ones.
    pub fn close_ahead(&self) {
        self.written.lock().ahead_closed = true;
    }

    fn load(&self) -> Option<Seq> {
        let bytes = std::fs::read(&self.path).ok()?;
        if bytes.len() != 12 || crc32fast::hash(&bytes[..8]).to_le_bytes() != bytes[8..] {
            return None;
        }
        Some(SeqLease::floor(read_u64(&bytes, 0)))
    }
}

#[derive(Debug, Default)]
struct PartitionCache {
    open: HashMap<PartitionId, (Arc<Partition>, u64)>,
    by_use: BTreeMap<u64, PartitionId>,
    /// Every partition object still alive (cached or held by a caller), so a partition is never
    /// opened twice: two writers on one directory would corrupt it.
    alive: HashMap<PartitionId, Weak<Partition>>,
    tick: u64,
}

/// Many partitions under one root, with one commit queue and a bounded set of open partitions.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    config: StoreConfig,
    queue: Arc<CommitQueue>,
    cache: Mutex<PartitionCache>,
}

impl Drop for Store {
    fn drop(&mut self) {
        // A partition still held keeps the queue alive; its renew-ahead thread must not
        // write the lease after this store is gone (`LeaseWritten::ahead_closed`).
        self.queue.close_lease_ahead();
    }
}

impl Store {
    /// Open (creating if needed) the store under `root`, seeding the `_seq` generator from
    /// the lease (or, when it is unreadable, from the newest segment of every partition).
    pub fn open(root: impl AsRef<Path>, config: StoreConfig) -> Result<Store> {
        config.partition.validate()?;
        if config.open_partitions_max == 0 {
            return Err(LogError::InvalidConfig(
                "open_partitions_max must be at least 1",
            ));
        }
        let root = root.as_ref().to_path_buf();
        let partitions = root.join(PARTITIONS_DIR);
        let fresh = !partitions.exists();
        let storage = config.partition.storage.clone();
        storage
            .create_dir_all(&partitions)
            .map_err(|e| LogError::io(&partitions, e))?;
        let lease = SeqLease {
            path: root.join(LEASE_FILE),
            storage,
            written: Mutex::new(LeaseWritten::default()),
        };
        let floor = match lease.load() {
            Some(floor) => floor,
            None if fresh => Seq::ZERO,
            None => {
                tracing::warn!(root = %root.display(), "no readable seq.lease; scanning partitions");
                max_seq_on_disk(&partitions)?
            }
        };
        let shared_sync = config.shared_sync_partitions_min;
        let files = config.open_partitions_max;
        let queue = CommitQueue::new(&config.partition, Some(lease), floor, shared_sync, files);
        Ok(Store {
            root,
            config,
            queue,
            cache: Mutex::new(PartitionCache::default()),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The partition named `id`, opened (and recovered) if it is not open yet.
    pub fn partition(&self, id: &PartitionId) -> Result<Arc<Partition>> {
        let mut cache = self.lock_cache();
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((partition, last_use)) = cache.open.get_mut(id) {
            let partition = partition.clone();
            let previous = std::mem::replace(last_use, tick);
            cache.by_use.remove(&previous);
            cache.by_use.insert(tick, id.clone());
            return Ok(partition);
        }
        let partition = match cache.alive.get(id).and_then(Weak::upgrade) {
            Some(partition) => partition,
            None => self.open_partition(id)?,
        };
        cache.alive.insert(id.clone(), Arc::downgrade(&partition));
        cache.open.insert(id.clone(), (partition.clone(), tick));
        cache.by_use.insert(tick, id.clone());
        self.evict_over_bound(&mut cache);
        Ok(partition)
    }

    fn open_partition(&self, id: &PartitionId) -> Result<Arc<Partition>> {
        let dir = self.root.join(PARTITIONS_DIR).join(id.as_str());
        let partition =
            Partition::open_with_queue(&dir, &self.config.partition, self.queue.clone())?;
        self.queue.observe(partition.floor_seq());
        self.queue.opened(&partition);
        Ok(partition)
    }

    fn evict_over_bound(&self, cache: &mut PartitionCache) {
        while cache.open.len() > self.config.open_partitions_max {
            let Some((_, id)) = cache.by_use.pop_first() else {
                break;
            };
            cache.open.remove(&id);
        }
        if cache.alive.len() > 2 * self.config.open_partitions_max {
            cache.alive.retain(|_, weak| weak.strong_count() > 0);
        }
    }

    /// Append to the partition `id`; see [`Partition::append`].
    pub fn append(
        &self,
        id: &PartitionId,
        records: &[crate::NewRecord<'_>],
    ) -> Result<crate::SeqRange> {
        self.partition(id)?.append(records)
    }

    /// Partitions currently held open by the cache.
    pub fn open_partitions(&self) -> usize {
        self.lock_cache().open.len()
    }

    /// Partitions holding an open segment file (one descriptor each): at most about
    /// `open_partitions_max`, however many partitions callers hold (`commit/files.rs`).
    pub fn open_segment_files(&self) -> usize {
        self.queue.open_files()
    }

    /// Names of every partition on disk (walks the directory tree).
    pub fn partition_ids(&self) -> Result<Vec<PartitionId>> {
        let base = self.root.join(PARTITIONS_DIR);
        let mut ids = Vec::new();
        for dir in partition_dirs(&base)? {
            let relative = dir
                .strip_prefix(&base)
                .unwrap_or(&dir)
                .to_string_lossy()
                .into_owned();
            if let Ok(id) = PartitionId::new(relative) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Whether a commit round is writing (and, under `always`, syncing) right now. A hint for
    /// callers choosing where to wait: an append made now would wait for that round first.
    pub fn commit_in_progress(&self) -> bool {
        self.queue.leader_active()
    }

    /// `count` fresh ids from the store's `_seq` generator, with no record behind them
    /// (SQL's `SNOWFLAKE_ID()`): unique, increasing, never reissued after a restart.
    pub fn issue_ids(&self, count: usize) -> Result<Vec<Seq>> {
        self.queue.issue_ids(count)
    }

    /// A `_seq` another node issued to something with no record here (a cluster's replicated
    /// tick): never issued by this store, nor anything below it, even after a restart.
    pub fn observe_issued(&self, seq: Seq) -> Result<()> {
        self.queue.observe_issued(seq)
    }

    /// The highest `_seq` issued by this process or found at open.
    pub fn last_issued_seq(&self) -> Seq {
        self.queue.last_issued()
    }

    /// fdatasync every partition with unsynced appends (policies `interval` and `never`).
    pub fn sync(&self) -> Result<()> {
        let open: Vec<Arc<Partition>> = {
            let cache = self.lock_cache();
            cache.alive.values().filter_map(Weak::upgrade).collect()
        };
        for partition in open {
            partition.sync()?;
        }
        Ok(())
    }

    fn lock_cache(&self) -> MutexGuard<'_, PartitionCache> {
        self.cache.lock()
    }
}

/// Directories under `base` that hold segment files.
fn partition_dirs(base: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![base.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| LogError::io(&dir, e))?;
        let mut has_segments = false;
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io(&dir, e))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if has_segment_name(&path) {
                has_segments = true;
            }
        }
        if has_segments {
            found.push(dir);
        }
    }
    Ok(found)
}

fn has_segment_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(segment::parse_segment_name)
        .is_some()
}

/// Fallback when the lease is lost: the highest `_seq` in any partition's newest segment.
fn max_seq_on_disk(base: &Path) -> Result<Seq> {
    let mut max = Seq::ZERO;
    for dir in partition_dirs(base)? {
        let entries = std::fs::read_dir(&dir).map_err(|e| LogError::io(&dir, e))?;
        let newest = entries
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()
                    .and_then(segment::parse_segment_name)
            })
            .max();
        let Some(first_seq) = newest else { continue };
        let path = segment::segment_path(&dir, first_seq);
        let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
        let index = crate::recovery::scan_all(&bytes, first_seq).index;
        max = max.max(first_seq).max(index.summary.last_seq);
    }
    Ok(max)
}
