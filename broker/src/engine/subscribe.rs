//! Compiling a subscription: one SELECT of one table, either a filter or a top-K window
//! (`ORDER BY ... LIMIT n [OFFSET m]`), checked like a one-shot SELECT (a SHARED table needs a SELECT grant; USER and STREAM tables
//! give the caller's own partition, whatever the WHERE says).

use strand_sql_view::ast::SelectItem;
use strand_sql_view::Privilege;
use strand_sql_view::{parse_statement, BigIntJson, SelectPlan, Statement, Value};

use super::{errors, Caller, Engine};
use crate::catalog::CatalogTable;
use crate::error::{ApiError, ErrorCode};
use crate::limits::LIVE_WINDOW_ROWS_MAX;
use crate::realtime::{SubscriptionTarget, TableDdl};
use crate::tables::partition_prefix;

impl Engine {
    pub(super) fn compile_subscription(
        &self,
        caller: &Caller,
        sql: &str,
        bigint: BigIntJson,
        params: &[Value],
    ) -> Result<SubscriptionTarget, ApiError> {
        let statement = parse_statement(sql).map_err(errors::from_sql)?;
        let Statement::Select(select) = statement else {
            let text = "a subscription is one SELECT statement";
            return Err(ApiError::new(ErrorCode::Unsupported, text));
        };
        let plan =
            SelectPlan::compile_live(&select, &*self.catalog, params).map_err(errors::from_sql)?;
        if plan.orders_groups() {
            let text = "ORDER BY, LIMIT and OFFSET over groups are not supported in \
                        subscriptions yet (the client orders the groups it holds)";
            return Err(ApiError::new(ErrorCode::Unsupported, text));
        }
        check_window(&plan)?;
        if plan.clock().is_some() && plan.limit().is_some() {
            let text = "now() in a top-K subscription (ORDER BY ... LIMIT) is not supported \
                        yet; a filter subscription may use it";
            return Err(ApiError::new(ErrorCode::Unsupported, text));
        }
        let table = self.table(plan.table().name())?;
        let owner = self.owner_of(caller, &table, Privilege::Select)?;
        let partition = self
            .tables
            .partition(&table, owner)
            .map_err(errors::from_versions)?;
        // A join's other tables, each read as the caller may read it (checked here, before
        // anything is read, as for a one-shot join).
        let wildcard = select
            .projection
            .iter()
            .any(|item| matches!(item, SelectItem::Wildcard));
        let ddl_of = |table: &CatalogTable| TableDdl {
            name: table.def.name().to_string(),
            created: table.incarnation,
            name_first_created: table.name_first_created,
            columns_changed: wildcard.then_some(table.columns_changed),
        };
        let mut ddl = vec![ddl_of(&table)];
        let mut joined = Vec::new();
        let mut joined_prefixes = Vec::new();
        for source in plan.join().map_or(&[][..], |join| &join.sources()[1..]) {
            let table = self.table(source.table().name())?;
            ddl.push(ddl_of(&table));
            let owner = self.owner_of(caller, &table, Privilege::Select)?;
            joined.push(
                self.tables
                    .partition(&table, owner)
                    .map_err(errors::from_versions)?,
            );
            joined_prefixes.push(partition_prefix(&table));
        }
        tracing::debug!(user = %caller.user, table = %table.def.name(), joined = joined.len(),
            "subscription compiled");
        Ok(SubscriptionTarget {
            plan: self.realtime.plan(plan, wildcard, bigint),
            partition,
            realtime: self.realtime.clone(),
            table_prefix: partition_prefix(&table),
            ddl,
            joined,
            joined_prefixes,
        })
    }
}

/// A subscription with ORDER BY or OFFSET is a top-K window: it needs a LIMIT, and the
/// server keeps at most [`LIVE_WINDOW_ROWS_MAX`] rows of it.
fn check_window(plan: &SelectPlan) -> Result<(), ApiError> {
    let text = match plan.limit() {
        None if plan.has_order_by() || plan.offset() > 0 => {
            "ORDER BY and OFFSET in a subscription need a LIMIT (a live top-K window); a \
             subscription without LIMIT is a set of rows in no order"
                .to_owned()
        }
        Some(limit) if limit.saturating_add(plan.offset()) > LIVE_WINDOW_ROWS_MAX => format!(
            "a live top-K window spans at most {LIVE_WINDOW_ROWS_MAX} rows (OFFSET + LIMIT)"
        ),
        _ => return Ok(()),
    };
    Err(ApiError::new(ErrorCode::Unsupported, text))
}
