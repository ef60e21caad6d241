//! Topic DDL: `CREATE TOPIC`, `DROP TOPIC`, `ALTER TOPIC ... ADD SOURCE` / `DROP SOURCE`,
//! `SHOW TOPICS` and `DESCRIBE` of a topic. Each change is one catalog record
//! (`CatalogChange::PutTopic` / `DropTopic`); administrators only, like the table DDL in
//! `ddl.rs`. Where a source starts and stops publishing is `topics/source.rs`'s to say.

use serde_json::{Map, Value as Json};
use strand_log::Seq;
use strand_sql_view::ast::{ChangeKind, CreateTopic, TableRef};
use strand_sql_view::{seq_json, Name, Statement, TableName, TopicName};

use super::ddl_result::{column, exists, missing, no_op_or, rows_result, Planned};
use super::{errors, Engine, EngineResult};
use crate::catalog::{Catalog, CatalogChange, CatalogTopic};
use crate::catalog::{TopicDef, TopicSource};
use crate::error::{ApiError, ErrorCode};
use crate::limits::TOPIC_PARTITIONS_DEFAULT;
use crate::sql::StatementResult;
use strand_sql_view::limits::TOPIC_PARTITIONS_MAX;

/// The catalog change of `CREATE TOPIC` or `DROP TOPIC` (see `ddl::plan_change`).
pub(super) fn plan_topic_change(
    catalog: &Catalog,
    statement: &Statement,
) -> Result<Planned, ApiError> {
    match statement {
        Statement::CreateTopic(create) => create_topic(catalog, create),
        Statement::DropTopic { topic, if_exists } => {
            if catalog.topic(topic).is_none() {
                return no_op_or(*if_exists, || missing(format!("topic {topic}")));
            }
            let change = CatalogChange::DropTopic(topic.clone());
            Ok((Some(change), format!("topic {topic} dropped")))
        }
        // Sources need the store's `_seq`: `Engine::change_topic_source`.
        _ => Err(ApiError::internal(&"not a CREATE or DROP TOPIC statement")),
    }
}

impl Engine {
    /// `ALTER TOPIC ... ADD SOURCE` / `DROP SOURCE`: one catalog change, planned with the
    /// start `_seq` of a source added now; an added source's table partitions are then
    /// published up to date (`SourcePump::notify_source_added`).
    pub(super) fn change_topic_source(&self, statement: &Statement) -> EngineResult {
        let mut message = String::new();
        let outcome = self.catalog.change(|catalog| {
            let start = self.sources.start_seq_now();
            let (change, text) = plan_source_change(catalog, statement, start)?;
            message = text;
            Ok::<_, ApiError>(change)
        });
        outcome.map_err(errors::from_catalog)??;
        if let Statement::AddTopicSource { table, .. } = statement {
            self.sources.notify_source_added(&table.name);
        }
        Ok(StatementResult::message(message))
    }
}

/// The catalog change of `ADD SOURCE` (a source added now starts at `start`) or `DROP SOURCE`.
fn plan_source_change(
    catalog: &Catalog,
    statement: &Statement,
    start: Seq,
) -> Result<Planned, ApiError> {
    match statement {
        Statement::AddTopicSource {
            topic,
            table,
            operations,
        } => add_source(catalog, topic, table, operations, start),
        Statement::DropTopicSource {
            topic,
            table,
            if_exists,
        } => {
            let current = catalog
                .topic(topic)
                .ok_or_else(|| missing(format!("topic {topic}")))?;
            let name = &table.name;
            if !current.def.sources.iter().any(|s| &s.table == name) {
                return no_op_or(*if_exists, || {
                    let text = format!("table {name} is not a source of topic {topic}");
                    not_found_at(table, text)
                });
            }
            let mut def = (*current.def).clone();
            def.sources.retain(|s| &s.table != name);
            let text = format!("table {name} no longer feeds topic {topic}");
            Ok((Some(CatalogChange::PutTopic(def)), text))
        }
        _ => Err(ApiError::internal(&"not an ADD or DROP SOURCE statement")),
    }
}

/// `ADD SOURCE`: a new source starts at `start`; a table that already is a source keeps its
/// start and takes the new change kinds.
fn add_source(
    catalog: &Catalog,
    topic: &TopicName,
    table: &TableRef,
    operations: &[ChangeKind],
    start: Seq,
) -> Result<Planned, ApiError> {
    let current = catalog
        .topic(topic)
        .ok_or_else(|| missing(format!("topic {topic}")))?;
    if catalog.entry(&table.name).is_none() {
        return Err(not_found_at(
            table,
            format!("table {} does not exist", table.name),
        ));
    }
    let mut def = (*current.def).clone();
    let start_seq = def
        .sources
        .iter()
        .find(|s| s.table == table.name)
        .map_or(start, |s| s.start_seq);
    def.sources.retain(|s| s.table != table.name);
    def.sources.push(TopicSource {
        table: table.name.clone(),
        on_insert: operations.contains(&ChangeKind::Insert),
        on_update: operations.contains(&ChangeKind::Update),
        on_delete: operations.contains(&ChangeKind::Delete),
        start_seq,
    });
    let text = format!("table {} now feeds topic {topic}", table.name);
    Ok((Some(CatalogChange::PutTopic(def)), text))
}

/// `not_found` at the table's position in the statement, when known.
fn not_found_at(table: &TableRef, text: String) -> ApiError {
    let error = ApiError::new(ErrorCode::NotFound, text);
    match table.position {
        Some(p) => error.at(clamp(p.line), clamp(p.column)),
        None => error,
    }
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn create_topic(catalog: &Catalog, create: &CreateTopic) -> Result<Planned, ApiError> {
    let name = &create.topic;
    if !catalog.has_namespace(&name.namespace) {
        return Err(missing(format!("namespace {}", name.namespace)));
    }
    if catalog.topic(name).is_some() {
        return no_op_or(create.if_not_exists, || exists(format!("topic {name}")));
    }
    if catalog.entry(&as_table_name(name)).is_some() {
        let text = format!("{name} is a table; a topic needs another name");
        return Err(ApiError::new(ErrorCode::AlreadyExists, text));
    }
    let partitions = create.partitions.unwrap_or(TOPIC_PARTITIONS_DEFAULT);
    if !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
        let text = format!("PARTITIONS = {partitions}: use 1 to {TOPIC_PARTITIONS_MAX}");
        return Err(ApiError::new(ErrorCode::LimitExceeded, text));
    }
    let def = TopicDef {
        name: name.clone(),
        partitions,
        retention_seconds: create.retention_seconds,
        sources: Vec::new(),
    };
    let text = format!("topic {name} created with {partitions} partition(s)");
    Ok((Some(CatalogChange::PutTopic(def)), text))
}

/// The table a topic's name would clash with (tables and topics share GRANT's namespace).
pub(super) fn as_table_name(topic: &TopicName) -> TableName {
    TableName {
        namespace: topic.namespace.clone(),
        table: topic.topic.clone(),
    }
}

pub(super) fn show_topics(catalog: &Catalog, namespace: Option<&Name>) -> StatementResult {
    let rows = catalog.topics(namespace).into_iter().map(|topic| {
        let def = &topic.def;
        let mut row = Map::new();
        row.insert("namespace".into(), Json::from(def.name.namespace.as_str()));
        row.insert("topic".into(), Json::from(def.name.topic.as_str()));
        row.insert("partitions".into(), Json::from(def.partitions));
        row.insert(
            "retention_seconds".into(),
            def.retention_seconds.map_or(Json::Null, Json::from),
        );
        let sources: Vec<String> = def.sources.iter().map(|s| s.table.to_string()).collect();
        row.insert("sources".into(), Json::from(sources.join(", ")));
        row
    });
    let columns = vec![
        column("namespace", "TEXT"),
        column("topic", "TEXT"),
        column("partitions", "INT"),
        column("retention_seconds", "BIGINT"),
        column("sources", "TEXT"),
    ];
    rows_result(columns, rows.collect())
}

/// `DESCRIBE ns.name` of a name that is no table: the topic's definition, one row for the
/// topic and one per source, or `not_found` naming both possibilities.
pub(super) fn describe_topic(catalog: &Catalog, name: &TableName) -> EngineResult {
    let topic_name = TopicName {
        namespace: name.namespace.clone(),
        topic: name.table.clone(),
    };
    let topic = catalog.topic(&topic_name).ok_or_else(|| {
        let text = format!("table or topic {name} does not exist");
        ApiError::new(ErrorCode::NotFound, text)
    })?;
    Ok(topic_description(&topic))
}

/// Columns `object` (`topic` or `source`), `name`, `partitions` and `retention_seconds` (the
/// topic's row), `changes` and `start_seq` (a source's: changes after this `_seq` are
/// published; a decimal string, as `_seq`s are).
fn topic_description(topic: &CatalogTopic) -> StatementResult {
    let def = &topic.def;
    let row = |object: &str, name: String| {
        let mut row = Map::new();
        row.insert("object".into(), Json::from(object));
        row.insert("name".into(), Json::from(name));
        for field in ["partitions", "retention_seconds", "changes", "start_seq"] {
            row.insert(field.into(), Json::Null);
        }
        row
    };
    let mut rows = Vec::with_capacity(def.sources.len() + 1);
    let mut first = row("topic", def.name.to_string());
    first.insert("partitions".into(), Json::from(def.partitions));
    if let Some(seconds) = def.retention_seconds {
        first.insert("retention_seconds".into(), Json::from(seconds));
    }
    rows.push(first);
    for source in &def.sources {
        let mut row = row("source", source.table.to_string());
        row.insert("changes".into(), Json::from(source.change_kinds()));
        row.insert("start_seq".into(), seq_json(source.start_seq.0));
        rows.push(row);
    }
    let columns = vec![
        column("object", "TEXT"),
        column("name", "TEXT"),
        column("partitions", "INT"),
        column("retention_seconds", "BIGINT"),
        column("changes", "TEXT"),
        column("start_seq", "BIGINT"),
    ];
    rows_result(columns, rows)
}
