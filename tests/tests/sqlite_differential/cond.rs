//! The condition generator: comparisons (numbers across INT, BIGINT and DOUBLE; TEXT with
//! TEXT; BOOLEAN with BOOLEAN), NOT / AND / OR, IN lists, BETWEEN, LIKE, IS [NOT] NULL, and
//! primary-key lookups, all under three-valued logic with NULLs from columns, literals and
//! parameters.

use serde_json::json;

use super::constructs::{enabled, Construct};
use super::expr::{Cmp, E, K};
use super::gen::{Gen, KeyForm, BIGINT_NAMES, DOUBLE_NAMES, INT_NAMES};
use super::schema::{Class, Ty, Val};

/// The primary key column, as Strand sees it (parentheses and unary `+` are dropped).
fn is_key(e: &E) -> bool {
    match &e.k {
        K::Column(_, index) => *index == 0,
        K::Paren(inner) | K::Plus(inner) => is_key(inner),
        _ => false,
    }
}

impl Gen<'_> {
    pub fn of_class(&mut self, class: Class, depth: u32) -> E {
        match class {
            Class::Num => self.num(depth),
            Class::Text => self.text(depth),
            Class::Bool => self.boolean(depth),
        }
    }

    fn class(&mut self) -> Class {
        [Class::Num, Class::Text, Class::Bool][self.rng.weighted(&[60, 25, 15])]
    }

    /// An expression of any class.
    pub fn any(&mut self, depth: u32) -> E {
        let class = self.class();
        self.of_class(class, depth)
    }

    /// A BOOLEAN expression (a condition) of at most `depth` levels.
    pub fn boolean(&mut self, depth: u32) -> E {
        if depth == 0 {
            return if self.rng.percent(40) || !enabled(Construct::Compare) {
                self.bool_leaf()
            } else {
                self.compare(0)
            };
        }
        let choice = self.choose(&[
            (Construct::Compare, 30),
            (Construct::Not, 7),
            (Construct::And, 12),
            (Construct::Or, 10),
            (Construct::InList, 10),
            (Construct::Between, 8),
            (Construct::Like, 8),
            (Construct::ILike, 5),
            (Construct::IsNull, 8),
            (Construct::KeyLookup, 8),
            (Construct::BoolLeaf, 5),
            (Construct::Parens, 2),
            (Construct::CaseWhen, 3),
            (Construct::Coalesce, 2),
            (Construct::NullIf, 1),
        ]);
        match choice {
            Some(Construct::Compare) => self.compare(depth),
            Some(Construct::Not) => {
                let operand = self.boolean(depth - 1);
                let constant = operand.constant;
                E::boolean(K::Not(Box::new(operand)), constant)
            }
            Some(c @ (Construct::And | Construct::Or)) => {
                let items: Vec<E> = (0..self.rng.range(2, 3))
                    .map(|_| self.boolean(depth - 1))
                    .collect();
                let constant = items.iter().all(|e| e.constant);
                let k = if c == Construct::And {
                    K::And(items)
                } else {
                    K::Or(items)
                };
                E::boolean(k, constant)
            }
            Some(Construct::InList) => self.in_list(depth),
            Some(Construct::Between) => self.between(depth),
            Some(Construct::Like) => self.like(depth, false),
            Some(Construct::ILike) => self.like(depth, true),
            Some(Construct::IsNull) => {
                let operand = self.any(depth - 1);
                let constant = operand.constant;
                let negated = self.rng.percent(50);
                E::boolean(K::IsNull(Box::new(operand), negated), constant)
            }
            Some(Construct::KeyLookup) => self.key_lookup(),
            Some(Construct::Parens) => Gen::paren(self.boolean(depth - 1)),
            // EXTENSION POINT: further boolean constructs.
            Some(c @ (Construct::CaseWhen | Construct::Coalesce | Construct::NullIf)) => {
                self.function(c, Class::Bool, depth)
            }
            _ => self.bool_leaf(),
        }
    }

    fn bool_leaf(&mut self) -> E {
        let columns = self.columns_of(Class::Bool);
        let choice = self.choose(&[
            (Construct::Column, if columns.is_empty() { 0 } else { 40 }),
            (Construct::Literal, 30),
            (Construct::NullLiteral, 4),
            (Construct::Parameter, 8),
        ]);
        match choice {
            Some(Construct::Column) => {
                let index = self.rng.pick(&columns);
                self.column(index)
            }
            Some(Construct::NullLiteral) => self.null(),
            Some(Construct::Parameter) => {
                let value = Val::Bool(self.rng.percent(50));
                self.param_of(value)
            }
            _ => {
                let value = Val::Bool(self.rng.percent(50));
                self.literal(value)
            }
        }
    }

    fn compare(&mut self, depth: u32) -> E {
        let class = match self.class() {
            Class::Bool if depth == 0 => Class::Num,
            class => class,
        };
        let below = depth.saturating_sub(1);
        let left = self.of_class(class, below);
        let right = if self.rng.percent(50) {
            self.constant_for(&left)
        } else {
            self.of_class(class, below)
        };
        let (left, right) = if self.rng.percent(20) {
            (right, left)
        } else {
            (left, right)
        };
        let op = self.rng.pick(&[
            Cmp::Eq,
            Cmp::Eq,
            Cmp::NotEq,
            Cmp::Bang,
            Cmp::Lt,
            Cmp::LtEq,
            Cmp::Gt,
            Cmp::GtEq,
        ]);
        let (left, right) = if op == Cmp::Eq && is_key(&left) && right.constant {
            (left, self.key_constant())
        } else if op == Cmp::Eq && is_key(&right) && left.constant {
            (self.key_constant(), right)
        } else {
            (left, right)
        };
        let constant = left.constant && right.constant;
        E::boolean(K::Compare(op, Box::new(left), Box::new(right)), constant)
    }

    /// A constant `other` can meet: of its class, often a value of the table, sometimes NULL;
    /// against an integer expression of the row, sometimes a parameter sent as decimal text
    /// (converted to the expression's type, docs/sql.md "Parameters").
    pub fn constant_for(&mut self, other: &E) -> E {
        if self.rng.percent(5) {
            return self.null();
        }
        match other.ty.map_or(Class::Num, Ty::class) {
            Class::Num => {
                let value = self.num_value();
                let fits = match (&value, other.ty) {
                    (Val::Int(v), Some(Ty::Int)) => i32::try_from(*v).is_ok(),
                    (Val::Int(_), Some(Ty::BigInt)) => true,
                    _ => false,
                };
                if fits && !other.constant && self.rng.percent(12) && enabled(Construct::Parameter)
                {
                    let text = value.literal();
                    self.param(json!(text), value, other.ty)
                } else {
                    self.constant(value)
                }
            }
            Class::Text => {
                let value = self.text_value();
                self.constant(value)
            }
            Class::Bool => {
                let value = Val::Bool(self.rng.percent(50));
                self.constant(value)
            }
        }
    }

    fn in_list(&mut self, depth: u32) -> E {
        let class = self.class();
        let value = self.of_class(class, depth - 1);
        let negated = self.rng.percent(30);
        let mut items = Vec::new();
        for _ in 0..self.rng.range(1, 5) {
            let item = if self.rng.percent(80) {
                self.constant_for(&value)
            } else {
                self.of_class(class, depth - 1)
            };
            let item = if !negated && is_key(&value) && item.constant {
                self.key_constant()
            } else {
                item
            };
            items.push(item);
        }
        let constant = value.constant && items.iter().all(|e| e.constant);
        E::boolean(K::In(Box::new(value), items, negated), constant)
    }

    fn between(&mut self, depth: u32) -> E {
        let class = self.class();
        let value = self.of_class(class, depth - 1);
        let bound = |g: &mut Gen<'_>| {
            if g.rng.percent(70) {
                g.constant_for(&value)
            } else {
                g.of_class(class, depth - 1)
            }
        };
        let (low, high) = (bound(self), bound(self));
        let negated = self.rng.percent(30);
        let constant = value.constant && low.constant && high.constant;
        let k = K::Between(Box::new(value), Box::new(low), Box::new(high), negated);
        E::boolean(k, constant)
    }

    /// `[NOT] LIKE` or, with `ilike`, `[NOT] ILIKE`.
    fn like(&mut self, depth: u32, ilike: bool) -> E {
        let value = self.text(depth - 1);
        let negated = self.rng.percent(30);
        let (text, pattern) = if self.rng.percent(6) {
            (None, self.constant(Val::Null))
        } else {
            let text = self.like_pattern();
            (Some(text.clone()), self.constant(Val::Text(text)))
        };
        let constant = value.constant;
        E::boolean(
            K::Like(Box::new(value), text, Box::new(pattern), negated, ilike),
            constant,
        )
    }

    /// A pattern made from a text of the table or the pool: characters kept, replaced by `_`
    /// or `%`, or escaped with a backslash (which stays paired: a pattern never ends in a lone
    /// backslash); its own `%` and `_` kept as wildcards or escaped.
    fn like_pattern(&mut self) -> String {
        let base = match self.text_value() {
            Val::Text(text) => text,
            _ => String::new(),
        };
        let mut pattern = String::new();
        if self.rng.percent(30) {
            pattern.push('%');
        }
        for c in base.chars() {
            match c {
                '%' | '_' if self.rng.percent(50) => pattern.push(c),
                '%' | '_' | '\\' => {
                    pattern.push('\\');
                    pattern.push(c);
                }
                c => match self.rng.below(12) {
                    0 => pattern.push('_'),
                    1 => pattern.push('%'),
                    2 => {
                        pattern.push('\\');
                        pattern.push(c);
                    }
                    _ => pattern.push(c),
                },
            }
        }
        if self.rng.percent(30) {
            pattern.push('%');
        }
        pattern
    }

    /// A condition built around key lookups: AND / OR of lookups (of the query's few hot
    /// keys, so that they meet) and other conditions, as a point read would be written.
    pub fn key_condition(&mut self, depth: u32) -> E {
        let items: Vec<E> = (0..self.rng.range(2, 3))
            .map(|_| {
                if depth == 0 || self.rng.percent(60) {
                    self.key_lookup()
                } else if self.rng.percent(30) {
                    self.key_condition(depth - 1)
                } else {
                    self.boolean(depth - 1)
                }
            })
            .collect();
        let k = if self.rng.percent(60) {
            K::And(items)
        } else {
            K::Or(items)
        };
        E::boolean(k, false)
    }

    /// `pk = c`, `c = pk` or `pk IN (c, ...)`, mostly with keys the table has.
    fn key_lookup(&mut self) -> E {
        let key = self.column(0);
        match self.rng.below(3) {
            0 => {
                let value = self.key_constant();
                E::boolean(K::Compare(Cmp::Eq, Box::new(key), Box::new(value)), false)
            }
            1 => {
                let value = self.key_constant();
                E::boolean(K::Compare(Cmp::Eq, Box::new(value), Box::new(key)), false)
            }
            _ => {
                let items = (0..self.rng.range(1, 5))
                    .map(|_| self.key_constant())
                    .collect();
                E::boolean(K::In(Box::new(key), items, false), false)
            }
        }
    }

    /// A constant for `pk = c`: numbers typed as the query's [`KeyForm`] says.
    fn key_constant(&mut self) -> E {
        let key = self.table.key();
        if self.rng.percent(4) {
            return self.null();
        }
        let value = if !self.hot_keys.is_empty() && self.rng.percent(60) {
            self.hot_keys[self.rng.below(self.hot_keys.len())].clone()
        } else if !key.values.is_empty() && self.rng.percent(75) {
            key.values[self.rng.below(key.values.len())].clone()
        } else if key.ty == Ty::Text {
            self.text_value()
        } else {
            Val::Int(self.rng.range(-300, 300))
        };
        let Val::Int(v) = value else {
            return self.constant(value);
        };
        let (key_ty, params) = (key.ty, enabled(Construct::Parameter));
        if self.rng.percent(50) {
            // Mixed forms in one lookup (test `key_lookups_and_mixed_numeric_constants`).
            self.key_form = self
                .rng
                .pick(&[KeyForm::Int, KeyForm::BigInt, KeyForm::Double]);
        }
        match self.key_form {
            KeyForm::Int => {
                let v = if i32::try_from(v).is_ok() {
                    v
                } else {
                    self.rng.range(-300, 300)
                };
                match self.rng.below(10) {
                    0 | 1 => {
                        let operand = self.literal(Val::Int(v));
                        let name = self.rng.pick(&INT_NAMES);
                        self.cast(operand, Ty::Int, name, &Val::Int(v), None)
                    }
                    2 | 3 if key_ty == Ty::Int && params => {
                        self.param(json!(v.to_string()), Val::Int(v), Some(Ty::Int))
                    }
                    _ => self.literal(Val::Int(v)),
                }
            }
            KeyForm::BigInt => match self.rng.below(10) {
                0..=2 => {
                    let operand = self.constant(Val::Int(v));
                    let name = self.rng.pick(&BIGINT_NAMES);
                    self.cast(operand, Ty::BigInt, name, &Val::Int(v), None)
                }
                3..=5 if params => self.param_of(Val::Int(v)),
                6 if key_ty == Ty::BigInt && params => {
                    self.param(json!(v.to_string()), Val::Int(v), Some(Ty::BigInt))
                }
                _ if i32::try_from(v).is_err() => self.literal(Val::Int(v)),
                _ => {
                    let operand = self.literal(Val::Int(v));
                    self.cast(operand, Ty::BigInt, "BIGINT", &Val::Int(v), None)
                }
            },
            KeyForm::Double => {
                let double = Val::Double(v as f64);
                match self.rng.below(10) {
                    0..=4 => self.literal(double),
                    5..=7 if params => self.param_of(double),
                    _ => {
                        let operand = self.constant(Val::Int(v));
                        let name = self.rng.pick(&DOUBLE_NAMES);
                        self.cast(operand, Ty::Double, name, &double, None)
                    }
                }
            }
        }
    }
}
