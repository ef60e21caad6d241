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
    /// `e [NOT] LIKE pattern`.
    Like {
        /// The text tested.
        expr: Box<Expr>,
        /// The pattern: `%` matches any run, `_` one character, `\` makes the next literal.
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
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
            } => {
                write!(f, "{expr} {}LIKE {pattern}", not(*negated))
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
