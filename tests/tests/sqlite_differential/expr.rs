//! Generated expressions and how each engine spells them. An [`E`] carries what the generator
//! needs to keep queries valid in Strand: its static type by Strand's rules (docs/sql.md,
//! "Arithmetic": the wider operand type; a NULL literal has none), a bound on the magnitude
//! of its values (so integer arithmetic never overflows: Strand answers `numeric_overflow`,
//! SQLite would switch to REAL), the smallest magnitude of its non-NULL values (divisors must
//! not be 0: Strand answers `division_by_zero`, SQLite NULL), and whether it is a constant.
//!
//! Rendering uses the fewest parentheses on which both grammars agree (`* / %` over `+ -`,
//! comparisons over NOT over AND over OR), so precedence is tested too; where the two
//! grammars differ (SQLite's `||` binds tighter than `*`, its `<` tighter than `=`) operands
//! of other classes cannot meet or are parenthesized.

use super::schema::{quote, Ty, Val};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Strand,
    Sqlite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    /// `<>`.
    NotEq,
    /// `!=`.
    Bang,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// How Strand spells a literal (SQLite gets the plain spelling); a style that does not apply
/// to the value (a number `E'...'`) is the plain one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LitStyle {
    Plain,
    /// `E'...'` with backslash escapes.
    Escaped,
    /// `$$...$$`.
    Dollar,
    /// A DOUBLE as `375e-3`.
    Exponent,
    /// A DOUBLE as `.375` or `5.`; an integer with a leading zero, `07`.
    Dot,
}

/// How Strand spells a CAST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastStyle {
    /// `CAST(x AS T)`.
    Function,
    /// `x::T`.
    Colons,
    /// `T 'text'`: only for a plain TEXT literal.
    Typed,
}

#[derive(Clone, Debug)]
pub enum K {
    /// A column (its index in the table; 0 is the primary key), spelled as the query chose
    /// (`q.i1`, `"i1"`, `I1`, `app.t0.i1`).
    Column(String, usize),
    /// A literal with its value; `Ty` is its type in Strand (INT when it fits 32 bits).
    Literal(Val, LitStyle),
    /// `$n` (Strand) / `?n` (SQLite); the values are the query's.
    Param(usize),
    Negate(Box<E>),
    Plus(Box<E>),
    Arith(Arith, Box<E>, Box<E>),
    Concat(Box<E>, Box<E>),
    /// CAST of a constant, in Strand spelled as `style` says; `type_name` is Strand's
    /// spelling of the type; `sqlite_text` is the text SQLite gets instead where its CAST
    /// differs (DOUBLE and BOOLEAN to TEXT: Strand writes `2` and `true` like PostgreSQL,
    /// SQLite `2.0` and `1`).
    Cast {
        operand: Box<E>,
        type_name: &'static str,
        style: CastStyle,
        sqlite_text: Option<String>,
    },
    Compare(Cmp, Box<E>, Box<E>),
    Not(Box<E>),
    And(Vec<E>),
    Or(Vec<E>),
    In(Box<E>, Vec<E>, bool),
    Between(Box<E>, Box<E>, Box<E>, bool),
    /// `x [NOT] LIKE pattern`: the pattern's text (None: NULL) and its spelling; the last
    /// flag: ILIKE.
    Like(Box<E>, Option<String>, Box<E>, bool, bool),
    IsNull(Box<E>, bool),
    /// Parentheses the generator adds for their own sake.
    Paren(Box<E>),
    /// `NAME(args)` in both dialects (SQLite's name: the second; `pg_lower` and `pg_upper`
    /// are registered by the test with Rust's Unicode case mapping, SQLite's own map ASCII).
    Call(&'static str, &'static str, Vec<E>),
    /// `SUBSTRING(t FROM s [FOR c])` (Strand only: always inside `Sqlite`).
    SubstringFrom(Vec<E>),
    /// `CASE [operand] WHEN w THEN r ... [ELSE e] END`.
    Case(Option<Box<E>>, Vec<(E, E)>, Option<Box<E>>),
    /// An aggregate: name, DISTINCT, argument (None: `COUNT(*)`).
    Agg(&'static str, bool, Option<Box<E>>),
    /// Strand's expression, and the SQL SQLite gets instead where its semantics differ
    /// (parenthesized).
    Sqlite(Box<E>, String),
    // EXTENSION POINT (see `constructs.rs`): further functions go here, with their SQLite
    // spelling in `write`.
}

/// A generated expression with its static facts (see the module comment).
#[derive(Clone, Debug)]
pub struct E {
    pub k: K,
    /// Strand's static type; `None` for NULL and expressions of NULLs only.
    pub ty: Option<Ty>,
    pub bound: f64,
    pub min_abs: f64,
    pub constant: bool,
}

impl E {
    pub fn new(k: K, ty: Option<Ty>, bound: f64, min_abs: f64, constant: bool) -> E {
        E {
            k,
            ty,
            bound,
            min_abs,
            constant,
        }
    }

    /// A boolean-valued node.
    pub fn boolean(k: K, constant: bool) -> E {
        E::new(k, Some(Ty::Bool), 0.0, 0.0, constant)
    }

    /// Its precedence in `dialect` (higher binds tighter).
    fn prec(&self, dialect: Dialect) -> u8 {
        match &self.k {
            K::Literal(Val::Int(v), _) if *v < 0 => 95,
            K::Literal(Val::Double(v), _) if v.is_sign_negative() => 95,
            K::Column(..) | K::Literal(..) | K::Param(_) | K::Paren(_) => 100,
            K::Cast { .. } => 100,
            K::Call(..) | K::SubstringFrom(_) | K::Case(..) | K::Agg(..) => 100,
            K::Sqlite(strand, _) if dialect == Dialect::Strand => strand.prec(dialect),
            K::Sqlite(..) => 100,
            K::Negate(_) | K::Plus(_) => 90,
            K::Arith(Arith::Rem, ..)
                if dialect == Dialect::Sqlite && self.ty == Some(Ty::Double) =>
            {
                100
            }
            K::Arith(Arith::Mul | Arith::Div | Arith::Rem, ..) => 80,
            K::Arith(..) => 70,
            K::Concat(..) => 60,
            K::Compare(..) | K::In(..) | K::Between(..) | K::Like(..) | K::IsNull(..) => 40,
            K::Not(_) => 30,
            K::And(_) => 20,
            K::Or(_) => 10,
        }
    }

    /// The expression in `dialect`.
    pub fn render(&self, dialect: Dialect) -> String {
        let mut out = String::new();
        self.write(dialect, &mut out);
        out
    }

    /// `child`, parenthesized unless its precedence is at least `min`.
    fn child(&self, child: &E, min: u8, dialect: Dialect, out: &mut String) {
        if child.prec(dialect) < min {
            out.push('(');
            child.write(dialect, out);
            out.push(')');
        } else {
            child.write(dialect, out);
        }
    }

    fn write(&self, d: Dialect, out: &mut String) {
        match &self.k {
            K::Column(name, _) => out.push_str(name),
            K::Literal(value, style) => out.push_str(&literal(value, *style, d)),
            K::Param(n) => out.push_str(&match d {
                Dialect::Strand => format!("${n}"),
                Dialect::Sqlite => format!("?{n}"),
            }),
            // The operand of a unary sign is an atom that does not start with `-` (`--`
            // would start a comment).
            K::Negate(operand) => {
                out.push('-');
                self.child(operand, 100, d, out);
            }
            K::Plus(operand) => {
                out.push('+');
                self.child(operand, 100, d, out);
            }
            K::Arith(Arith::Rem, left, right)
                if d == Dialect::Sqlite && self.ty == Some(Ty::Double) =>
            {
                // SQLite's `%` truncates REAL operands to integers; Strand's DOUBLE `%` is
                // C's fmod (the sign of the dividend), which the test registers as `fmod`.
                out.push_str("fmod(");
                left.write(d, out);
                out.push_str(", ");
                right.write(d, out);
                out.push(')');
            }
            K::Arith(op, left, right) => {
                let prec = self.prec(d);
                self.child(left, prec, d, out);
                out.push_str(match op {
                    Arith::Add => " + ",
                    Arith::Sub => " - ",
                    Arith::Mul => " * ",
                    Arith::Div => " / ",
                    Arith::Rem => " % ",
                });
                self.child(right, prec + 1, d, out);
            }
            K::Concat(left, right) => {
                self.child(left, 60, d, out);
                out.push_str(" || ");
                self.child(right, 61, d, out);
            }
            K::Cast {
                operand,
                type_name,
                style,
                sqlite_text,
            } => match (d, sqlite_text) {
                (Dialect::Sqlite, Some(text)) => out.push_str(&quote(text)),
                (Dialect::Sqlite, None) => {
                    let ty = self.ty.map_or("TEXT", Ty::sqlite);
                    out.push_str("CAST(");
                    operand.write(d, out);
                    out.push_str(&format!(" AS {ty})"));
                }
                (Dialect::Strand, _) if *style == CastStyle::Typed => {
                    out.push_str(&format!("{type_name} "));
                    operand.write(d, out);
                }
                (Dialect::Strand, _) if *style == CastStyle::Colons => {
                    self.child(operand, 100, d, out);
                    out.push_str(&format!("::{type_name}"));
                }
                (Dialect::Strand, _) => {
                    out.push_str("CAST(");
                    operand.write(d, out);
                    out.push_str(&format!(" AS {type_name})"));
                }
            },
            K::Compare(op, left, right) => {
                self.child(left, 60, d, out);
                out.push_str(match op {
                    Cmp::Eq => " = ",
                    Cmp::NotEq => " <> ",
                    Cmp::Bang => " != ",
                    Cmp::Lt => " < ",
                    Cmp::LtEq => " <= ",
                    Cmp::Gt => " > ",
                    Cmp::GtEq => " >= ",
                });
                self.child(right, 60, d, out);
            }
            K::Not(operand) => {
                out.push_str("NOT ");
                self.child(operand, 40, d, out);
            }
            K::And(items) | K::Or(items) => {
                let (word, min) = match self.k {
                    K::And(_) => (" AND ", 30),
                    _ => (" OR ", 20),
                };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(word);
                    }
                    self.child(item, min, d, out);
                }
            }
            K::In(value, list, negated) => {
                self.child(value, 60, d, out);
                out.push_str(if *negated { " NOT IN (" } else { " IN (" });
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(d, out);
                }
                out.push(')');
            }
            K::Between(value, low, high, negated) => {
                self.child(value, 60, d, out);
                out.push_str(if *negated {
                    " NOT BETWEEN "
                } else {
                    " BETWEEN "
                });
                self.child(low, 60, d, out);
                out.push_str(" AND ");
                self.child(high, 60, d, out);
            }
            K::Like(value, text, pattern, negated, ilike) => {
                let not = if *negated { " NOT" } else { "" };
                if d == Dialect::Sqlite && *ilike {
                    // ILIKE: both sides lowercased (docs/sql.md, "LIKE and ILIKE").
                    out.push_str("pg_lower(");
                    value.write(d, out);
                    out.push(')');
                    let text = text.as_ref().map(|t| t.to_lowercase());
                    match text {
                        Some(text) => {
                            out.push_str(&format!("{not} GLOB {}", quote(&like_to_glob(&text))))
                        }
                        None => out.push_str(&format!("{not} GLOB NULL")),
                    }
                    return;
                }
                self.child(value, 60, d, out);
                match (d, text) {
                    (Dialect::Strand, _) => {
                        let word = if *ilike { "ILIKE" } else { "LIKE" };
                        out.push_str(&format!("{not} {word} "));
                        self.child(pattern, 60, d, out);
                    }
                    // SQLite's LIKE ignores ASCII case and has no default escape: GLOB with
                    // the pattern translated is case-sensitive like Strand's LIKE.
                    (Dialect::Sqlite, Some(text)) => {
                        out.push_str(&format!("{not} GLOB {}", quote(&like_to_glob(text))));
                    }
                    (Dialect::Sqlite, None) => out.push_str(&format!("{not} GLOB NULL")),
                }
            }
            K::IsNull(value, negated) => {
                self.child(value, 60, d, out);
                out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            K::Paren(inner) => {
                out.push('(');
                inner.write(d, out);
                out.push(')');
            }
            K::Call(strand, sqlite, args) => {
                out.push_str(if d == Dialect::Strand { strand } else { sqlite });
                out.push('(');
                list(args, ", ", d, out);
                out.push(')');
            }
            K::SubstringFrom(args) => {
                out.push_str("SUBSTRING(");
                args[0].write(d, out);
                for (word, arg) in [" FROM ", " FOR "].iter().zip(&args[1..]) {
                    out.push_str(word);
                    arg.write(d, out);
                }
                out.push(')');
            }
            K::Case(operand, branches, otherwise) => {
                out.push_str("CASE");
                if let Some(operand) = operand {
                    out.push(' ');
                    operand.write(d, out);
                }
                for (when, then) in branches {
                    out.push_str(" WHEN ");
                    when.write(d, out);
                    out.push_str(" THEN ");
                    then.write(d, out);
                }
                if let Some(otherwise) = otherwise {
                    out.push_str(" ELSE ");
                    otherwise.write(d, out);
                }
                out.push_str(" END");
            }
            K::Agg(name, distinct, arg) => {
                out.push_str(name);
                out.push('(');
                if *distinct {
                    out.push_str("DISTINCT ");
                }
                match arg {
                    Some(arg) => arg.write(d, out),
                    None => out.push('*'),
                }
                out.push(')');
            }
            K::Sqlite(strand, _) if d == Dialect::Strand => strand.write(d, out),
            K::Sqlite(_, sqlite) => {
                out.push('(');
                out.push_str(sqlite);
                out.push(')');
            }
        }
    }
}

fn list(items: &[E], separator: &str, d: Dialect, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        item.write(d, out);
    }
}

/// A literal as `dialect` spells it.
fn literal(value: &Val, style: LitStyle, dialect: Dialect) -> String {
    let plain = value.literal();
    if dialect == Dialect::Sqlite {
        return plain;
    }
    match (value, style) {
        (Val::Text(text), LitStyle::Escaped) => {
            format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
        }
        (Val::Text(text), LitStyle::Dollar) if !text.contains('$') => format!("$${text}$$"),
        (Val::Int(v), LitStyle::Dot) if *v >= 0 => format!("0{v}"),
        (Val::Double(v), LitStyle::Exponent) if *v != 0.0 && !plain.contains('e') => {
            // `-12.375` as `-12375e-3`: the same decimal, so the same double.
            let (sign, digits) = plain.split_at(usize::from(plain.starts_with('-')));
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            let mantissa = format!("{whole}{fraction}");
            let mantissa = mantissa.trim_start_matches('0');
            format!("{sign}{mantissa}e-{}", fraction.len())
        }
        (Val::Double(_), LitStyle::Dot) if plain.starts_with("0.") || plain.starts_with("-0.") => {
            plain.replacen("0.", ".", 1)
        }
        (Val::Double(_), LitStyle::Dot) if plain.ends_with(".0") => {
            plain.trim_end_matches('0').to_string()
        }
        _ => plain,
    }
}

/// A LIKE pattern (`%`, `_`, backslash escapes the next character) as a SQLite GLOB pattern
/// (`*`, `?`, `[c]` for a literal `*`, `?` or `[`). Patterns never end in a lone backslash
/// (PostgreSQL refuses that; Strand reads it as a literal backslash).
pub fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            '%' => {
                glob.push('*');
                continue;
            }
            '_' => {
                glob.push('?');
                continue;
            }
            '\\' => chars.next().unwrap_or('\\'),
            c => c,
        };
        match literal {
            '*' | '?' | '[' => glob.push_str(&format!("[{literal}]")),
            c => glob.push(c),
        }
    }
    glob
}
