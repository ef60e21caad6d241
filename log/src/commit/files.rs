//! [`OpenFiles`]: a bound on the descriptors a store's partitions hold, least recently written
//! closed first.
//!
//! Each partition holds one descriptor: its active segment's file (sealed segments are mapped,
//! and a map needs no descriptor). The store's cache closes partitions nobody holds, but a
//! caller may hold many (every subscribed user's partition, every cached table): 600 of them
//! held 1,236 descriptors, and the process ran out. So the descriptors are bounded on their
//! own: when a partition's file is opened (at open, or again to write) and more than
//! `open_partitions_max` are open, the least recently written partition closes its file
//! (after an fdatasync if it has unsynced appends). Its readers keep reading from the map;
//! its next write reopens the file. A partition busy with another writer (maintenance) at
//! that moment is left open and counted as used, so the bound may be passed by the few
//! partitions being written at once.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::error::LogError;
use crate::partition::Partition;

#[derive(Debug)]
pub(crate) struct OpenFiles {
    /// Partitions with an open file before the least recently written one closes its own.
    max: usize,
    state: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    tick: u64,
    /// Partitions with an open file, by last use.
    by_use: BTreeMap<u64, Weak<Partition>>,
    /// A partition's (its address) tick in `by_use`.
    ticks: HashMap<usize, u64>,
}

fn key_of(partition: &Partition) -> usize {
    partition as *const Partition as usize
}

impl OpenFiles {
    pub(crate) fn new(max: usize) -> OpenFiles {
        OpenFiles {
            max: max.max(1),
            state: Mutex::new(Lru::default()),
        }
    }

    /// `partition` holds an open file and was just used. Returns the partitions over the
    /// bound, least recently used first, for [`OpenFiles::close`] (which only try-locks
    /// their writers, so the caller may hold any writer lock).
    pub(crate) fn touch(&self, partition: &Arc<Partition>) -> Vec<Arc<Partition>> {
        if self.max == usize::MAX {
            return Vec::new();
        }
        let key = key_of(partition);
        let mut lru = self.state.lock();
        let newest = lru.by_use.last_key_value();
        if newest.is_some_and(|(_, weak)| std::ptr::eq(weak.as_ptr(), Arc::as_ptr(partition))) {
            // Already the most recently used (one partition written round after round).
            return Vec::new();
        }
        lru.tick += 1;
        let tick = lru.tick;
        if let Some(previous) = lru.ticks.insert(key, tick) {
            lru.by_use.remove(&previous);
        }
        lru.by_use.insert(tick, Arc::downgrade(partition));
        let mut over = Vec::new();
        while lru.by_use.len() > self.max {
            let Some((_, weak)) = lru.by_use.pop_first() else {
                break;
            };
            let Some(victim) = weak.upgrade() else {
                // Dropped: its file is closed. Its address may be a new partition's by now.
                let Lru { by_use, ticks, .. } = &mut *lru;
                ticks.retain(|_, t| by_use.contains_key(t));
                continue;
            };
            lru.ticks.remove(&key_of(&victim));
            over.push(victim);
        }
        over
    }

    /// Close the files of `victims` (from [`OpenFiles::touch`]); one being written right now
    /// stays open and counts as just used.
    pub(crate) fn close(&self, victims: Vec<Arc<Partition>>) {
        for victim in victims {
            if !victim.close_idle_file() {
                drop(self.touch(&victim));
            }
        }
    }

    /// How many partitions hold an open file now (for tests and metrics).
    pub(crate) fn open(&self) -> usize {
        self.state.lock().by_use.len()
    }
}

impl Partition {
    /// Close the active segment's file if no one is writing the partition right now (after
    /// an fdatasync of unsynced appends); `false` if it is busy. A failed sync poisons, as in
    /// the interval flusher.
    pub(crate) fn close_idle_file(&self) -> bool {
        let Some(mut writer) = self.writer.try_lock() else {
            return false;
        };
        let Some(active) = writer.active.as_mut() else {
            return true;
        };
        let Some(file) = active.close_file() else {
            return true;
        };
        if self.unsynced.swap(false, Ordering::AcqRel) {
            if let Err(e) = file.sync_data() {
                let error = LogError::io(&active.path, e);
                self.poison(0, &error);
            }
        }
        true
    }
}
