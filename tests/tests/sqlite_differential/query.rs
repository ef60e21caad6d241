//! The query generator: `SELECT items FROM app.tN [[AS] q] [WHERE c] [ORDER BY keys]
//! [LIMIT n] [OFFSET m]`, as Strand and as SQLite spell it; FROM is sometimes a join of two
//! or three tables (`join.rs`), and then items are also `x.*`.
//!
//! Ordering: Strand sorts NULL as larger than every value (last ascending, first descending)
//! unless NULLS FIRST / LAST says otherwise, and breaks ties by the primary key ascending
//! (docs/sql.md, "SELECT"): its order is total. SQLite sorts NULL smallest and leaves ties in
//! any order, so its query gets every NULLS placement written out and the primary key as a
//! last key (over a join every table's key, NULL last: Strand's tie order); then results with
//! ORDER BY compare row by row. Without ORDER BY rows come in no
//! particular order and compare as multisets; LIMIT and OFFSET are only generated with ORDER
//! BY (without it, which rows a LIMIT keeps is arbitrary).

use std::collections::BTreeSet;
use std::ops::Range;

use serde_json::{json, Value as Json};

use super::constructs::{enabled, Construct};
use super::expr::Dialect;
use super::gen::{Gen, KeyForm};
use super::group;
use super::join::{self, Join};
use super::rng::Rng;
use super::schema::{Table, Ty, Val};

pub struct Query {
    pub strand: String,
    pub strand_params: Vec<Json>,
    pub sqlite: String,
    pub sqlite_params: Vec<rusqlite::types::Value>,
    /// With ORDER BY: the rows must come in the same order.
    pub ordered: bool,
    /// Strand's type of each output column, where the generator knows it (not for NULL).
    pub types: Vec<Option<Ty>>,
    pub has_where: bool,
    pub has_limit: bool,
    /// Tables joined (`join.rs`); 0 for one table.
    pub joined: usize,
}

/// One output column or `*`, in both spellings.
struct Item {
    strand: String,
    sqlite: String,
}

/// A join's tables (label and columns) and the label of each column's table.
type JoinNames = (Vec<(String, Range<usize>)>, Vec<String>);

/// What a query reads, as both engines' FROM spells it.
pub struct From {
    pub strand: String,
    pub sqlite: String,
    /// Strand's tie-breaking order (primary keys) as SQLite ORDER BY keys.
    pub ties: Vec<String>,
    /// Rows read (a join's on the model): for LIMIT and OFFSET counts.
    pub rows: usize,
    /// In a join: each table's label and columns (for `x.*`), and each column's label.
    join: Option<JoinNames>,
    /// One table: its alias.
    alias: Option<&'static str>,
    pub joined: usize,
}

pub fn generate(rng: Rng, tables: &[Table]) -> Query {
    let mut rng = rng;
    let join = join::wanted(&mut rng).then(|| Join::random(&mut rng, tables));
    let table = match &join {
        Some(join) => &join.table,
        None => &tables[rng.weighted(&[55, 35, 10][..tables.len()])],
    };
    let alias =
        (join.is_none() && enabled(Construct::TableAlias) && rng.percent(40)).then_some("q");
    let qualifiers = match alias {
        Some(alias) => vec![format!("{alias}.")],
        None => vec![
            format!("{}.", table.name),
            format!("{}.", table.qualified()),
        ],
    };
    let key_form = rng.pick(&[KeyForm::Int, KeyForm::BigInt, KeyForm::Double]);
    let keys = &table.key().values;
    let hot_keys = if keys.is_empty() {
        Vec::new()
    } else {
        (0..rng.range(1, 3))
            .map(|_| keys[rng.below(keys.len())].clone())
            .collect()
    };
    let mut g = Gen {
        rng,
        table,
        qualifiers,
        join: join.as_ref().map(|j| &j.scope),
        visible: table.columns.len(),
        rows: join.as_ref().map_or(table.rows.len(), |j| j.rows_bound),
        params: Vec::new(),
        key_form,
        hot_keys,
    };
    let from = match &join {
        Some(join) => {
            let (strand, sqlite) = join.render(&mut g, tables);
            From {
                strand,
                sqlite,
                ties: join.ties(tables),
                rows: join.rows,
                join: Some((join.source_columns(tables), join.column_labels(tables))),
                alias: None,
                joined: join.table_count(),
            }
        }
        None => {
            let (mut strand, mut sqlite) = (table.qualified(), table.qualified());
            if let Some(alias) = alias {
                strand.push_str(if g.rng.percent(50) { " AS q" } else { " q" });
                sqlite.push_str(&format!(" AS {alias}"));
            }
            let key = match alias {
                Some(alias) => format!("{alias}.id"),
                None => format!("{}.id", table.qualified()),
            };
            From {
                strand,
                sqlite,
                ties: vec![format!("{key} ASC")],
                rows: table.rows.len(),
                join: None,
                alias,
                joined: 0,
            }
        }
    };
    if group::wanted(&mut g) {
        return group::generate(g, &from);
    }

    // SELECT list: `*`, columns (each once: result rows are JSON objects keyed by name) and
    // expressions named x0, x1, ... (never a column's name, so ORDER BY names are unambiguous).
    let mut items = Vec::new();
    // Each output column's name and, for a column of a join, its table's label.
    let mut outputs: Vec<(String, Option<String>)> = Vec::new();
    let mut types = Vec::new();
    let mut bare: BTreeSet<usize> = BTreeSet::new();
    let star = enabled(Construct::Star) && g.rng.percent(20);
    if star {
        let (text, columns) = star_item(&mut g, &from);
        items.push(Item {
            strand: text.clone(),
            sqlite: text,
        });
        for index in columns {
            let label = from.join.as_ref().map(|(_, labels)| labels[index].clone());
            outputs.push((table.columns[index].name.clone(), label));
            types.push(Some(table.columns[index].ty));
            bare.insert(index);
        }
    }
    let count = if star {
        g.rng.range(0, 2)
    } else {
        g.rng.range(1, 5)
    };
    for i in 0..count {
        let index = g.rng.below(table.columns.len());
        if g.rng.percent(30) && !bare.contains(&index) {
            bare.insert(index);
            let e = g.column(index);
            let label = from.join.as_ref().map(|(_, labels)| labels[index].clone());
            outputs.push((table.columns[index].name.clone(), label));
            types.push(e.ty);
            items.push(Item {
                strand: e.render(Dialect::Strand),
                sqlite: e.render(Dialect::Sqlite),
            });
            continue;
        }
        let depth = g.rng.range(0, 2) as u32;
        let e = g.any(depth);
        let alias = format!("x{i}");
        let word = if g.rng.percent(15) { "" } else { " AS" };
        types.push(e.ty);
        items.push(Item {
            strand: format!("{}{word} {alias}", e.render(Dialect::Strand)),
            sqlite: format!("{} AS {alias}", e.render(Dialect::Sqlite)),
        });
        outputs.push((alias, None));
    }
    let names = output_names(&outputs);

    let gap = |g: &mut Gen<'_>| match g.rng.below(30) {
        0 => " /* ; -- */ ",
        1 => " -- ;\n",
        2 => "\n\t",
        _ => " ",
    };
    let mut strand = format!(
        "SELECT{}{}{}FROM {}",
        gap(&mut g),
        list(&items, true),
        gap(&mut g),
        from.strand
    );
    let mut sqlite = format!("SELECT {} FROM {}", list(&items, false), from.sqlite);

    let has_where = enabled(Construct::Where) && g.rng.percent(80);
    if has_where {
        // Shallower over a join: its ON already filters.
        let depth = g.rng.range(1, if from.joined > 0 { 2 } else { 3 }) as u32;
        let condition = if enabled(Construct::KeyLookup) && g.rng.percent(15) {
            g.key_condition(depth - 1)
        } else {
            g.boolean(depth)
        };
        let gap = gap(&mut g);
        strand.push_str(&format!(" WHERE{gap}{}", condition.render(Dialect::Strand)));
        sqlite.push_str(&format!(" WHERE {}", condition.render(Dialect::Sqlite)));
    }

    let ordered = enabled(Construct::OrderBy) && g.rng.percent(55);
    let mut has_limit = false;
    if ordered {
        let mut strand_keys = Vec::new();
        let mut sqlite_keys = Vec::new();
        for _ in 0..g.rng.range(1, 3) {
            let (s, q) = sort_key(&mut g, &names, from.join.is_some());
            let (direction, descending) = match g.rng.below(3) {
                0 => ("", false),
                1 => (" ASC", false),
                _ => (" DESC", true),
            };
            let nulls = if enabled(Construct::NullsFirstLast) && g.rng.percent(40) {
                Some(g.rng.percent(50))
            } else {
                None
            };
            let nulls_text = |first: bool| if first { " NULLS FIRST" } else { " NULLS LAST" };
            strand_keys.push(format!("{s}{direction}{}", nulls.map_or("", nulls_text)));
            let first = nulls.unwrap_or(descending);
            sqlite_keys.push(format!("{q}{direction}{}", nulls_text(first)));
        }
        sqlite_keys.extend(from.ties.iter().cloned());
        strand.push_str(&format!(" ORDER BY {}", strand_keys.join(", ")));
        sqlite.push_str(&format!(" ORDER BY {}", sqlite_keys.join(", ")));

        let rows = from.rows as i64;
        let limit =
            (enabled(Construct::Limit) && g.rng.percent(50)).then(|| count_value(&mut g, rows));
        let offset =
            (enabled(Construct::Offset) && g.rng.percent(30)).then(|| count_value(&mut g, rows));
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

    if g.rng.percent(5) {
        strand.push(';');
    }
    Query {
        strand,
        sqlite,
        strand_params: g.params.iter().map(|(json, _)| json.clone()).collect(),
        sqlite_params: g.params.iter().map(|(_, value)| value.sqlite()).collect(),
        ordered,
        types,
        has_where,
        has_limit,
        joined: from.joined,
    }
}

/// `*` or `q.*` / `t0.*` over one table; over a join `*`, or one or two tables' `x.*`; with
/// the columns of the row it gives, in order.
fn star_item(g: &mut Gen<'_>, from: &From) -> (String, Vec<usize>) {
    let all = (0..g.table.columns.len()).collect();
    let Some((sources, _)) = &from.join else {
        let text = match from.alias {
            Some(alias) if g.rng.percent(50) => format!("{alias}.*"),
            None if g.rng.percent(30) => format!("{}.*", g.table.name),
            _ => "*".to_string(),
        };
        return (text, all);
    };
    if g.rng.percent(45) {
        return ("*".into(), all);
    }
    let mut texts = Vec::new();
    let mut columns = Vec::new();
    let first = g.rng.below(sources.len());
    let mut picked = vec![first];
    if g.rng.percent(30) {
        let second = g.rng.below(sources.len());
        if second != first {
            picked.push(second);
        }
    }
    for source in picked {
        let (label, range) = &sources[source];
        texts.push(format!("{label}.*"));
        columns.extend(range.clone());
    }
    (texts.join(", "), columns)
}

/// Output names as Strand gives them: a column's name, an expression's alias; in a join,
/// columns whose names would repeat are named `x.id` (by their table's label).
fn output_names(outputs: &[(String, Option<String>)]) -> Vec<String> {
    outputs
        .iter()
        .map(|(name, label)| {
            let shared = outputs.iter().filter(|(n, _)| n == name).count() > 1;
            match label {
                Some(label) if shared => format!("{label}.{name}"),
                _ => name.clone(),
            }
        })
        .collect()
}

fn list(items: &[Item], strand: bool) -> String {
    let texts: Vec<&str> = items
        .iter()
        .map(|item| {
            if strand {
                item.strand.as_str()
            } else {
                item.sqlite.as_str()
            }
        })
        .collect();
    texts.join(", ")
}

/// An ORDER BY key in both spellings: an output name, a 1-based position, or an expression
/// over the table that reads the row (a constant key would be a position in SQLite when it is
/// an integer, an expression in Strand). In a join, an output name is a position in SQLite
/// (where a bare name could be an ambiguous column of FROM; `x.id` is quoted in Strand).
fn sort_key(g: &mut Gen<'_>, names: &[String], joined: bool) -> (String, String) {
    let choice = g.choose(&[
        (Construct::OrderByName, 30),
        (Construct::OrderByPosition, 20),
        (Construct::OrderBy, 50),
    ]);
    match choice {
        Some(Construct::OrderByName) => {
            let index = g.rng.below(names.len());
            let name = names[index].clone();
            match joined {
                false => (name.clone(), name),
                true if name.contains('.') => (format!("\"{name}\""), (index + 1).to_string()),
                true => (name, (index + 1).to_string()),
            }
        }
        Some(Construct::OrderByPosition) => {
            let position = (g.rng.below(names.len()) + 1).to_string();
            (position.clone(), position)
        }
        _ => {
            let depth = g.rng.range(0, 2) as u32;
            let mut e = g.any(depth);
            for _ in 0..4 {
                if !e.constant {
                    break;
                }
                e = g.any(1);
            }
            if e.constant {
                let index = g.rng.below(g.table.columns.len());
                e = g.column(index);
            }
            (e.render(Dialect::Strand), e.render(Dialect::Sqlite))
        }
    }
}

/// A LIMIT or OFFSET count: Strand's text, and the number SQLite gets (`None`: NULL, which
/// is no limit in Strand, and SQLite spells `LIMIT -1`).
pub fn count_value(g: &mut Gen<'_>, rows: i64) -> (String, Option<i64>) {
    let value = match g.rng.below(4) {
        0 => g.rng.range(0, 3),
        1 => g.rng.range(0, rows + 3),
        _ => g.rng.range(0, 20),
    };
    match g.rng.below(12) {
        0 => ("NULL".into(), None),
        1 | 2 if enabled(Construct::Parameter) => {
            let json = if g.rng.percent(30) {
                json!(value.to_string())
            } else {
                json!(value)
            };
            let param = g.param(json, Val::Int(value), Some(Ty::BigInt));
            (param.render(Dialect::Strand), Some(value))
        }
        _ => (value.to_string(), Some(value)),
    }
}
