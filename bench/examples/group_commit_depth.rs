//! Would overlapping commit rounds raise durable throughput on this disk? A model of group
//! commit on a real file, nothing of Strand in it: `clients` closed-loop threads each add a
//! 128-byte record to the open round and wait until a round containing it is durable, then
//! spin for `transit_us` (the request's way back to the client and the next one's way in) and
//! go again. A waiter whose round is open leads it when no round is being written and fewer
//! than `depth` rounds are in flight: it writes the round's records with one `pwrite`, lets
//! the next leader in, `fdatasync`s, and completes its round after the one before it
//! (completion stays in round order, as publishing must). `depth` 1 is Strand's commit queue
//! today; `depth` 2 lets round N+1 be written and synced while N's `fdatasync` runs.
//!
//! BENCHMARKS.md cites its results (the INSERT analysis). Run:
//! `cargo run --release -p strand-bench --example group_commit_depth -- <depth> <transit_us>
//! <clients> [seconds] [dir]`, e.g. `-- 1 0 16` and `-- 2 0 16`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

/// Bytes of one record; rounds append their records back to back.
const RECORD_BYTES: u64 = 128;
/// The file is written with zeros to this size first, so syncs never allocate blocks (as
/// Strand's segments are grown with written zeros).
const FILE_BYTES: u64 = 256 << 20;

struct Rounds {
    offset: u64,
    open: u64,
    completed: u64,
    writing: bool,
    in_flight: u32,
    pending: u64,
    led: u64,
}

struct Model {
    file: File,
    depth: u32,
    rounds: Mutex<Rounds>,
    changed: Condvar,
}

impl Model {
    fn lock(&self) -> anyhow::Result<MutexGuard<'_, Rounds>> {
        self.rounds.lock().map_err(|_| anyhow!("a client panicked"))
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Rounds>) -> anyhow::Result<MutexGuard<'a, Rounds>> {
        self.changed
            .wait(guard)
            .map_err(|_| anyhow!("a client panicked"))
    }

    /// One record: join the open round and return once a round holding it completed.
    fn commit_one(&self) -> anyhow::Result<()> {
        let mut rounds = self.lock()?;
        let round = rounds.open;
        rounds.pending += 1;
        while rounds.completed < round {
            let may_lead = rounds.open == round && !rounds.writing && rounds.in_flight < self.depth;
            if !may_lead {
                rounds = self.wait(rounds)?;
                continue;
            }
            rounds.open += 1;
            rounds.writing = true;
            rounds.in_flight += 1;
            let records = std::mem::take(&mut rounds.pending);
            let offset = rounds.offset;
            rounds.offset += records * RECORD_BYTES;
            if rounds.offset > FILE_BYTES {
                return Err(anyhow!("file full: run shorter"));
            }
            drop(rounds);
            let frames = vec![b'x'; (records * RECORD_BYTES) as usize];
            self.file.write_all_at(&frames, offset)?;
            rounds = self.lock()?;
            rounds.writing = false;
            self.changed.notify_all();
            drop(rounds);
            self.file.sync_data()?;
            rounds = self.lock()?;
            while rounds.completed != round - 1 {
                rounds = self.wait(rounds)?;
            }
            rounds.completed = round;
            rounds.in_flight -= 1;
            rounds.led += 1;
            self.changed.notify_all();
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let depth: u32 = arg(0, "1").parse().context("depth")?;
    let transit = Duration::from_micros(arg(1, "0").parse().context("transit_us")?);
    let clients: usize = arg(2, "16").parse().context("clients")?;
    let seconds: f64 = arg(3, "3").parse().context("seconds")?;
    let dir = PathBuf::from(arg(4, &std::env::temp_dir().to_string_lossy()));
    if depth == 0 || clients == 0 {
        return Err(anyhow!("depth and clients must be at least 1"));
    }

    let scratch = tempfile::NamedTempFile::new_in(&dir).context("scratch file")?;
    let mut file = OpenOptions::new().write(true).open(scratch.path())?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES / zeros.len() as u64 {
        file.write_all(&zeros)?;
    }
    file.sync_all()?;
    let model = Arc::new(Model {
        file,
        depth,
        rounds: Mutex::new(Rounds {
            offset: 0,
            open: 1,
            completed: 0,
            writing: false,
            in_flight: 0,
            pending: 0,
            led: 0,
        }),
        changed: Condvar::new(),
    });

    let started = Instant::now();
    let stop = started + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut committed = 0;
                while Instant::now() < stop {
                    model.commit_one()?;
                    committed += 1;
                    let spin = Instant::now();
                    while spin.elapsed() < transit {
                        std::hint::spin_loop();
                    }
                }
                Ok(committed)
            })
        })
        .collect();
    let mut committed = 0;
    for thread in threads {
        committed += thread.join().map_err(|_| anyhow!("a client panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let led = model.lock()?.led;
    println!(
        "depth {depth}, transit {} us, {clients} clients: {:.0} commits/s, {:.0} rounds/s, \
         {:.1} records per round",
        transit.as_micros(),
        committed as f64 / elapsed,
        led as f64 / elapsed,
        committed as f64 / led.max(1) as f64,
    );
    Ok(())
}
