//! `Engine`: the SQL engine behind `POST /v1/api/sql`. It parses with `strand-sql-view`, checks
//! what the caller may do, and runs each statement against the catalog, the table partitions
//! and the user directory.
//!
//! Who may do what: `dba` and `system` administer (namespaces, tables, users, grants) and may
//! run a statement as another user with `EXECUTE AS USER`. Every caller reads and writes only
//! its own rows of USER and STREAM tables: the partition is chosen from the caller, never from
//! the statement, so no WHERE can reach another user's rows. SHARED tables need a grant unless
//! the caller is an administrator.
//!
//! It does not own HTTP, authentication or storage formats.

mod admin;
mod compaction;
mod ddl;
mod ddl_result;
mod errors;
mod expiry;
mod hooks;
mod join;
mod query;
mod queued_write;
mod replicated;
mod subscribe;
mod topic_ddl;
mod write;

use std::sync::Arc;
use strand_sql_view::{BigIntJson, Privilege, Role, UserName};

use serde_json::Value as Json;
use strand_sql_view::{parse_statements, Statement, TableKind, TableName, Value};
use strand_sql_view::{DeletePlan, SelectPlan, UpdatePlan};

use strand_log::Store;

use crate::catalog::{Catalog, CatalogTable};
use crate::config::MaintenanceConfig;
use crate::error::{ApiError, ErrorCode};
use crate::limits::BRIEF_INSERT_ROWS_MAX;
use crate::metrics::Metrics;
use crate::realtime::{Realtime, SubscriptionTarget};
use crate::session::Session;
use crate::sql::{BriefWrite, PreparedSql, RunCost, SqlEngine, StatementResult};
use crate::tables::{RowOwner, TableData};
use crate::topics::{SourcePump, TopicData};
use crate::users::{is_admin, privilege_word, RowsLayout, UserDirectory, UserIncarnation};
use compaction::CompactionSchedule;
pub use errors::EngineError;
use expiry::{ExpiryContext, ExpiryQueue, ExpirySweeper};
use hooks::CommitHooks;

/// Who a statement runs as: the session's user, or the target of `EXECUTE AS USER`.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub user: UserName,
    pub role: Role,
    /// Which user of the name: a session of a dropped user never reaches a namesake's rows.
    pub incarnation: UserIncarnation,
}

impl Caller {
    fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if is_admin(self.role) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "{what} needs role dba or system; {} has role {}",
                self.user, self.role
            ),
        ))
    }
}

/// The SQL engine: runs statements for callers against the broker's parts. Built by the
/// composition root (`server::Broker`), which hands it to the listeners that run SQL.
pub struct Engine {
    /// First, so they stop before the parts they use are dropped.
    _expiry: ExpirySweeper,
    _compaction: CompactionSchedule,
    catalog: Arc<Catalog>,
    tables: Arc<TableData>,
    users: Arc<UserDirectory>,
    metrics: Arc<Metrics>,
    realtime: Arc<Realtime>,
    /// Publishes committed changes of source tables to their topics (`topics/source.rs`).
    sources: Arc<SourcePump>,
    /// What every durable table write triggers (feeds, sources, STREAM expiry).
    hooks: Arc<CommitHooks>,
}

/// What the engine runs against: the broker's parts, opened once over one store.
pub struct EngineParts {
    pub store: Arc<Store>,
    pub catalog: Arc<Catalog>,
    pub tables: Arc<TableData>,
    pub topics: Arc<TopicData>,
    pub users: Arc<UserDirectory>,
    pub realtime: Arc<Realtime>,
    pub metrics: Arc<Metrics>,
    pub maintenance: MaintenanceConfig,
}

impl Engine {
    /// Starts the engine's own machinery over `parts`: the source pump, the commit hooks, the
    /// STREAM expiry sweeper and the compaction schedule.
    pub fn start(parts: EngineParts) -> Result<Engine, EngineError> {
        let EngineParts {
            store,
            catalog,
            tables,
            topics,
            users,
            realtime,
            metrics,
            maintenance,
        } = parts;
        let sources = Arc::new(SourcePump::start(
            store.clone(),
            catalog.clone(),
            topics.clone(),
        ));
        let hooks = Arc::new(CommitHooks {
            catalog: catalog.clone(),
            realtime: realtime.clone(),
            sources: sources.clone(),
            expiry: Arc::new(ExpiryQueue::default()),
        });
        let compaction = CompactionSchedule::start(store.clone(), catalog.clone(), maintenance)
            .map_err(EngineError::Thread)?;
        let expiry = ExpiryContext {
            store,
            catalog: catalog.clone(),
            tables: tables.clone(),
            hooks: hooks.clone(),
            queue: hooks.expiry.clone(),
        };
        let interval = maintenance.ttl_sweep_interval;
        let expiry = ExpirySweeper::start(expiry, interval).map_err(EngineError::Thread)?;
        Ok(Engine {
            _expiry: expiry,
            _compaction: compaction,
            catalog,
            tables,
            users,
            realtime,
            metrics,
            sources,
            hooks,
        })
    }

    /// Compiles `sql` as a realtime subscription for `session`: one SELECT, checked against
    /// the caller's permissions, with the partition it reads; its rows carry BIGINT values
    /// as `bigint` says. `params` are bound now, once for the subscription's life.
    pub fn subscription(
        &self,
        session: &Session,
        sql: &str,
        bigint: BigIntJson,
        params: &[Json],
    ) -> Result<SubscriptionTarget, ApiError> {
        let caller = self.caller(session)?;
        let params: Vec<Value> = params.iter().map(Value::from_json).collect();
        self.compile_subscription(&caller, sql, bigint, &params)
    }

    /// Inserts rows given as JSON objects keyed by column name (the QUIC `produce_table`) into
    /// `table` (`ns.name`) as one durable batch, with the checks of an INSERT by `session`.
    /// Returns each row's `_seq`, in order.
    pub fn insert_json_rows(
        &self,
        session: &Session,
        table: &str,
        rows: &[serde_json::Map<String, Json>],
    ) -> Result<Vec<strand_log::Seq>, ApiError> {
        let caller = self.caller(session)?;
        self.insert_json_rows_as(&caller, table, rows)
    }

    fn run_statement(
        &self,
        caller: &Caller,
        statement: &Statement,
        params: &[Value],
    ) -> EngineResult {
        match statement {
            Statement::Select(select) => self.select(caller, select, params),
            Statement::Insert(insert) => self.insert(caller, insert, params),
            Statement::Update(update) => self.update(caller, update, params),
            Statement::Delete(delete) => self.delete(caller, delete, params),
            Statement::ExecuteAs { user, statement } => {
                caller.require_admin("EXECUTE AS USER")?;
                let target = self.users.user(user.as_str()).ok_or_else(|| {
                    ApiError::new(ErrorCode::NotFound, format!("user {} does not exist", user))
                })?;
                let as_user = Caller {
                    user: target.name,
                    role: target.role,
                    incarnation: target.incarnation,
                };
                self.run_statement(&as_user, statement, params)
            }
            Statement::CreateUser { .. }
            | Statement::AlterUser { .. }
            | Statement::DropUser { .. }
            | Statement::Grant(_)
            | Statement::Revoke(_)
            | Statement::ShowUsers => self.administer(caller, statement),
            other => self.define(caller, other),
        }
    }

    /// The catalog entry of a table, or `unknown_table`.
    fn table(&self, name: &TableName) -> Result<CatalogTable, ApiError> {
        self.catalog.entry(name).ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("table {name} does not exist"))
        })
    }

    /// Who runs a request of `session`, as the directory says now: its user must still exist
    /// as the incarnation that authenticated, and its current role counts (a long-lived
    /// session, e.g. a QUIC connection, may have been authenticated before an ALTER USER or
    /// DROP USER).
    fn caller(&self, session: &Session) -> Result<Caller, ApiError> {
        let user = self
            .users
            .user(session.user().as_str())
            .filter(|user| user.incarnation == session.incarnation())
            .ok_or_else(|| {
                let text = format!(
                    "user {} was dropped (or dropped and created again) since this session was \
                     authenticated; authenticate again",
                    session.user()
                );
                ApiError::new(ErrorCode::Unauthorized, text)
            })?;
        Ok(Caller {
            user: user.name,
            role: user.role,
            incarnation: user.incarnation,
        })
    }

    /// Where the caller's own rows of USER and STREAM tables live, if the caller's user still
    /// exists as the incarnation that authenticated (`None` once it was dropped).
    fn rows_of<'c>(&self, caller: &'c Caller) -> Option<RowOwner<'c>> {
        let user = self.users.user(caller.user.as_str())?;
        if user.incarnation != caller.incarnation {
            return None;
        }
        let incarnation = match user.rows {
            RowsLayout::ByIncarnation => Some(user.incarnation),
            RowsLayout::ByName => None,
        };
        Some(RowOwner::User {
            name: caller.user.as_str(),
            incarnation,
        })
    }

    /// The rows a caller may touch in `table`, after checking a SHARED table's grant.
    fn owner_of<'c>(
        &self,
        caller: &'c Caller,
        table: &CatalogTable,
        privilege: Privilege,
    ) -> Result<RowOwner<'c>, ApiError> {
        let rows = self.rows_of(caller).ok_or_else(|| {
            let text = format!(
                "user {} was dropped (or dropped and created again) since this session was \
                 authenticated; authenticate again",
                caller.user
            );
            ApiError::new(ErrorCode::Unauthorized, text)
        })?;
        match table.def.kind() {
            TableKind::User | TableKind::Stream { .. } => Ok(rows),
            TableKind::Shared => {
                if is_admin(caller.role)
                    || self
                        .users
                        .has_privilege(&caller.user, table.def.name(), privilege)
                {
                    return Ok(RowOwner::Shared);
                }
                Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "{} has no {} privilege on {}",
                        caller.user,
                        privilege_word(privilege),
                        table.def.name()
                    ),
                ))
            }
        }
    }
}

pub(crate) type EngineResult = Result<StatementResult, ApiError>;

impl SqlEngine for Engine {
    fn prepare(
        &self,
        session: &Session,
        sql: &str,
        params: &[Json],
    ) -> Result<PreparedSql, ApiError> {
        let params: Vec<Value> = params.iter().map(Value::from_json).collect();
        let statements = parse_statements(sql).map_err(errors::from_sql)?;
        let caller = self.caller(session)?;
        let mut cost = RunCost::Brief;
        for statement in &statements {
            match self.cost_of(&caller, statement, &params) {
                RunCost::Long => {
                    cost = RunCost::Long;
                    break;
                }
                RunCost::BriefWrite => cost = RunCost::BriefWrite,
                RunCost::Brief => {}
            }
        }
        Ok(PreparedSql {
            session: session.clone(),
            statements,
            params,
            cost,
        })
    }

    fn run(&self, prepared: PreparedSql) -> Result<Vec<StatementResult>, ApiError> {
        let caller = self.caller(&prepared.session)?;
        let total = prepared.statements.len();
        let mut results = Vec::with_capacity(total);
        for (index, statement) in prepared.statements.iter().enumerate() {
            let result = self.run_statement(&caller, statement, &prepared.params);
            results.push(result.map_err(|error| error.in_statement(index + 1, total))?);
        }
        Ok(results)
    }

    fn queue_brief_write(&self, prepared: PreparedSql) -> Result<BriefWrite, ApiError> {
        Engine::queue_brief_write(self, prepared)
    }
}

impl Engine {
    /// A guess, made without running anything, of whether `statement` finishes in
    /// microseconds: a point read or small write of a partition whose key index is built, and
    /// for writes, no commit round under way that the write would queue behind. Wrong guesses
    /// cost latency, never correctness. Errors are left for `run` to report.
    fn cost_of(&self, caller: &Caller, statement: &Statement, params: &[Value]) -> RunCost {
        let catalog: &Catalog = &self.catalog;
        // An INSERT does not read under its partition's lock, and it is queued without waiting
        // for the commit (`queued_write.rs`): a round under way does not make it long.
        let mut waits_for_round = true;
        let (table, pinned_by_key, writes) = match statement {
            Statement::Select(select) => match SelectPlan::compile(select, catalog, params) {
                // A join reads every table after the first whole.
                Ok(plan) if plan.join().is_some() => return RunCost::Long,
                Ok(plan) => (
                    plan.table().name().clone(),
                    plan.filter().key_values(),
                    false,
                ),
                Err(_) => return RunCost::Long,
            },
            Statement::Insert(insert) if insert.rows.len() <= BRIEF_INSERT_ROWS_MAX => {
                waits_for_round = false;
                (insert.table.name.clone(), Some(Vec::new()), true)
            }
            Statement::Update(update) => match UpdatePlan::compile(update, catalog, params) {
                Ok(plan) => (
                    plan.table().name().clone(),
                    plan.filter().key_values(),
                    true,
                ),
                Err(_) => return RunCost::Long,
            },
            Statement::Delete(delete) => match DeletePlan::compile(delete, catalog, params) {
                Ok(plan) => (
                    plan.table().name().clone(),
                    plan.filter().key_values(),
                    true,
                ),
                Err(_) => return RunCost::Long,
            },
            _ => return RunCost::Long,
        };
        if pinned_by_key.is_none_or(|keys| keys.len() > BRIEF_INSERT_ROWS_MAX) {
            return RunCost::Long;
        }
        if writes && waits_for_round && self.tables.commit_in_progress() {
            return RunCost::Long;
        }
        let Ok(entry) = self.table(&table) else {
            return RunCost::Long;
        };
        let owner = match entry.def.kind() {
            TableKind::Shared => RowOwner::Shared,
            _ => match self.rows_of(caller) {
                Some(rows) => rows,
                None => return RunCost::Long,
            },
        };
        match (self.tables.is_cached(&entry, owner), writes) {
            (false, _) => RunCost::Long,
            (true, false) => RunCost::Brief,
            // A cluster member's write waits for a majority: on the blocking pool.
            (true, true) if self.tables.is_clustered() => RunCost::Long,
            (true, true) => RunCost::BriefWrite,
        }
    }
}
