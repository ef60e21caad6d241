//! sqlparser expressions to ours ([`crate::ast::Expr`]): columns, literals, `$n`, unary and
//! binary operators, AND / OR (flattened), IN lists, BETWEEN, [I]LIKE, IS [NOT] NULL, CAST,
//! and scalar functions and CASE (`call.rs`). Anything else is an `unsupported` error naming
//! the form (aggregates, subqueries, ...). Nesting is bounded by [`limits::EXPRESSION_DEPTH_MAX`].

use sqlparser::ast::{
    BinaryOperator, CastKind, Expr as SqlExpr, InTarget, UnaryOperator, Value as SqlValue,
    ValueWithSpan,
};

use super::call;
use super::cursor::fold_identifier;
use super::ddl::data_type;
use super::unsupported::unsupported_form;
use crate::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};
use crate::error::{code, Position, Result, SqlError};
use crate::limits;

/// Converts one expression.
pub(crate) fn expr(expr: &SqlExpr) -> Result<Expr> {
    convert(expr, 0)
}

fn at(span_start: sqlparser::tokenizer::Location) -> Option<Position> {
    Position::known(span_start.line, span_start.column)
}

pub(super) fn boxed(expr: &SqlExpr, depth: usize) -> Result<Box<Expr>> {
    convert(expr, depth + 1).map(Box::new)
}

pub(super) fn convert(sql: &SqlExpr, depth: usize) -> Result<Expr> {
    if depth > limits::EXPRESSION_DEPTH_MAX {
        let max = limits::EXPRESSION_DEPTH_MAX;
        return Err(SqlError::limit(
            "expression nesting depth",
            max,
            leftmost_position(sql),
        ));
    }
    let kind = match sql {
        SqlExpr::Identifier(ident) => ExprKind::Column {
            qualifier: Vec::new(),
            name: fold_identifier(&ident.value, ident.quote_style),
        },
        SqlExpr::CompoundIdentifier(idents) => {
            let mut parts: Vec<String> = idents
                .iter()
                .map(|i| fold_identifier(&i.value, i.quote_style))
                .collect();
            let name = parts.pop().unwrap_or_default();
            ExprKind::Column {
                qualifier: parts,
                name,
            }
        }
        SqlExpr::Value(value) => return literal(value),
        SqlExpr::Interval(interval) => return super::interval::interval(sql, interval),
        SqlExpr::Nested(inner) => return convert(inner, depth + 1),
        SqlExpr::UnaryOp { op, expr } => return unary(*op, expr, depth),
        SqlExpr::BinaryOp {
            op: BinaryOperator::And,
            ..
        } => ExprKind::And(flatten(sql, &BinaryOperator::And, depth)?),
        SqlExpr::BinaryOp {
            op: BinaryOperator::Or,
            ..
        } => ExprKind::Or(flatten(sql, &BinaryOperator::Or, depth)?),
        SqlExpr::BinaryOp { left, op, right } => ExprKind::Binary {
            op: binary_op(op, leftmost_position(right))?,
            left: boxed(left, depth)?,
            right: boxed(right, depth)?,
        },
        other => predicate_or_cast(other, depth)?,
    };
    Ok(Expr {
        kind,
        position: leftmost_position(sql),
    })
}

/// IS [NOT] NULL, IN, BETWEEN, LIKE and the CAST forms; anything else is unsupported.
fn predicate_or_cast(sql: &SqlExpr, depth: usize) -> Result<ExprKind> {
    let position = leftmost_position(sql);
    Ok(match sql {
        SqlExpr::IsNull(inner) => ExprKind::IsNull {
            expr: boxed(inner, depth)?,
            negated: false,
        },
        SqlExpr::IsNotNull(inner) => ExprKind::IsNull {
            expr: boxed(inner, depth)?,
            negated: true,
        },
        SqlExpr::In {
            expr,
            target,
            negated,
            ..
        } => in_list(expr, target, *negated, depth)?,
        SqlExpr::Between {
            expr,
            negated,
            low,
            high,
        } => ExprKind::Between {
            expr: boxed(expr, depth)?,
            low: boxed(low, depth)?,
            high: boxed(high, depth)?,
            negated: *negated,
        },
        SqlExpr::Like {
            negated,
            any,
            expr,
            pattern,
            escape_char,
        }
        | SqlExpr::ILike {
            negated,
            any,
            expr,
            pattern,
            escape_char,
        } => {
            if *any {
                return Err(SqlError::unsupported("LIKE ANY", position));
            }
            if escape_char.is_some() {
                let what = "LIKE ... ESCAPE (the escape character is always \\)";
                return Err(SqlError::unsupported(what, position));
            }
            let (expr, pattern) = (boxed(expr, depth)?, boxed(pattern, depth)?);
            ExprKind::Like {
                expr,
                pattern,
                negated: *negated,
                case_insensitive: matches!(sql, SqlExpr::ILike { .. }),
            }
        }
        SqlExpr::Function(function) => call::function(sql, function, depth)?,
        SqlExpr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => call::substring(
            expr,
            substring_from.as_deref(),
            substring_for.as_deref(),
            depth,
        )?,
        SqlExpr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => call::case(
            operand.as_deref(),
            conditions,
            else_result.as_deref(),
            depth,
        )?,
        SqlExpr::Cast { .. } | SqlExpr::TypedString(_) => cast(sql, depth)?,
        other => return Err(unsupported_form(other)),
    })
}

/// `CAST(e AS type)`, `e::type` and `type 'text'`.
fn cast(sql: &SqlExpr, depth: usize) -> Result<ExprKind> {
    let position = leftmost_position(sql);
    match sql {
        SqlExpr::Cast {
            kind,
            expr,
            data_type: target,
            format,
        } => {
            if !matches!(kind, CastKind::Cast | CastKind::DoubleColon) || format.is_some() {
                return Err(SqlError::unsupported("this form of CAST", position));
            }
            let data_type = data_type(target, position)?;
            Ok(ExprKind::Cast {
                expr: boxed(expr, depth)?,
                data_type,
            })
        }
        SqlExpr::TypedString(typed) => {
            let value = literal(&typed.value)?;
            let data_type = data_type(&typed.data_type, at(typed.value.span.start))?;
            Ok(ExprKind::Cast {
                expr: Box::new(value),
                data_type,
            })
        }
        other => Err(unsupported_form(other)),
    }
}

fn literal(value: &ValueWithSpan) -> Result<Expr> {
    let position = at(value.span.start);
    let kind = match &value.value {
        SqlValue::Number(text, _) => ExprKind::Literal(Literal::Number(text.clone())),
        SqlValue::SingleQuotedString(text) | SqlValue::EscapedStringLiteral(text) => {
            ExprKind::Literal(Literal::Text(text.clone()))
        }
        SqlValue::DollarQuotedString(text) => ExprKind::Literal(Literal::Text(text.value.clone())),
        SqlValue::HexStringLiteral(hex) => {
            ExprKind::Literal(Literal::Bytes(decode_hex(hex).ok_or_else(|| {
                SqlError::syntax("invalid hexadecimal literal", position)
            })?))
        }
        SqlValue::Boolean(value) => ExprKind::Literal(Literal::Boolean(*value)),
        SqlValue::Null => ExprKind::Literal(Literal::Null),
        SqlValue::Placeholder(text) => ExprKind::Parameter(parameter(text, position)?),
        other => {
            return Err(SqlError::unsupported(
                format!("the literal {other}"),
                position,
            ))
        }
    };
    Ok(Expr { kind, position })
}

fn parameter(text: &str, position: Option<Position>) -> Result<usize> {
    let number = text
        .strip_prefix('$')
        .and_then(|digits| digits.parse::<usize>().ok());
    match number {
        Some(n) if (1..=limits::PARAMETERS_MAX).contains(&n) => Ok(n),
        _ => Err(SqlError::new(
            code::INVALID_PARAMETER,
            format!("parameter {text}: use $1 to ${}", limits::PARAMETERS_MAX),
            position,
        )),
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

fn unary(op: UnaryOperator, operand: &SqlExpr, depth: usize) -> Result<Expr> {
    let position = leftmost_position(operand);
    let op = match op {
        UnaryOperator::Not => UnaryOp::Not,
        UnaryOperator::Plus => UnaryOp::Plus,
        UnaryOperator::Minus => {
            // `-9223372036854775808` must stay one literal: the positive part does not fit.
            if let SqlExpr::Value(ValueWithSpan {
                value: SqlValue::Number(text, _),
                ..
            }) = operand
            {
                let literal = ExprKind::Literal(Literal::Number(format!("-{text}")));
                return Ok(Expr {
                    kind: literal,
                    position,
                });
            }
            UnaryOp::Minus
        }
        other => {
            return Err(SqlError::unsupported(
                format!("the operator {other}"),
                position,
            ))
        }
    };
    let kind = ExprKind::Unary {
        op,
        expr: boxed(operand, depth)?,
    };
    Ok(Expr { kind, position })
}

/// The operands of a chain `a OP b OP c ...` (OP is AND or OR), walking the left spine
/// without recursion: sqlparser builds such chains left-deep.
fn flatten(sql: &SqlExpr, chain_op: &BinaryOperator, depth: usize) -> Result<Vec<Expr>> {
    let mut rights = Vec::new();
    let mut node = sql;
    while let SqlExpr::BinaryOp { left, op, right } = node {
        if op != chain_op {
            break;
        }
        rights.push(right.as_ref());
        node = left.as_ref();
    }
    let mut operands = Vec::with_capacity(rights.len() + 1);
    operands.push(convert(node, depth + 1)?);
    for right in rights.into_iter().rev() {
        operands.push(convert(right, depth + 1)?);
    }
    Ok(operands)
}

fn binary_op(op: &BinaryOperator, position: Option<Position>) -> Result<BinaryOp> {
    Ok(match op {
        BinaryOperator::Eq => BinaryOp::Eq,
        BinaryOperator::NotEq => BinaryOp::NotEq,
        BinaryOperator::Lt => BinaryOp::Lt,
        BinaryOperator::LtEq => BinaryOp::LtEq,
        BinaryOperator::Gt => BinaryOp::Gt,
        BinaryOperator::GtEq => BinaryOp::GtEq,
        BinaryOperator::Plus => BinaryOp::Plus,
        BinaryOperator::Minus => BinaryOp::Minus,
        BinaryOperator::Multiply => BinaryOp::Multiply,
        BinaryOperator::Divide => BinaryOp::Divide,
        BinaryOperator::Modulo => BinaryOp::Modulo,
        BinaryOperator::StringConcat => BinaryOp::Concat,
        other => {
            return Err(SqlError::unsupported(
                format!("the operator {other}"),
                position,
            ))
        }
    })
}

fn in_list(expr: &SqlExpr, target: &InTarget, negated: bool, depth: usize) -> Result<ExprKind> {
    let list = match target {
        InTarget::List(list) => list,
        InTarget::Subquery(_) => {
            return Err(SqlError::unsupported("subqueries", leftmost_position(expr)))
        }
        _ => {
            return Err(SqlError::unsupported(
                "this form of IN",
                leftmost_position(expr),
            ))
        }
    };
    if list.len() > limits::IN_LIST_LEN_MAX {
        let position = list
            .get(limits::IN_LIST_LEN_MAX)
            .and_then(leftmost_position);
        return Err(SqlError::limit(
            "IN list length",
            limits::IN_LIST_LEN_MAX,
            position,
        ));
    }
    let list = list
        .iter()
        .map(|item| convert(item, depth + 1))
        .collect::<Result<_>>()?;
    Ok(ExprKind::InList {
        expr: boxed(expr, depth)?,
        list,
        negated,
    })
}

/// Where an expression starts: the position of its leftmost leaf, found without recursion.
pub(crate) fn leftmost_position(sql: &SqlExpr) -> Option<Position> {
    let mut node = sql;
    loop {
        node = match node {
            SqlExpr::Identifier(ident) => return at(ident.span.start),
            SqlExpr::CompoundIdentifier(idents) => return at(idents.first()?.span.start),
            SqlExpr::Value(value) => return at(value.span.start),
            SqlExpr::TypedString(typed) => return at(typed.value.span.start),
            SqlExpr::Function(function) => {
                let first = function.name.0.first()?.as_ident()?;
                return at(first.span.start);
            }
            SqlExpr::BinaryOp { left, .. } => left,
            SqlExpr::UnaryOp { expr, .. }
            | SqlExpr::Nested(expr)
            | SqlExpr::IsNull(expr)
            | SqlExpr::IsNotNull(expr)
            | SqlExpr::IsTrue(expr)
            | SqlExpr::IsNotTrue(expr)
            | SqlExpr::IsFalse(expr)
            | SqlExpr::IsNotFalse(expr)
            | SqlExpr::IsUnknown(expr)
            | SqlExpr::IsNotUnknown(expr)
            | SqlExpr::In { expr, .. }
            | SqlExpr::Between { expr, .. }
            | SqlExpr::Like { expr, .. }
            | SqlExpr::ILike { expr, .. }
            | SqlExpr::Cast { expr, .. }
            | SqlExpr::Collate { expr, .. } => expr,
            SqlExpr::IsDistinctFrom(left, _) | SqlExpr::IsNotDistinctFrom(left, _) => left,
            SqlExpr::Rollup(sets) | SqlExpr::Cube(sets) | SqlExpr::GroupingSets(sets) => {
                sets.first()?.first()?
            }
            _ => return None,
        };
    }
}
