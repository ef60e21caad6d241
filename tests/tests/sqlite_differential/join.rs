//! Joins (docs/sql.md, "Joins"): `FROM app.tA [AS] x [INNER] JOIN app.tB [AS] y ON ...
//! [LEFT [OUTER] JOIN app.tC [AS] z ON ...]` over two or three of the tables (a table may
//! come twice: a self-join needs aliases; a table that comes once is sometimes unaliased and
//! then named `t1.` or `app.t1.`).
//!
//! The query's row is the tables' columns side by side, in FROM order ([`Join::table`]): the
//! rest of the generator sees one wide table (the first table's key first, so its key lookups
//! are generated as before) and names its columns through [`JoinScope`]: qualified, or bare
//! when only one table of FROM has the name (Strand's `ambiguous_name` otherwise; SQLite's
//! "ambiguous column name"); an ON reads only the tables up to its own (`Gen::visible`), as
//! in PostgreSQL (SQLite would accept later ones).
//!
//! Every ON has an equality between an expression of the joined table (mostly a column,
//! sometimes `+ c`, `- c`, unary minus, ABS, CAST, COALESCE, LOWER / UPPER) and one of a table
//! before it, of one class: numbers of any two types (INT against BIGINT or DOUBLE: Strand's
//! hash join hashes equal numbers alike), TEXT, BOOLEAN; mostly the join key columns the
//! tables have for this (`schema::Kind::JoinInt`: small domains with NULLs, so keys repeat
//! and go unmatched) or primary keys (one-to-many). Sometimes the ON has further conjuncts:
//! any condition over its tables (`y.c > 3`, `x.a IS NOT NULL`, a second equality).
//!
//! Both engines join alike (INNER and LEFT, NULL keys match nothing, a LEFT JOIN's missing
//! side reads NULL): SQLite gets the same FROM, and differs only in what `query.rs` handles:
//! ties (Strand breaks them by each table's key in FROM order, NULL last: SQLite gets those
//! keys) and output names (Strand names shared column names `x.id`; answers are compared by
//! position, ORDER BY an output name is a position in SQLite).
//!
//! Size: a join's rows are counted on the model before it is used ([`ROWS_MAX`]), so that
//! queries stay fast (the run's time budget) and far below Strand's result limit.

use std::collections::HashMap;
use std::ops::Range;

use super::constructs::{enabled, Construct};
use super::expr::{Arith, Cmp, Dialect, E, K};
use super::gen::{arith, wider, Gen, BIGINT_NAMES, DOUBLE_NAMES};
use super::rng::Rng;
use super::schema::{Class, Table, Ty, Val};

/// The most joined rows (before WHERE) a generated join may have, counted on the model with
/// its first equality only.
const ROWS_MAX: usize = 1500;

/// Whether this query joins (a bit more than a quarter do).
pub fn wanted(rng: &mut Rng) -> bool {
    enabled(Construct::Join) && rng.percent(28)
}

/// How the columns of a joined row are named in the query.
pub struct JoinScope {
    /// Per column: the qualifiers of its table (`x.`; unaliased: `t1.`, `app.t1.`).
    qualifiers: Vec<Vec<String>>,
    /// Per column: whether only its table has its name (then it may be written bare).
    unique: Vec<bool>,
}

impl JoinScope {
    /// Column `index` named `name`: `x.i1`, `X.I1`, `x."i1"`, or bare (`i1`, `I1`, `"i1"`)
    /// when that names it alone.
    pub fn spell(&self, rng: &mut Rng, index: usize, name: &str) -> String {
        if self.unique[index] && rng.percent(35) {
            return match rng.below(8) {
                0 => name.to_ascii_uppercase(),
                1 => format!("\"{name}\""),
                _ => name.to_string(),
            };
        }
        let qualifiers = &self.qualifiers[index];
        let qualifier = &qualifiers[rng.below(qualifiers.len())];
        match rng.below(12) {
            0 => format!("{qualifier}{name}").to_ascii_uppercase(),
            1 => format!("{qualifier}\"{name}\""),
            _ => format!("{qualifier}{name}"),
        }
    }
}

/// One table of FROM.
struct Source {
    /// Its index in the seed's tables.
    table: usize,
    alias: Option<String>,
    /// Its columns in the joined row.
    columns: Range<usize>,
}

/// One `JOIN ... ON`: its ON's first equality, as columns of the joined row.
struct Step {
    left: bool,
    /// A column of a table before this one.
    probe: usize,
    /// A column of this step's table.
    build: usize,
}

pub struct Join {
    /// The joined row: every table's columns in FROM order (no rows: see `rows`).
    pub table: Table,
    pub scope: JoinScope,
    sources: Vec<Source>,
    steps: Vec<Step>,
    /// Its joined rows on the model (with each ON's first equality only; LIMIT counts).
    pub rows: usize,
    /// A bound on its joined rows (the product of the tables' sizes; bounds of SUM).
    pub rows_bound: usize,
}

/// A join before its columns are laid out: tables, and per step (LEFT, probe (source, column),
/// build column).
type Plan = (Vec<usize>, Vec<(bool, (usize, usize), usize)>);

impl Join {
    /// A random join of 2 or 3 of `tables` whose size stays within [`ROWS_MAX`] (else the
    /// smallest of the ones tried).
    pub fn random(rng: &mut Rng, tables: &[Table]) -> Join {
        let mut best: Option<(usize, Plan)> = None;
        for _ in 0..12 {
            let plan = random_plan(rng, tables);
            let rows = count_rows(tables, &plan, ROWS_MAX);
            if best.as_ref().is_none_or(|(smallest, _)| rows < *smallest) {
                best = Some((rows, plan));
            }
            if rows <= ROWS_MAX {
                break;
            }
        }
        let (rows, (picked, steps)) = best.expect("a join was planned");
        let mut used = Vec::new();
        let mut sources = Vec::new();
        let mut offset = 0;
        let mut columns = Vec::new();
        for (i, &t) in picked.iter().enumerate() {
            let repeated = picked.iter().filter(|&&u| u == t).count() > 1;
            let alias = if !repeated && rng.percent(20) {
                None
            } else {
                let free: Vec<&str> = ["x", "y", "z", "u", "v", "w"]
                    .into_iter()
                    .filter(|a| !used.contains(a))
                    .collect();
                let alias = if rng.percent(70) {
                    ["x", "y", "z"][i]
                } else {
                    free[rng.below(free.len())]
                };
                let alias = if used.contains(&alias) {
                    free[0]
                } else {
                    alias
                };
                used.push(alias);
                Some(alias.to_string())
            };
            let width = tables[t].columns.len();
            sources.push(Source {
                table: t,
                alias,
                columns: offset..offset + width,
            });
            offset += width;
            columns.extend(tables[t].columns.iter().cloned());
        }
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(i, (left, (source, column), build))| Step {
                left,
                probe: sources[source].columns.start + column,
                build: sources[i + 1].columns.start + build,
            })
            .collect();
        let mut qualifiers = Vec::new();
        let mut unique = Vec::new();
        for source in &sources {
            let table = &tables[source.table];
            let names = match &source.alias {
                Some(alias) => vec![format!("{alias}.")],
                None => vec![
                    format!("{}.", table.name),
                    format!("{}.", table.qualified()),
                ],
            };
            for column in &table.columns {
                let holders = sources
                    .iter()
                    .filter(|s| {
                        tables[s.table]
                            .columns
                            .iter()
                            .any(|c| c.name == column.name)
                    })
                    .count();
                qualifiers.push(names.clone());
                unique.push(holders == 1);
            }
        }
        let rows_bound = sources
            .iter()
            .map(|s| tables[s.table].rows.len().max(1))
            .product();
        let table = Table {
            name: "joined".into(),
            columns,
            rows: Vec::new(),
            strand_setup: Vec::new(),
            join_domain: 0,
        };
        Join {
            table,
            scope: JoinScope { qualifiers, unique },
            sources,
            steps,
            rows,
            rows_bound,
        }
    }

    /// How many tables FROM names.
    pub fn table_count(&self) -> usize {
        self.sources.len()
    }

    /// What each source is called in the query (its alias, else its table's name).
    pub fn labels(&self, tables: &[Table]) -> Vec<String> {
        self.sources
            .iter()
            .map(|s| match &s.alias {
                Some(alias) => alias.clone(),
                None => tables[s.table].name.clone(),
            })
            .collect()
    }

    /// The label of each column's table.
    pub fn column_labels(&self, tables: &[Table]) -> Vec<String> {
        let labels = self.labels(tables);
        self.sources
            .iter()
            .zip(labels)
            .flat_map(|(s, label)| s.columns.clone().map(move |_| label.clone()))
            .collect()
    }

    /// Each source's columns in the joined row, with its label (for `x.*`).
    pub fn source_columns(&self, tables: &[Table]) -> Vec<(String, Range<usize>)> {
        let labels = self.labels(tables);
        labels
            .into_iter()
            .zip(&self.sources)
            .map(|(label, s)| (label, s.columns.clone()))
            .collect()
    }

    /// Strand's tie order as SQLite ORDER BY keys: each table's key in FROM order, NULL (a
    /// LEFT JOIN's missing side) last.
    pub fn ties(&self, tables: &[Table]) -> Vec<String> {
        self.labels(tables)
            .into_iter()
            .map(|label| format!("{label}.id ASC NULLS LAST"))
            .collect()
    }

    /// FROM's text (after `FROM `) in Strand and in SQLite, ONs included (drawn with `g`).
    pub fn render(&self, g: &mut Gen<'_>, tables: &[Table]) -> (String, String) {
        let (mut strand, mut sqlite) = (String::new(), String::new());
        for (i, source) in self.sources.iter().enumerate() {
            if i > 0 {
                let left = self.steps[i - 1].left;
                let words: &[&str] = if left {
                    &["LEFT JOIN", "LEFT OUTER JOIN", "left join"]
                } else {
                    &["JOIN", "INNER JOIN", "join"]
                };
                let gap = if g.rng.percent(5) { "\n  " } else { " " };
                strand.push_str(&format!("{gap}{} ", g.rng.pick(words)));
                sqlite.push_str(if left { " LEFT JOIN " } else { " JOIN " });
            }
            let name = tables[source.table].qualified();
            strand.push_str(&name);
            sqlite.push_str(&name);
            if let Some(alias) = &source.alias {
                let word = if g.rng.percent(50) { " AS" } else { "" };
                strand.push_str(&format!("{word} {alias}"));
                sqlite.push_str(&format!(" AS {alias}"));
            }
            if i > 0 {
                let on = self.on(g, i, tables);
                strand.push_str(&format!(" ON {}", on.render(Dialect::Strand)));
                sqlite.push_str(&format!(" ON {}", on.render(Dialect::Sqlite)));
            }
        }
        (strand, sqlite)
    }

    /// The ON of source `i`: its equality and sometimes further conjuncts, in any order.
    fn on(&self, g: &mut Gen<'_>, i: usize, tables: &[Table]) -> E {
        let step = &self.steps[i - 1];
        g.visible = self.sources[i].columns.end;
        let (probe, build) = (key_side(g, step.probe), key_side(g, step.build));
        let mut items = vec![if g.rng.percent(50) {
            E::boolean(K::Compare(Cmp::Eq, Box::new(probe), Box::new(build)), false)
        } else {
            E::boolean(K::Compare(Cmp::Eq, Box::new(build), Box::new(probe)), false)
        }];
        for _ in 0..[0, 1, 2][g.rng.weighted(&[60, 30, 10])] {
            let extra = if g.rng.percent(20) {
                // A second equality (another key of the hash join).
                let source = g.rng.below(i);
                let (a, b) = (&self.sources[source], &self.sources[i]);
                let (probe, build) = pair(&mut g.rng, &tables[a.table], &tables[b.table]);
                let probe = g.column(a.columns.start + probe);
                let build = g.column(b.columns.start + build);
                E::boolean(K::Compare(Cmp::Eq, Box::new(probe), Box::new(build)), false)
            } else {
                let depth = g.rng.range(0, 2) as u32;
                g.boolean(depth)
            };
            let at = g.rng.below(items.len() + 1);
            items.insert(at, extra);
        }
        g.visible = g.table.columns.len();
        match items.len() {
            1 => items.pop().expect("the equality"),
            _ => E::boolean(K::And(items), false),
        }
    }
}

/// A join's tables and first equalities.
fn random_plan(rng: &mut Rng, tables: &[Table]) -> Plan {
    let count = if rng.percent(25) { 3 } else { 2 };
    let picked: Vec<usize> = (0..count)
        .map(|_| rng.weighted(&[42, 46, 12][..tables.len()]))
        .collect();
    let steps = (1..count)
        .map(|i| {
            let left = enabled(Construct::LeftJoin) && rng.percent(40);
            let source = if rng.percent(60) { i - 1 } else { rng.below(i) };
            let (probe, build) = pair(rng, &tables[picked[source]], &tables[picked[i]]);
            (left, (source, probe), build)
        })
        .collect();
    (picked, steps)
}

/// Two columns of `a` and `b` that can be equal (one class): mostly the join keys (the last
/// column of every table, `schema::Kind::JoinInt`) or a join key and a numeric primary key.
fn pair(rng: &mut Rng, a: &Table, b: &Table) -> (usize, usize) {
    let join_key = |t: &Table| t.columns.len() - 1;
    let of = |t: &Table, class: Class| -> Vec<usize> {
        let columns = t.columns.iter().enumerate();
        columns
            .filter(|(_, c)| c.ty.class() == class)
            .map(|(i, _)| i)
            .collect()
    };
    let numeric_key = |t: &Table| t.key().ty.class() == Class::Num;
    let same = |class: Class| {
        let (x, y) = (of(a, class), of(b, class));
        (!x.is_empty() && !y.is_empty()).then_some((x, y))
    };
    match rng.below(100) {
        0..=47 => {}
        48..=57 if numeric_key(b) => return (join_key(a), 0),
        58..=65 if numeric_key(a) => return (0, join_key(b)),
        66..=72 if a.key().ty.class() == b.key().ty.class() => return (0, 0),
        73..=87 => {
            let (x, y) = same(Class::Num).expect("join keys are numbers");
            return (rng.pick(&x), rng.pick(&y));
        }
        88..=96 => {
            if let Some((x, y)) = same(Class::Text) {
                return (rng.pick(&x), rng.pick(&y));
            }
        }
        _ => {
            if let Some((x, y)) = same(Class::Bool) {
                return (rng.pick(&x), rng.pick(&y));
            }
        }
    }
    (join_key(a), join_key(b))
}

/// One side of an ON equality: column `index`, or (a fifth of the time) an expression of it
/// alone that cannot fail (no overflow: `gen::arith`; ABS and unary minus only within the
/// type's range).
fn key_side(g: &mut Gen<'_>, index: usize) -> E {
    let column = g.column(index);
    if g.rng.percent(80) {
        return column;
    }
    let Some(ty) = column.ty else { return column };
    let fits = column.bound <= ty.max_magnitude();
    match ty.class() {
        Class::Text => {
            let (name, sqlite) = g.rng.pick(&[("LOWER", "pg_lower"), ("UPPER", "pg_upper")]);
            E::new(
                K::Call(name, sqlite, vec![column]),
                Some(ty),
                0.0,
                0.0,
                false,
            )
        }
        Class::Bool => column,
        Class::Num => match g.rng.below(6) {
            0 | 1 => {
                let op = g.rng.pick(&[Arith::Add, Arith::Sub]);
                let value = Val::Int(g.rng.range(1, 3));
                let constant = g.constant(value);
                arith(op, column, constant)
            }
            2 if fits => {
                let (bound, min_abs) = (column.bound, column.min_abs);
                let k = K::Call("ABS", "abs", vec![column]);
                E::new(k, Some(ty), bound, min_abs, false)
            }
            3 if fits => {
                let (bound, min_abs) = (column.bound, column.min_abs);
                E::new(K::Negate(Box::new(column)), Some(ty), bound, min_abs, false)
            }
            4 => {
                let (bound, min_abs) = (column.bound, column.min_abs);
                let (target, names) = match ty {
                    Ty::Int if g.rng.percent(50) => (Ty::BigInt, &BIGINT_NAMES[..]),
                    _ => (Ty::Double, &DOUBLE_NAMES[..]),
                };
                let name = g.rng.pick(names);
                let mut e = g.cast(column, target, name, &Val::Null, None);
                (e.bound, e.min_abs, e.constant) = (bound, min_abs, false);
                e
            }
            _ => {
                let value = Val::Int(g.rng.range(0, 3));
                let fallback = g.literal(value);
                let ty = wider(Some(ty), fallback.ty);
                let bound = column.bound.max(fallback.bound);
                let k = K::Call("COALESCE", "coalesce", vec![column, fallback]);
                E::new(k, Some(ty), bound, 0.0, false)
            }
        },
    }
}

/// A value as a hash key: numbers equal across types are one key (as in both engines).
#[derive(Hash, PartialEq, Eq)]
enum Key {
    Int(i64),
    Double(u64),
    Text(String),
    Bool(bool),
}

fn key(value: &Val) -> Option<Key> {
    Some(match value {
        Val::Null => return None,
        Val::Int(v) => Key::Int(*v),
        Val::Double(v) if v.fract() == 0.0 && (i64::MIN as f64..-(i64::MIN as f64)).contains(v) => {
            Key::Int(*v as i64)
        }
        Val::Double(v) => Key::Double(v.to_bits()),
        Val::Text(v) => Key::Text(v.clone()),
        Val::Bool(v) => Key::Bool(*v),
    })
}

/// The joined rows of `plan` on the model (with each step's equality only), or `cap + 1`
/// once there are more than `cap`.
fn count_rows(tables: &[Table], plan: &Plan, cap: usize) -> usize {
    let (picked, steps) = plan;
    let mut rows: Vec<Vec<Option<usize>>> = (0..tables[picked[0]].rows.len())
        .map(|r| vec![Some(r)])
        .collect();
    for (i, (left, (source, probe), build)) in steps.iter().enumerate() {
        let table = &tables[picked[i + 1]];
        let mut index: HashMap<Key, Vec<usize>> = HashMap::new();
        for (r, row) in table.rows.iter().enumerate() {
            if let Some(k) = key(&row[*build]) {
                index.entry(k).or_default().push(r);
            }
        }
        let mut next = Vec::new();
        for row in &rows {
            let value = row[*source].map(|r| &tables[picked[*source]].rows[r][*probe]);
            let matches = value.and_then(key).and_then(|k| index.get(&k));
            match matches {
                Some(matches) => {
                    for &m in matches {
                        let mut joined = row.clone();
                        joined.push(Some(m));
                        next.push(joined);
                    }
                }
                None if *left => {
                    let mut joined = row.clone();
                    joined.push(None);
                    next.push(joined);
                }
                None => {}
            }
            if next.len() > cap {
                return cap + 1;
            }
        }
        rows = next;
    }
    rows.len()
}
