//! What every storage-fault test needs: a partition or store over a `FaultyStorage` with a
//! test clock, records that compaction can shrink, and a guard that the fault really fired.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use strand_log::storage::{Faults, FaultyStorage};
use strand_log::{FsyncPolicy, LogError, Partition, PartitionConfig, ReadFrom, Seq};

use crate::model::{append_checked, read, ModelRecord, RecordSpec, TestClock, START_UNIX_MS};

/// Segments this small hold about 15 of the test's records, so a few dozen cross several.
pub const SEGMENT_BYTES: u64 = 4096;

/// Picks one of the fault switches.
pub type Switch = fn(&Faults) -> &AtomicBool;

/// A storage with its switches, and the clock its partitions run on.
pub struct Rig {
    pub storage: FaultyStorage,
    pub clock: Arc<TestClock>,
}

impl Rig {
    pub fn new() -> Rig {
        Rig {
            storage: FaultyStorage::default(),
            clock: TestClock::new(START_UNIX_MS),
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.storage.faults
    }

    pub fn config(&self) -> PartitionConfig {
        PartitionConfig {
            segment_bytes_max: SEGMENT_BYTES,
            fsync: FsyncPolicy::Never,
            storage: Arc::new(self.storage.clone()),
            clock: self.clock.clone(),
            ..PartitionConfig::default()
        }
    }

    pub fn open(&self, dir: &Path) -> Arc<Partition> {
        Partition::open(dir, self.config()).unwrap()
    }

    /// Run `action` with `switch` on, and check that the fault fired at least once: the call
    /// site went through the storage.
    pub fn with_fault<T>(&self, switch: Switch, action: impl FnOnce() -> T) -> T {
        let faults = self.faults();
        let before = faults.faults_fired.load(Ordering::SeqCst);
        switch(faults).store(true, Ordering::SeqCst);
        let out = action();
        switch(faults).store(false, Ordering::SeqCst);
        let fired = faults.faults_fired.load(Ordering::SeqCst) - before;
        assert!(
            fired > 0,
            "the injected fault never fired: the call bypassed the storage"
        );
        out
    }
}

/// Record `i`: every third one has a key of its own (never superseded, so every segment keeps
/// some records through compaction), the others update one of four hot keys.
pub fn record(i: usize) -> RecordSpec {
    let key = match i % 3 {
        0 => format!("own-{i}"),
        _ => format!("hot-{}", i % 4),
    };
    RecordSpec {
        key: key.into_bytes(),
        payload: vec![b'a' + (i % 26) as u8; 200],
        tombstone: false,
        previous_version: Seq::ZERO,
    }
}

/// Append records `from..to`, one batch each, checked into `model`.
pub fn append_range(
    partition: &Arc<Partition>,
    rig: &Rig,
    from: usize,
    to: usize,
    model: &mut Vec<ModelRecord>,
) {
    for i in from..to {
        append_checked(partition, &rig.clock, &[record(i)], model);
    }
}

pub fn read_all(partition: &Partition) -> Vec<ModelRecord> {
    read(&partition.snapshot(), ReadFrom::Earliest)
}

/// Files of `dir` whose name ends with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// `result` is the I/O error of `path` that the fault `what` injected.
pub fn assert_injected<T: std::fmt::Debug>(result: Result<T, LogError>, path: &Path, what: &str) {
    match result {
        Err(LogError::Io { path: at, source }) => {
            assert_eq!(at, path);
            let message = source.to_string();
            assert!(message.contains(&format!("injected {what}")), "{message}");
        }
        other => panic!("expected the injected {what} failure on {path:?}, got {other:?}"),
    }
}

/// Injected panics are expected in some tests: keep their messages out of the test output.
pub fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if !text.contains("injected panic") {
                default(info);
            }
        }));
    });
}
