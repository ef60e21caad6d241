//! [`SelectPlan`]: a SELECT compiled against its table, and [`ResultCollector`], which runs a
//! one-shot query over the rows the broker feeds it (filter, ORDER BY, OFFSET, LIMIT,
//! projection) keeping at most what the result needs.

use std::cmp::Ordering;
use std::sync::Arc;

use super::accumulate::GroupTable;
use super::aggregate::{self, AggregateStage};
use super::clock::ClockTerms;
use super::compile::{Scope, Source, Typed};
use super::join::{self, JoinPlan, JoinSource};
use super::node::Node;
use super::{resolve_table, Filter, OutputColumn, RowFields, SystemColumns};
use crate::ast::{Expr, ExprKind, Literal, Select, SelectItem};
use crate::catalog::{CatalogView, TableDef};
use crate::error::{code, Result, SqlError};
use crate::limits;
use crate::value::{sort_order, DataType, Value};

/// One ORDER BY key.
#[derive(Debug, Clone, PartialEq)]
struct SortKey {
    node: Node,
    descending: bool,
    nulls_first: bool,
}

/// What orders rows equal in every ORDER BY key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tie {
    /// A field of the row: a primary key.
    Field(usize),
    /// The version's `_seq`, for a table without a primary key.
    Seq,
}

/// A compiled SELECT.
#[derive(Debug, Clone)]
pub struct SelectPlan {
    /// The table read (the first of a join).
    table: Arc<TableDef>,
    /// The tables after the first and how they are joined; rows are then joined rows
    /// (`join.rs`).
    join: Option<Arc<JoinPlan>>,
    /// Ties of ORDER BY are broken by these, in order: the order is total.
    tie: Vec<Tie>,
    /// A subscription's clock-reading WHERE (`clock.rs`).
    clock: Option<Arc<ClockTerms>>,
    filter: Filter,
    /// Shared (`Arc`) so that many plans with one SELECT list, e.g. realtime subscriptions
    /// that differ only in their WHERE, can hold one copy ([`SelectPlan::share_projection`]).
    projection: Arc<[Node]>,
    columns: Arc<[OutputColumn]>,
    order_by: Vec<SortKey>,
    limit: Option<u64>,
    offset: u64,
    /// It reads the clock (`now()`), folded to the time it was compiled.
    reads_clock: bool,
    /// GROUP BY, aggregates or DISTINCT: the rows that match go into groups, and the result
    /// is the second stage's over them (`aggregate.rs`).
    pub(crate) aggregate: Option<Box<AggregateStage>>,
}

impl SelectPlan {
    /// Compiles a SELECT: resolves the table through `catalog` (`unknown_table`), names to
    /// columns (`unknown_column`), binds `params` (`$1` is `params[0]`) and checks types.
    pub fn compile(
        select: &Select,
        catalog: &dyn CatalogView,
        params: &[Value],
    ) -> Result<SelectPlan> {
        if select.joins.is_empty() {
            let table = resolve_table(&select.table, catalog)?;
            return SelectPlan::compile_over(select, table, params);
        }
        let sources = JoinPlan::sources_of(select, catalog)?;
        let spelled = Select {
            projection: join::spell_out_projection(&select.projection, &sources)?,
            ..select.clone()
        };
        let join = JoinPlan::compile(select, sources, params)?;
        SelectPlan::compile_with(&spelled, params, join)
    }

    /// [`SelectPlan::compile`] over a table already resolved (for the group rows of a
    /// grouping query, a table that is in no catalog).
    pub(crate) fn compile_over(
        select: &Select,
        table: Arc<TableDef>,
        params: &[Value],
    ) -> Result<SelectPlan> {
        let tie = vec![table.primary_key().map_or(Tie::Seq, Tie::Field)];
        SelectPlan::compile_in(select, table, params, &[], tie, false)
    }

    /// [`SelectPlan::compile`] for a subscription: `now()` is not folded but read from
    /// [`SystemColumns::now`] each time the filter is evaluated, and is allowed only where
    /// [`SelectPlan::clock`] can tell when a row's result flips; joins are refused
    /// (`unsupported`).
    pub fn compile_live(
        select: &Select,
        catalog: &dyn CatalogView,
        params: &[Value],
    ) -> Result<SelectPlan> {
        if !select.joins.is_empty() {
            let plan = SelectPlan::compile(select, catalog, params)?;
            let live = |what: &str| Err(SqlError::unsupported(what, select.table.position));
            if plan.reads_clock {
                return live("now() in a join subscription");
            }
            if plan.is_grouped() || plan.has_order_by() || plan.limit.is_some() || plan.offset > 0 {
                return live("grouping, ORDER BY, LIMIT or OFFSET in a join subscription");
            }
            if let Some(join) = plan.join() {
                join.live_lookups()?;
            }
            return Ok(plan);
        }
        let table = resolve_table(&select.table, catalog)?;
        let tie = vec![table.primary_key().map_or(Tie::Seq, Tie::Field)];
        let mut plan = SelectPlan::compile_in(select, table, params, &[], tie, true)?;
        if plan.reads_clock {
            let others = plan
                .projection
                .iter()
                .chain(plan.order_by.iter().map(|k| &k.node));
            let terms = ClockTerms::of(plan.filter.node.as_ref(), others, plan.is_grouped())?;
            plan.clock = Some(Arc::new(terms));
        }
        Ok(plan)
    }

    /// For a subscription whose WHERE reads `now()`: the terms that tell when a row enters or
    /// leaves the result as time passes.
    pub fn clock(&self) -> Option<&ClockTerms> {
        self.clock.as_deref()
    }

    /// [`SelectPlan::compile_over`] the joined rows of `join`.
    fn compile_with(select: &Select, params: &[Value], mut join: JoinPlan) -> Result<SelectPlan> {
        let table = join.sources()[0].table().clone();
        let tie = join.tie_fields().into_iter().map(Tie::Field).collect();
        let mut plan = SelectPlan::compile_in(select, table, params, join.sources(), tie, false)?;
        plan.reads_clock |= join.reads_clock;
        join.push_down(plan.filter.node.as_ref());
        plan.join = Some(Arc::new(join));
        Ok(plan)
    }

    fn compile_in(
        select: &Select,
        table: Arc<TableDef>,
        params: &[Value],
        sources: &[JoinSource],
        tie: Vec<Tie>,
        live_clock: bool,
    ) -> Result<SelectPlan> {
        let scope = Scope {
            table: Some(&table),
            alias: select.alias.as_deref(),
            params,
            reads_clock: std::cell::Cell::new(false),
            sources,
            live_clock,
        };
        let filter = super::write::compile_filter(&scope, select.filter.as_ref(), &table)?;
        if aggregate::groups(select) {
            let stage = AggregateStage::compile(select, &table, &scope)?;
            let reads_clock = scope.reads_clock.get() || stage.output.reads_clock;
            return Ok(SelectPlan {
                columns: stage.output.columns.clone(),
                table: table.clone(),
                join: None,
                tie,
                clock: None,
                filter,
                projection: Arc::from(Vec::new()),
                order_by: Vec::new(),
                limit: None,
                offset: 0,
                reads_clock,
                aggregate: Some(Box::new(stage)),
            });
        }
        let (projection, columns) = projection(&scope, &table, &select.projection)?;
        let mut order_by = Vec::with_capacity(select.order_by.len());
        for item in &select.order_by {
            let node = sort_node(&scope, &item.expr, &projection, &columns)?;
            // NULL sorts as larger than every value: last ascending, first descending.
            let nulls_first = item.nulls_first.unwrap_or(item.descending);
            order_by.push(SortKey {
                node,
                descending: item.descending,
                nulls_first,
            });
        }
        let limit = constant_count(&scope, select.limit.as_ref(), "LIMIT")?;
        let offset = constant_count(&scope, select.offset.as_ref(), "OFFSET")?.unwrap_or(0);
        let reads_clock = scope.reads_clock.get();
        Ok(SelectPlan {
            table,
            join: None,
            tie,
            clock: None,
            filter,
            projection: projection.into(),
            columns: columns.into(),
            order_by,
            limit,
            offset,
            reads_clock,
            aggregate: None,
        })
    }

    /// Whether the query reads the clock (`now()`, `CURRENT_TIMESTAMP`): compiled once, it
    /// holds the time of its compilation.
    pub fn reads_clock(&self) -> bool {
        self.reads_clock
    }

    /// Whether a grouping query orders or limits its groups (ORDER BY, LIMIT, OFFSET).
    pub fn orders_groups(&self) -> bool {
        self.aggregate.as_ref().is_some_and(|stage| {
            stage.output.has_order_by() || stage.output.limit.is_some() || stage.output.offset > 0
        })
    }

    /// Whether it groups (GROUP BY, aggregates, DISTINCT): its rows are groups, not rows of
    /// the table.
    pub fn is_grouped(&self) -> bool {
        self.aggregate.is_some()
    }

    /// The table read (the first of a join).
    pub fn table(&self) -> &Arc<TableDef> {
        &self.table
    }

    /// A join's tables after the first and how they are joined: the broker then feeds
    /// joined rows (`JoinPlan::start`), not the table's.
    pub fn join(&self) -> Option<&JoinPlan> {
        self.join.as_deref()
    }

    /// The result schema, in SELECT-list order.
    pub fn columns(&self) -> &[OutputColumn] {
        &self.columns
    }

    /// Whether `other` computes the same output columns from a row of the same table (so one
    /// encoding of a row serves both).
    pub fn same_projection(&self, other: &SelectPlan) -> bool {
        self.table.name() == other.table.name()
            && self.projection == other.projection
            && self.columns == other.columns
    }

    /// Take `other`'s copy of the SELECT list if it is the same; returns whether it was.
    pub fn share_projection(&mut self, other: &SelectPlan) -> bool {
        if !self.same_projection(other) {
            return false;
        }
        self.projection = other.projection.clone();
        self.columns = other.columns.clone();
        true
    }

    /// The WHERE condition.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Whether the row satisfies WHERE.
    pub fn matches<R: RowFields + ?Sized>(&self, row: &R, system: SystemColumns) -> Result<bool> {
        self.filter.matches(row, system)
    }

    /// The SELECT-list values of a row.
    pub fn project<R: RowFields + ?Sized>(
        &self,
        row: &R,
        system: SystemColumns,
    ) -> Result<Vec<Value>> {
        self.projection
            .iter()
            .map(|node| Ok(node.eval(row, system)?.into_value()))
            .collect()
    }

    /// The position in the SELECT list that is exactly the table's column `column`, if any
    /// (e.g. where the primary key is in the output).
    pub fn output_of_column(&self, column: usize) -> Option<usize> {
        self.projection
            .iter()
            .position(|node| *node == Node::Column(column))
    }

    /// Whether the query has ORDER BY.
    pub fn has_order_by(&self) -> bool {
        !self.order_by.is_empty()
    }

    /// LIMIT, if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// OFFSET (0 without one).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The ORDER BY key values of a row (compare them with [`SelectPlan::compare_sort_keys`]).
    pub fn sort_key<R: RowFields + ?Sized>(
        &self,
        row: &R,
        system: SystemColumns,
    ) -> Result<Vec<Value>> {
        self.order_by
            .iter()
            .map(|key| Ok(key.node.eval(row, system)?.into_value()))
            .collect()
    }

    /// The ORDER BY order of two rows' sort keys.
    pub fn compare_sort_keys(&self, a: &[Value], b: &[Value]) -> Ordering {
        for (key, (x, y)) in self.order_by.iter().zip(a.iter().zip(b)) {
            let order = sort_order(x.as_ref(), y.as_ref());
            // NULL against a value: NULLS FIRST flips it; two values: DESC flips them.
            let flip = if x.is_null() != y.is_null() {
                key.nulls_first
            } else {
                key.descending
            };
            let order = if flip { order.reverse() } else { order };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }

    /// A collector that runs this query over rows fed one by one.
    pub fn collector(&self) -> ResultCollector<'_> {
        ResultCollector {
            plan: self,
            rows: Vec::new(),
            skipped: 0,
            groups: self.aggregate.as_ref().map(|stage| stage.start()),
        }
    }
}

/// Runs a one-shot SELECT over rows the broker feeds it, in any order: filters, keeps the rows
/// the ORDER BY / OFFSET / LIMIT window needs (at most about twice `offset + limit` with an
/// ORDER BY), and projects them.
pub struct ResultCollector<'a> {
    plan: &'a SelectPlan,
    /// (sort key, projected row), in arrival order.
    rows: Vec<(Vec<Value>, Vec<Value>)>,
    /// Matching rows dropped for OFFSET (without ORDER BY only).
    skipped: u64,
    /// A grouping query's groups.
    groups: Option<GroupTable>,
}

impl ResultCollector<'_> {
    /// Offers one row version; rows that do not match WHERE are ignored.
    pub fn push<R: RowFields + ?Sized>(&mut self, row: &R, system: SystemColumns) -> Result<()> {
        if self.is_full() || !self.plan.matches(row, system)? {
            return Ok(());
        }
        if let (Some(stage), Some(groups)) = (&self.plan.aggregate, &mut self.groups) {
            return stage.push(groups, row, system);
        }
        if !self.plan.has_order_by() && self.skipped < self.plan.offset {
            self.skipped += 1;
            return Ok(());
        }
        let mut key = self.plan.sort_key(row, system)?;
        // Ties are broken by the primary key (by `_seq` without one; a join's by each
        // table's): the order is total, and the same as a live top-K window's.
        for tie in &self.plan.tie {
            key.push(match tie {
                Tie::Field(field) => row.field(*field).to_value(),
                Tie::Seq => Value::BigInt(system.seq),
            });
        }
        self.rows.push((key, self.plan.project(row, system)?));
        if let Some(window) = self.window() {
            if self.plan.has_order_by()
                && self.rows.len() >= window.saturating_mul(2).max(limits::ORDER_BY_TRIM_ROWS_MIN)
            {
                self.sort();
                self.rows.truncate(window);
            }
        }
        Ok(())
    }

    /// Whether further rows cannot change the result (LIMIT reached without ORDER BY): the
    /// broker may stop reading.
    pub fn is_full(&self) -> bool {
        match self.plan.limit {
            Some(limit) if !self.plan.has_order_by() => self.rows.len() as u64 >= limit,
            _ => false,
        }
    }

    /// The result rows, in order; a grouping query's second stage may fail (`HAVING` or an
    /// aggregate's arithmetic).
    pub fn finish(mut self) -> Result<Vec<Vec<Value>>> {
        if let (Some(stage), Some(groups)) = (&self.plan.aggregate, self.groups.take()) {
            return stage.finish(groups);
        }
        let mut offset = 0;
        if self.plan.has_order_by() {
            self.sort();
            offset = usize::try_from(self.plan.offset).unwrap_or(usize::MAX);
        }
        let limit = self
            .plan
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(self
            .rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, row)| row)
            .collect())
    }

    fn window(&self) -> Option<usize> {
        let limit = self.plan.limit?;
        usize::try_from(self.plan.offset.saturating_add(limit)).ok()
    }

    fn sort(&mut self) {
        let plan = self.plan;
        let keys = plan.order_by.len();
        self.rows.sort_by(|a, b| {
            plan.compare_sort_keys(&a.0, &b.0).then_with(|| {
                let ties = a.0.iter().zip(&b.0).skip(keys);
                ties.map(|(x, y)| sort_order(x.as_ref(), y.as_ref()))
                    .find(|order| order.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
        });
    }
}

fn projection(
    scope: &Scope<'_>,
    table: &TableDef,
    items: &[SelectItem],
) -> Result<(Vec<Node>, Vec<OutputColumn>)> {
    let (mut nodes, mut columns) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            SelectItem::Wildcard => {
                for (index, column) in table.columns().iter().enumerate() {
                    nodes.push(Node::Column(index));
                    let name = column.name.as_str().to_owned();
                    columns.push(OutputColumn {
                        name,
                        data_type: column.data_type,
                    });
                }
            }
            SelectItem::QualifiedWildcard { position, .. } => {
                // Over one table the parser makes `t.*` a `*`; a join spells them out first.
                let what = "t.* here";
                return Err(SqlError::unsupported(what, *position));
            }
            SelectItem::Expr { expr, alias, text } => {
                let typed = scope.compile(expr)?;
                let name = alias.clone().unwrap_or_else(|| match &expr.kind {
                    ExprKind::Column { name, .. } => name.clone(),
                    _ => text.clone(),
                });
                // The NULL literal has no type of its own; TEXT is as good as any.
                let data_type = typed.data_type.unwrap_or(DataType::Text);
                nodes.push(typed.node);
                columns.push(OutputColumn { name, data_type });
            }
        }
        if nodes.len() > limits::PROJECTION_ITEMS_MAX {
            return Err(SqlError::limit(
                "SELECT list items",
                limits::PROJECTION_ITEMS_MAX,
                None,
            ));
        }
    }
    Ok((nodes, columns))
}

/// An ORDER BY key: a 1-based output position, an output name (alias first), or an expression
/// over the table.
fn sort_node(
    scope: &Scope<'_>,
    expr: &Expr,
    projection: &[Node],
    columns: &[OutputColumn],
) -> Result<Node> {
    match &expr.kind {
        ExprKind::Literal(Literal::Number(text)) => {
            let position = text
                .parse::<usize>()
                .ok()
                .filter(|p| (1..=columns.len()).contains(p));
            match position {
                Some(p) => Ok(projection[p - 1].clone()),
                None => Err(SqlError::new(
                    code::UNKNOWN_COLUMN,
                    format!("ORDER BY position {text} is not in the SELECT list"),
                    expr.position,
                )),
            }
        }
        ExprKind::Column { qualifier, name } if qualifier.is_empty() => {
            match columns.iter().position(|c| c.name == *name) {
                Some(index) => Ok(projection[index].clone()),
                None => Ok(scope.compile(expr)?.node),
            }
        }
        _ => Ok(scope.compile(expr)?.node),
    }
}

/// LIMIT / OFFSET: a non-negative integer constant or parameter; NULL means none.
fn constant_count(scope: &Scope<'_>, expr: Option<&Expr>, what: &str) -> Result<Option<u64>> {
    let Some(expr) = expr else {
        return Ok(None);
    };
    let typed: Typed = scope.compile(expr)?;
    let count = match (&typed.node, typed.source) {
        (Node::Const(Value::Null), _) => return Ok(None),
        (Node::Const(Value::Int(v)), s) if s != Source::Row => u64::try_from(*v).ok(),
        (Node::Const(Value::BigInt(v)), s) if s != Source::Row => u64::try_from(*v).ok(),
        (Node::Const(Value::Text(text)), Source::Parameter(_)) => text.trim().parse().ok(),
        _ => None,
    };
    let code = match typed.source {
        Source::Parameter(_) => code::INVALID_PARAMETER,
        _ => code::INVALID_VALUE,
    };
    count.map(Some).ok_or_else(|| {
        SqlError::new(
            code,
            format!("{what} needs a non-negative integer"),
            typed.position,
        )
    })
}
