//! Running a query on both engines and comparing the answers.
//!
//! Values are normalized by the type Strand reports for the column: BOOLEAN is `true` /
//! `false` in Strand and 0 / 1 in SQLite; a DOUBLE SQLite holds as an integer (a REAL column
//! stores 3.0 as 3) is read as a double; DOUBLEs compare with a relative tolerance of 1e-9
//! (both engines compute in IEEE 754 doubles, in the same order, so they agree exactly in
//! practice; the tolerance only keeps the last bit of a different formatting from failing).

use std::cmp::Ordering;
use std::fmt;

use rusqlite::types::ValueRef;
use serde_json::Value as Json;
use strand_tests::StrandServer;

use super::query::Query;

#[derive(Clone, Debug)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(String),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => write!(f, "NULL"),
            Cell::Bool(v) => write!(f, "{v}"),
            Cell::Int(v) => write!(f, "{v}"),
            Cell::Real(v) => write!(f, "{v:?}"),
            Cell::Text(v) => write!(f, "{v:?}"),
        }
    }
}

impl Cell {
    fn rank(&self) -> u8 {
        match self {
            Cell::Null => 0,
            Cell::Bool(_) => 1,
            Cell::Int(_) => 2,
            Cell::Real(_) => 3,
            Cell::Text(_) => 4,
        }
    }

    /// A total order, for sorting rows before comparing them as multisets.
    fn order(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            // -0.0 and 0.0 are one value (as in both engines' comparisons).
            (Cell::Real(a), Cell::Real(b)) => a
                .partial_cmp(b)
                .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan())),
            (Cell::Text(a), Cell::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn same(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Bool(a), Cell::Bool(b)) => a == b,
            (Cell::Int(a), Cell::Int(b)) => a == b,
            (Cell::Real(a), Cell::Real(b)) => {
                a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
            }
            (Cell::Text(a), Cell::Text(b)) => a == b,
            _ => false,
        }
    }

    /// A value of a Strand result column of type `ty` (docs/http.md, "Values in JSON").
    pub fn from_strand(json: &Json, ty: &str) -> Cell {
        match (json, ty) {
            (Json::Null, _) => Cell::Null,
            (Json::Bool(v), _) => Cell::Bool(*v),
            (Json::Number(n), "INT" | "BIGINT") => n
                .as_i64()
                .map_or_else(|| Cell::Text(n.to_string()), Cell::Int),
            (Json::Number(n), _) => Cell::Real(n.as_f64().unwrap_or(f64::NAN)),
            (Json::String(s), "DOUBLE") => match s.as_str() {
                "NaN" => Cell::Real(f64::NAN),
                "Infinity" => Cell::Real(f64::INFINITY),
                "-Infinity" => Cell::Real(f64::NEG_INFINITY),
                _ => Cell::Text(s.clone()),
            },
            (Json::String(s), _) => Cell::Text(s.clone()),
            (other, _) => Cell::Text(other.to_string()),
        }
    }

    /// A SQLite value, read as Strand's column type `ty` says.
    pub fn from_sqlite(value: ValueRef<'_>, ty: &str) -> Cell {
        match (value, ty) {
            (ValueRef::Null, _) => Cell::Null,
            (ValueRef::Integer(v), "BOOLEAN") => Cell::Bool(v != 0),
            (ValueRef::Integer(v), "DOUBLE") => Cell::Real(v as f64),
            (ValueRef::Integer(v), _) => Cell::Int(v),
            (ValueRef::Real(v), _) => Cell::Real(v),
            (ValueRef::Text(bytes), _) => Cell::Text(String::from_utf8_lossy(bytes).into_owned()),
            (ValueRef::Blob(bytes), _) => Cell::Text(format!("blob {bytes:?}")),
        }
    }
}

pub type Rows = Vec<Vec<Cell>>;

/// Strand's answer: the column types it reports and the rows, or the error body.
pub fn run_strand(
    server: &StrandServer,
    auth: &str,
    query: &Query,
) -> Result<(Vec<String>, Rows), String> {
    let answer = strand_tests::sql(server, auth, &query.strand, &query.strand_params);
    let body: Json = serde_json::from_str(&answer.text).map_err(|_| answer.text.clone())?;
    if answer.status != 200 || body["status"] != "success" {
        return Err(format!("HTTP {}: {}", answer.status, answer.text));
    }
    let result = &body["results"][0];
    let columns: Vec<(String, String)> = result["columns"]
        .as_array()
        .ok_or("no columns")?
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_string();
            (text("name"), text("type"))
        })
        .collect();
    let mut names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != columns.len() {
        return Err(format!("output column names repeat: {columns:?}"));
    }
    let rows = result["rows"]
        .as_array()
        .ok_or("no rows")?
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|(name, ty)| Cell::from_strand(&row[name.as_str()], ty))
                .collect()
        })
        .collect();
    let types = columns.into_iter().map(|(_, ty)| ty).collect();
    Ok((types, rows))
}

/// SQLite's rows, read with Strand's column types.
pub fn run_sqlite(
    db: &rusqlite::Connection,
    sql: &str,
    params: &[rusqlite::types::Value],
    types: &[String],
) -> Result<Rows, String> {
    let mut statement = db.prepare(sql).map_err(|e| e.to_string())?;
    let bound = statement.parameter_count().min(params.len());
    let mut rows = statement
        .query(rusqlite::params_from_iter(&params[..bound]))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let mut cells = Vec::with_capacity(types.len());
        for (index, ty) in types.iter().enumerate() {
            let value = row.get_ref(index).map_err(|e| e.to_string())?;
            cells.push(Cell::from_sqlite(value, ty));
        }
        out.push(cells);
    }
    Ok(out)
}

fn order_rows(a: &[Cell], b: &[Cell]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.order(y))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

fn same_row(a: &[Cell], b: &[Cell]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

/// Whether the answers agree: row by row when `ordered`, else as multisets.
pub fn same_rows(strand: &Rows, sqlite: &Rows, ordered: bool) -> bool {
    if strand.len() != sqlite.len() {
        return false;
    }
    if ordered {
        return strand.iter().zip(sqlite).all(|(a, b)| same_row(a, b));
    }
    let (mut a, mut b) = (strand.clone(), sqlite.clone());
    a.sort_by(|x, y| order_rows(x, y));
    b.sort_by(|x, y| order_rows(x, y));
    // Sorted rows pair up, unless doubles within the tolerance sorted apart: then match
    // each row with an equal one.
    a.iter().zip(&b).all(|(x, y)| same_row(x, y)) || missing(&a, &b).is_empty()
}

pub fn show_row(row: &[Cell]) -> String {
    let cells: Vec<String> = row.iter().map(Cell::to_string).collect();
    format!("({})", cells.join(", "))
}

/// Up to `max` rows, one a line.
pub fn show_rows(rows: &Rows, max: usize) -> String {
    let mut text: String = rows
        .iter()
        .take(max)
        .map(|row| format!("    {}\n", show_row(row)))
        .collect();
    if rows.len() > max {
        text.push_str(&format!("    ... {} more\n", rows.len() - max));
    }
    text
}

/// The rows of `a` that `b` lacks (as multisets).
pub fn missing(a: &Rows, b: &Rows) -> Rows {
    let mut left: Vec<bool> = vec![true; b.len()];
    let mut out = Vec::new();
    for row in a {
        match (0..b.len()).find(|&i| left[i] && same_row(row, &b[i])) {
            Some(i) => left[i] = false,
            None => out.push(row.clone()),
        }
    }
    out
}
