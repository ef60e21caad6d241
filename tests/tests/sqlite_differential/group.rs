//! Grouping queries (docs/sql.md, "Aggregates"): `SELECT keys, aggregates FROM app.tN (or a
//! join, `join.rs`) [WHERE
//! c] [GROUP BY keys] [HAVING c] [ORDER BY ...] [LIMIT n] [OFFSET m]`, and `SELECT DISTINCT
//! list`. Keys are one or two expressions of the row, mostly columns with few values; every
//! use of a key is written exactly as in GROUP BY (Strand's rule; the same text serves).
//!
//! Where SQLite differs, or could differ by summation order:
//! - ties in ORDER BY over groups are broken by the group keys ascending, NULL last (Strand's
//!   rule): SQLite gets the keys as last ORDER BY keys `ASC NULLS LAST`;
//! - SUM of integers overflowing BIGINT is `numeric_overflow` in Strand: SUM and AVG only of
//!   expressions whose bound times the rows stays below 2^53 (exact in doubles too);
//! - SUM and AVG of DOUBLE depend on the order of the additions (SQLite also compensates
//!   rounding errors): only of expressions without division or ROUND, small enough that every
//!   partial sum of the data's dyadic values is exact.

use super::constructs::{enabled, Construct};
use super::expr::{Cmp, Dialect, E, K};
use super::gen::Gen;
use super::query::{count_value, From, Query};
use super::schema::{Ty, Val};

/// Whether this query groups (about a quarter do).
pub fn wanted(g: &mut Gen<'_>) -> bool {
    let any = [
        Construct::GroupBy,
        Construct::Aggregates,
        Construct::Distinct,
    ];
    any.iter().any(|c| enabled(*c)) && g.rng.percent(25)
}

struct Item {
    strand: String,
    sqlite: String,
    ty: Option<Ty>,
}

pub fn generate(mut g: Gen<'_>, from: &From) -> Query {
    let distinct =
        enabled(Construct::Distinct) && (!enabled(Construct::Aggregates) || g.rng.percent(20));
    let grouped = distinct || (enabled(Construct::GroupBy) && g.rng.percent(80));
    let keys: Vec<E> = if grouped {
        (0..g.rng.range(1, 2)).map(|_| group_key(&mut g)).collect()
    } else {
        Vec::new()
    };
    let mut items = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if distinct || g.rng.percent(80) {
            items.push(Item {
                strand: format!("{} AS k{i}", key.render(Dialect::Strand)),
                sqlite: format!("{} AS k{i}", key.render(Dialect::Sqlite)),
                ty: key.ty,
            });
        }
    }
    if !distinct {
        for i in 0..g.rng.range(1, 3) {
            let agg = aggregate(&mut g);
            items.push(Item {
                strand: format!("{} AS a{i}", agg.render(Dialect::Strand)),
                sqlite: format!("{} AS a{i}", agg.render(Dialect::Sqlite)),
                ty: agg.ty,
            });
        }
    }
    let list = |strand: bool| {
        let texts: Vec<&str> = items
            .iter()
            .map(|i| if strand { &i.strand[..] } else { &i.sqlite[..] })
            .collect();
        texts.join(", ")
    };
    let word = if distinct {
        "SELECT DISTINCT"
    } else {
        "SELECT"
    };
    let mut strand = format!("{word} {} FROM {}", list(true), from.strand);
    let mut sqlite = format!("{word} {} FROM {}", list(false), from.sqlite);
    let has_where = enabled(Construct::Where) && g.rng.percent(60);
    if has_where {
        let depth = g.rng.range(1, 2) as u32;
        let condition = g.boolean(depth);
        strand.push_str(&format!(" WHERE {}", condition.render(Dialect::Strand)));
        sqlite.push_str(&format!(" WHERE {}", condition.render(Dialect::Sqlite)));
    }
    if grouped && !distinct {
        let strand_keys: Vec<String> = keys.iter().map(|k| k.render(Dialect::Strand)).collect();
        let sqlite_keys: Vec<String> = keys.iter().map(|k| k.render(Dialect::Sqlite)).collect();
        strand.push_str(&format!(" GROUP BY {}", strand_keys.join(", ")));
        sqlite.push_str(&format!(" GROUP BY {}", sqlite_keys.join(", ")));
    }
    if !distinct && enabled(Construct::Having) && g.rng.percent(40) {
        let having = having(&mut g, &keys);
        strand.push_str(&format!(" HAVING {}", having.render(Dialect::Strand)));
        sqlite.push_str(&format!(" HAVING {}", having.render(Dialect::Sqlite)));
    }
    let ordered = enabled(Construct::OrderBy) && g.rng.percent(60);
    let mut has_limit = false;
    if ordered {
        let (mut strand_keys, mut sqlite_keys) = (Vec::new(), Vec::new());
        for _ in 0..g.rng.range(1, 2) {
            let (s, q) = sort_key(&mut g, &items, &keys, distinct);
            let (direction, descending) = match g.rng.below(3) {
                0 => ("", false),
                1 => (" ASC", false),
                _ => (" DESC", true),
            };
            let nulls = (enabled(Construct::NullsFirstLast) && g.rng.percent(40))
                .then(|| g.rng.percent(50));
            let text = |first: bool| if first { " NULLS FIRST" } else { " NULLS LAST" };
            strand_keys.push(format!("{s}{direction}{}", nulls.map_or("", text)));
            sqlite_keys.push(format!(
                "{q}{direction}{}",
                text(nulls.unwrap_or(descending))
            ));
        }
        // Strand breaks ties by the group keys, ascending, NULL largest.
        for (i, key) in keys.iter().enumerate() {
            let key = match distinct {
                true => (i + 1).to_string(),
                false => key.render(Dialect::Sqlite),
            };
            sqlite_keys.push(format!("{key} ASC NULLS LAST"));
        }
        strand.push_str(&format!(" ORDER BY {}", strand_keys.join(", ")));
        sqlite.push_str(&format!(" ORDER BY {}", sqlite_keys.join(", ")));
        let rows = g.rows as i64;
        let limit = (enabled(Construct::Limit) && g.rng.percent(50))
            .then(|| count_value(&mut g, rows.min(30)));
        let offset =
            (enabled(Construct::Offset) && g.rng.percent(25)).then(|| count_value(&mut g, 5));
        has_limit = limit.is_some() || offset.is_some();
        if let Some((text, value)) = &limit {
            strand.push_str(&format!(" LIMIT {text}"));
            sqlite.push_str(&format!(" LIMIT {}", value.unwrap_or(-1)));
        } else if offset.is_some() {
            sqlite.push_str(" LIMIT -1");
        }
        if let Some((text, value)) = &offset {
            strand.push_str(&format!(" OFFSET {text}"));
            sqlite.push_str(&format!(" OFFSET {}", value.unwrap_or(0)));
        }
    }
    Query {
        strand,
        sqlite,
        strand_params: g.params.iter().map(|(json, _)| json.clone()).collect(),
        sqlite_params: g.params.iter().map(|(_, value)| value.sqlite()).collect(),
        ordered,
        types: items.iter().map(|i| i.ty).collect(),
        has_where,
        has_limit,
        joined: from.joined,
    }
}

/// A group key: a column with few values (mostly), or an expression of the row; without
/// parameters (a key is written again in the SELECT list, HAVING and ORDER BY).
fn group_key(g: &mut Gen<'_>) -> E {
    let columns = &g.table.columns;
    let few: Vec<usize> = (1..columns.len())
        .filter(|&i| columns[i].values.len() <= 24 || columns[i].ty == Ty::Bool)
        .collect();
    if !few.is_empty() && g.rng.percent(55) {
        let index = g.rng.pick(&few);
        return g.column(index);
    }
    for _ in 0..8 {
        let params = g.params.len();
        let e = g.any(1);
        if e.constant || e.ty.is_none() || g.params.len() > params {
            g.params.truncate(params);
            continue;
        }
        return e;
    }
    let index = g.rng.below(columns.len());
    g.column(index)
}

/// An aggregate over the table (see the module comment for SUM and AVG).
fn aggregate(g: &mut Gen<'_>) -> E {
    let rows = g.rows.max(1) as f64;
    let choice = g.rng.weighted(&[3, 2, 2, 3, 2, 3, 3]);
    let distinct = choice == 2 || g.rng.percent(8);
    let count = |arg: Option<E>, distinct: bool| {
        let k = K::Agg("COUNT", distinct, arg.map(Box::new));
        E::new(k, Some(Ty::BigInt), rows, 0.0, false)
    };
    match choice {
        0 => count(None, false),
        1 | 2 => count(Some(g.any(1)), distinct),
        3 | 4 => {
            for _ in 0..8 {
                let e = g.num(1);
                let Some(ty) = e.ty else { continue };
                let text = e.render(Dialect::Strand);
                let exact = match ty {
                    Ty::Double => !text.contains('/') && !text.contains("ROUND"),
                    _ => true,
                };
                let bound = e.bound * rows;
                let limit = if ty == Ty::Double {
                    2f64.powi(40)
                } else {
                    2f64.powi(53)
                };
                if !exact || bound > limit {
                    continue;
                }
                let (name, ty) = match (choice, ty) {
                    (3, Ty::Double) => ("SUM", Ty::Double),
                    (3, _) => ("SUM", Ty::BigInt),
                    _ => ("AVG", Ty::Double),
                };
                let k = K::Agg(name, distinct, Some(Box::new(e)));
                return E::new(k, Some(ty), bound, 0.0, false);
            }
            count(None, false)
        }
        _ => {
            let mut e = g.any(1);
            if e.ty.is_none() {
                let index = g.rng.below(g.table.columns.len());
                e = g.column(index);
            }
            let name = if choice == 5 { "MIN" } else { "MAX" };
            let (ty, bound) = (e.ty, e.bound);
            E::new(
                K::Agg(name, distinct, Some(Box::new(e))),
                ty,
                bound,
                0.0,
                false,
            )
        }
    }
}

/// A HAVING condition: comparisons of aggregates (and keys) with constants, AND / OR.
fn having(g: &mut Gen<'_>, keys: &[E]) -> E {
    let mut items = Vec::new();
    for _ in 0..g.rng.range(1, 2) {
        let left = if !keys.is_empty() && g.rng.percent(25) {
            keys[g.rng.below(keys.len())].clone()
        } else {
            aggregate(g)
        };
        let right = match left.k {
            K::Agg("COUNT", ..) if g.rng.percent(70) => {
                let value = Val::Int(g.rng.range(0, 6));
                g.literal(value)
            }
            _ => g.constant_for(&left),
        };
        let op = g
            .rng
            .pick(&[Cmp::Eq, Cmp::NotEq, Cmp::Lt, Cmp::LtEq, Cmp::Gt, Cmp::GtEq]);
        items.push(E::boolean(
            K::Compare(op, Box::new(left), Box::new(right)),
            false,
        ));
    }
    match items.len() {
        1 => items.pop().expect("one item"),
        _ if g.rng.percent(60) => E::boolean(K::And(items), false),
        _ => E::boolean(K::Or(items), false),
    }
}

/// An ORDER BY key over groups: an output name or position, a key or an aggregate.
fn sort_key(g: &mut Gen<'_>, items: &[Item], keys: &[E], distinct: bool) -> (String, String) {
    let choice = g
        .rng
        .weighted(&[30, 20, if keys.is_empty() { 0 } else { 25 }, 25]);
    match choice {
        0 | 1 if !enabled(Construct::OrderByName) && !enabled(Construct::OrderByPosition) => {}
        0 => {
            let index = g.rng.below(items.len());
            let name = items[index].strand.rsplit(' ').next().unwrap_or_default();
            return (name.to_string(), name.to_string());
        }
        1 => {
            let position = (g.rng.below(items.len()) + 1).to_string();
            return (position.clone(), position);
        }
        2 => {
            let key = &keys[g.rng.below(keys.len())];
            return (key.render(Dialect::Strand), key.render(Dialect::Sqlite));
        }
        _ => {}
    }
    if distinct {
        return ("1".into(), "1".into());
    }
    let agg = aggregate(g);
    (agg.render(Dialect::Strand), agg.render(Dialect::Sqlite))
}
