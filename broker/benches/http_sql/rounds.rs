//! Interleaving: each workload runs in rounds, and every round runs it once on each system
//! (in alternating order), so that Strand and PostgreSQL see the same machine. The virtual disk
//! here has slow spells, seconds to minutes long, in which an fdatasync takes 3-4 ms instead of
//! 0.1-0.2 ms; measured one after the other, whichever system ran during a spell would lose.

use std::cell::Cell;
use std::time::Duration;

use crate::report::disk_flushes;
use crate::workload::{case_key, Measurement, Outcome, System, Workload};

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

/// How the rounds run: how many, which disk's flushes to count, which cases to run.
pub struct Rounds<'d> {
    pub rounds: usize,
    /// The block device whose cache flushes are counted around each run.
    pub device: Option<&'d str>,
    /// Run only cases whose key contains this text (`STRAND_BENCH_ONLY`).
    pub only: String,
}

impl Rounds<'_> {
    /// Run `round(subject, round_index)` `self.rounds` times on every subject, alternating the
    /// order, and add up each subject's outcomes into one measurement. Nothing when the case
    /// (`workload`, `clients`, `durable`) is filtered out.
    pub fn run(
        &self,
        subjects: &[&Subject<'_>],
        (workload, clients, durable): (Workload, usize, bool),
        mut round: impl FnMut(&Subject<'_>, usize) -> anyhow::Result<Outcome>,
    ) -> anyhow::Result<Vec<Measurement>> {
        if !case_key(workload, clients, durable).contains(self.only.as_str()) {
            return Ok(Vec::new());
        }
        let mut totals: Vec<Option<Outcome>> = subjects.iter().map(|_| None).collect();
        for index in 0..self.rounds {
            let mut order: Vec<usize> = (0..subjects.len()).collect();
            if index % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let system = subjects[i].system;
                let (flushes, cpu_ns) = (disk_flushes(self.device), system.cpu_ns());
                let mut outcome = round(subjects[i], index)?;
                outcome.flushes = since(flushes, disk_flushes(self.device));
                outcome.server_cpu = since(cpu_ns, system.cpu_ns()).map(Duration::from_nanos);
                match &mut totals[i] {
                    Some(total) => total.absorb(outcome),
                    empty => *empty = Some(outcome),
                }
            }
        }
        let measurements = subjects
            .iter()
            .zip(totals)
            .filter_map(|(subject, total)| Some(total?.measurement(subject.system, workload)))
            .collect();
        Ok(measurements)
    }
}

fn since(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}
