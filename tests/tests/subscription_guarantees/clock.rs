//! Time-relative subscriptions in the model of `subscription_guarantees` (docs/websocket.md,
//! "Time-relative subscriptions"): a WHERE that compares the TIMESTAMP column `at` (or `at`
//! shifted by an INTERVAL) with `now()` shifted by an INTERVAL, alone or with AND, OR, NOT and
//! the other conditions. Rows enter and leave the result as time passes, without any write.
//!
//! The state at a `_seq` S is the query over the table as of S (every record with `_seq` <= S)
//! with `now()` = the time of S: its milliseconds (`_seq` >> 22, since the Strand epoch), in
//! microseconds. That is defined for every `_seq`, also for a tick (a `_seq` the server takes
//! for time passing, which no record has), so the model checks each message's copy at its
//! `"seq"` ([`History::clock_results`]), and that no record between two consecutive messages
//! changed its own row in the result: the row held for its key (as of the earlier message)
//! must be the result's row for that key at the record (a write that changes what the client
//! holds must send a message; time passing may wait for the next message, a write's or a
//! tick's, within the server's tolerance, so the rest of the result is not compared there).
//!
//! The writers write `at` as an RFC 3339 literal of the test's clock plus a few hundred
//! milliseconds either way (or NULL), so each knows the exact value stored; the model reads it
//! back from the rows as the server renders it. NULL compares as unknown: SQL's three-valued
//! logic (`Cond::eval`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use strand_wire::Row;

use super::{Cond, History, Query, Rng};

/// The share of the random histories' queries that are time-relative.
pub const CLOCK_PERCENT: u64 = 17;
/// The Strand epoch (2024-01-01T00:00:00Z) in Unix milliseconds: a `_seq`'s top 41 bits are
/// milliseconds since it; the 22 bits below are the node and a sequence.
const EPOCH_UNIX_MS: u64 = 1_704_067_200_000;
const SEQ_TIME_SHIFT: u32 = 22;
/// How far from the writer's clock `at` is written (milliseconds, either way).
const AT_SPREAD_MS: i64 = 300;
/// The INTERVALs of the conditions: 100..=600 ms (`at` shifted by up to 200 ms).
const NOW_SHIFT_MS: (i64, i64) = (100, 600);
const ROW_SHIFT_MS: (i64, i64) = (50, 200);

/// The time of a `_seq`: its milliseconds, in microseconds since the Unix epoch.
pub fn time_of(seq: u64) -> i64 {
    ((seq >> SEQ_TIME_SHIFT) + EPOCH_UNIX_MS) as i64 * 1000
}

/// The highest `_seq` of a Unix millisecond (every `_seq` issued in it is at or below it).
pub fn seq_at_ms(unix_ms: u64) -> u64 {
    ((unix_ms - EPOCH_UNIX_MS) << SEQ_TIME_SHIFT) | ((1 << SEQ_TIME_SHIFT) - 1)
}

/// The test's wall clock, in Unix milliseconds and microseconds.
pub fn wall_ms() -> u64 {
    (wall_us() / 1000) as u64
}

pub fn wall_us() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.map_or(0, |d| d.as_micros() as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` of microseconds since the Unix epoch.
pub fn rfc3339(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let (days, second) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        second / 3600,
        second / 60 % 60,
        second % 60,
        micros.rem_euclid(1_000_000)
    )
}

/// Microseconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form the
/// server shows TIMESTAMPs in (docs/sql.md, "Types").
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = bytes.get(range)?;
        digits.iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|(at, s)| bytes.get(*at) != Some(s)) {
        return None;
    }
    let days = days_from_civil(number(0..4)?, number(5..7)?, number(8..10)?);
    let second = number(11..13)? * 3600 + number(14..16)? * 60 + number(17..19)?;
    let mut micros = (days * 86_400 + second) * 1_000_000;
    let rest = &bytes[19..];
    let rest = match rest.strip_prefix(b".") {
        Some(fraction) => {
            let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if count == 0 || count > 6 {
                return None;
            }
            let value = number(20..20 + count)?;
            micros += value * 10i64.pow(6 - count as u32);
            &fraction[count..]
        }
        None => rest,
    };
    (rest == b"Z").then_some(micros)
}

/// A row's `at` in microseconds: `None` for NULL (or a row without it).
pub fn at_of(row: &Row) -> Result<Option<i64>, String> {
    match row.get("at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => match parse_rfc3339(text) {
            Some(micros) => Ok(Some(micros)),
            None => Err(format!("at = {text:?} is not RFC 3339 UTC")),
        },
        Some(other) => Err(format!("at = {other} is not a TIMESTAMP's JSON")),
    }
}

/// A value for a writer to store in `at`: NULL now and then, else the test's clock plus up to
/// [`AT_SPREAD_MS`] either way, to the millisecond or (half the time) to the microsecond.
pub fn random_at(rng: &mut Rng) -> Option<i64> {
    if rng.percent(15) {
        return None;
    }
    let offset = rng.range(-AT_SPREAD_MS * 1000, AT_SPREAD_MS * 1000);
    let at = wall_us() + offset;
    Some(if rng.percent(50) { at - at % 1000 } else { at })
}

/// `at`'s SQL literal (a string literal becomes a TIMESTAMP where one is written).
pub fn at_sql(at: Option<i64>) -> String {
    match at {
        None => "NULL".into(),
        Some(micros) => format!("'{}'", rfc3339(micros)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// The same comparison with its sides swapped.
    fn flipped(self) -> Op {
        match self {
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
        }
    }

    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
        }
    }
}

/// How an INTERVAL of whole milliseconds is spelled.
#[derive(Clone, Copy, Debug)]
enum Unit {
    Milliseconds,
    Seconds,
    Microseconds,
}

/// `at [± INTERVAL r] <op> now() [± INTERVAL n]` (written the other way round when
/// `now_first`): true when `at + r <op> now + n`; unknown when `at` is NULL.
#[derive(Clone, Debug)]
pub struct ClockCmp {
    op: Op,
    /// Milliseconds added to `at` and to `now()` (negative: subtracted).
    row_shift: i64,
    now_shift: i64,
    now_first: bool,
    now: &'static str,
    unit: Unit,
}

impl ClockCmp {
    /// Mostly `at` against `now()` shifted by 100..600 ms (a recent window, `at > now() -
    /// INTERVAL '300 milliseconds'`; things due, `at <= now()`), now and then with `at`
    /// shifted instead or too, or written `now() ... at`.
    pub fn random(rng: &mut Rng) -> ClockCmp {
        let shift = |rng: &mut Rng, (lo, hi): (i64, i64)| {
            let magnitude = rng.range(lo, hi);
            if rng.percent(50) {
                magnitude
            } else {
                -magnitude
            }
        };
        let op = rng.pick(&[Op::Gt, Op::Ge, Op::Lt, Op::Le]);
        let now_shift = match rng.percent(25) {
            true => 0,
            false => shift(rng, NOW_SHIFT_MS),
        };
        let row_shift = match rng.percent(15) {
            true => shift(rng, ROW_SHIFT_MS),
            false => 0,
        };
        ClockCmp {
            op,
            row_shift,
            now_shift,
            now_first: rng.percent(20),
            now: rng.pick(&["now()", "now()", "NOW()", "CURRENT_TIMESTAMP"]),
            unit: rng.pick(&[
                Unit::Milliseconds,
                Unit::Milliseconds,
                Unit::Seconds,
                Unit::Microseconds,
            ]),
        }
    }

    /// A recent window, `at > now() - INTERVAL 'w'`: rows leave as they age.
    fn recent(rng: &mut Rng) -> ClockCmp {
        let mut cmp = ClockCmp::random(rng);
        (cmp.op, cmp.now_shift) = (Op::Gt, -rng.range(NOW_SHIFT_MS.0, NOW_SHIFT_MS.1));
        cmp
    }

    /// Due, `at <= now() [+ INTERVAL 'd']`: rows enter when their time comes.
    fn due(rng: &mut Rng) -> ClockCmp {
        let mut cmp = ClockCmp::random(rng);
        cmp.op = Op::Le;
        cmp.now_shift = rng.range(0, 100);
        cmp
    }

    fn interval(&self, ms: i64) -> String {
        let sign = if ms < 0 { '-' } else { '+' };
        let ms = ms.abs();
        let text = match self.unit {
            Unit::Milliseconds => format!("{ms} milliseconds"),
            Unit::Seconds => format!("{}.{:03} seconds", ms / 1000, ms % 1000),
            Unit::Microseconds => format!("{} microseconds", ms * 1000),
        };
        format!(" {sign} INTERVAL '{text}'")
    }

    pub fn sql(&self) -> String {
        let shifted = |base: &str, ms: i64| match ms {
            0 => base.to_owned(),
            ms => format!("{base}{}", self.interval(ms)),
        };
        let row = shifted("at", self.row_shift);
        let now = shifted(self.now, self.now_shift);
        match self.now_first {
            false => format!("{row} {} {now}", self.op.sql()),
            true => format!("{now} {} {row}", self.op.flipped().sql()),
        }
    }

    /// The comparison at `now` (microseconds): `None` when `at` is NULL.
    pub fn eval(&self, row: &Row, now: i64) -> Option<bool> {
        let at = at_of(row).ok().flatten()?;
        let left = at + self.row_shift * 1000;
        Some(self.op.holds(left, now + self.now_shift * 1000))
    }

    /// The instant (microseconds) at which the comparison flips for `row`, if `at` is set.
    pub fn instant(&self, row: &Row) -> Option<i64> {
        let at = at_of(row).ok().flatten()?;
        Some(at + (self.row_shift - self.now_shift) * 1000)
    }
}

impl Cond {
    /// A time-relative condition: a comparison with `now()` alone (half the time), or with
    /// another one (a band: rows enter, then leave), `at IS NULL`, or a random condition,
    /// combined with AND, OR and NOT.
    pub fn random_clock(rng: &mut Rng) -> Cond {
        let clock = |rng: &mut Rng| Cond::Clock(ClockCmp::random(rng));
        let cond = match rng.below(20) {
            0..=7 => clock(rng),
            8..=10 => {
                let band = Cond::And(
                    Box::new(Cond::Clock(ClockCmp::due(rng))),
                    Box::new(Cond::Clock(ClockCmp::recent(rng))),
                );
                match rng.percent(25) {
                    true => Cond::Not(Box::new(band)),
                    false => band,
                }
            }
            11..=13 => Cond::And(Box::new(clock(rng)), Box::new(Cond::random(rng, 1))),
            14 | 15 => Cond::Or(Box::new(clock(rng)), Box::new(Cond::random(rng, 1))),
            16 => Cond::Or(Box::new(Cond::AtIsNull(true)), Box::new(clock(rng))),
            17 => Cond::And(Box::new(Cond::AtIsNull(false)), Box::new(clock(rng))),
            18 => Cond::Or(Box::new(clock(rng)), Box::new(clock(rng))),
            _ => Cond::Not(Box::new(clock(rng))),
        };
        match cond {
            // Either side first.
            Cond::And(a, b) if rng.percent(50) => Cond::And(b, a),
            Cond::Or(a, b) if rng.percent(50) => Cond::Or(b, a),
            cond => cond,
        }
    }
}

impl Query {
    /// The first millisecond (Unix) from `from` on after which the query's result over
    /// `table` no longer changes by time: the latest millisecond whose result differs from the
    /// one before, among those around the rows' instants (between them nothing flips), or
    /// `from`.
    pub fn steady_ms(&self, table: &BTreeMap<i64, Row>, from: u64) -> u64 {
        let Some(filter) = &self.filter else {
            return from;
        };
        let mut instants = Vec::new();
        for row in table.values() {
            filter.instants(row, &mut instants);
        }
        let mut candidates: Vec<u64> = instants
            .into_iter()
            .flat_map(|instant| {
                let ms = instant.div_euclid(1000);
                [ms, ms + 1, ms + 2]
            })
            .filter_map(|ms| u64::try_from(ms).ok())
            .filter(|ms| *ms > from)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let result = |ms: u64| self.result(table, 0, seq_at_ms(ms));
        candidates
            .into_iter()
            .rev()
            .find(|ms| result(*ms) != result(ms - 1))
            .unwrap_or(from)
    }
}

/// What the model says of a time-relative subscriber's messages from `base` on.
pub struct ClockResults {
    /// The result at `base`.
    pub initial: BTreeMap<i64, Row>,
    /// For each message's `"seq"`: the key of the record with that `_seq` (`None`: a tick),
    /// and the result at it.
    pub at: Vec<(Option<i64>, BTreeMap<i64, Row>)>,
    /// A record strictly between two messages (or after `base` and before the first) whose
    /// key's row in the result at it differs from the one in the result at the earlier
    /// message: `(earlier, record, key)`; a message for it is missing.
    pub unsent: Option<(u64, u64, i64)>,
}

impl History {
    /// The result of `query` (made when the table had `added` added columns) at `base` and at
    /// each of `seqs` (increasing, above `base`), and the first record between them that
    /// changed its key's row in the result without a message.
    pub fn clock_results(
        &self,
        query: &Query,
        added: usize,
        base: u64,
        seqs: &[u64],
    ) -> ClockResults {
        let mut state = self.state_at(base);
        let initial = query.result(&state, added, base);
        let to = seqs.last().copied().unwrap_or(base);
        let mut events = self.events_between(base, to).into_iter().peekable();
        let (mut earlier, mut current) = (base, initial.clone());
        let mut at = Vec::new();
        let mut unsent = None;
        for &seq in seqs {
            while let Some((record, key, row)) = events.next_if(|(record, _, _)| *record < seq) {
                match row {
                    Some(row) => state.insert(key, row.clone()),
                    None => state.remove(&key),
                };
                let alone = state.get_key_value(&key).map(|(k, r)| (*k, r.clone()));
                let now = query.result(&alone.into_iter().collect(), added, record);
                if unsent.is_none() && now.get(&key) != current.get(&key) {
                    unsent = Some((earlier, record, key));
                }
            }
            let mut written = None;
            if let Some((_, key, row)) = events.next_if(|(record, _, _)| *record == seq) {
                match row {
                    Some(row) => state.insert(key, row.clone()),
                    None => state.remove(&key),
                };
                written = Some(key);
            }
            current = query.result(&state, added, seq);
            earlier = seq;
            at.push((written, current.clone()));
        }
        ClockResults {
            initial,
            at,
            unsent,
        }
    }
}

impl History {
    /// For a failure report: the versions of `keys` with `_seq` in `(from, to]`, and the last
    /// one at or below `from`.
    pub fn versions_of(&self, keys: &[i64], from: u64, to: u64) -> String {
        let mut lines = Vec::new();
        for key in keys {
            let Some(versions) = self.versions.get(key) else {
                continue;
            };
            let start = versions.partition_point(|(seq, _)| *seq <= from);
            let shown = &versions[start.saturating_sub(1)..];
            for (seq, row) in shown.iter().take_while(|(seq, _)| *seq <= to) {
                let row = row.as_ref().map(|r| Value::from(r.clone()));
                lines.push(format!(
                    "    id {key} at _seq {seq} (ms {}): {}",
                    time_of(*seq) / 1000,
                    row.map_or("deleted".into(), |r| r.to_string())
                ));
            }
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let micros = 1_767_225_599_123_456; // 2025-12-31T23:59:59.123456Z
        assert_eq!(rfc3339(micros), "2025-12-31T23:59:59.123456Z");
        assert_eq!(parse_rfc3339("2025-12-31T23:59:59.123456Z"), Some(micros));
        assert_eq!(
            parse_rfc3339("2025-12-31T23:59:59.123Z"),
            Some(micros - 456)
        );
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00Z"),
            Some(EPOCH_UNIX_MS as i64 * 1000)
        );
        assert_eq!(
            time_of(seq_at_ms(EPOCH_UNIX_MS + 7)),
            (EPOCH_UNIX_MS as i64 + 7) * 1000
        );
    }
}
