//! Parsed expressions: untyped, with the position where each starts, and a canonical SQL
//! rendering (used to name unaliased SELECT items).

use crate::error::Position;
use crate::value::DataType;

/// An untyped expression with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it starts in the SQL text.
    pub position: Option<Position>,
}

/// The forms of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A column: `name`, `t.name` or `ns.t.name` (the parts before the name in `qualifier`).
    Column {
        /// The parts before the name: `[t]` or `[ns, t]`; empty when unqualified.
        qualifier: Vec<String>,
        /// The column's name.
        name: String,
    },
    /// A literal.
    Literal(Literal),
    /// `$n`, 1-based.
    Parameter(usize),
    /// `NOT e`, `-e`, `+e`.
    Unary {
        /// Which operator.
        op: UnaryOp,
        /// Its operand.
        expr: Box<Expr>,
    },
    /// Arithmetic, comparison or `||`.
    Binary {
        /// Which operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `a AND b AND ...` (flattened).
    And(Vec<Expr>),
    /// `a OR b OR ...` (flattened).
    Or(Vec<Expr>),
    /// `e [NOT] IN (list)`.
    InList {
        /// The value looked for.
        expr: Box<Expr>,
        /// The values it is compared with, in order.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `e [NOT] BETWEEN low AND high`.
    Between {
        /// The value tested.
        expr: Box<Expr>,
        /// The inclusive lower bound.
        low: Box<Expr>,
        /// The inclusive upper bound.
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `e [NOT] LIKE pattern` or `e [NOT] ILIKE pattern`.
    Like {
        /// The text tested.
        expr: Box<Expr>,
        /// The pattern: `%` matches any run, `_` one character, `\` makes the next literal.
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
        /// `ILIKE`: letters match whatever their case.
        case_insensitive: bool,
    },
    /// A scalar function call, e.g. `LOWER(name)` or `SUBSTRING(s FROM 2 FOR 3)`.
    Function {
        /// Which function.
        function: ScalarFunction,
        /// Its arguments, in order.
        args: Vec<Expr>,
    },
    /// An aggregate: `COUNT(*)`, `COUNT([DISTINCT] e)`, `SUM(e)`, `AVG(e)`, `MIN(e)`, `MAX(e)`.
    Aggregate {
        /// Which aggregate.
        function: AggregateFunction,
        /// Its argument; `None` for `COUNT(*)`.
        arg: Option<Box<Expr>>,
        /// `DISTINCT`: each distinct argument value counts once.
        distinct: bool,
    },
    /// `CASE [operand] WHEN a THEN x ... [ELSE y] END`.
    Case {
        /// The operand of the simple form (`CASE status WHEN 'open' THEN ...`).
        operand: Option<Box<Expr>>,
        /// The `WHEN condition-or-value THEN result` pairs, in order.
        branches: Vec<(Expr, Expr)>,
        /// `ELSE` (NULL without one).
        otherwise: Option<Box<Expr>>,
    },
    /// `e IS [NOT] NULL`.
    IsNull {
        /// The value tested.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `CAST(e AS type)` or `e::type`.
    Cast {
        /// The value converted.
        expr: Box<Expr>,
        /// The type it is converted to.
        data_type: DataType,
    },
}

/// The scalar functions (docs/sql.md, "Functions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarFunction {
    /// `LOWER(text)`.
    Lower,
    /// `UPPER(text)`.
    Upper,
    /// `LENGTH(text)`, in characters.
    Length,
    /// `SUBSTRING(text, start [, count])`, 1-based, in characters.
    Substring,
    /// `COALESCE(a, b, ...)`: the first that is not NULL.
    Coalesce,
    /// `NULLIF(a, b)`: NULL if `a = b`, else `a`.
    NullIf,
    /// `ABS(number)`.
    Abs,
    /// `ROUND(number [, digits])`, halves away from zero.
    Round,
    /// `NOW()` or `CURRENT_TIMESTAMP`: the time the statement is compiled.
    Now,
}

impl ScalarFunction {
    /// The function of a (case-folded) name.
    pub fn from_name(name: &str) -> Option<ScalarFunction> {
        Some(match name {
            "lower" => ScalarFunction::Lower,
            "upper" => ScalarFunction::Upper,
            "length" | "char_length" | "character_length" => ScalarFunction::Length,
            "substring" | "substr" => ScalarFunction::Substring,
            "coalesce" => ScalarFunction::Coalesce,
            "nullif" => ScalarFunction::NullIf,
            "abs" => ScalarFunction::Abs,
            "round" => ScalarFunction::Round,
            "now" | "current_timestamp" => ScalarFunction::Now,
            _ => return None,
        })
    }

    /// Its name as written in SQL.
    pub fn name(self) -> &'static str {
        match self {
            ScalarFunction::Lower => "LOWER",
            ScalarFunction::Upper => "UPPER",
            ScalarFunction::Length => "LENGTH",
            ScalarFunction::Substring => "SUBSTRING",
            ScalarFunction::Coalesce => "COALESCE",
            ScalarFunction::NullIf => "NULLIF",
            ScalarFunction::Abs => "ABS",
            ScalarFunction::Round => "ROUND",
            ScalarFunction::Now => "NOW",
        }
    }

    /// How many arguments it takes: (fewest, most).
    pub fn arity(self) -> (usize, usize) {
        match self {
            ScalarFunction::Substring => (2, 3),
            ScalarFunction::Coalesce => (1, usize::MAX),
            ScalarFunction::NullIf => (2, 2),
            ScalarFunction::Round => (1, 2),
            ScalarFunction::Now => (0, 0),
            _ => (1, 1),
        }
    }
}

/// The aggregate functions (docs/sql.md, "Aggregates").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunction {
    /// `COUNT`.
    Count,
    /// `SUM`.
    Sum,
    /// `AVG`.
    Avg,
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
}

impl AggregateFunction {
    /// The aggregate of a (case-folded) name.
    pub fn from_name(name: &str) -> Option<AggregateFunction> {
        Some(match name {
            "count" => AggregateFunction::Count,
            "sum" => AggregateFunction::Sum,
            "avg" => AggregateFunction::Avg,
            "min" => AggregateFunction::Min,
            "max" => AggregateFunction::Max,
            _ => return None,
        })
    }

    /// Its name as written in SQL.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunction::Count => "COUNT",
            AggregateFunction::Sum => "SUM",
            AggregateFunction::Avg => "AVG",
            AggregateFunction::Min => "MIN",
            AggregateFunction::Max => "MAX",
        }
    }
}

/// A literal as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// `TRUE` / `FALSE`.
    Boolean(bool),
    /// A number as written (typed when compiled: INT, BIGINT or DOUBLE).
    Number(String),
    /// `'text'`.
    Text(String),
    /// `X'00ff'`.
    Bytes(Vec<u8>),
    /// `INTERVAL '1 hour'`: a fixed length of time (only in `TIMESTAMP ± INTERVAL`).
    Interval {
        /// Its length in microseconds.
        micros: i64,
        /// As written between the quotes.
        text: String,
    },
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT`.
    Not,
    /// `-`.
    Minus,
    /// `+`.
    Plus,
}

/// Binary operators other than AND / OR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `=`.
    Eq,
    /// `<>` or `!=`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
    /// `+`.
    Plus,
    /// `-`.
    Minus,
    /// `*`.
    Multiply,
    /// `/`.
    Divide,
    /// `%`.
    Modulo,
    /// `||` (text concatenation).
    Concat,
}

impl BinaryOp {
    /// Whether the operator compares (`=`, `<>`, `<`, `<=`, `>`, `>=`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

fn write_list(
    f: &mut std::fmt::Formatter<'_>,
    items: &[Expr],
    separator: &str,
) -> std::fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Boolean(true) => f.write_str("TRUE"),
            Literal::Boolean(false) => f.write_str("FALSE"),
            Literal::Number(text) => f.write_str(text),
            Literal::Text(text) => write!(f, "'{}'", text.replace('\'', "''")),
            Literal::Bytes(bytes) => {
                f.write_str("X'")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02X}"))?;
                f.write_str("'")
            }
            Literal::Interval { text, .. } => write!(f, "INTERVAL '{}'", text.replace('\'', "''")),
        }
    }
}

impl std::fmt::Display for Expr {
    /// A canonical SQL rendering, used to name unaliased SELECT items (`priority + 1`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let not = |negated: bool| if negated { "NOT " } else { "" };
        match &self.kind {
            ExprKind::Column { qualifier, name } => {
                for part in qualifier {
                    write!(f, "{part}.")?;
                }
                f.write_str(name)
            }
            ExprKind::Literal(literal) => write!(f, "{literal}"),
            ExprKind::Parameter(n) => write!(f, "${n}"),
            ExprKind::Unary {
                op: UnaryOp::Not,
                expr,
            } => write!(f, "NOT {expr}"),
            ExprKind::Unary {
                op: UnaryOp::Minus,
                expr,
            } => write!(f, "-{expr}"),
            ExprKind::Unary {
                op: UnaryOp::Plus,
                expr,
            } => write!(f, "+{expr}"),
            ExprKind::Binary { op, left, right } => {
                let side = |e: &Expr| match e.kind {
                    ExprKind::Binary { .. } => format!("({e})"),
                    _ => e.to_string(),
                };
                write!(f, "{} {} {}", side(left), op.symbol(), side(right))
            }
            ExprKind::And(items) => write_list(f, items, " AND "),
            ExprKind::Or(items) => write_list(f, items, " OR "),
            ExprKind::InList {
                expr,
                list,
                negated,
            } => {
                write!(f, "{expr} {}IN (", not(*negated))?;
                write_list(f, list, ", ")?;
                f.write_str(")")
            }
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                write!(f, "{expr} {}BETWEEN {low} AND {high}", not(*negated))
            }
            ExprKind::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let like = if *case_insensitive { "ILIKE" } else { "LIKE" };
                write!(f, "{expr} {}{like} {pattern}", not(*negated))
            }
            ExprKind::Function { function, args } => {
                write!(f, "{}(", function.name())?;
                write_list(f, args, ", ")?;
                f.write_str(")")
            }
            ExprKind::Aggregate {
                function,
                arg,
                distinct,
            } => {
                let distinct = if *distinct { "DISTINCT " } else { "" };
                match arg {
                    Some(arg) => write!(f, "{}({distinct}{arg})", function.name()),
                    None => write!(f, "{}(*)", function.name()),
                }
            }
            ExprKind::Case {
                operand,
                branches,
                otherwise,
            } => {
                f.write_str("CASE")?;
                if let Some(operand) = operand {
                    write!(f, " {operand}")?;
                }
                for (when, then) in branches {
                    write!(f, " WHEN {when} THEN {then}")?;
                }
                if let Some(otherwise) = otherwise {
                    write!(f, " ELSE {otherwise}")?;
                }
                f.write_str(" END")
            }
            ExprKind::IsNull { expr, negated } => write!(f, "{expr} IS {}NULL", not(*negated)),
            ExprKind::Cast { expr, data_type } => write!(f, "CAST({expr} AS {data_type})"),
        }
    }
}

impl BinaryOp {
    /// The operator as written in SQL.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Plus => "+",
            BinaryOp::Minus => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Concat => "||",
        }
    }
}
