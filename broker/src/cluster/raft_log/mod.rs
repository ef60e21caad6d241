//! The Raft log on disk: [`RaftLogStore`], openraft's `RaftLogStorage` for [`ClusterTypes`].
//!
//! Owns the entries of one Raft group, its vote, and its committed and purged log ids, in one
//! directory: segment files of checksummed frames (`format`), named by their first index and
//! rolled at a size, and a small state file replaced atomically. An in-memory index maps each
//! present entry to its frame; entries are read back from disk with positional reads, so
//! memory grows with the number of entries (a few dozen bytes each), not their size, and
//! purging after a snapshot bounds both.
//!
//! Durability is the guarantee a write is acknowledged on: `append` reports its entries
//! flushed only after their fdatasync, and the vote, truncations and purge points are durable
//! before their calls return. Opening recovers from a crash (`recovery`).
//!
//! Does not own the state machine or snapshots, nor what the entries mean.
//!
//! Every disk access runs on tokio's blocking pool (`spawn_blocking`): an fsync takes
//! milliseconds, and the runtime's workers also serve clients. The mutexes are only ever held
//! inside those blocking tasks or for a few field reads, never across an `.await`.

mod error;
mod format;
mod index;
mod recovery;
mod segment;
mod state;
mod torn;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogId, LogState, OptionalSend, RaftLogReader, StorageError, Vote};
use parking_lot::Mutex;

pub use error::RaftLogError;

use crate::cluster::types::{ClusterTypes, NodeId};
use crate::limits::{RAFT_LOG_READ_BYTES_MAX, RAFT_LOG_SEGMENT_BYTES_MAX};
use index::Index;
use writer::Writer;

/// An entry of the log.
pub(crate) type Entry = openraft::Entry<ClusterTypes>;

/// The Raft log, vote and log pointers of one Raft group, in one directory.
pub struct RaftLogStore {
    /// The disk side, held for the whole of each write (including its fsync); readers never
    /// take it.
    writer: Arc<Mutex<Writer>>,
    /// What readers see, shared with every [`RaftLogStoreReader`].
    index: Arc<Mutex<Index>>,
}

/// A reader of a [`RaftLogStore`]'s entries (openraft's replication tasks hold these): a cheap
/// clone sharing the store's index.
#[derive(Clone)]
pub struct RaftLogStoreReader {
    index: Arc<Mutex<Index>>,
}

impl RaftLogStore {
    /// Open the log in `dir`, creating the directory if missing, and recover it: a torn tail
    /// of the last segment is cut off; any other damage is an error. Blocks on file I/O.
    pub fn open(dir: &Path) -> Result<RaftLogStore, RaftLogError> {
        RaftLogStore::open_with(dir, RAFT_LOG_SEGMENT_BYTES_MAX)
    }

    /// [`RaftLogStore::open`] rolling segments at `segment_bytes_max` (tests use small ones).
    pub(crate) fn open_with(
        dir: &Path,
        segment_bytes_max: u64,
    ) -> Result<RaftLogStore, RaftLogError> {
        let index = recovery::recover(dir)?;
        let state = index.state.clone();
        let index = Arc::new(Mutex::new(index));
        let writer = Writer::new(dir, segment_bytes_max, state, index.clone());
        Ok(RaftLogStore {
            writer: Arc::new(Mutex::new(writer)),
            index,
        })
    }

    /// Run `op` on the writer on the blocking pool. Should this future be dropped, `op` still
    /// runs to its end under the writer's lock, so the next write sees a consistent writer.
    async fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Writer) -> Result<T, RaftLogError> + Send + 'static,
    ) -> Result<T, RaftLogError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || op(&mut writer.lock()))
            .await
            .map_err(|e| RaftLogError::Task(e.to_string()))?
    }
}

/// The entries in `start..end` (present ones; see [`Index::read`]), read on the blocking pool.
async fn read_entries(
    index: &Arc<Mutex<Index>>,
    start: u64,
    end: u64,
    bytes_max: usize,
) -> Result<Vec<Entry>, StorageError<NodeId>> {
    let index = index.clone();
    // The index stays locked through the reads: a truncate cannot cut the bytes it names
    // meanwhile, nor an append after it put other entries there, so a read is never torn.
    tokio::task::spawn_blocking(move || index.lock().read(start, end, bytes_max))
        .await
        .map_err(|e| RaftLogError::Task(e.to_string()))
        .and_then(|read| read)
        .map_err(RaftLogError::into_read_error)
}

/// `range` as `start..end`, end exclusive.
fn span(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&start) => start,
        Bound::Excluded(&start) => start.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&end) => end.saturating_add(1),
        Bound::Excluded(&end) => end,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<ClusterTypes> for RaftLogStoreReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let (start, end) = span(&range);
        read_entries(&self.index, start, end, usize::MAX).await
    }

    /// At most about `RAFT_LOG_READ_BYTES_MAX` of entries (at least one): replication sends
    /// them as one message.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        read_entries(&self.index, start, end, RAFT_LOG_READ_BYTES_MAX).await
    }
}

impl RaftLogReader<ClusterTypes> for RaftLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let (start, end) = span(&range);
        read_entries(&self.index, start, end, usize::MAX).await
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        read_entries(&self.index, start, end, RAFT_LOG_READ_BYTES_MAX).await
    }
}

impl RaftLogStorage<ClusterTypes> for RaftLogStore {
    type LogReader = RaftLogStoreReader;

    async fn get_log_state(&mut self) -> Result<LogState<ClusterTypes>, StorageError<NodeId>> {
        let index = self.index.lock();
        Ok(LogState {
            last_purged_log_id: index.state.last_purged,
            last_log_id: index.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> RaftLogStoreReader {
        RaftLogStoreReader {
            index: self.index.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.write(move |writer| writer.save_state(|state| state.vote = Some(vote)))
            .await
            .map_err(RaftLogError::into_vote_error)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.index.lock().state.vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.write(move |writer| writer.save_state(|state| state.committed = committed))
            .await
            .map_err(RaftLogError::into_write_error)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.index.lock().state.committed)
    }

    /// Writes and fdatasyncs the entries before reporting them flushed (and returning): the
    /// flush is what openraft counts towards a majority.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<ClusterTypes>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        match self.write(move |writer| writer.append(entries)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                // Both sides learn of it: openraft may wait on the callback alone.
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(e.into_write_error())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(move |writer| writer.truncate(log_id.index))
            .await
            .map_err(RaftLogError::into_write_error)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write(move |writer| writer.purge(log_id))
            .await
            .map_err(RaftLogError::into_write_error)
    }
}
