//! [`WritebackQueue`]: a thread that starts the kernel's writeback of freshly appended ranges
//! (under `never` and `interval`), so the commit leader never waits for it.
//!
//! Why a thread: `sync_file_range(SYNC_FILE_RANGE_WRITE)` does not wait for the data, but it
//! does wait for room in the device's request queue. Called by the commit leader, that wait
//! stalled every appender of the store whenever the disk fell behind (measured: sustained
//! 1 KiB produce with 64 producers at about half its rate once earlier writes had filled the
//! queue). Writeback is a hint (nothing becomes durable by it), so a range that finds the
//! queue full is dropped: the kernel's own writeback and the fdatasync that seals the segment
//! still write it.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::limits::WRITEBACK_QUEUE_MAX;
use crate::storage::StorageFile;

struct Range {
    file: Arc<dyn StorageFile>,
    offset: u64,
    len: u64,
}

/// The queue of ranges to start writing back; its thread ends when the queue is dropped, and
/// the drop waits for it.
#[derive(Debug)]
pub(crate) struct WritebackQueue {
    /// `None` when the thread could not be started: writeback then runs on the caller.
    sender: Option<SyncSender<Range>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for WritebackQueue {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop after at most the range in hand. Joining
        // it means no thread of a closed partition outlives it (a detached one was still
        // exiting when LeakSanitizer looked, and reported its allocations as leaked).
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl WritebackQueue {
    pub(crate) fn start() -> WritebackQueue {
        let (sender, ranges) = mpsc::sync_channel::<Range>(WRITEBACK_QUEUE_MAX);
        let spawned = std::thread::Builder::new()
            .name("strand-log-writeback".into())
            .spawn(move || {
                for range in ranges {
                    start_writeback(&range);
                }
            });
        match spawned {
            Ok(thread) => WritebackQueue {
                sender: Some(sender),
                thread: Some(thread),
            },
            Err(error) => {
                tracing::warn!(%error, "no writeback thread; the commit leader starts writeback");
                WritebackQueue {
                    sender: None,
                    thread: None,
                }
            }
        }
    }

    /// Start writing back `len` bytes of `file` from `offset`, soon.
    pub(crate) fn submit(&self, file: &Arc<dyn StorageFile>, offset: u64, len: u64) {
        let range = Range {
            file: file.clone(),
            offset,
            len,
        };
        let Some(sender) = &self.sender else {
            return start_writeback(&range);
        };
        match sender.try_send(range) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(range)) => start_writeback(&range),
        }
    }
}

fn start_writeback(range: &Range) {
    if let Err(error) = range.file.start_writeback(range.offset, range.len) {
        tracing::debug!(%error, offset = range.offset, "start_writeback failed");
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;
    use std::io;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sys::MappedBytes;

    /// A file that records the writeback it was asked for.
    #[derive(Debug, Default)]
    struct RecordingFile {
        ranges: Mutex<Vec<(u64, u64)>>,
    }

    impl StorageFile for RecordingFile {
        fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
            Ok(())
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
        fn sync_all(&self) -> io::Result<()> {
            Ok(())
        }
        fn set_len(&self, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn len(&self) -> io::Result<u64> {
            Ok(0)
        }
        fn map(&self, _: u64) -> io::Result<MappedBytes> {
            Err(io::Error::other("not mappable"))
        }
        fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
            self.ranges.lock().push((offset, len));
            Ok(())
        }
    }

    #[test]
    fn submitted_ranges_reach_the_file_in_order() {
        let recording = Arc::new(RecordingFile::default());
        let file: Arc<dyn StorageFile> = recording.clone();
        let queue = WritebackQueue::start();
        for n in 0..10 {
            queue.submit(&file, n * 100, 100);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = recording.ranges.lock().clone();
            if seen.len() == 10 {
                let expected: Vec<(u64, u64)> = (0..10).map(|n| (n * 100, 100)).collect();
                assert_eq!(seen, expected);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of 10 ranges arrived",
                seen.len()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
