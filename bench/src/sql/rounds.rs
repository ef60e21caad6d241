//! Interleaving: each case runs in rounds, and every round runs it once on each system (in
//! alternating order), so that Strand, PostgreSQL and the raw disk see the same machine. A
//! virtual disk can have slow spells, seconds to minutes long, in which an fdatasync takes
//! 3-4 ms instead of 0.1-0.2 ms; measured one after the other, whichever system ran during a
//! spell would lose.
//!
//! A case may also judge each round ([`Rounds::run_judged`]): a round whose comparison
//! baseline was unreliable (PostgreSQL in a slow spell while the raw disk beside it was fast)
//! is run again after a pause, up to [`ROUND_REPEATS_MAX`] times; if it never comes out
//! reliable, it is kept and recorded in [`Rounds::spoilt`].

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::Duration;

use crate::progress::Progress;
use crate::sql::workload::{case_key, Outcome, System, Workload};

/// A system under test and the next id it may insert, so that no two runs (and no two systems
/// sharing a table) ever write the same primary key.
pub struct Subject<'a> {
    pub system: &'a dyn System,
    next_id: Cell<i64>,
}

impl<'a> Subject<'a> {
    /// Ids from `first_id` on; systems sharing a table get ranges far apart.
    pub fn new(system: &'a dyn System, first_id: i64) -> Subject<'a> {
        Subject {
            system,
            next_id: Cell::new(first_id),
        }
    }

    /// The first of `count` fresh ids.
    pub fn take_ids(&self, count: usize) -> i64 {
        let first = self.next_id.get();
        self.next_id.set(first + count as i64);
        first
    }
}

/// How often one round may be run again because its baseline was unreliable.
pub const ROUND_REPEATS_MAX: usize = 3;
/// Pause before running a round again (slow spells last seconds to minutes).
const ROUND_REPEAT_PAUSE: Duration = Duration::from_secs(2);

/// A round whose judge found its comparison unreliable.
#[derive(Clone, Debug)]
pub struct SpoiltRound {
    /// The case's key, e.g. `insert_row_c1_durable`.
    pub case: String,
    pub reason: String,
    /// Whether its figures count (no repeat left) or it was run again.
    pub kept: bool,
}

/// One case's total over the rounds on one system.
pub struct CaseResult<'a> {
    pub system: &'a dyn System,
    pub workload: Workload,
    /// [`case_key`] with the system's class.
    pub case: String,
    pub outcome: Outcome,
}

/// How the rounds run: how many, which disk's flushes to count, which cases to run.
pub struct Rounds {
    pub rounds: usize,
    /// The block device whose cache flushes are counted around each run.
    pub device: Option<String>,
    /// Run only cases whose key contains this text.
    pub only: String,
    /// Every round a judge found unreliable, in order.
    pub spoilt: RefCell<Vec<SpoiltRound>>,
    pub progress: Progress,
}

impl Rounds {
    /// Runs `round(subject, round_index)` `self.rounds` times on every subject, alternating
    /// the order, and adds up each subject's outcomes. Nothing when the case (`workload`,
    /// `clients`, `class`) is filtered out.
    pub fn run<'a>(
        &self,
        subjects: &[&Subject<'a>],
        case: (Workload, usize, &str),
        round: impl FnMut(&Subject<'_>, usize) -> anyhow::Result<Outcome>,
    ) -> anyhow::Result<Vec<CaseResult<'a>>> {
        self.run_judged(subjects, case, |_| None, round)
    }

    /// [`Rounds::run`], with `judge` looking at each round's outcomes (in `subjects` order):
    /// a reason from it means the round's comparison cannot be trusted, and the round runs
    /// again (up to [`ROUND_REPEATS_MAX`] times; then it is kept). Recorded in `spoilt`.
    pub fn run_judged<'a>(
        &self,
        subjects: &[&Subject<'a>],
        (workload, clients, class): (Workload, usize, &str),
        judge: impl Fn(&[Outcome]) -> Option<String>,
        mut round: impl FnMut(&Subject<'_>, usize) -> anyhow::Result<Outcome>,
    ) -> anyhow::Result<Vec<CaseResult<'a>>> {
        let case = case_key(workload, clients, class);
        if !case.contains(self.only.as_str()) || subjects.is_empty() {
            return Ok(Vec::new());
        }
        let bar = self.progress.counted(&case, self.rounds as u64);
        let mut totals: Vec<Option<Outcome>> = subjects.iter().map(|_| None).collect();
        for index in 0..self.rounds {
            let mut repeats = 0;
            let outcomes = loop {
                let outcomes = self.one_round(subjects, index, &mut round)?;
                let Some(reason) = judge(&outcomes) else {
                    break outcomes;
                };
                let kept = repeats == ROUND_REPEATS_MAX;
                self.progress
                    .println(format!("{case} round {index}: {reason}; kept: {kept}"));
                self.spoilt.borrow_mut().push(SpoiltRound {
                    case: case.clone(),
                    reason,
                    kept,
                });
                if kept {
                    break outcomes;
                }
                repeats += 1;
                std::thread::sleep(ROUND_REPEAT_PAUSE);
            };
            for (total, outcome) in totals.iter_mut().zip(outcomes) {
                match total {
                    Some(total) => total.absorb(outcome),
                    empty => *empty = Some(outcome),
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let results = subjects
            .iter()
            .zip(totals)
            .filter_map(|(subject, total)| {
                Some(CaseResult {
                    system: subject.system,
                    workload,
                    case: case_key(workload, clients, subject.system.class()),
                    outcome: total?,
                })
            })
            .collect();
        Ok(results)
    }

    /// One round: the workload once on every subject (reversed on odd rounds); the outcomes
    /// in `subjects` order.
    fn one_round(
        &self,
        subjects: &[&Subject<'_>],
        index: usize,
        round: &mut impl FnMut(&Subject<'_>, usize) -> anyhow::Result<Outcome>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let mut order: Vec<usize> = (0..subjects.len()).collect();
        if index % 2 == 1 {
            order.reverse();
        }
        let device = self.device.as_deref();
        let mut outcomes: Vec<Option<Outcome>> = subjects.iter().map(|_| None).collect();
        for i in order {
            let system = subjects[i].system;
            let (flushes, cpu_ns) = (disk_flushes(device), system.cpu_ns());
            let mut outcome = round(subjects[i], index)?;
            outcome.flushes = since(flushes, disk_flushes(device));
            outcome.server_cpu = since(cpu_ns, system.cpu_ns()).map(Duration::from_nanos);
            outcomes[i] = Some(outcome);
        }
        Ok(outcomes.into_iter().flatten().collect())
    }
}

fn since(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// The block device under `dir`, as `/proc/diskstats` names it (the mount's source with the
/// longest mount point holding `dir`).
pub fn block_device(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let source = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let source = fields.next()?;
            let point = fields.next()?.replace("\\040", " ");
            dir.starts_with(&point)
                .then(|| (point.len(), source.to_string()))
        })
        .max_by_key(|(length, _)| *length)?
        .1;
    let resolved = Path::new(&source).canonicalize().ok()?;
    let name = resolved.file_name()?.to_str()?.to_string();
    disk_flushes(Some(&name)).map(|_| name)
}

/// Cache flushes `device` has completed since boot (field 19 of `/proc/diskstats`, Linux 5.5+).
fn disk_flushes(device: Option<&str>) -> Option<u64> {
    let device = device?;
    let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
    stats.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(2) != Some(&device) {
            return None;
        }
        fields.get(18)?.parse().ok()
    })
}
