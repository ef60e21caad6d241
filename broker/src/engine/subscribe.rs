//! Compiling a subscription: one SELECT of one table, without ORDER BY, LIMIT or OFFSET,
//! checked like a one-shot SELECT (a SHARED table needs a SELECT grant; USER and STREAM tables
//! give the caller's own partition, whatever the WHERE says).

use strand_sql_view::ast::SelectItem;
use strand_sql_view::Privilege;
use strand_sql_view::{parse_statement, BigIntJson, SelectPlan, Statement, Value};

use super::{errors, Caller, Engine};
use crate::error::{ApiError, ErrorCode};
use crate::realtime::SubscriptionTarget;
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
            SelectPlan::compile(&select, &*self.catalog, params).map_err(errors::from_sql)?;
        if plan.has_order_by() || plan.limit().is_some() || plan.offset() > 0 {
            let text = "ORDER BY, LIMIT and OFFSET are for one-shot queries, not subscriptions";
            return Err(ApiError::new(ErrorCode::Unsupported, text));
        }
        let table = self.table(plan.table().name())?;
        let owner = self.owner_of(caller, &table, Privilege::Select)?;
        let partition = self
            .tables
            .partition(&table, owner)
            .map_err(errors::from_versions)?;
        tracing::debug!(user = %caller.user, table = %table.def.name(), "subscription compiled");
        let wildcard = select
            .projection
            .iter()
            .any(|item| matches!(item, SelectItem::Wildcard));
        Ok(SubscriptionTarget {
            plan: self.realtime.plan(plan, wildcard, bigint),
            partition,
            realtime: self.realtime.clone(),
            table_prefix: partition_prefix(&table),
            created: table.incarnation,
            name_first_created: table.name_first_created,
            columns_changed: wildcard.then_some(table.columns_changed),
        })
    }
}
