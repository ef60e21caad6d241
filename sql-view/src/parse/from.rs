//! FROM of a SELECT: one table, or a chain of `[INNER] JOIN` / `LEFT [OUTER] JOIN ... ON`.
//! Other joins (RIGHT, FULL, CROSS, NATURAL, USING, comma lists) are refused by name: a
//! silently different meaning would be worse than an error.

use sqlparser::ast::{JoinConstraint, JoinOperator, TableWithJoins};

use super::convert::{table_factor, unsupported};
use super::expr::expr;
use crate::ast::{Join, JoinKind, TableRef};
use crate::error::{Position, Result, SqlError};
use crate::limits;

/// The first table of FROM, its alias, and the joins after it.
pub(crate) struct From {
    pub(crate) table: TableRef,
    pub(crate) alias: Option<String>,
    pub(crate) joins: Vec<Join>,
}

pub(crate) fn from_clause(tables: &[TableWithJoins], start: Option<Position>) -> Result<From> {
    let [first] = tables else {
        return Err(if tables.is_empty() {
            unsupported("a SELECT without a table", start)
        } else {
            unsupported(
                "several tables in FROM separated by commas (write JOIN ... ON)",
                start,
            )
        });
    };
    let (table, alias) = table_factor(&first.relation, start)?;
    if first.joins.len() + 1 > limits::JOIN_TABLES_MAX {
        return Err(SqlError::limit(
            "tables in a join",
            limits::JOIN_TABLES_MAX,
            start,
        ));
    }
    let joins = first
        .joins
        .iter()
        .map(|join| {
            let (kind, constraint) = match &join.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinKind::Inner, c),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
                    return Err(unsupported(
                        "RIGHT JOIN (swap the tables and write LEFT JOIN)",
                        start,
                    ))
                }
                JoinOperator::FullOuter(_) => return Err(unsupported("FULL OUTER JOIN", start)),
                JoinOperator::CrossJoin(_) => return Err(unsupported("CROSS JOIN", start)),
                _ => return Err(unsupported("this kind of join", start)),
            };
            let on = match constraint {
                JoinConstraint::On(condition) => expr(condition)?,
                JoinConstraint::Using(_) | JoinConstraint::UsingAlias(..) => {
                    return Err(unsupported("JOIN ... USING (write ON a.x = b.x)", start))
                }
                JoinConstraint::Natural => return Err(unsupported("NATURAL JOIN", start)),
                JoinConstraint::None => {
                    return Err(unsupported("a JOIN without ON (a cross product)", start))
                }
            };
            let (table, alias) = table_factor(&join.relation, start)?;
            Ok(Join {
                table,
                alias,
                kind,
                on,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(From {
        table,
        alias,
        joins,
    })
}
