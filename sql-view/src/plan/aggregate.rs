//! GROUP BY, HAVING, DISTINCT and aggregates of a SELECT, in two stages. The first reads the
//! table: it filters (WHERE), computes each row's group key and feeds the group's
//! accumulators (`accumulate.rs`). The second is an ordinary [`SelectPlan`] over the group
//! rows, `[group keys..., aggregate values...]` as the columns `grp_0, ..., agg_0, ...` of a
//! table that exists only here: HAVING is its WHERE, then its SELECT list, ORDER BY and LIMIT.
//! Compiling rewrites the SELECT list, HAVING and ORDER BY to that table: an expression equal
//! (as written) to a GROUP BY expression reads its key, an aggregate reads its value, and any
//! other column is a `grouping_error`. `SELECT DISTINCT ...` is GROUP BY its SELECT list.

use std::sync::Arc;

use super::accumulate::GroupTable;
use super::compile::Scope;
use super::node::Node;
use super::select::SelectPlan;
use super::{RowFields, SystemColumns};
use crate::ast::{AggregateFunction, Expr, ExprKind, OrderItem, Select, SelectItem, TableRef};
use crate::catalog::{ColumnDef, Name, TableDef, TableKind, TableName};
use crate::error::{code, Result, SqlError};
use crate::value::{DataType, Value};

/// One aggregate of the query, over the table's rows.
#[derive(Debug, Clone)]
pub(crate) struct AggregateSpec {
    pub(crate) function: AggregateFunction,
    /// `None` for `COUNT(*)`.
    pub(crate) arg: Option<Node>,
    pub(crate) distinct: bool,
    /// The type of its value.
    pub(crate) output: DataType,
}

/// The grouping stage of a SELECT with GROUP BY, aggregates or DISTINCT.
#[derive(Debug, Clone)]
pub(crate) struct AggregateStage {
    pub(crate) group_keys: Vec<Node>,
    pub(crate) aggregates: Vec<AggregateSpec>,
    /// The second stage, over the group rows.
    pub(crate) output: Box<SelectPlan>,
    /// No GROUP BY: one group, even over no rows (`SELECT COUNT(*)` of an empty table is 0).
    pub(crate) single_group: bool,
}

/// Whether the SELECT groups: GROUP BY, HAVING, DISTINCT or an aggregate anywhere.
pub(crate) fn groups(select: &Select) -> bool {
    select.distinct
        || !select.group_by.is_empty()
        || select.having.is_some()
        || select.projection.iter().any(|item| match item {
            SelectItem::Expr { expr, .. } => has_aggregate(expr),
            SelectItem::Wildcard | SelectItem::QualifiedWildcard { .. } => false,
        })
        || select.order_by.iter().any(|item| has_aggregate(&item.expr))
}

impl AggregateStage {
    pub(crate) fn compile(
        select: &Select,
        table: &TableDef,
        scope: &Scope<'_>,
    ) -> Result<AggregateStage> {
        let mut group_by = select.group_by.clone();
        let mut projection = select.projection.clone();
        if select.distinct {
            let aggregates = projection.iter().any(|item| match item {
                SelectItem::Expr { expr, .. } => has_aggregate(expr),
                SelectItem::Wildcard | SelectItem::QualifiedWildcard { .. } => false,
            });
            if !group_by.is_empty() || aggregates || select.having.is_some() {
                let what = "DISTINCT together with GROUP BY, HAVING or aggregates";
                return Err(SqlError::unsupported(what, None));
            }
            projection = expand_wildcards(projection, table);
            group_by = projection
                .iter()
                .filter_map(|item| match item {
                    SelectItem::Expr { expr, .. } => Some(expr.clone()),
                    SelectItem::Wildcard | SelectItem::QualifiedWildcard { .. } => None,
                })
                .collect();
        }
        let mut rewriter = Rewriter {
            groups: group_by.iter().map(|g| g.to_string()).collect(),
            aggregates: Vec::new(),
        };
        let mut group_keys = Vec::with_capacity(group_by.len());
        let mut columns = Vec::new();
        for (index, expr) in group_by.iter().enumerate() {
            if has_aggregate(expr) {
                let message = "aggregates are not allowed in GROUP BY";
                return Err(SqlError::new(code::GROUPING_ERROR, message, expr.position));
            }
            let typed = scope.compile(expr)?;
            columns.push(column(&format!("grp_{index}"), typed.data_type));
            group_keys.push(typed.node);
        }
        let mut items = Vec::with_capacity(projection.len());
        for item in &projection {
            let SelectItem::Expr { expr, alias, text } = item else {
                let message = "SELECT * with GROUP BY: name the grouped columns";
                return Err(SqlError::new(code::GROUPING_ERROR, message, None));
            };
            // An unaliased item keeps its own name (a column's, else its text), not that of
            // the group column it now reads.
            let alias = alias.clone().or_else(|| match &expr.kind {
                ExprKind::Column { name, .. } => Some(name.clone()),
                _ => Some(text.clone()),
            });
            items.push(SelectItem::Expr {
                expr: rewriter.rewrite(expr)?,
                alias,
                text: text.clone(),
            });
        }
        let having = select
            .having
            .as_deref()
            .map(|h| rewriter.rewrite(h))
            .transpose()?;
        let names: Vec<String> = items
            .iter()
            .filter_map(|item| match item {
                SelectItem::Expr { alias, .. } => alias.clone(),
                SelectItem::Wildcard | SelectItem::QualifiedWildcard { .. } => None,
            })
            .collect();
        let mut order_by = Vec::with_capacity(select.order_by.len());
        for item in &select.order_by {
            let output_reference = match &item.expr.kind {
                ExprKind::Literal(crate::ast::Literal::Number(_)) => true,
                ExprKind::Column { qualifier, name } => {
                    qualifier.is_empty() && names.contains(name)
                }
                _ => false,
            };
            let expr = if output_reference {
                item.expr.clone()
            } else {
                rewriter.rewrite(&item.expr)?
            };
            order_by.push(OrderItem {
                expr,
                ..item.clone()
            });
        }
        let mut aggregates = Vec::with_capacity(rewriter.aggregates.len());
        for (index, (_, expr)) in rewriter.aggregates.iter().enumerate() {
            let spec = aggregate_spec(expr, scope)?;
            columns.push(column(&format!("agg_{index}"), Some(spec.output)));
            aggregates.push(spec);
        }
        let groups = group_table(columns)?;
        let second = Select {
            joins: Vec::new(),
            table: TableRef {
                name: groups.name().clone(),
                position: None,
            },
            alias: None,
            projection: items,
            filter: having,
            group_by: Vec::new(),
            having: None,
            distinct: false,
            order_by,
            limit: select.limit.clone(),
            offset: select.offset.clone(),
        };
        let output = SelectPlan::compile_over(&second, Arc::new(groups), scope.params)?;
        Ok(AggregateStage {
            group_keys,
            aggregates,
            output: Box::new(output),
            single_group: group_by.is_empty(),
        })
    }

    /// A table of groups to feed the table's rows into.
    pub(crate) fn start(&self) -> GroupTable {
        GroupTable::new(self.single_group)
    }

    /// Feed one row (it matched WHERE).
    pub(crate) fn push<R: RowFields + ?Sized>(
        &self,
        groups: &mut GroupTable,
        row: &R,
        system: SystemColumns,
    ) -> Result<()> {
        groups.add(&self.group_keys, &self.aggregates, row, system)
    }

    /// The row's group key values.
    pub(crate) fn key_of<R: RowFields + ?Sized>(
        &self,
        row: &R,
        system: SystemColumns,
    ) -> Result<Vec<Value>> {
        self.group_keys
            .iter()
            .map(|node| Ok(node.eval(row, system)?.into_value()))
            .collect()
    }

    /// The result rows: each group row through the second stage.
    pub(crate) fn finish(&self, groups: GroupTable) -> Result<Vec<Vec<Value>>> {
        let mut collector = self.output.collector();
        for (index, row) in groups.into_rows(&self.aggregates)?.into_iter().enumerate() {
            // The group's place in key order breaks ORDER BY ties.
            let system = SystemColumns {
                seq: i64::try_from(index).unwrap_or(i64::MAX),
                deleted: false,
                now: 0,
            };
            collector.push(&row, system)?;
        }
        collector.finish()
    }
}

/// The value types of an aggregate over its argument.
fn aggregate_spec(expr: &Expr, scope: &Scope<'_>) -> Result<AggregateSpec> {
    let ExprKind::Aggregate {
        function,
        arg,
        distinct,
    } = &expr.kind
    else {
        return Err(SqlError::unsupported("this aggregate", expr.position));
    };
    let arg = match arg {
        Some(arg) => {
            if has_aggregate(arg) {
                let message = "aggregates cannot be nested";
                return Err(SqlError::new(code::GROUPING_ERROR, message, arg.position));
            }
            Some(scope.compile(arg)?)
        }
        None => None,
    };
    let input = arg.as_ref().and_then(|a| a.data_type);
    let output = match function {
        AggregateFunction::Count => DataType::BigInt,
        AggregateFunction::Sum | AggregateFunction::Avg => {
            let numeric = input.is_none_or(DataType::is_numeric);
            if !numeric {
                let message = format!(
                    "{} needs a number, found {}",
                    function.name(),
                    input.map_or("NULL", DataType::name)
                );
                let position = arg.as_ref().and_then(|a| a.position);
                return Err(SqlError::type_mismatch(message, position));
            }
            match (function, input) {
                (AggregateFunction::Sum, Some(DataType::Int | DataType::BigInt)) => {
                    DataType::BigInt
                }
                // Exact, as in PostgreSQL: SUM keeps the scale, AVG divides it as `/` does.
                (AggregateFunction::Sum, Some(DataType::Decimal { scale, .. })) => {
                    DataType::decimal_with_scale(scale)
                }
                (AggregateFunction::Avg, Some(DataType::Decimal { scale, .. })) => {
                    DataType::decimal_with_scale(scale.max(crate::decimal::DIVISION_SCALE_MIN))
                }
                _ => DataType::Double,
            }
        }
        AggregateFunction::Min | AggregateFunction::Max => {
            if input == Some(DataType::Json) {
                let message = format!("{} cannot compare JSON values", function.name());
                return Err(SqlError::type_mismatch(message, expr.position));
            }
            input.unwrap_or(DataType::Text)
        }
    };
    Ok(AggregateSpec {
        function: *function,
        arg: arg.map(|a| a.node),
        distinct: *distinct,
        output,
    })
}

fn column(name: &str, data_type: Option<DataType>) -> (String, DataType) {
    (name.to_owned(), data_type.unwrap_or(DataType::Text))
}

fn group_table(columns: Vec<(String, DataType)>) -> Result<TableDef> {
    let mut defs = Vec::with_capacity(columns.len().max(1));
    for (name, data_type) in columns {
        defs.push(ColumnDef {
            name: Name::new(&name)?,
            data_type,
            not_null: false,
            default: None,
        });
    }
    if defs.is_empty() {
        // `SELECT DISTINCT` of constants only: one group, no columns to read.
        defs.push(ColumnDef {
            name: Name::new("grp_none")?,
            data_type: DataType::Int,
            not_null: false,
            default: None,
        });
    }
    let name = TableName {
        namespace: Name::new("query")?,
        table: Name::new("groups")?,
    };
    // Keyless, as only STREAM tables may be: group rows have no primary key.
    TableDef::new(name, TableKind::Stream { ttl_seconds: 1 }, defs, None)
}

fn expand_wildcards(projection: Vec<SelectItem>, table: &TableDef) -> Vec<SelectItem> {
    let mut expanded = Vec::with_capacity(projection.len());
    for item in projection {
        match item {
            SelectItem::Wildcard | SelectItem::QualifiedWildcard { .. } => {
                for column in table.columns() {
                    let name = column.name.as_str().to_owned();
                    expanded.push(SelectItem::Expr {
                        expr: Expr {
                            kind: ExprKind::Column {
                                qualifier: Vec::new(),
                                name: name.clone(),
                            },
                            position: None,
                        },
                        alias: None,
                        text: name,
                    });
                }
            }
            item => expanded.push(item),
        }
    }
    expanded
}

/// Whether an aggregate call appears in `expr`.
pub(crate) fn has_aggregate(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        found |= matches!(e.kind, ExprKind::Aggregate { .. })
    });
    found
}

fn visit(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    for child in children(expr) {
        visit(child, f);
    }
}

fn children(expr: &Expr) -> Vec<&Expr> {
    match &expr.kind {
        ExprKind::Column { .. } | ExprKind::Literal(_) | ExprKind::Parameter(_) => Vec::new(),
        ExprKind::Unary { expr, .. }
        | ExprKind::IsNull { expr, .. }
        | ExprKind::Cast { expr, .. } => {
            vec![expr]
        }
        ExprKind::Binary { left, right, .. } => vec![left, right],
        ExprKind::And(items) | ExprKind::Or(items) => items.iter().collect(),
        ExprKind::InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
        ExprKind::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        ExprKind::Like { expr, pattern, .. } => vec![expr, pattern],
        ExprKind::Function { args, .. } => args.iter().collect(),
        ExprKind::Aggregate { arg, .. } => arg.iter().map(|a| &**a).collect(),
        ExprKind::Case {
            operand,
            branches,
            otherwise,
        } => operand
            .iter()
            .map(|o| &**o)
            .chain(branches.iter().flat_map(|(w, t)| [w, t]))
            .chain(otherwise.iter().map(|o| &**o))
            .collect(),
    }
}

/// Rewrites expressions over the table to expressions over the group rows.
struct Rewriter {
    /// The GROUP BY expressions, as written.
    groups: Vec<String>,
    /// The aggregates met so far (deduplicated by how they are written), in order.
    aggregates: Vec<(String, Expr)>,
}

impl Rewriter {
    fn rewrite(&mut self, expr: &Expr) -> Result<Expr> {
        let text = expr.to_string();
        let column = |name: String| Expr {
            kind: ExprKind::Column {
                qualifier: Vec::new(),
                name,
            },
            position: expr.position,
        };
        if let Some(index) = self.groups.iter().position(|g| *g == text) {
            return Ok(column(format!("grp_{index}")));
        }
        if let ExprKind::Aggregate { .. } = &expr.kind {
            let index = match self.aggregates.iter().position(|(t, _)| *t == text) {
                Some(index) => index,
                None => {
                    self.aggregates.push((text, expr.clone()));
                    self.aggregates.len() - 1
                }
            };
            return Ok(column(format!("agg_{index}")));
        }
        if let ExprKind::Column { name, .. } = &expr.kind {
            let message = format!(
                "column {name} must appear in GROUP BY or be used in an aggregate function"
            );
            return Err(SqlError::new(code::GROUPING_ERROR, message, expr.position));
        }
        let mut rewritten = expr.clone();
        self.rewrite_children(&mut rewritten)?;
        Ok(rewritten)
    }

    fn rewrite_boxed(&mut self, expr: &mut Expr) -> Result<()> {
        *expr = self.rewrite(expr)?;
        Ok(())
    }

    fn rewrite_children(&mut self, expr: &mut Expr) -> Result<()> {
        match &mut expr.kind {
            ExprKind::Column { .. } | ExprKind::Literal(_) | ExprKind::Parameter(_) => {}
            ExprKind::Aggregate { .. } => {}
            ExprKind::Unary { expr, .. }
            | ExprKind::IsNull { expr, .. }
            | ExprKind::Cast { expr, .. } => self.rewrite_boxed(expr)?,
            ExprKind::Binary { left, right, .. } => {
                self.rewrite_boxed(left)?;
                self.rewrite_boxed(right)?;
            }
            ExprKind::Like { expr, pattern, .. } => {
                self.rewrite_boxed(expr)?;
                self.rewrite_boxed(pattern)?;
            }
            ExprKind::Between {
                expr, low, high, ..
            } => {
                self.rewrite_boxed(expr)?;
                self.rewrite_boxed(low)?;
                self.rewrite_boxed(high)?;
            }
            ExprKind::InList { expr, list, .. } => {
                self.rewrite_boxed(expr)?;
                for item in list {
                    self.rewrite_boxed(item)?;
                }
            }
            ExprKind::And(items) | ExprKind::Or(items) | ExprKind::Function { args: items, .. } => {
                for item in items {
                    self.rewrite_boxed(item)?;
                }
            }
            ExprKind::Case {
                operand,
                branches,
                otherwise,
            } => {
                if let Some(operand) = operand {
                    self.rewrite_boxed(operand)?;
                }
                for (when, then) in branches {
                    self.rewrite_boxed(when)?;
                    self.rewrite_boxed(then)?;
                }
                if let Some(otherwise) = otherwise {
                    self.rewrite_boxed(otherwise)?;
                }
            }
        }
        Ok(())
    }
}
