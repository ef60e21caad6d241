//! What the topics workloads (`produce`, `consume`, `e2e`) share across systems: the QUIC
//! client side of Strand (`strand.rs`), the driver that runs producer and consumer tasks for a
//! warm-up and a counted window (`driver.rs`), the CPU use of the processes involved
//! (`cpu.rs`), Redis Streams' side (`redis.rs`; JetStream's is `peers/jetstream.rs`), and the
//! record values every system is sent.

pub mod cpu;
pub mod driver;
pub mod redis;
pub mod strand;

/// Records and bytes a consumer asks for per fetch (Redis: `COUNT` of one `XRANGE`).
pub const FETCH_RECORDS_MAX: u32 = 10_000;
pub const FETCH_BYTES_MAX: u32 = 4 << 20;
/// Value size of the produce-to-consume workload.
pub const E2E_VALUE_BYTES: usize = 100;
/// Records per produce request of a consume workload's fill.
pub const FILL_BATCH: usize = 1000;

/// `count` values of `bytes` bytes for `producer`: varied (not all zeros, so nothing
/// compresses them away), different per producer and per record. They are slices of one
/// buffer, so making a thousand 1 KiB values costs one pass over ~1 KiB.
pub fn values(bytes: usize, producer: usize, count: usize) -> Vec<bytes::Bytes> {
    const SHIFTS: usize = 256;
    let base: bytes::Bytes = (0..bytes + SHIFTS)
        .map(|i| (i.wrapping_mul(31) ^ producer.wrapping_mul(7)) as u8)
        .collect::<Vec<u8>>()
        .into();
    (0..count)
        .map(|n| base.slice(n % SHIFTS..n % SHIFTS + bytes))
        .collect()
}

/// A produce-to-consume record's value: its index and its due time (ns since the schedule's
/// start) in the first 16 bytes, so the consumer measures from the due time and counts
/// missing and duplicate records.
pub fn stamped_value(bytes: usize, index: u64, due_ns: u64) -> Vec<u8> {
    let mut value = vec![0x5a; bytes.max(16)];
    value[..8].copy_from_slice(&index.to_le_bytes());
    value[8..16].copy_from_slice(&due_ns.to_le_bytes());
    value
}

/// `(index, due_ns)` of a [`stamped_value`].
pub fn stamp_of(value: &[u8]) -> Option<(u64, u64)> {
    let index: [u8; 8] = value.get(..8)?.try_into().ok()?;
    let due: [u8; 8] = value.get(8..16)?.try_into().ok()?;
    Some((u64::from_le_bytes(index), u64::from_le_bytes(due)))
}

/// How the case ids of every system read: `1024B_p4`, `100B_c8`.
pub fn case_id(value_bytes: usize, clients: usize, kind: char) -> String {
    format!("{value_bytes}B_{kind}{clients}")
}

/// One produce throughput case: `producers` tasks, one connection each, one request of
/// `batch` records of `value_bytes` in flight each, producer `i` writing partition
/// `i % partitions`; records acknowledged in `measure` after `warm_up`.
#[derive(Clone, Copy, Debug)]
pub struct ProduceCase {
    pub value_bytes: usize,
    pub producers: usize,
    pub batch: usize,
    pub partitions: u32,
    pub warm_up: std::time::Duration,
    pub measure: std::time::Duration,
    /// How far the window may grow to span two rounds of requests (see
    /// [`driver::drive_producers`]).
    pub window_max: std::time::Duration,
}

impl ProduceCase {
    /// The counted window and how far it may grow.
    pub fn window(&self) -> (std::time::Duration, std::time::Duration) {
        (self.measure, self.window_max)
    }
}

/// One consume throughput case over a filled topic of `partitions` partitions holding
/// `records_per_partition` records each: one consumer reads the partitions one after the
/// other; several share them (consumer `k` reads partitions `k`, `k + consumers`, ...), each
/// on its own connection.
#[derive(Clone, Copy, Debug)]
pub struct ConsumeCase {
    pub value_bytes: usize,
    pub partitions: u32,
    pub records_per_partition: u64,
    pub consumers: usize,
}

impl ConsumeCase {
    /// The partitions consumer `k` reads.
    pub fn partitions_of(&self, k: usize) -> impl Iterator<Item = u32> {
        let step = self.consumers.max(1);
        (0..self.partitions).filter(move |p| *p as usize % step == k)
    }

    pub fn records(&self) -> u64 {
        self.records_per_partition * u64::from(self.partitions)
    }
}

/// How Strand's produce-to-consume consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E2eConsumer {
    /// One `tail` stream: the server pushes each record as it commits (the streaming
    /// consumer, as JetStream's pull stream is).
    Tail,
    /// `fetch` long polls, one stream each, after the last `_seq` read (as a consumer group
    /// member reads).
    Fetch,
}

impl E2eConsumer {
    pub fn name(self) -> &'static str {
        match self {
            E2eConsumer::Tail => "tail",
            E2eConsumer::Fetch => "fetch",
        }
    }
}

/// One produce-to-consume case: a record per produce due at `rate` per second for
/// `warm_up + measure`, latencies of the records due after `warm_up`.
#[derive(Clone, Copy, Debug)]
pub struct E2eCase {
    pub rate: f64,
    pub warm_up: std::time::Duration,
    pub measure: std::time::Duration,
}

impl E2eCase {
    pub fn total(&self) -> u64 {
        (self.rate * (self.warm_up + self.measure).as_secs_f64()).round() as u64
    }

    /// When the consumer stops waiting for missing records: the last due time plus a grace.
    pub fn receive_deadline(&self, base: std::time::Instant) -> std::time::Instant {
        base + self.warm_up + self.measure + E2E_GRACE
    }
}

/// How long after the last send a produce-to-consume consumer waits for missing records.
pub const E2E_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The server a case runs on: a fresh one per case in a full run (a case must not inherit the
/// page cache and writeback of the previous ones: measured on a 2-vCPU VM, Strand's 64-producer
/// 1 KiB case run after three others spent 39 % of the CPU in the kernel copying into new
/// page-cache pages, 5 % when run first, at half the rate), one per configuration in a quick
/// run (a smoke run checks behaviour, and starting servers would take most of it).
pub fn server_for_case<T>(
    slot: &mut Option<T>,
    quick: bool,
    start: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<&T> {
    if !quick || slot.is_none() {
        // The previous server stops before the next one starts.
        *slot = None;
        *slot = Some(start()?);
    }
    Ok(slot.as_ref().expect("the slot was just filled"))
}
