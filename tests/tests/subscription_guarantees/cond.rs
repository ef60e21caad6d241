//! The WHERE conditions of `subscription_guarantees`' queries: random, written as SQL, and
//! evaluated in Rust on a full row at a time (for `now()`: `clock.rs`).

use serde_json::Value;
use strand_wire::Row;

use super::clock::{at_of, ClockCmp};
use super::{int, Rng, KEYS, QTY_MAX};

/// A WHERE condition over `(id, grp, qty, at)`. `grp` and `qty` are never NULL; `at` may be,
/// so a comparison with `now()` may be unknown, and AND, OR and NOT follow SQL's three-valued
/// logic (a row matches when the condition is true).
#[derive(Clone, Debug)]
pub enum Cond {
    QtyGt(i64),
    QtyLe(i64),
    QtyBetween(i64, i64),
    GrpEq(&'static str),
    GrpNe(&'static str),
    GrpIn(Vec<&'static str>),
    IdBetween(i64, i64),
    IdIn(Vec<i64>),
    /// `at IS NULL` (true) or `at IS NOT NULL` (false).
    AtIsNull(bool),
    /// `at` against `now()` (`clock.rs`).
    Clock(ClockCmp),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    pub fn random(rng: &mut Rng, depth: u32) -> Cond {
        if depth > 0 {
            let sub = |rng: &mut Rng| Box::new(Cond::random(rng, depth - 1));
            match rng.below(10) {
                0 | 1 => return Cond::And(sub(rng), sub(rng)),
                2 => return Cond::Or(sub(rng), sub(rng)),
                3 => return Cond::Not(sub(rng)),
                _ => {}
            }
        }
        let ordered = |rng: &mut Rng, lo: i64, hi: i64| {
            let (a, b) = (rng.range(lo, hi), rng.range(lo, hi));
            (a.min(b), a.max(b))
        };
        match rng.below(8) {
            0 => Cond::QtyGt(rng.range(0, QTY_MAX)),
            1 => Cond::QtyLe(rng.range(0, QTY_MAX)),
            2 => {
                let (lo, hi) = ordered(rng, 0, QTY_MAX);
                Cond::QtyBetween(lo, hi)
            }
            3 => Cond::GrpEq(rng.group()),
            4 => Cond::GrpNe(rng.group()),
            5 => Cond::GrpIn((0..2).map(|_| rng.group()).collect()),
            6 => {
                let (lo, hi) = ordered(rng, 1, KEYS);
                Cond::IdBetween(lo, hi)
            }
            _ => Cond::IdIn((0..1 + rng.below(8)).map(|_| rng.key()).collect()),
        }
    }

    pub fn sql(&self) -> String {
        let quoted = |groups: &[&str]| {
            let list: Vec<String> = groups.iter().map(|g| format!("'{g}'")).collect();
            list.join(", ")
        };
        match self {
            Cond::QtyGt(n) => format!("qty > {n}"),
            Cond::QtyLe(n) => format!("qty <= {n}"),
            Cond::QtyBetween(lo, hi) => format!("qty BETWEEN {lo} AND {hi}"),
            Cond::GrpEq(g) => format!("grp = '{g}'"),
            Cond::GrpNe(g) => format!("grp <> '{g}'"),
            Cond::GrpIn(groups) => format!("grp IN ({})", quoted(groups)),
            Cond::IdBetween(lo, hi) => format!("id BETWEEN {lo} AND {hi}"),
            Cond::IdIn(ids) => {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!("id IN ({})", list.join(", "))
            }
            Cond::AtIsNull(true) => "at IS NULL".into(),
            Cond::AtIsNull(false) => "at IS NOT NULL".into(),
            Cond::Clock(cmp) => cmp.sql(),
            Cond::Not(a) => format!("NOT ({})", a.sql()),
            Cond::And(a, b) => format!("({}) AND ({})", a.sql(), b.sql()),
            Cond::Or(a, b) => format!("({}) OR ({})", a.sql(), b.sql()),
        }
    }

    /// Whether the condition holds for a full row (`id`, `grp`, `qty`, `at`) when `now()` is
    /// `now` (microseconds since the Unix epoch).
    pub fn eval(&self, row: &Row, now: i64) -> bool {
        self.truth(row, now) == Some(true)
    }

    /// The condition's truth value: `None` is unknown (NULL).
    fn truth(&self, row: &Row, now: i64) -> Option<bool> {
        let qty = || int(row, "qty");
        let grp = || row.get("grp").and_then(Value::as_str).unwrap_or_default();
        Some(match self {
            Cond::QtyGt(n) => qty() > *n,
            Cond::QtyLe(n) => qty() <= *n,
            Cond::QtyBetween(lo, hi) => (*lo..=*hi).contains(&qty()),
            Cond::GrpEq(g) => grp() == *g,
            Cond::GrpNe(g) => grp() != *g,
            Cond::GrpIn(groups) => groups.contains(&grp()),
            Cond::IdBetween(lo, hi) => (*lo..=*hi).contains(&int(row, "id")),
            Cond::IdIn(ids) => ids.contains(&int(row, "id")),
            Cond::AtIsNull(null) => at_of(row).ok()?.is_none() == *null,
            Cond::Clock(cmp) => cmp.eval(row, now)?,
            Cond::Not(a) => !a.truth(row, now)?,
            Cond::And(a, b) => match (a.truth(row, now), b.truth(row, now)) {
                (Some(false), _) | (_, Some(false)) => false,
                (Some(true), Some(true)) => true,
                _ => return None,
            },
            Cond::Or(a, b) => match (a.truth(row, now), b.truth(row, now)) {
                (Some(true), _) | (_, Some(true)) => true,
                (Some(false), Some(false)) => false,
                _ => return None,
            },
        })
    }

    /// Whether it compares with `now()`.
    pub fn reads_clock(&self) -> bool {
        match self {
            Cond::Clock(_) => true,
            Cond::Not(a) => a.reads_clock(),
            Cond::And(a, b) | Cond::Or(a, b) => a.reads_clock() || b.reads_clock(),
            _ => false,
        }
    }

    /// Adds to `out` the instants (microseconds) at which the row's comparisons with `now()`
    /// flip.
    pub fn instants(&self, row: &Row, out: &mut Vec<i64>) {
        match self {
            Cond::Clock(cmp) => out.extend(cmp.instant(row)),
            Cond::Not(a) => a.instants(row, out),
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.instants(row, out);
                b.instants(row, out);
            }
            _ => {}
        }
    }
}
