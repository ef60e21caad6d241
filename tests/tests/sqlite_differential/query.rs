//! The query generator: `SELECT items FROM app.tN [[AS] q] [WHERE c] [ORDER BY keys]
//! [LIMIT n] [OFFSET m]`, as Strand and as SQLite spell it.
//!
//! Ordering: Strand sorts NULL as larger than every value (last ascending, first descending)
//! unless NULLS FIRST / LAST says otherwise, and breaks ties by the primary key ascending
//! (docs/sql.md, "SELECT"): its order is total. SQLite sorts NULL smallest and leaves ties in
//! any order, so its query gets every NULLS placement written out and the primary key as a
//! last key; then results with ORDER BY compare row by row. Without ORDER BY rows come in no
//! particular order and compare as multisets; LIMIT and OFFSET are only generated with ORDER
//! BY (without it, which rows a LIMIT keeps is arbitrary).

use std::collections::BTreeSet;

use serde_json::{json, Value as Json};

use super::constructs::{enabled, Construct};
use super::expr::Dialect;
use super::gen::{Gen, KeyForm};
use super::group;
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
}

/// One output column or `*`, in both spellings.
struct Item {
    strand: String,
    sqlite: String,
}

pub fn generate(rng: Rng, tables: &[Table]) -> Query {
    let mut rng = rng;
    let table = &tables[rng.weighted(&[55, 35, 10][..tables.len()])];
    let alias = (enabled(Construct::TableAlias) && rng.percent(40)).then_some("q");
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
        params: Vec::new(),
        key_form,
        hot_keys,
    };
    if group::wanted(&mut g) {
        return group::generate(g, alias);
    }

    // SELECT list: `*`, columns (each once: result rows are JSON objects keyed by name) and
    // expressions named x0, x1, ... (never a column's name, so ORDER BY names are unambiguous).
    let mut items = Vec::new();
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut bare: BTreeSet<usize> = BTreeSet::new();
    let star = enabled(Construct::Star) && g.rng.percent(20);
    if star {
        let text = match alias {
            Some(alias) if g.rng.percent(50) => format!("{alias}.*"),
            None if g.rng.percent(30) => format!("{}.*", table.name),
            _ => "*".to_string(),
        };
        items.push(Item {
            strand: text.clone(),
            sqlite: text,
        });
        for (index, column) in table.columns.iter().enumerate() {
            names.push(column.name.clone());
            types.push(Some(column.ty));
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
            names.push(table.columns[index].name.clone());
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
        names.push(alias);
    }

    let gap = |g: &mut Gen<'_>| match g.rng.below(30) {
        0 => " /* ; -- */ ",
        1 => " -- ;\n",
        2 => "\n\t",
        _ => " ",
    };
    let mut strand = format!(
        "SELECT{}{}{}FROM {}",
        gap(&mut g),
        join(&items, true),
        gap(&mut g),
        table.qualified()
    );
    let mut sqlite = format!("SELECT {} FROM {}", join(&items, false), table.qualified());
    if let Some(alias) = alias {
        strand.push_str(if g.rng.percent(50) { " AS q" } else { " q" });
        sqlite.push_str(&format!(" AS {alias}"));
    }

    let has_where = enabled(Construct::Where) && g.rng.percent(80);
    if has_where {
        let depth = g.rng.range(1, 3) as u32;
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
            let (s, q) = sort_key(&mut g, &names);
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
        let key = match alias {
            Some(alias) => format!("{alias}.id"),
            None => format!("{}.id", table.qualified()),
        };
        sqlite_keys.push(format!("{key} ASC"));
        strand.push_str(&format!(" ORDER BY {}", strand_keys.join(", ")));
        sqlite.push_str(&format!(" ORDER BY {}", sqlite_keys.join(", ")));

        let rows = table.rows.len() as i64;
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
    }
}

fn join(items: &[Item], strand: bool) -> String {
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
/// an integer, an expression in Strand).
fn sort_key(g: &mut Gen<'_>, names: &[String]) -> (String, String) {
    let choice = g.choose(&[
        (Construct::OrderByName, 30),
        (Construct::OrderByPosition, 20),
        (Construct::OrderBy, 50),
    ]);
    match choice {
        Some(Construct::OrderByName) => {
            let name = names[g.rng.below(names.len())].clone();
            (name.clone(), name)
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
