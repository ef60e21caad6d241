//! Namespaces and tables: CREATE/DROP NAMESPACE, CREATE/DROP TABLE, ALTER TABLE ADD COLUMN,
//! SHOW and DESCRIBE. Topic statements are planned in `topic_ddl.rs`.

use serde_json::{Map, Value as Json};
use strand_sql_view::{CatalogView, Statement, TableDef, TopicName};

use super::ddl_result::{column, exists, missing, no_op_or, rows_result, Planned};
use super::topic_ddl::{plan_topic_change, show_topics};

use super::{errors, Caller, Engine, EngineResult};
use crate::catalog::{Catalog, CatalogChange};
use crate::error::{ApiError, ErrorCode};
use crate::realtime::TableEvent;
use crate::sql::StatementResult;
use crate::tables::partition_prefix;

impl Engine {
    pub(super) fn define(&self, caller: &Caller, statement: &Statement) -> EngineResult {
        match statement {
            Statement::ShowNamespaces => Ok(self.show_namespaces()),
            Statement::ShowTables { namespace } => Ok(self.show_tables(namespace.as_ref())),
            // A table, else a topic of that name (`topic_ddl.rs`).
            Statement::DescribeTable { table } => match self.catalog.entry(&table.name) {
                Some(entry) => Ok(describe(&entry.def)),
                None => super::topic_ddl::describe_topic(&self.catalog, &table.name),
            },
            Statement::CreateNamespace { .. }
            | Statement::DropNamespace { .. }
            | Statement::CreateTable { .. }
            | Statement::DropTable { .. }
            | Statement::AddColumn { .. }
            | Statement::CreateTopic(_)
            | Statement::DropTopic { .. } => {
                caller.require_admin("changing namespaces, tables and topics")?;
                self.change_catalog(statement)
            }
            Statement::AddTopicSource { .. } | Statement::DropTopicSource { .. } => {
                caller.require_admin("changing namespaces, tables and topics")?;
                self.change_topic_source(statement)
            }
            Statement::ShowTopics { namespace } => {
                Ok(show_topics(&self.catalog, namespace.as_ref()))
            }
            _ => Err(ApiError::new(
                ErrorCode::Unsupported,
                "this statement is not supported",
            )),
        }
    }

    fn change_catalog(&self, statement: &Statement) -> EngineResult {
        let mut message = String::new();
        let mut broken = None;
        let outcome = self.catalog.change(|catalog| {
            let (change, text) = plan_change(catalog, statement)?;
            message = text;
            broken = change
                .as_ref()
                .and_then(|change| subscriptions_broken(catalog, change));
            Ok::<_, ApiError>(change)
        });
        outcome.map_err(errors::from_catalog)??;
        if let Some((table_prefix, event)) = broken {
            // After the change is durable: a subscription compiled meanwhile registers after
            // this and is ended by the registry (`realtime/tables.rs`).
            self.realtime.table_changed(&table_prefix, event);
        }
        Ok(StatementResult::message(message))
    }

    fn show_namespaces(&self) -> StatementResult {
        let rows = self.catalog.namespaces().into_iter().map(|ns| {
            let mut row = Map::new();
            row.insert("namespace".into(), Json::from(ns.as_str()));
            row
        });
        rows_result(vec![column("namespace", "TEXT")], rows.collect())
    }

    fn show_tables(&self, namespace: Option<&strand_sql_view::Name>) -> StatementResult {
        let rows = self.catalog.tables(namespace).into_iter().map(|table| {
            let mut row = Map::new();
            row.insert(
                "namespace".into(),
                Json::from(table.name().namespace.as_str()),
            );
            row.insert("table".into(), Json::from(table.name().table.as_str()));
            row.insert("type".into(), Json::from(table.kind().name()));
            row
        });
        let columns = vec![
            column("namespace", "TEXT"),
            column("table", "TEXT"),
            column("type", "TEXT"),
        ];
        rows_result(columns, rows.collect())
    }
}

/// Decide the catalog change of a DDL statement against the current catalog; `None` when an
/// `IF [NOT] EXISTS` makes it a no-op.
fn plan_change(catalog: &Catalog, statement: &Statement) -> Result<Planned, ApiError> {
    match statement {
        Statement::CreateNamespace {
            name,
            if_not_exists,
        } => {
            if catalog.has_namespace(name) {
                return no_op_or(*if_not_exists, || exists(format!("namespace {name}")));
            }
            let change = CatalogChange::CreateNamespace(name.clone());
            Ok((Some(change), format!("namespace {name} created")))
        }
        Statement::DropNamespace { name, if_exists } => {
            if !catalog.has_namespace(name) {
                return no_op_or(*if_exists, || missing(format!("namespace {name}")));
            }
            if !catalog.tables(Some(name)).is_empty() || !catalog.topics(Some(name)).is_empty() {
                let text = format!("namespace {name} still has tables or topics; drop them first");
                return Err(ApiError::new(ErrorCode::InvalidValue, text));
            }
            let change = CatalogChange::DropNamespace(name.clone());
            Ok((Some(change), format!("namespace {name} dropped")))
        }
        Statement::CreateTable {
            table,
            if_not_exists,
        } => {
            let name = table.name();
            if !catalog.has_namespace(&name.namespace) {
                return Err(missing(format!("namespace {}", name.namespace)));
            }
            if catalog.table(name).is_some() {
                return no_op_or(*if_not_exists, || exists(format!("table {name}")));
            }
            let topic = TopicName {
                namespace: name.namespace.clone(),
                topic: name.table.clone(),
            };
            if catalog.topic(&topic).is_some() {
                let text = format!("{name} is a topic; a table needs another name");
                return Err(ApiError::new(ErrorCode::AlreadyExists, text));
            }
            Ok((
                Some(CatalogChange::PutTable(table.clone())),
                format!("table {name} created"),
            ))
        }
        Statement::DropTable { table, if_exists } => {
            if catalog.table(&table.name).is_none() {
                return no_op_or(*if_exists, || missing(format!("table {}", table.name)));
            }
            let text = format!("table {} dropped", table.name);
            Ok((Some(CatalogChange::DropTable(table.name.clone())), text))
        }
        Statement::AddColumn {
            table,
            column,
            if_not_exists,
        } => {
            let current = catalog
                .table(&table.name)
                .ok_or_else(|| missing(format!("table {}", table.name)))?;
            if current.column_index(column.name.as_str()).is_some() && *if_not_exists {
                return Ok((None, format!("column {} already exists", column.name)));
            }
            let altered = current
                .with_added_column(column.clone())
                .map_err(errors::from_sql)?;
            let text = format!("column {} added to {}", column.name, table.name);
            Ok((Some(CatalogChange::PutTable(altered)), text))
        }
        Statement::CreateTopic(_)
        | Statement::DropTopic { .. }
        | Statement::AddTopicSource { .. } => plan_topic_change(catalog, statement),
        _ => Err(ApiError::internal(&"not a DDL statement")),
    }
}

/// The live subscriptions a catalog change breaks: those of a dropped table, and the
/// `SELECT *` ones of a table that gained columns (named by the table's partition prefix).
fn subscriptions_broken(catalog: &Catalog, change: &CatalogChange) -> Option<(String, TableEvent)> {
    match change {
        CatalogChange::DropTable(name) => {
            let table = catalog.entry(name)?;
            Some((partition_prefix(&table), TableEvent::Dropped))
        }
        CatalogChange::PutTable(def) => {
            let table = catalog.entry(def.name())?;
            let columns = def.columns().len();
            (columns > table.def.columns().len()).then(|| {
                (
                    partition_prefix(&table),
                    TableEvent::ColumnsAdded { columns },
                )
            })
        }
        _ => None,
    }
}

fn describe(table: &TableDef) -> StatementResult {
    let rows = table.columns().iter().enumerate().map(|(index, c)| {
        let mut row = Map::new();
        row.insert("column".into(), Json::from(c.name.as_str()));
        row.insert("type".into(), Json::from(c.data_type.to_string()));
        row.insert("not_null".into(), Json::from(c.not_null));
        row.insert(
            "primary_key".into(),
            Json::from(table.primary_key() == Some(index)),
        );
        let default = c.default.as_ref().map(|d| Json::from(d.to_sql()));
        row.insert("default".into(), default.unwrap_or(Json::Null));
        row
    });
    let columns = vec![
        column("column", "TEXT"),
        column("type", "TEXT"),
        column("not_null", "BOOLEAN"),
        column("primary_key", "BOOLEAN"),
        column("default", "TEXT"),
    ];
    rows_result(columns, rows.collect())
}
