//! The writers of `subscription_guarantees` and their own record of what they wrote, which is
//! the reference the observer's history is checked against (so the server's change feed is
//! not the only witness of what happened).
//!
//! Each writer owns a set of keys that no one else writes, so it knows the state of its rows
//! and can say in advance what each statement must do: which rows an INSERT adds (or that it
//! must fail with `duplicate_key`), which rows an UPDATE or DELETE by key or by filter
//! touches. Every request is the statement followed by a SELECT of the writer's rows, so the
//! answer shows the rows as the statement left them, with the `_seq` of each new version: the
//! writer checks them against its expectation and records the effects (new versions with
//! their acknowledged `_seq`, deletes in request order). `at` (TIMESTAMP) is written as a
//! literal of the writer's clock plus a few hundred milliseconds either way (`clock.rs`), so
//! the writer knows its exact value too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};
use strand_tests::try_sql;
use strand_wire::Row;

use crate::model::{
    at_of, at_sql, key_of, random_at, seq_of, History, Rng, TableName, KEYS, QTY_MAX,
};
use crate::{lock, Shared};

/// Which keys a writer owns.
#[derive(Clone, Copy, Debug)]
pub enum Keys {
    /// Keys 1..=KEYS with `id % modulus = residue`.
    Residue {
        modulus: i64,
        residue: i64,
    },
    One(i64),
}

impl Keys {
    pub fn owns(self, key: i64) -> bool {
        match self {
            Keys::Residue { modulus, residue } => {
                (1..=KEYS).contains(&key) && key % modulus == residue
            }
            Keys::One(one) => key == one,
        }
    }

    fn list(self) -> Vec<i64> {
        (1..=KEYS)
            .chain([self.one()])
            .filter(|&k| self.owns(k))
            .collect()
    }

    fn one(self) -> i64 {
        match self {
            Keys::One(one) => one,
            Keys::Residue { .. } => 0,
        }
    }

    /// The SQL condition selecting exactly these keys.
    fn sql(self) -> String {
        match self {
            Keys::Residue { modulus, residue } => {
                format!("id % {modulus} = {residue} AND id BETWEEN 1 AND {KEYS}")
            }
            Keys::One(one) => format!("id = {one}"),
        }
    }
}

/// What one acknowledged request did: per key, the new version (with its `_seq`) or `None`
/// for a delete.
pub struct Request {
    pub generation: usize,
    pub sql: String,
    pub effects: Vec<(i64, Option<Row>)>,
}

/// A writer's record, kept for the cross-check at the end.
pub struct WriterLog {
    pub name: String,
    pub keys: Keys,
    pub requests: Vec<Request>,
}

/// A row's `(grp, qty, at)` (`at` in microseconds, `None`: NULL).
type Fields = (String, i64, Option<i64>);

/// A statement and what it must do to the writer's rows (`(grp, qty, at)` by key).
struct Planned {
    sql: String,
    /// `Err(())`: it must fail with `duplicate_key` and change nothing.
    after: Result<BTreeMap<i64, Fields>, ()>,
    /// Keys that get a new version.
    put: BTreeSet<i64>,
    deleted: BTreeSet<i64>,
}

pub struct Writer {
    pub log: WriterLog,
    rows: BTreeMap<i64, Row>,
    generation: usize,
    /// The highest `_seq` this writer was acknowledged.
    last_seq: u64,
    rng: Rng,
}

fn fields(row: &Row) -> Fields {
    let grp = row.get("grp").and_then(Value::as_str).unwrap_or_default();
    let qty = row.get("qty").and_then(Value::as_i64).unwrap_or(i64::MIN);
    // A value the model cannot read differs from every value written.
    let at = at_of(row).unwrap_or(Some(i64::MIN));
    (grp.to_owned(), qty, at)
}

impl Writer {
    pub fn new(name: String, keys: Keys, rng: Rng) -> Writer {
        Writer {
            log: WriterLog {
                name,
                keys,
                requests: Vec::new(),
            },
            rows: BTreeMap::new(),
            generation: 0,
            last_seq: 0,
            rng,
        }
    }

    fn fail(&self, shared: &Shared, what: &str) -> ! {
        panic!("{}: {what}\n  seed {}", self.log.name, shared.seed)
    }

    /// One random statement on the writer's keys, checked and recorded. The caller holds
    /// `shared.writes` for reading (no DROP TABLE meanwhile).
    pub fn step(&mut self, shared: &Shared) {
        self.sync_generation(shared);
        let planned = self.random_statement();
        self.run(shared, planned);
    }

    /// Write the writer's one key (insert, or bump `qty`); its new `_seq`.
    pub fn touch(&mut self, shared: &Shared) -> u64 {
        let key = self.log.keys.one();
        self.sync_generation(shared);
        let planned = match self.rows.contains_key(&key) {
            true => self.bulk_update(
                format!("UPDATE app.items SET qty = qty + 1 WHERE id = {key}"),
                |_, _| true,
            ),
            false => self.insert(&[(key, "z".to_owned(), 0, None)]),
        };
        self.run(shared, planned);
        seq_of(&self.rows[&key]).unwrap_or_else(|e| self.fail(shared, &e))
    }

    /// A new table generation (DROP TABLE and CREATE TABLE again) starts empty.
    fn sync_generation(&mut self, shared: &Shared) {
        let current = lock(shared.table(TableName::Items)).current();
        if current != self.generation {
            self.rows.clear();
            self.generation = current;
        }
    }

    fn random_statement(&mut self) -> Planned {
        let keys = self.log.keys.list();
        let key = self.rng.pick(&keys);
        let values = |rng: &mut Rng, key: i64| {
            let (grp, qty) = (rng.group().to_owned(), rng.range(0, QTY_MAX));
            (key, grp, qty, random_at(rng))
        };
        match self.rng.below(100) {
            0..=39 => {
                let row = values(&mut self.rng, key);
                self.insert(&[row])
            }
            40..=44 => {
                let mut chosen = BTreeSet::new();
                for _ in 0..2 + self.rng.below(3) {
                    chosen.insert(self.rng.pick(&keys));
                }
                let rows: Vec<_> = chosen
                    .into_iter()
                    .map(|k| values(&mut self.rng, k))
                    .collect();
                self.insert(&rows)
            }
            45..=59 => {
                let (grp, qty) = (self.rng.group(), self.rng.range(0, QTY_MAX));
                let at = random_at(&mut self.rng);
                let sql = format!(
                    "UPDATE app.items SET grp = '{grp}', qty = {qty}, at = {} WHERE id = {key}",
                    at_sql(at)
                );
                self.update(sql, |k, _| k == key, |_| (grp.to_owned(), qty, at))
            }
            60..=64 => {
                let qty = self.rng.range(0, QTY_MAX);
                let sql = format!("UPDATE app.items SET qty = {qty} WHERE id = {key}");
                self.update(sql, |k, _| k == key, |(grp, _, at)| (grp.clone(), qty, *at))
            }
            65..=69 => {
                // Only the time: the row moves in or out of time-relative results.
                let at = random_at(&mut self.rng);
                let sql = format!("UPDATE app.items SET at = {} WHERE id = {key}", at_sql(at));
                self.update(
                    sql,
                    |k, _| k == key,
                    |(grp, qty, _)| (grp.clone(), *qty, at),
                )
            }
            70..=86 => self.delete(format!("DELETE FROM app.items WHERE id = {key}"), |k, _| {
                k == key
            }),
            87..=93 => {
                let group = self.rng.group();
                let sql = format!(
                    "UPDATE app.items SET qty = qty + 1 \
                     WHERE grp = '{group}' AND qty < {QTY_MAX} AND {}",
                    self.log.keys.sql()
                );
                self.bulk_update(sql, |grp, qty| grp == group && qty < QTY_MAX)
            }
            94..=96 => {
                let sql = format!(
                    "DELETE FROM app.items WHERE id BETWEEN {key} AND {} AND {}",
                    key + 6,
                    self.log.keys.sql()
                );
                self.delete(sql, |k, _| (key..=key + 6).contains(&k))
            }
            _ => {
                let sql = format!(
                    "DELETE FROM app.items WHERE qty > {} AND {}",
                    QTY_MAX - 5,
                    self.log.keys.sql()
                );
                self.delete(sql, |_, qty| qty > QTY_MAX - 5)
            }
        }
    }

    fn current(&self) -> BTreeMap<i64, Fields> {
        self.rows.iter().map(|(k, row)| (*k, fields(row))).collect()
    }

    fn insert(&self, rows: &[(i64, String, i64, Option<i64>)]) -> Planned {
        let values: Vec<String> = rows
            .iter()
            .map(|(k, grp, qty, at)| format!("({k}, '{grp}', {qty}, {})", at_sql(*at)))
            .collect();
        let sql = format!(
            "INSERT INTO app.items (id, grp, qty, at) VALUES {}",
            values.join(", ")
        );
        let conflict = rows.iter().any(|(k, ..)| self.rows.contains_key(k));
        let mut after = self.current();
        after.extend(
            rows.iter()
                .map(|(k, grp, qty, at)| (*k, (grp.clone(), *qty, *at))),
        );
        Planned {
            sql,
            after: if conflict { Err(()) } else { Ok(after) },
            put: if conflict {
                BTreeSet::new()
            } else {
                rows.iter().map(|r| r.0).collect()
            },
            deleted: BTreeSet::new(),
        }
    }

    /// An UPDATE of the rows `pick` selects (by key and current row) to `set(row)`.
    fn update(
        &self,
        sql: String,
        pick: impl Fn(i64, (&str, i64)) -> bool,
        set: impl Fn(&Fields) -> Fields,
    ) -> Planned {
        let mut after = self.current();
        let mut put = BTreeSet::new();
        for (key, row) in after.iter_mut() {
            if pick(*key, (&row.0, row.1)) {
                *row = set(row);
                put.insert(*key);
            }
        }
        Planned {
            sql,
            after: Ok(after),
            put,
            deleted: BTreeSet::new(),
        }
    }

    /// `SET qty = qty + 1` on the rows whose `(grp, qty)` pass `pick`.
    fn bulk_update(&self, sql: String, pick: impl Fn(&str, i64) -> bool) -> Planned {
        self.update(
            sql,
            |_, (grp, qty)| pick(grp, qty),
            |(grp, qty, at)| (grp.clone(), qty + 1, *at),
        )
    }

    fn delete(&self, sql: String, pick: impl Fn(i64, i64) -> bool) -> Planned {
        let mut after = self.current();
        let deleted: BTreeSet<i64> = after
            .iter()
            .filter(|(k, (_, qty, _))| pick(**k, *qty))
            .map(|(k, _)| *k)
            .collect();
        after.retain(|k, _| !deleted.contains(k));
        Planned {
            sql,
            after: Ok(after),
            put: BTreeSet::new(),
            deleted,
        }
    }

    /// Send the statement with a SELECT of the writer's rows, check the answer against the
    /// plan and record the effects.
    fn run(&mut self, shared: &Shared, planned: Planned) {
        let select = format!(
            "SELECT id, grp, qty, at, _seq FROM app.items WHERE {}",
            self.log.keys.sql()
        );
        let text = format!("{}; {select}", planned.sql);
        let answer = try_sql(shared.server.http, &shared.admin, &text, &[])
            .unwrap_or_else(|| self.fail(shared, &format!("the HTTP exchange failed: {text}")));
        let after = match planned.after {
            Err(()) => {
                let code = answer.json()["error"]["code"].clone();
                if answer.status == 200 || code != json!("duplicate_key") {
                    self.fail(
                        shared,
                        &format!("{text}: expected duplicate_key, got {}", answer.text),
                    );
                }
                shared.stats.writes.fetch_add(1, Relaxed);
                return;
            }
            Ok(after) => after,
        };
        if answer.status != 200 {
            self.fail(
                shared,
                &format!("{text} -> {} {}", answer.status, answer.text),
            );
        }
        let body = answer.json();
        let written = body["results"][0]["row_count"].as_u64();
        let expected = (planned.put.len() + planned.deleted.len()) as u64;
        if written != Some(expected) {
            self.fail(
                shared,
                &format!("{text}: row_count {written:?}, expected {expected}"),
            );
        }
        let mut rows = BTreeMap::new();
        for row in body["results"][1]["rows"].as_array().into_iter().flatten() {
            let row = row.as_object().cloned().unwrap_or_default();
            rows.insert(key_of(&row).unwrap_or_else(|e| self.fail(shared, &e)), row);
        }
        let got: BTreeMap<i64, Fields> = rows.iter().map(|(k, r)| (*k, fields(r))).collect();
        if got != after {
            self.fail(
                shared,
                &format!("{text}: the rows are {got:?}, expected {after:?}"),
            );
        }
        let effects = self.effects(shared, &text, &planned.put, &planned.deleted, &rows);
        self.rows = rows;
        self.log.requests.push(Request {
            generation: self.generation,
            sql: planned.sql.clone(),
            effects,
        });
        if !planned.put.is_empty() {
            let mut table = lock(shared.table(TableName::Items));
            let generation = &mut table.generations[self.generation];
            generation.acked = generation.acked.max(self.last_seq);
        }
        shared.stats.writes.fetch_add(1, Relaxed);
    }

    /// The effects of a request from the rows after it: each put key has a new `_seq`, above
    /// every `_seq` acknowledged to this writer before; the other rows keep theirs.
    fn effects(
        &mut self,
        shared: &Shared,
        text: &str,
        put: &BTreeSet<i64>,
        deleted: &BTreeSet<i64>,
        rows: &BTreeMap<i64, Row>,
    ) -> Vec<(i64, Option<Row>)> {
        let mut effects = Vec::new();
        let mut highest = self.last_seq;
        for (key, row) in rows {
            let seq = seq_of(row).unwrap_or_else(|e| self.fail(shared, &e));
            if put.contains(key) {
                if seq <= self.last_seq {
                    self.fail(
                        shared,
                        &format!(
                            "{text}: id {key} got _seq {seq}, not above {}",
                            self.last_seq
                        ),
                    );
                }
                highest = highest.max(seq);
                effects.push((*key, Some(row.clone())));
            } else if self.rows.get(key) != Some(row) {
                self.fail(
                    shared,
                    &format!("{text}: id {key} changed without being written: {row:?}"),
                );
            }
        }
        effects.extend(deleted.iter().map(|key| (*key, None)));
        self.last_seq = highest;
        effects
    }
}

/// The observer's histories (one per table generation) hold exactly what the writers
/// recorded: walking each writer's requests in order over the history's events on its keys
/// (in `_seq` order), each request's effects are the next events, the new versions with the
/// acknowledged `_seq`s and the deletes placed between the requests around them; no event is
/// left over and no event is on a key nobody owns. Returns the number of requests matched.
pub fn cross_check(histories: &[&History], logs: &[&WriterLog]) -> Result<u64, String> {
    let mut matched = 0;
    for (generation, history) in histories.iter().enumerate() {
        let events = history.events();
        if let Some((seq, key, _)) = events
            .iter()
            .find(|(_, key, _)| !logs.iter().any(|l| l.keys.owns(*key)))
        {
            return Err(format!(
                "generation {generation}: _seq {seq} on id {key}, which no writer writes"
            ));
        }
        for log in logs {
            let mut mine = events.iter().filter(|(_, key, _)| log.keys.owns(*key));
            for request in log.requests.iter().filter(|r| r.generation == generation) {
                let taken: BTreeMap<i64, (u64, Option<&Row>)> = mine
                    .by_ref()
                    .take(request.effects.len())
                    .map(|(seq, key, row)| (*key, (*seq, *row)))
                    .collect();
                for (key, effect) in &request.effects {
                    let found = taken.get(key).map(|(_, row)| *row);
                    if found != Some(effect.as_ref()) || taken.len() != request.effects.len() {
                        return Err(format!(
                            "generation {generation}, {}: `{}` wrote id {key} = {effect:?}, but \
                             the history's next events on its keys are {taken:?}",
                            log.name, request.sql
                        ));
                    }
                }
                matched += 1;
            }
            if let Some(extra) = mine.next() {
                return Err(format!(
                    "generation {generation}, {}: the history has an event no request \
                     made: {extra:?}",
                    log.name
                ));
            }
        }
    }
    Ok(matched)
}
