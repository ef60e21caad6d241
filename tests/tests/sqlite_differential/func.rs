//! Functions, CASE and CASTs of the row (docs/sql.md, "Functions" and "CAST"), with the SQLite
//! translation where the two differ from PostgreSQL's semantics, which Strand follows:
//! - LOWER / UPPER: SQLite's map ASCII only; the test registers `pg_lower` / `pg_upper`
//!   (Rust's Unicode case mapping, `ß` uppercases to `SS`);
//! - SUBSTRING with a start below 1: SQLite counts such a start from the end of the text,
//!   PostgreSQL from before its first character: SQLite gets `substr(t, 1, start + count -
//!   1)` (start and count are constants, so the translation is computed here);
//! - ROUND: SQLite's returns REAL for integers: an integer ROUND is the value itself, or (with
//!   negative digits) integer arithmetic; a DOUBLE is rounded as a magnitude (halves away from
//!   zero on both sides);
//! - LENGTH: only of TEXT (SQLite's counts the digits of a number);
//! - ABS of the most negative integer and a negative SUBSTRING count are errors in Strand
//!   (by design, as in PostgreSQL): not generated;
//! - CAST of the row: numbers to wider numbers (to INT only when they fit), integers and TEXT
//!   to TEXT, BOOLEAN to TEXT (`true`, SQLite `1`: SQLite gets a CASE). Not generated: DOUBLE
//!   to an integer (PostgreSQL rounds, SQLite truncates), DOUBLE to TEXT (formatting), TEXT to
//!   a number (text that does not convert fails the query).

use super::constructs::Construct;
use super::expr::{Dialect, E, K};
use super::gen::{wider, Gen};
use super::schema::{Class, Ty, Val};

/// `name(args)` with the static facts given.
fn call(name: &'static str, sqlite: &'static str, args: Vec<E>, ty: Option<Ty>, bound: f64) -> E {
    let constant = args.iter().all(|a| a.constant);
    E::new(K::Call(name, sqlite, args), ty, bound, 0.0, constant)
}

/// `strand` in Strand, `sqlite` (SQL text) in SQLite, with `strand`'s facts.
fn translated(strand: E, sqlite: String) -> E {
    let (ty, bound, min_abs, constant) = (strand.ty, strand.bound, strand.min_abs, strand.constant);
    E::new(
        K::Sqlite(Box::new(strand), sqlite),
        ty,
        bound,
        min_abs,
        constant,
    )
}

/// `e` widened to `ty` as Strand does per row (COALESCE, CASE): SQLite keeps each value's
/// own type, so an integer result of a DOUBLE COALESCE would stay exact there.
fn widen(e: E, ty: Ty) -> E {
    match e.ty {
        Some(Ty::Int | Ty::BigInt) if ty == Ty::Double => {
            let sqlite = format!("CAST({} AS REAL)", e.render(Dialect::Sqlite));
            translated(e, sqlite)
        }
        _ => e,
    }
}

impl Gen<'_> {
    /// A function call, CASE or CAST of the row of `class` (a construct of `func.rs`).
    pub fn function(&mut self, c: Construct, class: Class, depth: u32) -> E {
        let below = depth.saturating_sub(1);
        match (c, class) {
            (Construct::Abs, _) => {
                let operand = self.num(below);
                let ty = match operand.ty {
                    Some(ty) if operand.bound <= ty.max_magnitude() => ty,
                    _ => return operand,
                };
                let (bound, min_abs) = (operand.bound, operand.min_abs);
                let mut e = call("ABS", "abs", vec![operand], Some(ty), bound);
                e.min_abs = min_abs;
                e
            }
            (Construct::Round, _) => self.round(below),
            (Construct::Length, _) => {
                let operand = self.text(below);
                if operand.ty.is_none() {
                    return self.num_leaf();
                }
                let name = self.rng.pick(&["LENGTH", "LENGTH", "CHAR_LENGTH"]);
                call(name, "length", vec![operand], Some(Ty::Int), 1000.0)
            }
            (Construct::Lower | Construct::Upper, _) => {
                let operand = self.text(below);
                if operand.ty.is_none() {
                    return operand;
                }
                let (name, sqlite) = match c {
                    Construct::Lower => ("LOWER", "pg_lower"),
                    _ => ("UPPER", "pg_upper"),
                };
                call(name, sqlite, vec![operand], Some(Ty::Text), 0.0)
            }
            (Construct::Substring, _) => self.substring(below),
            (Construct::Coalesce, _) => {
                let mut args = vec![self.of_class(class, below)];
                for _ in 0..self.rng.range(1, 2) {
                    // `constant_for` may send a number as JSON text: it takes the type of
                    // the other arguments (test `coalesce_with_decimal_text_parameter`).
                    let arg = if self.rng.percent(40) && args[0].ty.is_some() {
                        self.constant_for(&args[0])
                    } else if self.rng.percent(40) && class == Class::Num {
                        let value = self.num_value();
                        self.constant(value)
                    } else {
                        self.of_class(class, below)
                    };
                    args.push(arg);
                }
                let typed: Vec<Ty> = args.iter().filter_map(|a| a.ty).collect();
                if typed.is_empty() || typed.iter().any(|t| t.class() != class) {
                    return self.of_class(class, 0);
                }
                let ty = typed.iter().fold(typed[0], |a, b| wider(Some(a), Some(*b)));
                let ty = if class == Class::Num { ty } else { typed[0] };
                let bound = args.iter().map(|a| a.bound).fold(0.0, f64::max);
                let min_abs = args.iter().map(|a| a.min_abs).fold(f64::INFINITY, f64::min);
                let args = args.into_iter().map(|a| widen(a, ty)).collect();
                let mut e = call("COALESCE", "coalesce", args, Some(ty), bound);
                e.min_abs = min_abs;
                e
            }
            (Construct::NullIf, _) => {
                let a = self.of_class(class, below);
                let b = if self.rng.percent(60) && a.ty.is_some() {
                    self.constant_for(&a)
                } else {
                    self.of_class(class, below)
                };
                // Strand's NULLIF has its first argument's type (else the second's).
                let ty = a.ty.or(b.ty);
                let bound = a.bound.max(if a.ty.is_none() { b.bound } else { 0.0 });
                let min_abs = a.min_abs;
                let mut e = call("NULLIF", "nullif", vec![a, b], ty, bound);
                e.min_abs = min_abs;
                e
            }
            (Construct::CaseWhen, _) => self.case(class, below),
            (Construct::Cast, Class::Text) => self.cast_row_text(below),
            (Construct::Cast, _) => self.cast_row_num(below),
            _ => self.of_class(class, 0),
        }
    }

    /// `ROUND(x [, digits])`.
    fn round(&mut self, depth: u32) -> E {
        let operand = self.num(depth);
        let Some(ty) = operand.ty else {
            return operand;
        };
        // A DOUBLE rounds to whole numbers only: with digits, a value near a half (12362.375 / 5
        // is 2472.475 as written, 2472.4749999... in binary) rounds up in Strand, which scales
        // first (as PostgreSQL's NUMERIC rounds the decimal), and down in SQLite.
        let digits = match ty {
            Ty::Double => 0,
            _ => self.rng.range(-3, 2),
        };
        let with_digits = self.rng.percent(50);
        let scale = 10f64.powi(-(digits as i32));
        let sqlite_x = operand.render(Dialect::Sqlite);
        let (sqlite, bound) = match ty {
            Ty::Double if operand.bound > 1e6 => return operand,
            Ty::Double => {
                let d = if with_digits { digits } else { 0 };
                (
                    format!(
                        "CASE WHEN ({sqlite_x}) < 0 THEN -round(-({sqlite_x}), {d}) \
                         ELSE round({sqlite_x}, {d}) END"
                    ),
                    operand.bound + 1.0,
                )
            }
            _ if !with_digits || digits >= 0 => (sqlite_x.clone(), operand.bound),
            _ if operand.bound + scale > ty.max_magnitude() => return operand,
            _ => {
                let (m, h) = (scale as i64, scale as i64 / 2);
                (
                    format!(
                        "CASE WHEN ({sqlite_x}) < 0 THEN -((-({sqlite_x}) + {h}) / {m} * {m}) \
                         ELSE (({sqlite_x}) + {h}) / {m} * {m} END"
                    ),
                    operand.bound + scale,
                )
            }
        };
        let mut args = vec![operand];
        if with_digits {
            args.push(self.literal(Val::Int(digits)));
        }
        translated(call("ROUND", "round", args, Some(ty), bound), sqlite)
    }

    /// `SUBSTRING(t, start [, count])` in its spellings; start and count are constants.
    fn substring(&mut self, depth: u32) -> E {
        let operand = self.text(depth);
        if operand.ty.is_none() {
            return operand;
        }
        let start = self.rng.range(-2, 5);
        let count = self.rng.percent(60).then(|| self.rng.range(0, 4));
        let sqlite_x = operand.render(Dialect::Sqlite);
        let sqlite = match count {
            _ if start >= 1 => match count {
                Some(count) => format!("substr({sqlite_x}, {start}, {count})"),
                None => format!("substr({sqlite_x}, {start})"),
            },
            Some(count) => format!("substr({sqlite_x}, 1, {})", (start + count - 1).max(0)),
            None => format!("substr({sqlite_x}, 1)"),
        };
        let mut args = vec![operand, self.constant(Val::Int(start))];
        if let Some(count) = count {
            args.push(self.constant(Val::Int(count)));
        }
        let name = self.rng.pick(&["SUBSTRING", "SUBSTR", "FROM"]);
        let constant = args.iter().all(|a| a.constant);
        let k = match name {
            "FROM" => K::SubstringFrom(args),
            _ => K::Call(name, "substr", args),
        };
        translated(E::new(k, Some(Ty::Text), 0.0, 0.0, constant), sqlite)
    }

    /// `CASE WHEN c THEN r ... [ELSE e] END` or `CASE x WHEN v THEN r ... END`, of `class`.
    fn case(&mut self, class: Class, depth: u32) -> E {
        let operand = self.rng.percent(30).then(|| {
            let operand_class = [Class::Num, Class::Text][self.rng.below(2)];
            self.of_class(operand_class, depth)
        });
        let mut branches = Vec::new();
        for _ in 0..self.rng.range(1, 3) {
            let when = match &operand {
                Some(operand) if self.rng.percent(80) => self.constant_for(operand),
                Some(operand) => {
                    let operand_class = operand.ty.map_or(Class::Num, Ty::class);
                    self.of_class(operand_class, depth)
                }
                None => self.boolean(depth),
            };
            let then = self.of_class(class, depth);
            branches.push((when, then));
        }
        let otherwise = self.rng.percent(70).then(|| self.of_class(class, depth));
        let results = || branches.iter().map(|(_, then)| then).chain(&otherwise);
        let typed: Vec<Ty> = results().filter_map(|r| r.ty).collect();
        if typed.is_empty() || typed.iter().any(|t| t.class() != class) {
            return self.of_class(class, 0);
        }
        let ty = typed.iter().fold(typed[0], |a, b| wider(Some(a), Some(*b)));
        let ty = if class == Class::Num { ty } else { typed[0] };
        let bound = results().map(|r| r.bound).fold(0.0, f64::max);
        let min_abs = results().map(|r| r.min_abs).fold(f64::INFINITY, f64::min);
        let constant = operand.as_ref().is_none_or(|o| o.constant)
            && branches.iter().all(|(w, t)| w.constant && t.constant)
            && otherwise.as_ref().is_none_or(|o| o.constant);
        let branches = branches
            .into_iter()
            .map(|(w, t)| (w, widen(t, ty)))
            .collect();
        let otherwise = otherwise.map(|o| Box::new(widen(o, ty)));
        let k = K::Case(operand.map(Box::new), branches, otherwise);
        E::new(k, Some(ty), bound, min_abs, constant)
    }

    /// CAST of a number of the row to a number type it fits.
    fn cast_row_num(&mut self, depth: u32) -> E {
        let operand = self.num(depth);
        let targets: &[Ty] = match operand.ty {
            Some(Ty::Int) => &[Ty::Int, Ty::BigInt, Ty::Double],
            Some(Ty::BigInt) if operand.bound <= f64::from(i32::MAX) => {
                &[Ty::Int, Ty::BigInt, Ty::Double]
            }
            Some(Ty::BigInt) => &[Ty::BigInt, Ty::Double],
            Some(Ty::Double) => &[Ty::Double],
            _ => return operand,
        };
        let target = self.rng.pick(targets);
        let type_name = self.rng.pick(match target {
            Ty::Int => &super::gen::INT_NAMES[..],
            Ty::BigInt => &super::gen::BIGINT_NAMES[..],
            _ => &super::gen::DOUBLE_NAMES[..],
        });
        self.cast_row(operand, target, type_name, None)
    }

    /// CAST of an integer, TEXT or BOOLEAN of the row to TEXT.
    fn cast_row_text(&mut self, depth: u32) -> E {
        let bools = self.columns_of(Class::Bool);
        let type_name = self.rng.pick(&["TEXT", "VARCHAR", "TEXT"]);
        if !bools.is_empty() && self.rng.percent(25) {
            let index = self.rng.pick(&bools);
            let column = self.column(index);
            let sqlite = format!(
                "CASE {} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",
                column.render(Dialect::Sqlite)
            );
            let e = self.cast_row(column, Ty::Text, type_name, None);
            return translated(e, sqlite);
        }
        let operand = if self.rng.percent(50) {
            self.text(depth)
        } else {
            self.num(depth)
        };
        match operand.ty {
            Some(Ty::Int | Ty::BigInt | Ty::Text) => {
                self.cast_row(operand, Ty::Text, type_name, None)
            }
            _ => self.text_leaf(),
        }
    }

    fn cast_row(
        &mut self,
        operand: E,
        target: Ty,
        type_name: &'static str,
        text: Option<String>,
    ) -> E {
        let (bound, min_abs, constant) = (operand.bound, operand.min_abs, operand.constant);
        let mut e = self.cast(operand, target, type_name, &Val::Null, text);
        (e.bound, e.min_abs, e.constant) = (bound, min_abs, constant);
        e
    }

    /// CAST of a constant to TEXT. DOUBLE and BOOLEAN are written as PostgreSQL writes them
    /// (`2`, `0.5`, `true`), which SQLite does not (`2.0`, `1`): SQLite gets that text. Only
    /// doubles from 10^-4 to 10^15 in magnitude are cast: outside, PostgreSQL switches to
    /// exponent notation (`1e+15`, `1e-05`) and Strand does not (`1000000000000000`).
    pub fn cast_text(&mut self) -> E {
        let type_name = self.rng.pick(&["TEXT", "VARCHAR", "TEXT"]);
        let (operand, sqlite_text) = match self.rng.below(5) {
            0 => {
                let value = self.num_value();
                let value = match value {
                    Val::Double(v) if v.abs() >= 1e15 || (v != 0.0 && v.abs() < 1e-4) => {
                        Val::Double(v.abs().log2().round())
                    }
                    other => other,
                };
                let text = match &value {
                    Val::Double(v) => Some(v.to_string()),
                    _ => None,
                };
                (self.constant(value), text)
            }
            1 => {
                let value = self.rng.percent(50);
                (self.constant(Val::Bool(value)), Some(value.to_string()))
            }
            2 => {
                let value = self.text_value();
                (self.constant(value), None)
            }
            3 => (self.null(), None),
            _ => {
                let value = Val::Int(self.rng.range(-100_000, 100_000));
                (self.constant(value), None)
            }
        };
        let result = Val::Null;
        self.cast(operand, Ty::Text, type_name, &result, sqlite_text)
    }
}
