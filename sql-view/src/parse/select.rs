//! sqlparser queries to our [`Select`]: one table or a join (`from.rs`), a SELECT list of columns, aliases,
//! expressions and `*`, WHERE, GROUP BY, HAVING, DISTINCT, ORDER BY, LIMIT / OFFSET. DISTINCT
//! ON, ROLLUP and the like, window clauses, set operations and CTEs are refused by name.

use sqlparser::ast::{
    GroupByExpr, LimitClause, ObjectName, OrderByKind, OrderBySort, Query, SelectItem as SqlItem,
    SelectItemQualifiedWildcardKind, SetExpr, WildcardAdditionalOptions,
};

use super::convert::{ident_at, unsupported};
use super::cursor::fold_identifier;
use super::expr::{expr, leftmost_position};
use crate::ast::{Expr, OrderItem, Select, SelectItem, TableRef};
use crate::error::{Position, Result, SqlError};
use crate::limits;

pub(crate) fn select(query: &Query, start: Option<Position>) -> Result<Select> {
    if query.with.is_some() {
        return Err(unsupported("WITH (common table expressions)", start));
    }
    if query.fetch.is_some() || !query.locks.is_empty() || !query.pipe_operators.is_empty() {
        return Err(unsupported("FETCH / FOR UPDATE / pipe operators", start));
    }
    if query.for_clause.is_some() || query.settings.is_some() || query.format_clause.is_some() {
        return Err(unsupported("FOR / SETTINGS / FORMAT clauses", start));
    }
    let body = match query.body.as_ref() {
        SetExpr::Select(body) => body,
        SetExpr::SetOperation { .. } => {
            return Err(unsupported("UNION / INTERSECT / EXCEPT", start))
        }
        SetExpr::Query(_) => return Err(unsupported("subqueries", start)),
        _ => return Err(unsupported("this kind of query", start)),
    };
    check_select_clauses(body, start)?;
    let from = super::from::from_clause(&body.from, start)?;
    let (table, alias) = (from.table, from.alias);
    let joined = !from.joins.is_empty();
    let projection = body
        .projection
        .iter()
        .map(|item| select_item(item, &table, alias.as_deref(), joined, start))
        .collect::<Result<Vec<_>>>()?;
    let filter = body.selection.as_ref().map(expr).transpose()?;
    let group_by = match &body.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.iter().map(expr).collect::<Result<_>>()?,
        GroupByExpr::All(_) => Vec::new(),
    };
    let having = body.having.as_ref().map(expr).transpose()?.map(Box::new);
    let distinct = body.distinct.is_some();
    let order_by = order_by(query, start)?;
    let (limit, offset) = limit_offset(query.limit_clause.as_ref(), start)?;
    Ok(Select {
        table,
        alias,
        joins: from.joins,
        projection,
        filter,
        group_by,
        having,
        distinct,
        order_by,
        limit,
        offset,
    })
}

fn check_select_clauses(body: &sqlparser::ast::Select, start: Option<Position>) -> Result<()> {
    if matches!(body.distinct, Some(sqlparser::ast::Distinct::On(_))) {
        return Err(unsupported("DISTINCT ON", start));
    }
    if body.top.is_some() || body.into.is_some() || body.exclude.is_some() {
        return Err(unsupported("TOP / INTO / EXCLUDE", start));
    }
    match &body.group_by {
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL", start)),
        GroupByExpr::Expressions(_, modifiers) if !modifiers.is_empty() => {
            return Err(unsupported("GROUP BY ROLLUP / CUBE / GROUPING SETS", start))
        }
        GroupByExpr::Expressions(..) => {}
    }
    if !body.named_window.is_empty() || body.qualify.is_some() {
        return Err(unsupported("window functions", start));
    }
    if !body.lateral_views.is_empty()
        || !body.cluster_by.is_empty()
        || !body.distribute_by.is_empty()
        || !body.sort_by.is_empty()
        || body.prewhere.is_some()
        || !body.connect_by.is_empty()
    {
        return Err(unsupported("this SELECT clause", start));
    }
    Ok(())
}

fn select_item(
    item: &SqlItem,
    table: &TableRef,
    alias: Option<&str>,
    joined: bool,
    start: Option<Position>,
) -> Result<SelectItem> {
    match item {
        SqlItem::UnnamedExpr(sql) => {
            let expr = expr(sql)?;
            let text = expr.to_string();
            Ok(SelectItem::Expr {
                expr,
                alias: None,
                text,
            })
        }
        SqlItem::ExprWithAlias {
            expr: sql,
            alias: name,
        } => {
            let expr = expr(sql)?;
            let text = expr.to_string();
            let alias = Some(fold_identifier(&name.value, name.quote_style));
            Ok(SelectItem::Expr { expr, alias, text })
        }
        SqlItem::Wildcard(options) => plain_wildcard(options, start),
        SqlItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), options)
            if joined =>
        {
            // Which table it names is the plan's business: it knows them all.
            plain_wildcard(options, start)?;
            let qualifier = name
                .0
                .iter()
                .filter_map(|part| part.as_ident())
                .map(|i| fold_identifier(&i.value, i.quote_style))
                .collect();
            let position = name.0.first().and_then(|p| p.as_ident()).and_then(ident_at);
            Ok(SelectItem::QualifiedWildcard {
                qualifier,
                position,
            })
        }
        SqlItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), options) => {
            if !qualifier_matches(name, table, alias) {
                let position = name.0.first().and_then(|p| p.as_ident()).and_then(ident_at);
                let what = format!("{name}.* for a table other than the one in FROM");
                return Err(unsupported(&what, position));
            }
            plain_wildcard(options, start)
        }
        _ => Err(unsupported("this SELECT item", start)),
    }
}

fn plain_wildcard(
    options: &WildcardAdditionalOptions,
    start: Option<Position>,
) -> Result<SelectItem> {
    let plain = options.opt_ilike.is_none()
        && options.opt_exclude.is_none()
        && options.opt_except.is_none()
        && options.opt_replace.is_none()
        && options.opt_rename.is_none()
        && options.opt_alias.is_none();
    if plain {
        Ok(SelectItem::Wildcard)
    } else {
        Err(unsupported(
            "* with EXCLUDE / EXCEPT / REPLACE / RENAME",
            start,
        ))
    }
}

fn qualifier_matches(name: &ObjectName, table: &TableRef, alias: Option<&str>) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|part| part.as_ident())
        .map(|i| fold_identifier(&i.value, i.quote_style))
        .collect();
    match parts.as_slice() {
        [one] => match alias {
            Some(alias) => one == alias,
            None => one == table.name.table.as_str(),
        },
        [namespace, one] => {
            alias.is_none()
                && namespace == table.name.namespace.as_str()
                && one == table.name.table.as_str()
        }
        _ => false,
    }
}

fn order_by(query: &Query, start: Option<Position>) -> Result<Vec<OrderItem>> {
    let Some(order_by) = &query.order_by else {
        return Ok(Vec::new());
    };
    let OrderByKind::Expressions(items) = &order_by.kind else {
        return Err(unsupported("ORDER BY ALL", start));
    };
    if order_by.interpolate.is_some() {
        return Err(unsupported("INTERPOLATE", start));
    }
    if items.len() > limits::ORDER_BY_KEYS_MAX {
        return Err(SqlError::limit(
            "ORDER BY keys",
            limits::ORDER_BY_KEYS_MAX,
            start,
        ));
    }
    items
        .iter()
        .map(|item| {
            if item.with_fill.is_some() {
                return Err(unsupported("WITH FILL", leftmost_position(&item.expr)));
            }
            let descending = match item.options.sort {
                None | Some(OrderBySort::Asc) => false,
                Some(OrderBySort::Desc) => true,
                Some(_) => return Err(unsupported("ORDER BY ... USING", start)),
            };
            let nulls_first = item.options.nulls_first;
            Ok(OrderItem {
                expr: expr(&item.expr)?,
                descending,
                nulls_first,
            })
        })
        .collect()
}

type LimitOffset = (Option<Expr>, Option<Expr>);

fn limit_offset(clause: Option<&LimitClause>, start: Option<Position>) -> Result<LimitOffset> {
    match clause {
        None => Ok((None, None)),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(unsupported("LIMIT BY", start));
            }
            let limit = limit.as_ref().map(expr).transpose()?;
            let offset = offset.as_ref().map(|o| expr(&o.value)).transpose()?;
            Ok((limit, offset))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            Ok((Some(expr(limit)?), Some(expr(offset)?)))
        }
    }
}
