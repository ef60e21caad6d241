//! The typed expression generator: numbers (INT, BIGINT, DOUBLE), TEXT, and the leaves of
//! both (columns, literals, parameters, CAST of constants). What it may produce is in
//! `constructs.rs`; conditions are in `cond.rs`, the query around them in `query.rs`.

use serde_json::{json, Value as Json};

use super::constructs::{enabled, Construct};
use super::expr::{Arith, CastStyle, LitStyle, E, K};
use super::join::JoinScope;
use super::rng::Rng;
use super::schema::{random_text, Class, Table, Ty, Val, TEXTS};

/// How the constants of `pk = c` and `pk IN (...)` are typed (numeric keys): INT, BIGINT or
/// DOUBLE; a query has a form and its constants often change it (mixed forms in one AND were
/// a server bug: `key_lookups_and_mixed_numeric_constants`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyForm {
    Int,
    BigInt,
    Double,
}

pub struct Gen<'a> {
    pub rng: Rng,
    /// The row the query reads: one table, or a join's tables side by side (`join.rs`).
    pub table: &'a Table,
    /// How a column may be qualified: `q.` with a table alias, else `t0.` or `app.t0.`.
    pub qualifiers: Vec<String>,
    /// In a join: how each column of the joined row is named (then `qualifiers` is unused).
    pub join: Option<&'a JoinScope>,
    /// Expressions read only the columns before this one (an ON reads the tables up to its
    /// own); otherwise every column.
    pub visible: usize,
    /// At most this many rows are read (a join's: a bound on its joined rows): LIMIT counts
    /// and the bounds of SUM follow it.
    pub rows: usize,
    /// `$n` is `params[n - 1]`: its JSON for Strand and its value for SQLite.
    pub params: Vec<(Json, Val)>,
    pub key_form: KeyForm,
    /// A few keys of the table the query's key lookups favour (so that they meet).
    pub hot_keys: Vec<Val>,
}

pub const INT_NAMES: [&str; 3] = ["INT", "INTEGER", "INT4"];
pub const BIGINT_NAMES: [&str; 3] = ["BIGINT", "INT8", "INT64"];
pub const DOUBLE_NAMES: [&str; 4] = ["DOUBLE", "DOUBLE PRECISION", "FLOAT", "FLOAT8"];

/// The type of a numeric literal in Strand: INT when it fits 32 bits.
pub fn literal_ty(value: &Val) -> Option<Ty> {
    match value {
        Val::Int(v) if i32::try_from(*v).is_ok() => Some(Ty::Int),
        Val::Int(_) => Some(Ty::BigInt),
        Val::Double(_) => Some(Ty::Double),
        Val::Text(_) => Some(Ty::Text),
        Val::Bool(_) => Some(Ty::Bool),
        Val::Null => None,
    }
}

/// The result type of arithmetic (docs/sql.md, "Arithmetic"): the wider operand type, the
/// typed one when the other is NULL, INT for two NULLs.
pub fn wider(a: Option<Ty>, b: Option<Ty>) -> Ty {
    match (a, b) {
        (Some(Ty::Double), _) | (_, Some(Ty::Double)) => Ty::Double,
        (Some(Ty::BigInt), _) | (_, Some(Ty::BigInt)) => Ty::BigInt,
        _ => Ty::Int,
    }
}

impl Gen<'_> {
    /// One of `choices` that is enabled, in proportion to the weights.
    pub fn choose(&mut self, choices: &[(Construct, u32)]) -> Option<Construct> {
        let allowed: Vec<(Construct, u32)> = choices
            .iter()
            .copied()
            .filter(|(c, w)| *w > 0 && enabled(*c))
            .collect();
        if allowed.is_empty() {
            return None;
        }
        let weights: Vec<u32> = allowed.iter().map(|(_, w)| *w).collect();
        Some(allowed[self.rng.weighted(&weights)].0)
    }

    pub fn columns_of(&self, class: Class) -> Vec<usize> {
        let columns = self.table.columns.iter().enumerate();
        columns
            .take(self.visible)
            .filter(|(_, c)| c.ty.class() == class)
            .map(|(i, _)| i)
            .collect()
    }

    /// Column `index`, spelled `i1`, `I1`, `"i1"` or qualified (in a join as `JoinScope`
    /// says).
    pub fn column(&mut self, index: usize) -> E {
        let column = &self.table.columns[index];
        let spelled = match self.join {
            Some(scope) => scope.spell(&mut self.rng, index, &column.name),
            None => self.spell(index),
        };
        let k = K::Column(spelled, index);
        E::new(k, Some(column.ty), column.bound, column.min_abs, false)
    }

    /// Column `index` of the one table read, as `column` spells it.
    fn spell(&mut self, index: usize) -> String {
        let name = &self.table.columns[index].name;
        match self.rng.below(20) {
            0 | 1 => name.to_ascii_uppercase(),
            2 | 3 => format!("\"{name}\""),
            4..=8 if enabled(Construct::QualifiedColumn) => {
                let qualifier = self.rng.below(self.qualifiers.len());
                format!("{}{name}", self.qualifiers[qualifier])
            }
            _ => name.clone(),
        }
    }

    pub fn literal(&mut self, value: Val) -> E {
        let style = match self.rng.below(10) {
            0 => LitStyle::Escaped,
            1 => LitStyle::Dollar,
            2 => LitStyle::Exponent,
            3 => LitStyle::Dot,
            _ => LitStyle::Plain,
        };
        let (ty, magnitude) = (literal_ty(&value), value.magnitude());
        let min_abs = if value == Val::Null {
            f64::INFINITY
        } else {
            magnitude
        };
        E::new(K::Literal(value, style), ty, magnitude, min_abs, true)
    }

    pub fn null(&mut self) -> E {
        self.literal(Val::Null)
    }

    /// `$n` with `json` for Strand and `value` for SQLite; `ty` is its type in Strand (JSON
    /// integers are BIGINT, other numbers DOUBLE; docs/sql.md, "Parameters").
    pub fn param(&mut self, json: Json, value: Val, ty: Option<Ty>) -> E {
        let magnitude = value.magnitude();
        let min_abs = if value == Val::Null {
            f64::INFINITY
        } else {
            magnitude
        };
        self.params.push((json, value));
        E::new(K::Param(self.params.len()), ty, magnitude, min_abs, true)
    }

    /// `$n` carrying `value` as its natural JSON.
    pub fn param_of(&mut self, value: Val) -> E {
        let (json, ty) = match &value {
            Val::Null => (Json::Null, None),
            Val::Int(v) => (json!(v), Some(Ty::BigInt)),
            Val::Double(v) => (json!(v), Some(Ty::Double)),
            Val::Text(s) => (json!(s), Some(Ty::Text)),
            Val::Bool(b) => (json!(b), Some(Ty::Bool)),
        };
        self.param(json, value, ty)
    }

    /// A literal (mostly) or a parameter holding `value`.
    pub fn constant(&mut self, value: Val) -> E {
        if self.rng.percent(20) && enabled(Construct::Parameter) {
            self.param_of(value)
        } else {
            self.literal(value)
        }
    }

    pub fn paren(e: E) -> E {
        let E {
            ty,
            bound,
            min_abs,
            constant,
            ..
        } = e;
        E::new(K::Paren(Box::new(e)), ty, bound, min_abs, constant)
    }

    /// A number: often a value of the table, else a small or large one of either type.
    pub fn num_value(&mut self) -> Val {
        let numeric: Vec<usize> = self
            .columns_of(Class::Num)
            .into_iter()
            .filter(|&i| !self.table.columns[i].values.is_empty())
            .collect();
        match self.rng.below(7) {
            0..=2 if !numeric.is_empty() => {
                let values = &self.table.columns[self.rng.pick(&numeric)].values;
                values[self.rng.below(values.len())].clone()
            }
            0..=2 => Val::Int(self.rng.range(-10, 10)),
            3 => Val::Int(self.rng.range(-1000, 1000)),
            4 => Val::Double(self.rng.range(-160, 160) as f64 / 8.0),
            5 => Val::Int(self.rng.range(-5, 5)),
            _ => match self.rng.below(6) {
                0 => Val::Int(3_000_000_000),
                1 => Val::Int(-(1 << 40)),
                2 => Val::Int(i64::from(i32::MAX)),
                3 => Val::Double(2.0),
                4 => Val::Double(-0.0),
                _ => Val::Double(9_007_199_254_740_992.0),
            },
        }
    }

    pub fn text_value(&mut self) -> Val {
        let texts = self.columns_of(Class::Text);
        let texts: Vec<usize> = texts
            .into_iter()
            .filter(|&i| !self.table.columns[i].values.is_empty())
            .collect();
        Val::Text(match self.rng.below(10) {
            0..=3 if !texts.is_empty() => {
                let values = &self.table.columns[self.rng.pick(&texts)].values;
                match &values[self.rng.below(values.len())] {
                    Val::Text(s) => s.clone(),
                    other => other.literal(),
                }
            }
            0..=6 => self.rng.pick(&TEXTS).to_string(),
            _ => random_text(&mut self.rng),
        })
    }

    /// A numeric expression of at most `depth` levels.
    pub fn num(&mut self, depth: u32) -> E {
        if depth == 0 || self.rng.percent(30) {
            return self.num_leaf();
        }
        let choice = self.choose(&[
            (Construct::Add, 6),
            (Construct::Subtract, 5),
            (Construct::Multiply, 5),
            (Construct::Divide, 4),
            (Construct::Remainder, 3),
            (Construct::Negate, 2),
            (Construct::UnaryPlus, 1),
            (Construct::Parens, 1),
            (Construct::Abs, 2),
            (Construct::Round, 2),
            (Construct::Length, 2),
            (Construct::Coalesce, 2),
            (Construct::NullIf, 1),
            (Construct::CaseWhen, 2),
            (Construct::Cast, 1),
        ]);
        let op = match choice {
            Some(Construct::Add) => Arith::Add,
            Some(Construct::Subtract) => Arith::Sub,
            Some(Construct::Multiply) => Arith::Mul,
            Some(Construct::Divide) => Arith::Div,
            Some(Construct::Remainder) => Arith::Rem,
            Some(Construct::Negate) => return self.negate(depth),
            Some(Construct::UnaryPlus) => {
                let operand = self.num(depth - 1);
                let E {
                    ty,
                    bound,
                    min_abs,
                    constant,
                    ..
                } = operand;
                return E::new(K::Plus(Box::new(operand)), ty, bound, min_abs, constant);
            }
            Some(Construct::Parens) => return Gen::paren(self.num(depth - 1)),
            // EXTENSION POINT: further numeric constructs (`func.rs`).
            Some(c) => return self.function(c, Class::Num, depth),
            None => return self.num_leaf(),
        };
        let left = self.num(depth - 1);
        let right = match op {
            Arith::Div | Arith::Rem => self.divisor(),
            _ => self.num(depth - 1),
        };
        arith(op, left, right)
    }

    fn negate(&mut self, depth: u32) -> E {
        let operand = self.num(depth - 1);
        let E {
            ty,
            bound,
            min_abs,
            constant,
            ..
        } = operand;
        if bound > ty.unwrap_or(Ty::Int).max_magnitude() {
            return operand;
        }
        // `-` before a number's digits makes one literal (as in PostgreSQL), typed by its
        // value: `-2147483648` is an INT, though `2147483648` is a BIGINT.
        let ty = match &operand.k {
            K::Literal(Val::Int(v), _) if *v >= 0 => literal_ty(&Val::Int(-*v)),
            _ => ty,
        };
        E::new(K::Negate(Box::new(operand)), ty, bound, min_abs, constant)
    }

    /// A numeric leaf that is never 0: Strand refuses division by zero
    /// (`division_by_zero`, also for DOUBLE and `%`), where SQLite answers NULL.
    fn divisor(&mut self) -> E {
        for _ in 0..8 {
            let leaf = self.num_leaf();
            if leaf.min_abs > 0.0 {
                return leaf;
            }
        }
        let value = Val::Int(self.rng.range(1, 9));
        self.literal(value)
    }

    pub fn num_leaf(&mut self) -> E {
        let columns = self.columns_of(Class::Num);
        let choice = self.choose(&[
            (Construct::Column, if columns.is_empty() { 0 } else { 50 }),
            (Construct::Literal, 30),
            (Construct::NullLiteral, 3),
            (Construct::Parameter, 8),
            (Construct::Cast, 8),
        ]);
        match choice {
            Some(Construct::Column) => {
                let index = self.rng.pick(&columns);
                self.column(index)
            }
            Some(Construct::NullLiteral) => self.null(),
            Some(Construct::Parameter) => {
                let value = self.num_value();
                self.param_of(value)
            }
            Some(Construct::Cast) => self.cast_num(),
            _ => {
                let value = self.num_value();
                self.literal(value)
            }
        }
    }

    /// CAST of a constant to a number (docs/sql.md, "CAST": constants only; text converts to
    /// INT / BIGINT when it is decimal digits, a DOUBLE when it is integral; TEXT to DOUBLE
    /// is refused, unlike PostgreSQL, so it is not generated).
    fn cast_num(&mut self) -> E {
        let target = self.rng.pick(&[Ty::Int, Ty::BigInt, Ty::Double]);
        let value = self.rng.range(-100_000, 100_000);
        let value = match target {
            Ty::BigInt if self.rng.percent(30) => value * 1_000_000_000,
            _ => value,
        };
        let (operand, result) = match self.rng.below(10) {
            0 => (self.null(), Val::Null),
            1 | 2 if target != Ty::Double => {
                let text = self
                    .rng
                    .pick(&["{}", " {}", "{} ", "+{}"])
                    .replace("{}", &value.to_string());
                let text = if value < 0 { value.to_string() } else { text };
                let operand = if self.rng.percent(50) && enabled(Construct::Parameter) {
                    self.param(json!(text), Val::Text(text.clone()), Some(Ty::Text))
                } else {
                    self.literal(Val::Text(text))
                };
                (operand, Val::Int(value))
            }
            3 | 4 => {
                let double =
                    Val::Double(value as f64 / if target == Ty::Double { 8.0 } else { 1.0 });
                let result = match target {
                    Ty::Double => double.clone(),
                    _ => Val::Int(value),
                };
                (self.constant(double), result)
            }
            _ => {
                let result = match target {
                    Ty::Double => Val::Double(value as f64),
                    _ => Val::Int(value),
                };
                (self.constant(Val::Int(value)), result)
            }
        };
        let names: &[&'static str] = match target {
            Ty::Int => &INT_NAMES,
            Ty::BigInt => &BIGINT_NAMES,
            _ => &DOUBLE_NAMES,
        };
        let type_name = self.rng.pick(names);
        self.cast(operand, target, type_name, &result, None)
    }

    pub fn cast(
        &mut self,
        operand: E,
        target: Ty,
        type_name: &'static str,
        result: &Val,
        sqlite_text: Option<String>,
    ) -> E {
        let typed = matches!(operand.k, K::Literal(Val::Text(_), LitStyle::Plain))
            && matches!(target, Ty::Int | Ty::BigInt | Ty::Text)
            && self.rng.percent(40);
        let style = if typed {
            CastStyle::Typed
        } else if self.rng.percent(30) {
            CastStyle::Colons
        } else {
            CastStyle::Function
        };
        let k = K::Cast {
            operand: Box::new(operand),
            type_name,
            style,
            sqlite_text,
        };
        let magnitude = result.magnitude();
        let min_abs = if *result == Val::Null {
            f64::INFINITY
        } else {
            magnitude
        };
        E::new(k, Some(target), magnitude, min_abs, true)
    }

    /// A TEXT expression of at most `depth` levels.
    pub fn text(&mut self, depth: u32) -> E {
        if depth == 0 || self.rng.percent(45) {
            return self.text_leaf();
        }
        let choice = self.choose(&[
            (Construct::Concat, 6),
            (Construct::Parens, 1),
            (Construct::Lower, 1),
            (Construct::Upper, 1),
            (Construct::Substring, 2),
            (Construct::Coalesce, 1),
            (Construct::NullIf, 1),
            (Construct::CaseWhen, 1),
            (Construct::Cast, 1),
        ]);
        match choice {
            Some(Construct::Concat) => {
                let (left, right) = (self.text(depth - 1), self.text(depth - 1));
                let constant = left.constant && right.constant;
                let k = K::Concat(Box::new(left), Box::new(right));
                E::new(k, Some(Ty::Text), 0.0, 0.0, constant)
            }
            Some(Construct::Parens) => Gen::paren(self.text(depth - 1)),
            // EXTENSION POINT: further text constructs (`func.rs`).
            Some(c) => self.function(c, Class::Text, depth),
            None => self.text_leaf(),
        }
    }

    pub fn text_leaf(&mut self) -> E {
        let columns = self.columns_of(Class::Text);
        let choice = self.choose(&[
            (Construct::Column, if columns.is_empty() { 0 } else { 50 }),
            (Construct::Literal, 30),
            (Construct::NullLiteral, 3),
            (Construct::Parameter, 8),
            (Construct::Cast, 6),
        ]);
        match choice {
            Some(Construct::Column) => {
                let index = self.rng.pick(&columns);
                self.column(index)
            }
            Some(Construct::NullLiteral) => self.null(),
            Some(Construct::Parameter) => {
                let value = self.text_value();
                self.param_of(value)
            }
            Some(Construct::Cast) => self.cast_text(),
            _ => {
                let value = self.text_value();
                self.literal(value)
            }
        }
    }
}

/// `left op right` when it cannot overflow its type (see `expr.rs`), else `left`.
pub fn arith(op: Arith, left: E, right: E) -> E {
    let ty = wider(left.ty, right.ty);
    let bound = match op {
        Arith::Add | Arith::Sub => left.bound + right.bound,
        Arith::Mul => left.bound * right.bound,
        Arith::Div if ty == Ty::Double => left.bound / right.min_abs,
        // An integer divisor is at least 1 in magnitude.
        Arith::Div => left.bound,
        Arith::Rem => left.bound.min(right.bound),
    };
    if bound > ty.max_magnitude() {
        return left;
    }
    let constant = left.constant && right.constant;
    let k = K::Arith(op, Box::new(left), Box::new(right));
    E::new(k, Some(ty), bound, 0.0, constant)
}
