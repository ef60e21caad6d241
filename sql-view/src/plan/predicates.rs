//! Typing of conditions: AND / OR, IN lists, BETWEEN, LIKE, IS NULL, and CAST of constants.

use super::compile::{Scope, Source, Typed};
use super::constants::{cast_to_text, coerce_constant, type_name, unify};
use super::like::LikePattern;
use super::node::{CompareOp, Node};
use crate::ast::{Expr, ExprKind};
use crate::coerce::{coerce, Origin};
use crate::error::{Result, SqlError};
use crate::value::{DataType, Value};

impl Scope<'_> {
    /// The node of a condition form (AND, OR, IN, BETWEEN, LIKE, IS NULL).
    pub(crate) fn predicate(&self, kind: &ExprKind) -> Result<Node> {
        match kind {
            ExprKind::And(items) | ExprKind::Or(items) => {
                let nodes = items
                    .iter()
                    .map(|item| self.condition(item, "AND / OR"))
                    .collect::<Result<Vec<_>>>()?;
                Ok(if matches!(kind, ExprKind::And(_)) {
                    Node::And(nodes)
                } else {
                    Node::Or(nodes)
                })
            }
            ExprKind::InList {
                expr,
                list,
                negated,
            } => self.in_list(expr, list, *negated),
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let value = self.compile(expr)?;
                let low = self.comparison(CompareOp::GtEq, value.clone(), self.compile(low)?)?;
                let high = self.comparison(CompareOp::LtEq, value, self.compile(high)?)?;
                let both = Node::And(vec![low, high]);
                Ok(if *negated {
                    Node::Not(Box::new(both))
                } else {
                    both
                })
            }
            ExprKind::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => self.like(expr, pattern, *negated, *case_insensitive),
            ExprKind::IsNull { expr, negated } => Ok(Node::IsNull {
                expr: Box::new(self.compile(expr)?.node),
                negated: *negated,
            }),
            _ => Err(SqlError::unsupported(
                "this expression as a condition",
                None,
            )),
        }
    }

    fn in_list(&self, value: &Expr, list: &[Expr], negated: bool) -> Result<Node> {
        let value = self.compile(value)?;
        let items = list
            .iter()
            .map(|item| self.compile(item))
            .collect::<Result<Vec<_>>>()?;
        if !items.iter().all(Typed::constant) {
            // Not all constants: `v IN (a, b)` is `v = a OR v = b`.
            let nodes = items
                .into_iter()
                .map(|item| self.comparison(CompareOp::Eq, value.clone(), item))
                .collect::<Result<Vec<_>>>()?;
            let any = Node::Or(nodes);
            return Ok(if negated {
                Node::Not(Box::new(any))
            } else {
                any
            });
        }
        let mut constants = Vec::with_capacity(items.len());
        for item in items {
            let (_, item) = unify(value.clone(), item)?;
            if let Node::Const(constant) = item.node {
                constants.push(constant);
            }
        }
        Ok(Node::InList {
            expr: Box::new(value.node),
            list: constants,
            negated,
        })
    }

    fn like(
        &self,
        value: &Expr,
        pattern: &Expr,
        negated: bool,
        case_insensitive: bool,
    ) -> Result<Node> {
        let value = self.compile(value)?;
        if !matches!(value.data_type, None | Some(DataType::Text)) {
            let message = format!("LIKE needs TEXT, found {}", type_name(value.data_type));
            return Err(SqlError::type_mismatch(message, value.position));
        }
        let pattern = self.compile(pattern)?;
        if !pattern.constant() {
            let what = "LIKE with a pattern that is not a constant or parameter";
            return Err(SqlError::unsupported(what, pattern.position));
        }
        match coerce_constant(pattern, DataType::Text)?.node {
            Node::Const(Value::Text(text)) => Ok(Node::Like {
                expr: Box::new(value.node),
                pattern: if case_insensitive {
                    LikePattern::case_insensitive(&text)
                } else {
                    LikePattern::new(&text)
                },
                negated,
            }),
            _ => Ok(Node::Const(Value::Null)),
        }
    }

    pub(crate) fn cast(&self, value: Typed, target: DataType) -> Result<Typed> {
        if !value.constant() {
            if value.data_type == Some(DataType::Json) && target != DataType::Text {
                let message = format!("cannot CAST JSON to {target}");
                return Err(SqlError::type_mismatch(message, value.position));
            }
            return Ok(Typed {
                node: Node::Cast {
                    expr: Box::new(value.node),
                    target,
                },
                data_type: Some(target),
                ..value
            });
        }
        let Node::Const(constant) = value.node else {
            return Err(SqlError::unsupported("this CAST", value.position));
        };
        let cast = match (target, constant) {
            (DataType::Text, constant) => cast_to_text(constant),
            (target, constant) => coerce(constant, target, Origin::Parameter),
        };
        let constant = cast.map_err(|error| error.or_at(value.position))?;
        Ok(Typed {
            node: Node::Const(constant),
            data_type: Some(target),
            source: Source::Literal,
            position: value.position,
        })
    }
}
