//! The data of `sqlite_differential`: random tables (a random primary key type, columns of
//! every type, each with its own share of NULLs and its own value domain) and their rows,
//! kept here as the model both engines must hold. Strand gets the rows through INSERT and then
//! a few UPDATE / DELETE / re-INSERT statements (so queries read newest versions, not just
//! first ones); SQLite gets the model's final rows.

use std::collections::BTreeSet;

use super::rng::Rng;

/// A Strand column type (docs/sql.md, "Types"), those the generator uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    BigInt,
    Double,
    Text,
    Bool,
}

/// What an expression of a type may meet: numbers compare and compute across INT, BIGINT and
/// DOUBLE; TEXT and BOOLEAN only with their own type (Strand refuses `'a' < 1`, where SQLite
/// would compare by its type affinity rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Num,
    Text,
    Bool,
}

impl Ty {
    /// The name Strand gives the type in a result's `columns`.
    pub fn strand(self) -> &'static str {
        match self {
            Ty::Int => "INT",
            Ty::BigInt => "BIGINT",
            Ty::Double => "DOUBLE",
            Ty::Text => "TEXT",
            Ty::Bool => "BOOLEAN",
        }
    }

    /// The declared type of the SQLite column (its affinity: INTEGER, REAL, TEXT, NUMERIC).
    pub fn sqlite(self) -> &'static str {
        match self {
            Ty::Int | Ty::BigInt => "INTEGER",
            Ty::Double => "REAL",
            Ty::Text => "TEXT",
            Ty::Bool => "BOOLEAN",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Ty::Int | Ty::BigInt | Ty::Double => Class::Num,
            Ty::Text => Class::Text,
            Ty::Bool => Class::Bool,
        }
    }

    /// The largest magnitude a value of the type may have (with a margin below 2^63 for the
    /// f64 arithmetic of bounds); DOUBLE is kept far from infinity.
    pub fn max_magnitude(self) -> f64 {
        match self {
            Ty::Int => f64::from(i32::MAX),
            Ty::BigInt => 9.2e18,
            // DOUBLE overflow is `numeric_overflow` in Strand (as in PostgreSQL), Infinity in
            // SQLite: test `double_overflow_is_numeric_overflow`.
            _ => 1e30,
        }
    }
}

/// A value of the model (and of literals and parameters).
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Double(f64),
    Text(String),
    Bool(bool),
}

impl Val {
    /// The value as a Strand (and SQLite) literal: text quoted with `''`, doubles always with a
    /// `.` or an exponent (so both read them as DOUBLE / REAL).
    pub fn literal(&self) -> String {
        match self {
            Val::Null => "NULL".into(),
            Val::Int(v) => v.to_string(),
            Val::Double(v) => format!("{v:?}"),
            Val::Text(s) => quote(s),
            Val::Bool(true) => "TRUE".into(),
            Val::Bool(false) => "FALSE".into(),
        }
    }

    /// The value bound to a SQLite statement (BOOLEAN as 0 / 1).
    pub fn sqlite(&self) -> rusqlite::types::Value {
        use rusqlite::types::Value as S;
        match self {
            Val::Null => S::Null,
            Val::Int(v) => S::Integer(*v),
            Val::Double(v) => S::Real(*v),
            Val::Text(s) => S::Text(s.clone()),
            Val::Bool(v) => S::Integer(i64::from(*v)),
        }
    }

    pub fn magnitude(&self) -> f64 {
        match self {
            Val::Int(v) => (*v as f64).abs(),
            Val::Double(v) => v.abs(),
            _ => 0.0,
        }
    }
}

pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The value domain of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    KeyBigInt,
    KeyInt,
    KeyText,
    /// -20..=20: many duplicates, so ORDER BY ties are common.
    IntSmall,
    /// The whole INT range, extremes included (comparisons; arithmetic only where it fits).
    IntWide,
    /// Never 0: a divisor (Strand refuses division by zero, SQLite answers NULL).
    IntNonzero,
    BigSmall,
    /// i64 extremes, 2^53 + 1 (not a double), 2^62.
    BigHuge,
    /// Multiples of 1/8 (exact in binary, so literals read the same in both engines), -0.0.
    DoubleDyadic,
    DoubleWide,
    /// |v| >= 0.5: a divisor.
    DoubleNonzero,
    TextShort,
    TextMixed,
    Bool,
    /// A join key (`join.rs`): a small domain of integers (0 up to `join_domain`), so that
    /// keys repeat within a table and across tables, as INT, BIGINT or DOUBLE (a DOUBLE also
    /// holds halves, which match no integer, and -0.0, which matches 0); a few large values
    /// shared by the BIGINT and DOUBLE ones (3e9, 2^53) match exactly across types.
    JoinInt,
    JoinBig,
    JoinDouble,
}

impl Kind {
    fn ty(self) -> Ty {
        match self {
            Kind::KeyInt | Kind::IntSmall | Kind::IntWide | Kind::IntNonzero | Kind::JoinInt => {
                Ty::Int
            }
            Kind::KeyBigInt | Kind::BigSmall | Kind::BigHuge | Kind::JoinBig => Ty::BigInt,
            Kind::DoubleDyadic | Kind::DoubleWide | Kind::DoubleNonzero | Kind::JoinDouble => {
                Ty::Double
            }
            Kind::KeyText | Kind::TextShort | Kind::TextMixed => Ty::Text,
            Kind::Bool => Ty::Bool,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::JoinInt => return "ji",
            Kind::JoinBig => return "jb",
            Kind::JoinDouble => return "jd",
            _ => {}
        }
        match self.ty() {
            Ty::Int => "i",
            Ty::BigInt => "b",
            Ty::Double => "d",
            Ty::Text => "s",
            Ty::Bool => "f",
        }
    }
}

const VALUE_KINDS: [Kind; 11] = [
    Kind::IntSmall,
    Kind::IntWide,
    Kind::IntNonzero,
    Kind::BigSmall,
    Kind::BigHuge,
    Kind::DoubleDyadic,
    Kind::DoubleWide,
    Kind::DoubleNonzero,
    Kind::TextShort,
    Kind::TextMixed,
    Kind::Bool,
];

/// Short texts: case, accents, emoji (4 UTF-8 bytes), LIKE wildcards, a backslash, a quote,
/// and what a statement splitter or comment scanner could trip on inside a string.
pub const TEXTS: [&str; 30] = [
    "", "a", "A", "b", "B", "ab", "abc", "aB", "z", "Z", "aa", "a b", "é", "É", "😀", "%", "_",
    "a%b", "a_b", "x\\y", "it's", "  ", "10", "9", "a;b", "-- c", "/* c */", "$1", "$$", "?",
];
const ALPHABET: [char; 16] = [
    'a', 'b', 'A', 'z', '%', '_', '\\', ' ', 'é', 'ß', '😀', '\'', '0', '1', 'x', '~',
];

pub fn random_text(rng: &mut Rng) -> String {
    let len = rng.below(6);
    (0..len).map(|_| rng.pick(&ALPHABET)).collect()
}

/// Large join keys, equal as BIGINT and as DOUBLE: 3e9, 2^53 and (the last two) -9.2e18 and
/// -2^63.
const HUGE_BIGINT_KEYS: [i64; 4] = [3_000_000_000, 1 << 53, -9_200_000_000_000_000_000, i64::MIN];
const HUGE_DOUBLE_KEYS: [f64; 4] = [3e9, 9_007_199_254_740_992.0, -9.2e18, i64::MIN as f64];

/// All of them: the last two found that the hash join missed a BIGINT and a DOUBLE equal past
/// 9.2e18 (fixed; regression test `join_keys_equal_past_9_2e18_match`).
fn huge_keys() -> usize {
    HUGE_BIGINT_KEYS.len()
}

/// A non-NULL value of the domain (`domain`: the largest value of a join key).
pub fn value(rng: &mut Rng, kind: Kind, domain: i64) -> Val {
    match kind {
        Kind::JoinInt => Val::Int(rng.range(-1, domain)),
        Kind::JoinBig if rng.percent(3) => Val::Int(rng.pick(&HUGE_BIGINT_KEYS[..huge_keys()])),
        Kind::JoinBig => Val::Int(rng.range(-1, domain)),
        Kind::JoinDouble => Val::Double(match rng.below(100) {
            0..=2 => -0.0,
            3..=5 => rng.pick(&HUGE_DOUBLE_KEYS[..huge_keys()]),
            6..=15 => rng.range(-1, domain) as f64 + 0.5,
            _ => rng.range(-1, domain) as f64,
        }),
        Kind::KeyBigInt => Val::Int(match rng.below(10) {
            0 => rng.pick(&[1 << 40, -(1 << 40), 1 << 62, 3_000_000_000]) + rng.range(0, 9),
            _ => rng.range(-300, 300),
        }),
        Kind::KeyInt => Val::Int(match rng.below(20) {
            0 => rng.pick(&[i64::from(i32::MIN), i64::from(i32::MAX)]),
            _ => rng.range(-300, 300),
        }),
        Kind::KeyText if rng.percent(50) => Val::Text(rng.pick(&TEXTS).into()),
        Kind::KeyText | Kind::TextMixed => Val::Text(random_text(rng)),
        Kind::IntSmall => Val::Int(rng.range(-20, 20)),
        Kind::IntWide => Val::Int(match rng.below(4) {
            0 => rng
                .pick(&[i32::MIN, i32::MAX, i32::MIN + 1, 46_340, -46_341, 65_536])
                .into(),
            _ => rng.range(-1_000_000_000, 1_000_000_000),
        }),
        Kind::IntNonzero => Val::Int(rng.range(1, 9) * rng.pick(&[1, -1])),
        Kind::BigSmall => Val::Int(match rng.below(5) {
            0 => rng.pick(&[1 << 31, -(1 << 31) - 1, 1 << 32, 5_000_000_000]) + rng.range(-2, 2),
            _ => rng.range(-1_000_000, 1_000_000),
        }),
        Kind::BigHuge => Val::Int(match rng.below(3) {
            0 => rng.next_u64() as i64,
            _ => rng.pick(&[
                i64::MIN,
                i64::MAX,
                i64::MIN + 1,
                (1 << 53) + 1,
                -(1 << 53) - 1,
                1 << 53,
                1 << 62,
                0,
            ]),
        }),
        Kind::DoubleDyadic if rng.percent(3) => Val::Double(-0.0),
        Kind::DoubleDyadic => Val::Double(rng.range(-800, 800) as f64 / 8.0),
        Kind::DoubleWide => Val::Double(rng.pick(&[
            1e15,
            -1e15,
            9_007_199_254_740_992.0,
            9_007_199_254_740_994.0,
            4.611_686_018_427_388e18,
            -9.2e18,
            0.000_976_562_5,
            -0.5,
            123_456.75,
            0.0,
        ])),
        Kind::DoubleNonzero => Val::Double(rng.range(1, 40) as f64 / 2.0 * rng.pick(&[1.0, -1.0])),
        Kind::TextShort => Val::Text(rng.pick(&TEXTS).into()),
        Kind::Bool => Val::Bool(rng.percent(50)),
    }
}

#[derive(Clone)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
    pub kind: Kind,
    null_percent: u64,
    /// The largest magnitude of the column's values (0 without numbers).
    pub bound: f64,
    /// The smallest magnitude of its non-NULL values (infinite when it has none).
    pub min_abs: f64,
    /// Its distinct non-NULL values: literals are often drawn from them.
    pub values: Vec<Val>,
}

pub struct Table {
    /// `t0`, `t1`, ...: in namespace `app` in both engines (SQLite attaches a database `app`).
    pub name: String,
    /// The primary key first.
    pub columns: Vec<Column>,
    /// The rows after the setup statements, in the order of `columns`.
    pub rows: Vec<Vec<Val>>,
    /// The statements that give Strand these rows.
    pub strand_setup: Vec<String>,
    /// The largest small value of its join key column (`Kind::JoinInt` ...).
    pub join_domain: i64,
}

impl Table {
    pub fn qualified(&self) -> String {
        format!("app.{}", self.name)
    }

    pub fn key(&self) -> &Column {
        &self.columns[0]
    }

    /// A random table: `rows` rows at first, then updates, deletes and re-inserts; its last
    /// column is a join key with values up to `join_domain` (`Kind::JoinInt`).
    pub fn random(
        rng: &mut Rng,
        name: &str,
        rows: usize,
        all_kinds: bool,
        join_domain: i64,
    ) -> Table {
        let key = rng.pick(&[Kind::KeyBigInt, Kind::KeyInt, Kind::KeyText]);
        let mut kinds = vec![key];
        for kind in VALUE_KINDS {
            if all_kinds || rng.percent(45) {
                kinds.push(kind);
            }
        }
        kinds.push(rng.pick(&[Kind::JoinInt, Kind::JoinBig, Kind::JoinDouble]));
        let columns = kinds
            .iter()
            .enumerate()
            .map(|(index, kind)| Column {
                name: match index {
                    0 => "id".into(),
                    _ => format!("{}{index}", kind.prefix()),
                },
                ty: kind.ty(),
                kind: *kind,
                null_percent: match kind {
                    _ if index == 0 => 0,
                    Kind::JoinInt | Kind::JoinBig | Kind::JoinDouble => rng.pick(&[5, 10, 20]),
                    _ => rng.pick(&[0, 10, 25, 25, 50, 100]),
                },
                bound: 0.0,
                min_abs: f64::INFINITY,
                values: Vec::new(),
            })
            .collect();
        let mut table = Table {
            name: name.into(),
            columns,
            rows: Vec::new(),
            strand_setup: Vec::new(),
            join_domain,
        };
        let mut keys = BTreeSet::new();
        let mut fresh = Vec::new();
        for _ in 0..rows * 4 {
            if fresh.len() == rows {
                break;
            }
            let row = table.random_row(rng);
            if keys.insert(row[0].literal()) {
                fresh.push(row);
            }
        }
        table.insert(fresh);
        table.mutate(rng, &mut keys);
        table.measure();
        table
    }

    fn random_row(&self, rng: &mut Rng) -> Vec<Val> {
        self.columns
            .iter()
            .map(|column| {
                if rng.percent(column.null_percent) {
                    Val::Null
                } else {
                    value(rng, column.kind, self.join_domain)
                }
            })
            .collect()
    }

    fn insert(&mut self, rows: Vec<Vec<Val>>) {
        if rows.is_empty() {
            return;
        }
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let values: Vec<String> = rows
            .iter()
            .map(|row| {
                let items: Vec<String> = row.iter().map(Val::literal).collect();
                format!("({})", items.join(", "))
            })
            .collect();
        self.strand_setup.push(format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.qualified(),
            names.join(", "),
            values.join(", ")
        ));
        self.rows.extend(rows);
    }

    /// Updates of random rows, deletes, and re-inserts of deleted keys.
    fn mutate(&mut self, rng: &mut Rng, keys: &mut BTreeSet<String>) {
        if self.rows.is_empty() || self.columns.len() < 2 {
            return;
        }
        let mut deleted = Vec::new();
        for _ in 0..rng.range(2, 8) {
            if self.rows.is_empty() {
                break;
            }
            let picked: Vec<usize> = (0..rng.range(1, 4))
                .map(|_| rng.below(self.rows.len()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let in_list: Vec<String> = picked.iter().map(|&i| self.rows[i][0].literal()).collect();
            let filter = format!("WHERE id IN ({})", in_list.join(", "));
            if rng.percent(65) {
                let column = rng.range(1, self.columns.len() as i64 - 1) as usize;
                let new = if rng.percent(20) {
                    Val::Null
                } else {
                    value(rng, self.columns[column].kind, self.join_domain)
                };
                let name = &self.columns[column].name;
                self.strand_setup.push(format!(
                    "UPDATE {} SET {name} = {} {filter}",
                    self.qualified(),
                    new.literal()
                ));
                for &i in &picked {
                    self.rows[i][column] = new.clone();
                }
            } else {
                self.strand_setup
                    .push(format!("DELETE FROM {} {filter}", self.qualified()));
                for &i in picked.iter().rev() {
                    let row = self.rows.remove(i);
                    keys.remove(&row[0].literal());
                    deleted.push(row[0].clone());
                }
            }
        }
        let mut again = Vec::new();
        for key in deleted {
            if rng.percent(50) && keys.insert(key.literal()) {
                let mut row = self.random_row(rng);
                row[0] = key;
                again.push(row);
            }
        }
        self.insert(again);
    }

    fn measure(&mut self) {
        for (index, column) in self.columns.iter_mut().enumerate() {
            let mut seen = BTreeSet::new();
            for row in &self.rows {
                let value = &row[index];
                if *value == Val::Null {
                    continue;
                }
                column.bound = column.bound.max(value.magnitude());
                column.min_abs = column.min_abs.min(value.magnitude());
                if seen.insert(value.literal()) {
                    column.values.push(value.clone());
                }
            }
        }
    }

    /// `CREATE TABLE` for Strand.
    pub fn strand_ddl(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let key = if i == 0 { " PRIMARY KEY" } else { "" };
                format!("{} {}{key}", c.name, c.ty.strand())
            })
            .collect();
        format!(
            "CREATE TABLE {} ({}) WITH (TYPE = 'SHARED')",
            self.qualified(),
            columns.join(", ")
        )
    }

    /// Creates the table in SQLite's attached database `app` and inserts the model's rows.
    pub fn load_sqlite(&self, db: &rusqlite::Connection) -> rusqlite::Result<()> {
        let columns: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let key = if i == 0 { " PRIMARY KEY" } else { "" };
                format!("{} {}{key}", c.name, c.ty.sqlite())
            })
            .collect();
        db.execute_batch(&format!(
            "CREATE TABLE {} ({})",
            self.qualified(),
            columns.join(", ")
        ))?;
        let marks: Vec<String> = (1..=self.columns.len()).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {} VALUES ({})",
            self.qualified(),
            marks.join(", ")
        );
        let mut statement = db.prepare(&insert)?;
        for row in &self.rows {
            let values: Vec<rusqlite::types::Value> = row.iter().map(Val::sqlite).collect();
            statement.execute(rusqlite::params_from_iter(values))?;
        }
        Ok(())
    }
}
