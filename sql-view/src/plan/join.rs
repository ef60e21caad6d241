//! Planning a join: the tables of FROM laid side by side in one joined row, names resolved to
//! its fields, and each `JOIN ... ON` split into the equalities a hash join looks up by and
//! the whole condition it then checks.
//!
//! The joined row holds, for each table in FROM order, its columns and then its `_seq`
//! (NULL for the missing side of a LEFT JOIN). The first table's fields come first, so a
//! node that reads only the first table means the same over its own stored row: the WHERE's
//! primary-key lookup and the first table's scan need no translation.
//!
//! Execution is in `join_exec.rs`; the broker reads the tables and feeds it.

use std::sync::Arc;

use super::compile::{Scope, Source};
use super::node::Node;
use crate::ast::{BinaryOp, Expr, ExprKind, JoinKind, Select, SelectItem};
use crate::catalog::{CatalogView, TableDef, DELETED_COLUMN, SEQ_COLUMN};
use crate::error::{code, Position, Result, SqlError};
use crate::value::{DataType, Value};

/// One table of a join's FROM and where its fields sit in the joined row.
#[derive(Debug, Clone)]
pub struct JoinSource {
    table: Arc<TableDef>,
    alias: Option<String>,
    offset: usize,
}

impl JoinSource {
    /// The table.
    pub fn table(&self) -> &Arc<TableDef> {
        &self.table
    }

    /// What the query calls it: its alias, else its table name.
    pub fn label(&self) -> &str {
        self.alias
            .as_deref()
            .unwrap_or(self.table.name().table.as_str())
    }

    /// Its first field in the joined row.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The field holding its `_seq`, after its columns.
    pub(crate) fn seq_field(&self) -> usize {
        self.offset + self.table.columns().len()
    }

    fn named_by(&self, qualifier: &[String]) -> bool {
        match qualifier {
            [one] => self.label() == one,
            [namespace, one] => {
                self.alias.is_none()
                    && namespace == self.table.name().namespace.as_str()
                    && one == self.table.name().table.as_str()
            }
            _ => false,
        }
    }
}

/// One `JOIN ... ON`: how the rows of its table are found for a joined row so far.
#[derive(Debug, Clone)]
pub(crate) struct JoinStep {
    /// Its table: `sources[source]`.
    pub(crate) source: usize,
    pub(crate) kind: JoinKind,
    /// The ON equalities' sides over the joined table's own row (its hash table's keys).
    pub(crate) build_keys: Vec<Node>,
    /// The other sides, over the joined row of the tables before it.
    pub(crate) probe_keys: Vec<Node>,
    /// The whole ON, over the joined row up to this table: checked for every candidate.
    pub(crate) on: Node,
    /// The WHERE conditions over this table alone, over its own row, for an INNER JOIN: rows
    /// that fail them are not kept (a joined row with them would fail the WHERE).
    pub(crate) build_filter: Option<Node>,
}

/// The tables of a join and how each after the first is joined.
#[derive(Debug, Clone)]
pub struct JoinPlan {
    pub(crate) sources: Vec<JoinSource>,
    pub(crate) steps: Vec<JoinStep>,
    /// An ON reads the clock (`now()`).
    pub(crate) reads_clock: bool,
    /// The WHERE conditions over the first table alone: checked before a row of it is joined.
    pub(crate) first_filter: Option<Node>,
}

impl JoinPlan {
    /// The tables, in FROM order (the first is read in full, the others into hash tables).
    pub fn sources(&self) -> &[JoinSource] {
        &self.sources
    }

    /// Resolves the tables of a join's FROM; two known by one name are `ambiguous_name`.
    pub(crate) fn sources_of(
        select: &Select,
        catalog: &dyn CatalogView,
    ) -> Result<Vec<JoinSource>> {
        let named = std::iter::once((&select.table, &select.alias))
            .chain(select.joins.iter().map(|join| (&join.table, &join.alias)));
        let mut sources: Vec<JoinSource> = Vec::with_capacity(select.joins.len() + 1);
        let mut offset = 0;
        for (reference, alias) in named {
            let table = super::resolve_table(reference, catalog)?;
            let source = JoinSource {
                alias: alias.clone(),
                offset,
                table,
            };
            if sources.iter().any(|s| s.label() == source.label()) {
                return Err(SqlError::new(
                    code::AMBIGUOUS_NAME,
                    format!(
                        "two tables in FROM are called {}: give one an alias",
                        source.label()
                    ),
                    reference.position,
                ));
            }
            offset = source.seq_field() + 1;
            sources.push(source);
        }
        Ok(sources)
    }

    /// Compiles every ON of `select` over `sources` (from [`JoinPlan::sources_of`]).
    pub(crate) fn compile(
        select: &Select,
        sources: Vec<JoinSource>,
        params: &[Value],
    ) -> Result<JoinPlan> {
        let mut steps = Vec::with_capacity(select.joins.len());
        let mut reads_clock = false;
        for (index, join) in select.joins.iter().enumerate() {
            let source = index + 1;
            let scope = |visible| join_scope(visible, params);
            let on_scope = scope(&sources[..=source]);
            let on = on_scope.condition(&join.on, "ON")?;
            reads_clock |= on_scope.reads_clock.get();
            let alone = [JoinSource {
                offset: 0,
                ..sources[source].clone()
            }];
            let (build_scope, probe_scope) = (scope(&alone), scope(&sources[..source]));
            let (mut build_keys, mut probe_keys) = (Vec::new(), Vec::new());
            for conjunct in conjuncts(&join.on) {
                if let Some((build, probe)) = equality(conjunct, &build_scope, &probe_scope) {
                    build_keys.push(build);
                    probe_keys.push(probe);
                }
            }
            if build_keys.is_empty() {
                let message = format!(
                    "the ON of a join needs an equality between a column of {} and the tables \
                     before it (only equi-joins are supported)",
                    sources[source].label()
                );
                return Err(SqlError::unsupported(message, join.on.position));
            }
            steps.push(JoinStep {
                source,
                kind: join.kind,
                build_keys,
                probe_keys,
                on,
                build_filter: None,
            });
        }
        Ok(JoinPlan {
            sources,
            steps,
            reads_clock,
            first_filter: None,
        })
    }

    /// Moves copies of the WHERE's conditions that read one table down to where that table
    /// is read: the first table's before its rows are joined, an INNER-joined table's before
    /// its rows are kept (not a LEFT-joined one's: its missing side is NULL, which a condition
    /// such as `IS NULL` accepts). The WHERE itself is still checked on each joined row.
    pub(crate) fn push_down(&mut self, filter: Option<&Node>) {
        let conjuncts: Vec<&Node> = match filter {
            None => return,
            Some(Node::And(items)) => items.iter().collect(),
            Some(other) => vec![other],
        };
        let mut per_source: Vec<Vec<Node>> = vec![Vec::new(); self.sources.len()];
        for conjunct in conjuncts {
            let (mut read, mut whole) = (Vec::new(), true);
            conjunct.visit_fields(&mut |field| match self.source_of(field) {
                Some(source) if !read.contains(&source) => read.push(source),
                Some(_) => {}
                None => whole = false,
            });
            if let ([source], true) = (read.as_slice(), whole) {
                let offset = self.sources[*source].offset;
                per_source[*source].push(conjunct.shifted_down(offset));
            }
        }
        let all = |mut nodes: Vec<Node>| match nodes.len() {
            0 => None,
            1 => nodes.pop(),
            _ => Some(Node::And(nodes)),
        };
        let mut per_source = per_source.into_iter();
        self.first_filter = per_source.next().and_then(all);
        for (step, nodes) in self.steps.iter_mut().zip(per_source) {
            if step.kind == JoinKind::Inner {
                step.build_filter = all(nodes);
            }
        }
    }

    /// The table whose column `field` is; `None` for a `_seq` field or a system column (a
    /// table's own row does not hold it).
    fn source_of(&self, field: usize) -> Option<usize> {
        self.sources
            .iter()
            .position(|s| s.offset <= field && field < s.seq_field())
    }

    /// The fields that order joined rows totally: each table's primary key, else its `_seq`.
    pub(crate) fn tie_fields(&self) -> Vec<usize> {
        self.sources
            .iter()
            .map(|s| match s.table.primary_key() {
                Some(column) => s.offset + column,
                None => s.seq_field(),
            })
            .collect()
    }
}

fn join_scope<'a>(sources: &'a [JoinSource], params: &'a [Value]) -> Scope<'a> {
    Scope {
        table: None,
        alias: None,
        params,
        reads_clock: std::cell::Cell::new(false),
        sources,
        live_clock: false,
    }
}

/// The items of an AND, or the condition itself.
fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match &expr.kind {
        ExprKind::And(items) => items.iter().flat_map(conjuncts).collect(),
        _ => vec![expr],
    }
}

/// `a = b` with one side over the joined table alone and the other over the tables before it,
/// as (build side, probe side); `None` for any other condition (it is still checked in ON).
fn equality(expr: &Expr, build: &Scope<'_>, probe: &Scope<'_>) -> Option<(Node, Node)> {
    let ExprKind::Binary {
        op: BinaryOp::Eq,
        left,
        right,
    } = &expr.kind
    else {
        return None;
    };
    let reads_row = |scope: &Scope<'_>, side: &Expr| {
        scope
            .compile(side)
            .ok()
            .filter(|typed| typed.source == Source::Row && typed.data_type != Some(DataType::Json))
            .map(|typed| typed.node)
    };
    match (reads_row(build, left), reads_row(probe, right)) {
        (Some(b), Some(p)) => Some((b, p)),
        _ => Some((reads_row(build, right)?, reads_row(probe, left)?)),
    }
}

/// A column name in a join: `t.c`, `ns.t.c` or a `c` that only one table has.
pub(crate) fn resolve(
    sources: &[JoinSource],
    qualifier: &[String],
    name: &str,
    position: Option<Position>,
) -> Result<(Node, DataType)> {
    let candidates: Vec<&JoinSource> = if qualifier.is_empty() {
        sources.iter().collect()
    } else {
        let named: Vec<&JoinSource> = sources.iter().filter(|s| s.named_by(qualifier)).collect();
        if named.is_empty() {
            return Err(SqlError::new(
                code::UNKNOWN_TABLE,
                format!("{} is not a table of this FROM", qualifier.join(".")),
                position,
            ));
        }
        named
    };
    let ambiguous = |tables: Vec<&str>| {
        SqlError::new(
            code::AMBIGUOUS_NAME,
            format!(
                "column {name} is in {}: qualify it (e.g. {}.{name})",
                tables.join(" and "),
                tables.first().copied().unwrap_or_default()
            ),
            position,
        )
    };
    if name == SEQ_COLUMN || name == DELETED_COLUMN {
        let [source] = candidates.as_slice() else {
            return Err(ambiguous(candidates.iter().map(|s| s.label()).collect()));
        };
        // The rows a join reads are live versions: `_deleted` is false for each.
        return Ok(if name == SEQ_COLUMN {
            (Node::Column(source.seq_field()), DataType::BigInt)
        } else {
            (Node::Const(Value::Boolean(false)), DataType::Boolean)
        });
    }
    let found: Vec<(&JoinSource, usize)> = candidates
        .iter()
        .filter_map(|s| s.table.column_index(name).map(|index| (*s, index)))
        .collect();
    match found.as_slice() {
        [(source, index)] => Ok((
            Node::Column(source.offset + index),
            source.table.columns()[*index].data_type,
        )),
        [] => {
            let tables: Vec<&str> = candidates.iter().map(|s| s.label()).collect();
            Err(SqlError::new(
                code::UNKNOWN_COLUMN,
                format!("column {name} does not exist in {}", tables.join(", ")),
                position,
            ))
        }
        _ => Err(ambiguous(found.iter().map(|(s, _)| s.label()).collect())),
    }
}

/// A join's SELECT list with every `*` and `t.*` spelled out as qualified columns, and columns
/// that would share an output name (`m.id`, `c.id`) named `m.id` and `c.id`: a result row is a
/// JSON object and cannot hold one name twice.
pub(crate) fn spell_out_projection(
    items: &[SelectItem],
    sources: &[JoinSource],
) -> Result<Vec<SelectItem>> {
    let mut spelled = Vec::with_capacity(items.len());
    let columns_of = |source: &JoinSource, out: &mut Vec<SelectItem>| {
        for column in source.table.columns() {
            let name = column.name.as_str().to_owned();
            let qualifier = vec![source.label().to_owned()];
            let text = format!("{}.{name}", source.label());
            let expr = Expr {
                kind: ExprKind::Column { qualifier, name },
                position: None,
            };
            out.push(SelectItem::Expr {
                expr,
                alias: None,
                text,
            });
        }
    };
    for item in items {
        match item {
            SelectItem::Wildcard => sources.iter().for_each(|s| columns_of(s, &mut spelled)),
            SelectItem::QualifiedWildcard {
                qualifier,
                position,
            } => match sources.iter().find(|s| s.named_by(qualifier)) {
                Some(source) => columns_of(source, &mut spelled),
                None => {
                    return Err(SqlError::new(
                        code::UNKNOWN_TABLE,
                        format!("{}.* names no table of this FROM", qualifier.join(".")),
                        *position,
                    ))
                }
            },
            SelectItem::Expr { .. } => spelled.push(item.clone()),
        }
    }
    let name_of = |item: &SelectItem| match item {
        SelectItem::Expr {
            alias: Some(alias), ..
        } => alias.clone(),
        SelectItem::Expr { expr, text, .. } => match &expr.kind {
            ExprKind::Column { name, .. } => name.clone(),
            _ => text.clone(),
        },
        _ => String::new(),
    };
    let names: Vec<String> = spelled.iter().map(name_of).collect();
    for (index, item) in spelled.iter_mut().enumerate() {
        let shared = names.iter().filter(|n| **n == names[index]).count() > 1;
        if let SelectItem::Expr {
            expr,
            alias: alias @ None,
            ..
        } = item
        {
            if let (true, ExprKind::Column { qualifier, name }) = (shared, &expr.kind) {
                let label = if qualifier.is_empty() {
                    sources
                        .iter()
                        .find(|s| s.table.column_index(name).is_some())
                        .map(|s| s.label().to_owned())
                } else {
                    qualifier.last().cloned()
                };
                *alias = label.map(|label| format!("{label}.{name}"));
            }
        }
    }
    Ok(spelled)
}
